// `wand code`: a description (or a dataset) in, programs out, by the methods of src/codegen.
#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "codegen/codegen.h"
#include "common/json.h"
#include "common/output.h"
#include "common/progress.h"
#include "common/text.h"
#include "reason/reason.h"
#include "store/store.h"

namespace wand::cli {
namespace {

struct CodeArgs {
  std::string description, tests_file, entry, dataset, out, model, prompt_style = "auto", store;
  codegen::CodeConfig config;
  std::optional<float> temperature;
  int limit = 0;
  unsigned cells = 0;
  bool json = false, no_store = false;
};

std::string shipped_pot_model() { return "local:" + models_dir() + "/wand-pot.gguf"; }

// --model, else $WAND_CODE_MODEL, else the shipped code model (models/MODEL_CARD.md, wand-code).
// $WAND_MODEL is not consulted: its default, the shipped PoT model, writes arithmetic, not functions.
std::string code_model_spec(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* m = std::getenv("WAND_CODE_MODEL"); m && *m) return m;
  return "local:" + models_dir() + "/wand-code.gguf";
}

int fail(int code, const std::string& message) {
  fmt::print(stderr, "wand code: {}\n", message);
  return code;
}

}  // namespace

Command add_code(CLI::App& app) {
  auto* cmd = app.add_subcommand("code", "Write a program for a description or a dataset: sampling, self-debug, CodeT, coder/tester roles");
  auto a = std::make_shared<CodeArgs>();
  auto& c = a->config;
  auto* desc = cmd->add_option("description", a->description, "What the function or program should do");
  auto* tests = cmd->add_option("--tests", a->tests_file, "A file of assert statements the program must pass (its visible tests)")
                    ->check(CLI::ExistingFile);
  auto* entry = cmd->add_option("--entry", a->entry, "The function's name (default: the one the tests or examples call)");
  auto* dataset = cmd->add_option("--dataset", a->dataset, "HumanEval, MBPP or stdin/stdout JSONL: a program per task")
                      ->check(CLI::ExistingFile);
  auto* out = cmd->add_option("--out", a->out, "With --dataset: samples.jsonl in HumanEval's format (task_id, completion)")
                  ->check(writable_file());
  auto* limit = cmd->add_option("--limit", a->limit, "With --dataset: only the first N tasks")
                    ->check(number({.lo = 1, .hi = 1e9, .integer = true}));
  cmd->add_option("--method", c.method, "sample, self-debug, codet or roles")
      ->check(CLI::IsMember({"sample", "self-debug", "codet", "roles"}))
      ->capture_default_str();
  cmd->add_option("--k", c.k, "sample: samples; self-debug, roles: independent chains; codet: programs (n)")
      ->check(number({.lo = 1, .hi = 100, .integer = true}))
      ->capture_default_str();
  auto* rounds = cmd->add_option("--rounds", c.rounds, "self-debug, roles: feedback rounds at most (R)")
      ->check(number({.lo = 0, .hi = 20, .integer = true}))
      ->capture_default_str();
  auto* feedback = cmd->add_option("--feedback", c.feedback, "self-debug's feedback: simple, unit or explain (Chen et al. 2023)")
      ->check(CLI::IsMember({"simple", "unit", "explain"}))
      ->capture_default_str();
  auto* gen_tests = cmd->add_option("--gen-tests", c.tests, "codet, roles: model-written asserts kept (CodeT's m)")
      ->check(number({.lo = 1, .hi = 100, .integer = true}))
      ->capture_default_str();
  cmd->add_option("-m,--model", a->model, "local:PATH.gguf or openai:URL/MODEL (default: $WAND_CODE_MODEL, else the shipped code model, models/wand-code.gguf)");
  cmd->add_option("--prompt-style", a->prompt_style, "Prompt family: wand, chat, completion; auto: wand for a local wand model, else chat")
      ->check(CLI::IsMember({"auto", "wand", "chat", "completion"}))
      ->capture_default_str();
  cmd->add_option("--temperature", a->temperature, "Sampling temperature (default: 0 for one sample or chain, else 0.8; codet: 0.8)")->check(number(kTemperature));
  cmd->add_option("--top-p", c.top_p, "Nucleus sampling")->check(number({.lo = 0, .hi = 1, .lo_open = true}))->capture_default_str();
  auto* seed = cmd->add_option("--seed", c.seed, "Sampling seed (default: a random one, recorded)")->check(number(kSeed));
  cmd->add_option("--max-tokens", c.max_tokens, "Tokens per completion")->check(number({.lo = 1, .hi = 1 << 20, .integer = true}))->capture_default_str();
  cmd->add_option("--timeout", c.timeout_s, "Seconds per sandboxed run")->check(number(kSeconds))->capture_default_str();
  cmd->add_option("--cells", a->cells, "Parallel sandbox cells (default: one per core)")->check(parallel(true));
  cmd->add_flag("--json", a->json, "Print the result, with every step, as JSON (--dataset: the summary)");
  auto* store_opt = add_store_option(cmd, a->store, "Record the run here");
  cmd->add_flag("--no-store", a->no_store, "Do not record the run")->excludes(store_opt);
  desc->excludes(dataset);
  tests->excludes(dataset);
  entry->excludes(dataset);
  out->needs(dataset);
  dataset->needs(out);
  limit->needs(dataset);
  return [a, seed, desc, dataset, entry, rounds, feedback, gen_tests] {
    auto& c = a->config;
    // --dataset: Ctrl-C (or SIGTERM) ends the run after the task in progress; the tasks done keep
    // their samples in --out and their records in the store. Caught from the start, so a Ctrl-C
    // while the model loads ends the run before its first task, the same way.
    std::atomic<bool> not_caught{false};
    std::atomic<bool>& stop = dataset->count() ? catch_stop_signals() : not_caught;
    if (!desc->count() && !dataset->count()) return fail(kExitBadInput, "give a description, or --dataset FILE --out FILE");
    for (auto same : {same_output_file("--dataset", a->dataset, "--out", a->out), output_is_the_store(a->store, a->out)})
      if (!same.empty()) return fail(kExitBadInput, same);
    // An option the chosen method never reads is refused rather than ignored.
    for (auto [opt, methods] : {std::pair{rounds, "self-debug, roles"}, std::pair{feedback, "self-debug"},
                                std::pair{gen_tests, "codet, roles"}})
      if (opt->count() && std::string_view(methods).find(c.method) == std::string_view::npos)
        return fail(kExitBadInput, fmt::format("{}: not read by --method {} (only by {})", opt->get_name(), c.method, methods));
    if (desc->count() && is_blank(a->description))
      return fail(kExitBadInput, "the description is empty");
    if (entry->count() && !is_python_identifier(a->entry))
      return fail(kExitBadInput, fmt::format("--entry '{}': not a Python function name", a->entry));
    if (!seed->count()) c.seed = llm::random_seed();
    // Greedy for one sample or chain (as Self-Debug decodes); CodeT needs varied programs.
    c.temperature = a->temperature.value_or(c.k == 1 && c.method != "codet" ? 0.f : 0.8f);
    std::string spec = code_model_spec(a->model);
    if (spec == shipped_pot_model())
      fmt::print(stderr, "wand code: warning: the shipped model ({}) writes arithmetic programs, not functions; "
                         "set $WAND_CODE_MODEL or --model for a code model\n", spec.substr(6));

    sandbox::Options so;
    so.cells = a->cells;
    so.preload = feedback::kEvalPreload;
    auto sb = sandbox::Sandbox::create(so);
    if (!sb) return fail(kExitSandbox, "sandbox unavailable: " + sb.error().message);

    // The problems: the dataset's records, or the description with its tests.
    std::vector<codegen::Problem> problems;
    if (dataset->count()) {
      auto tasks = feedback::load_tasks(a->dataset);
      if (!tasks) return fail(kExitBadInput, "--dataset " + tasks.error().message);
      for (auto& t : *tasks) {
        if (t.kind == feedback::TaskKind::answer)
          return fail(kExitBadInput, fmt::format("--dataset {}: {} records are word problems, not code tasks (use wand solve)",
                                                 a->dataset, t.format));
        problems.push_back(codegen::problem_from_task(t));
        if (a->limit && static_cast<int>(problems.size()) == a->limit) break;
      }
    } else {
      std::vector<std::string> asserts;
      if (!a->tests_file.empty()) {
        std::ifstream in(a->tests_file, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        asserts = codegen::parse_asserts(ss.str());
        if (asserts.empty()) return fail(kExitBadInput, fmt::format("--tests {}: no assert statements found", a->tests_file));
        auto ok = codegen::parseable_asserts(**sb, asserts, c.timeout_s);
        for (auto& t : asserts)
          if (std::find(ok.begin(), ok.end(), t) == ok.end())
            return fail(kExitBadInput, fmt::format("--tests {}: not a Python assert statement: {}", a->tests_file, t));
      }
      problems.push_back(codegen::problem_from_description(a->description, asserts, a->entry));
    }

    std::unique_ptr<store::Store> db;
    if (!a->no_store) {
      auto s = store::Store::open(a->store.empty() ? store::default_store_path() : a->store);
      if (!s) return fail(kExitBadInput, store_error(a->store, s.error().message));
      db = std::move(*s);
    }
    auto model = llm::open_backend(spec);
    if (!model) return fail(kExitBadInput, model.error().message);
    auto family = reason::prompt_family(**model, a->prompt_style);  // a remote wand serve says what it is
    if (!family) return fail(kExitBadInput, "--model: " + family.error().message);
    c.family = *family;
    if (auto v = codegen::validate(c); !v) return fail(kExitBadInput, v.error().message);

    std::optional<codegen::RunRecorder> recorder;
    if (db) recorder.emplace(*db, codegen::run_config(c, a->dataset, spec, (*model)->id(), ""), problems);
    auto record = [&](int i, const codegen::CodeResult& r) -> VoidResult {
      return recorder ? recorder->record(i, r) : ok_status();
    };
    auto finish = [&](const Json& summary) -> VoidResult { return recorder ? recorder->finish(summary) : ok_status(); };
    auto run_id = [&] { return recorder ? recorder->id() : std::string(); };
    auto store_error = [&](const Error& e) {
      return fail(kExitOutput, fmt::format("recording the run in {}: {}", db->path(), e.message));
    };

    if (dataset->count()) {
      std::ofstream samples(a->out);
      if (!samples) return fail(kExitBadInput, fmt::format("--out {}: cannot write", a->out));
      Progress progress("code", problems.size());
      std::optional<Error> recording;
      auto summary = codegen::run_dataset(
          **model, **sb, problems, c, samples,
          [&](int i, const codegen::CodeResult& r) {
            progress.tick();
            if (auto w = record(i, r); !w) {
              recording = w.error();
              return w;
            }
            return ok_status();
          },
          &stop);
      progress.finish();
      if (recording) return store_error(*recording);
      if (!summary) {
        if (recorder) recorder->interrupt();
        return fail(model_error_exit_code(summary.error()), summary.error().message);
      }
      if (auto f = flush_file(samples, a->out); !f) return fail(kExitOutput, f.error().message);
      if (summary->value("interrupted", false)) {
        if (recorder) recorder->interrupt();
        return fail(kExitInterrupted,
                    fmt::format("interrupted: {} of {} tasks done; --out {} holds their samples (run the rest with a "
                                "dataset of the tasks left)",
                                (*summary)["tasks_done"].get<int>(), problems.size(), a->out));
      }
      if (auto w = finish(*summary); !w) return store_error(w.error());
      (*summary)["run_id"] = run_id().empty() ? Json(nullptr) : Json(run_id());
      (*summary)["model"] = spec;
      (*summary)["seed"] = c.seed;
      if (a->json) {
        fmt::print("{}\n", summary->dump(2));
      } else {
        auto pct = [&](const char* k) {
          return (*summary)[k].is_null() ? std::string("-") : fmt::format("{:.1f}%", 100 * (*summary)[k].get<double>());
        };
        fmt::print("wrote {} samples for {} tasks to {}\n", (*summary)["samples"].get<int>(), problems.size(), a->out);
        if (int n = (*summary)["too_long"].get<int>())
          fmt::print("{} tasks' prompts did not fit the model's context: their completions are empty\n", n);
        auto ci = [&](const char* k) {
          auto& v = (*summary)[k];
          return v.is_array() ? fmt::format(" [{:.1f}, {:.1f}]", 100 * v[0].get<double>(), 100 * v[1].get<double>()) : std::string();
        };
        fmt::print("method {}: pass@1 {} (chosen programs on the hidden tests: {}{}, Wilson 95%)", c.method, pct("pass_at_1"),
                   pct("chosen_pass_rate"), ci("chosen_ci95"));
        if (c.method == "codet") fmt::print("; a random program: {}{}", pct("random_pick_pass_rate"), ci("random_pick_ci95"));
        fmt::print("\n");
        if (!run_id().empty()) fmt::print("run {} (seed {})\n", run_id(), c.seed);
      }
      return kExitOk;
    }

    auto r = codegen::generate(**model, **sb, problems.front(), c);
    if (!r) return fail(model_error_exit_code(r.error()), r.error().message);
    if (auto w = record(0, *r); !w) return store_error(w.error());
    if (auto w = finish({{"how", r->how}, {"passed", r->hidden ? Json(r->hidden->passed) : Json(nullptr)}}); !w)
      return store_error(w.error());
    bool failed = r->hidden && !r->hidden->passed;
    // A program without the function asked for answers nothing a caller can call.
    const std::regex defines_entry("(^|\\n)[ \\t]*(async[ \\t]+)?def[ \\t]+" + a->entry + "[ \\t]*\\(");
    const bool no_entry = !a->entry.empty() && !std::regex_search(r->program, defines_entry);
    failed |= no_entry;
    if (a->json) {
      Json j = codegen::to_json(*r);
      j["run_id"] = run_id().empty() ? Json(nullptr) : Json(run_id());
      j["model"] = spec;
      j["seed"] = c.seed;
      if (!a->entry.empty()) j["defines_entry"] = !no_entry;
      fmt::print("{}\n", dump_text(j, 2));
      return failed ? kExitFailed : kExitOk;
    }
    // Comments first, so the output stays a runnable program.
    fmt::print("# {}\n", r->how);
    if (r->hidden) fmt::print("# --tests: {}\n", r->hidden->passed ? "all passed" : r->hidden->feedback);
    if (no_entry) fmt::print("# --entry: the program defines no {}()\n", a->entry);
    if (!run_id().empty()) fmt::print("# run {} (seed {})\n", run_id(), c.seed);
    fmt::print("{}{}", r->program, r->program.ends_with("\n") ? "" : "\n");
    return failed ? kExitFailed : kExitOk;
  };
}

}  // namespace wand::cli
