// `wand solve`: one question.
#include <optional>

#include <fmt/core.h>

#include "cli/commands.h"
#include "cli/solver.h"
#include "cli/options.h"
#include "common/json.h"
#include "feedback/feedback.h"
#include "llm/grammar.h"
#include "reason/reason.h"
#include "store/store.h"

namespace wand::cli {

std::string model_for(const std::string& method, const std::string& given) {
  if (!given.empty()) return given;
  if (method == "cot") return default_model_spec("wand-cot.gguf");
  // pot reads hand-written questions with the delexicalized model: on the dev sets it was chosen
  // on (models/MODEL_CARD.md: its fourth try), 15 of 40 hand-written questions and 13 of 118 GSM8K train ones,
  // against wand-pot's 5 and 2; both answer all of wand-pot's held-out numbers set.
  if (method == "pot") return default_model_spec("wand-pot-delex.gguf");
  return default_model_spec();
}

std::string flow_option_misplaced(const std::string& method, std::initializer_list<const CLI::Option*> flow_options) {
  if (method == "flow") return "";
  for (const auto* o : flow_options)
    if (o->count()) return fmt::format("{}: an option of --method flow (this run's method is {})", o->get_name(), method);
  return "";
}

Result<std::unique_ptr<sandbox::Sandbox>> small_sandbox(int cells) {
  sandbox::Options o;
  o.cells = cells;
  o.preload = {};  // the programs are plain arithmetic: a lean cell starts faster
  return sandbox::Sandbox::create(o);
}

Result<Solver> open_solver(const std::string& method, const std::string& model_spec, int& exit_code,
                           const char* cmd, int cells, const llm::BackendOptions& backend) {
  Solver s;
  auto model = llm::open_backend(model_for(method, model_spec), backend);
  if (!model) {
    exit_code = kExitBadInput;
    return Error{fmt::format("wand {}: {}", cmd, model.error().message)};
  }
  s.model = std::move(*model);
  if (method != "cot") {
    auto sb = small_sandbox(cells);
    if (!sb) {
      exit_code = kExitSandbox;
      return Error{fmt::format("wand {}: sandbox: {}", cmd, sb.error().message)};
    }
    s.sb = std::move(*sb);
  }
  return s;
}

VoidResult open_verifier(reason::SolveConfig& c, const llm::BackendOptions& backend) {
  if (c.select != "verifier") {
    if (!c.verifier_spec.empty())
      return Error{fmt::format("--verifier {}: only --select verifier reads a verifier (this run selects by {})", c.verifier_spec, c.select)};
    return ok_status();
  }
  if (c.verifier_spec.empty()) c.verifier_spec = default_model_spec("wand-verify.gguf");
  auto v = llm::open_backend(c.verifier_spec, backend);
  if (!v) return Error{"--verifier " + v.error().message};
  c.verifier = std::move(*v);
  return ok_status();
}

namespace {

// `wand solve`: options in, reason::solve, the answer out (and the run into the store).
struct SolveArgs {
  std::string question, model, method = "pot", prompt_file, prompt_style = "auto", store, constrain;
  llm::BackendOptions backend;
  reason::SolveConfig config;
  std::optional<float> temperature;
  bool show = false, json = false, no_store = false, no_repair = false, no_fallback = false;
};

void print_solution(const SolveArgs& a, const reason::SolveResult& r, const std::string& model_id) {
  if (a.show) {
    for (const auto& s : r.samples) {
      if (s.index != r.winner) continue;
      bool program = s.method != "cot";
      // Each section ends its own line, so the next header never runs into a rationale's last words.
      auto ended = [](const std::string& t) { return t.empty() || t.back() == '\n' ? t : t + "\n"; };
      fmt::print("--- {} (sample {}, {}, {}) ---\n{}", program ? "program" : "rationale", s.index, s.stage, model_id,
                 ended(program ? s.program : s.completion));
      for (std::size_t i = 0; i < s.tool_calls.size(); ++i) {  // flow: the model calls the program made
        const Json& call = s.tool_calls[i];
        fmt::print("--- llm call {} ---\n{}", i + 1, ended(call.value("prompt", "")));
        if (call.contains("error")) fmt::print("=> error: {}\n", call.value("error", ""));
        else fmt::print("=> {}", ended(call.value("completion", "")));
      }
      if (s.exec && !s.exec->stdout_data.empty()) fmt::print("--- output ---\n{}", ended(s.exec->stdout_data));
    }
    fmt::print("--- vote ({}) ---\n", r.vote.weighting);
    for (const auto& e : r.vote.distribution) {
      std::optional<double> verified;  // select verifier: the group's best score
      for (int i : e.samples)
        if (r.samples[i].verified) verified = std::max(verified.value_or(0), *r.samples[i].verified);
      fmt::print("{:>13}  {} of {} samples{}{}\n", e.answer, e.votes, a.config.k,
                 a.config.weighted ? fmt::format(", weight {:.3f}", e.weight) : "",
                 verified ? fmt::format(", verified {:.3f}", *verified) : "");
    }
    int failed = 0, implausible = 0;
    for (const auto& s : r.samples) {
      if (s.stage != "sample" || s.answer) continue;
      ++(s.outcome == "implausible" ? implausible : failed);
    }
    if (implausible) fmt::print("{:>13}  {} of {} samples\n", "(implausible)", implausible, a.config.k);
    if (failed) fmt::print("{:>13}  {} of {} samples\n", "(no answer)", failed, a.config.k);
    if (!r.vote.tie_broken_by.empty()) fmt::print("tie broken by {}\n", r.vote.tie_broken_by);
    if (r.answered_by != "sample" && !r.answered_by.empty()) fmt::print("answered by the {} step\n", r.answered_by);
    fmt::print("--- answer ---\n");
  }
  if (r.answer) {
    fmt::print("{}\n", *r.answer);
    return;
  }
  std::string why;
  for (const auto& s : r.samples) why += fmt::format("{}{} {}: {}", why.empty() ? "" : "; ", s.stage, s.index, s.outcome);
  fmt::print(stderr, "no answer: {}\n", why);
}

}  // namespace

Command add_solve(CLI::App& app) {
  auto* cmd = app.add_subcommand("solve", "Answer a word problem: the model writes programs, the sandbox runs them, they vote");
  auto a = std::make_shared<SolveArgs>();
  auto& c = a->config;
  cmd->add_option("question", a->question, "The question")->required();
  cmd->add_option("-m,--model", a->model,
                  "local:PATH.gguf or openai:URL/MODEL (default: $WAND_MODEL, else the shipped wand-pot-delex for pot, "
                  "wand-cot for cot and wand-pot for pal and flow)");
  cmd->add_option("--method", a->method,
                  "pot (a program assigning `answer`), pal (a `def solution():`), flow (a program asking the model "
                  "sub-questions through llm()), all executed; cot (prose)")
      ->check(CLI::IsMember({"pot", "pal", "flow", "cot"}))
      ->capture_default_str();
  cmd->add_option("--k", c.k, "Samples that vote on their executed answers (self-consistency)")
      ->check(number({.lo = 1, .hi = 64, .integer = true}))
      ->capture_default_str();
  add_kv_cache_option(cmd, a->backend.kv_cache);
  add_threads_option(cmd, a->backend.threads);
  cmd->add_option("--temperature", a->temperature, "Sampling temperature (default: 0 for --k 1, else 0.7)")
      ->check(number(kTemperature));
  cmd->add_option("--top-p", c.top_p, "Nucleus sampling")->check(number({.lo = 0, .hi = 1, .lo_open = true}))->capture_default_str();
  auto* seed = cmd->add_option("--seed", c.seed,
                               "Sampling seed (default: a random one, recorded and printed when sampling); sample i "
                               "of --k draws from a seed derived from it and i")
                    ->check(number(kSeed));
  cmd->add_option("--max-tokens", c.max_tokens, "Tokens per completion")
      ->check(number({.lo = 1, .hi = 1 << 20, .integer = true}))
      ->capture_default_str();
  cmd->add_option("--timeout", c.timeout_s, "Seconds per program run")->check(number(kSeconds))->capture_default_str();
  auto* flow_calls = cmd->add_option("--flow-calls", c.flow_calls, "flow: llm() calls each program may make")
      ->check(number({.lo = 1, .hi = 64, .integer = true}))
      ->capture_default_str();
  auto* flow_tokens = cmd->add_option("--flow-tokens", c.flow_tokens, "flow: tokens each llm() call may generate")
      ->check(number({.lo = 1, .hi = 4096, .integer = true}))
      ->capture_default_str();
  cmd->add_flag("--weighted", c.weighted, "Weigh each vote by the sample's mean token probability");
  cmd->add_option("--select", c.select,
                  "How the answer is chosen among the --k samples: vote (self-consistency, the most frequent answer), "
                  "logprob (the answer of the sample with the highest mean token log-probability) or verifier (the "
                  "answer of the sample --verifier rates most likely right)")
      ->check(CLI::IsMember({"vote", "logprob", "verifier"}))
      ->capture_default_str();
  cmd->add_option("--verifier", c.verifier_spec,
                  "With --select verifier: an outcome verifier, local:PATH.gguf or openai:URL/MODEL (default: the shipped "
                  "wand-verify; src/reason/verifier.h)");
  cmd->add_flag("--plausible", c.plausible,
                "Set aside answers a word problem cannot have (negative, or a fraction when every number in the question "
                "is whole) before the choice; the repair round sees why");
  cmd->add_flag("--shuffle-names", c.shuffle_names,
                "A pot-numbers model with --k > 1: sample i reads the question's number names (n0, n1, ...) in an order "
                "of its own (sample 0 in the order of appearance), so the samples vote from different inputs");
  cmd->add_flag("--no-repair", a->no_repair, "No self-debug round when no sample answers");
  cmd->add_flag("--no-fallback", a->no_fallback, "No chain-of-thought fallback when programs give no answer (a pot-numbers model never has one: it writes no prose)");
  cmd->add_option("--prompt", a->prompt_file, "Your own prompt template (format: src/reason/prompt.h; placeholder {{question}})")
      ->check(CLI::ExistingFile);
  cmd->add_option("--prompt-style", a->prompt_style,
                  "Prompt family: wand (wand's own models), chat, completion; auto: wand for a wand model (a local GGUF or "
                  "one wand serve lists as such), else chat")
      ->check(CLI::IsMember({"auto", "wand", "chat", "completion"}))
      ->capture_default_str();
  cmd->add_option("--constrain", a->constrain,
                  "Decode the programs inside a GBNF grammar: pot, python-block, or a .gbnf file (embedded engine only)");
  cmd->add_flag("--show-program", a->show, "Print the winning program (or rationale), its output and the vote");
  cmd->add_flag("--json", a->json, "Print the result, every sample and the vote as JSON");
  auto* store_opt = add_store_option(cmd, a->store, "Record the run here");
  cmd->add_flag("--no-store", a->no_store, "Do not record the run")->excludes(store_opt);
  return [a, seed, flow_calls, flow_tokens] {
    auto& c = a->config;
    c.method = a->method;
    if (auto e = flow_option_misplaced(c.method, {flow_calls, flow_tokens}); !e.empty()) {
      fmt::print(stderr, "wand solve: {}\n", e);
      return kExitBadInput;
    }
    if (!seed->count()) c.seed = llm::random_seed();
    c.temperature = a->temperature.value_or(c.k > 1 ? 0.7f : 0.f);
    c.repair = !a->no_repair, c.fallback = !a->no_fallback;
    for (const auto& idle : reason::idle_options(c)) fmt::print(stderr, "wand solve: warning: {}\n", idle);
    std::string spec = model_for(a->method, a->model);
    if (!a->constrain.empty()) {  // checked before the model loads
      auto g = llm::Grammar::load(a->constrain);
      if (!g) {
        fmt::print(stderr, "wand solve: --constrain: {}\n", g.error().message);
        return kExitBadInput;
      }
      c.constrain = a->constrain, c.grammar = *g;
    }
    if (!a->prompt_file.empty()) {
      auto t = reason::load_template(a->prompt_file);
      if (!t) {
        fmt::print(stderr, "wand solve: --prompt {}\n", t.error().message);
        return kExitBadInput;
      }
      c.prompt = std::move(*t);
    }
    std::unique_ptr<store::Store> db;
    if (!a->no_store) {
      std::string path = a->store.empty() ? store::default_store_path() : a->store;
      auto s = store::Store::open(path);
      if (!s) {
        fmt::print(stderr, "wand solve: {}\n", store_error(a->store, s.error().message));
        return kExitBadInput;
      }
      db = std::move(*s);
    }
    int rc = kExitOk;
    auto solver = open_solver(a->method, spec, rc, "solve", 1, a->backend);
    if (!solver) {
      fmt::print(stderr, "{}\n", solver.error().message);
      return rc;
    }
    if (auto v = open_verifier(c, a->backend); !v) {
      fmt::print(stderr, "wand solve: {}\n", v.error().message);
      return kExitBadInput;
    }
    auto& model = solver->model;
    auto family = reason::prompt_family(*model, a->prompt_style);  // a remote wand serve says what it is
    if (!family) {
      fmt::print(stderr, "wand solve: --prompt-style: {}\n", family.error().message);
      return kExitBadInput;
    }
    c.family = *family;
    if (auto f = reason::fits_model(*model, c); !f) {
      fmt::print(stderr, "wand solve: {}\n", f.error().message);
      return kExitBadInput;
    }
    auto r = reason::solve(*model, solver->sb.get(), a->question, c);
    if (!r) {
      fmt::print(stderr, "wand solve: {}\n", r.error().message);
      return model_error_exit_code(r.error());
    }
    if (c.temperature > 0 && !a->json) fmt::print(stderr, "[seed {}]\n", c.seed);
    if (r->vote.weighting == "count (no log-probabilities)")  // asked to weigh or rank by them
      fmt::print(stderr, "wand solve: {}: the model gave no log-probabilities; the vote counted samples\n",
                 c.select == "logprob" ? "--select logprob" : "--weighted");
    if (r->vote.weighting == "count (no verifier scores)")  // every answering sample too long for the verifier
      fmt::print(stderr, "wand solve: --select verifier: the verifier could read no sample; the vote counted samples\n");
    std::string run_id;
    if (db) {
      // Recorded after the fact: one question is one problem, written whole or not at all.
      store::RunConfig config = reason::run_config(c, spec, model->id(), r->prompt_hash);
      if (a->backend.kv_cache != llm::BackendOptions{}.kv_cache)
        config.options["kv_cache"] = a->backend.kv_cache;  // absent: the default, as before the option
      auto id = db->create_run(config);
      VoidResult w = id ? db->record_problem(*id, reason::problem_record(0, a->question, *r)) : VoidResult(id.error());
      if (w) w = db->finish_run(*id, {{"answer", r->answer ? Json(*r->answer) : Json(nullptr)}, {"answered_by", r->answered_by}});
      if (!w) {
        fmt::print(stderr, "wand solve: recording the run in {}: {}\n", db->path(), w.error().message);
        return kExitOutput;
      }
      run_id = *id;
    }
    if (a->json) {
      Json j = reason::to_json(*r);
      j["model"] = model->id();
      j["method"] = c.method;
      j["prompt_family"] = c.family;
      j["seed"] = c.seed;
      j["run_id"] = run_id.empty() ? Json(nullptr) : Json(run_id);
      fmt::print("{}\n", dump_text(j, 2));
    } else {
      print_solution(*a, *r, model->id());
    }
    return r->answer ? kExitOk : kExitFailed;
  };
}

}  // namespace wand::cli
