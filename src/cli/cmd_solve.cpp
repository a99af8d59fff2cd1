// `wand solve` (one question) and `wand bench synthetic` (accuracy on held-out problems).
#include <chrono>
#include <filesystem>
#include <fstream>

#include <fmt/core.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/json.h"
#include "common/output.h"
#include "common/progress.h"
#include "feedback/feedback.h"
#include "reason/reason.h"

namespace wand::cli {
namespace {

std::string model_for(const std::string& method, const std::string& given) {
  if (!given.empty()) return given;
  if (method == "cot") return std::string("local:") + WAND_MODELS_DIR + "/wand-cot.gguf";
  return default_model_spec();
}

Result<std::unique_ptr<sandbox::Sandbox>> small_sandbox() {
  sandbox::Options o;
  o.cells = 1;
  o.preload = {};  // the programs are plain arithmetic: a lean cell starts faster
  return sandbox::Sandbox::create(o);
}

// The model for the method, and a sandbox when the method runs programs; prints the error and
// returns the exit code when either cannot be opened.
struct Solver {
  std::unique_ptr<llm::Backend> model;
  std::unique_ptr<sandbox::Sandbox> sb;
};
Result<Solver> open_solver(const std::string& method, const std::string& model_spec, int& exit_code,
                           const char* cmd) {
  Solver s;
  auto model = llm::open_backend(model_for(method, model_spec));
  if (!model) {
    exit_code = kExitBadInput;
    return Error{fmt::format("wand {}: {}", cmd, model.error().message)};
  }
  s.model = std::move(*model);
  if (method == "pot") {
    auto sb = small_sandbox();
    if (!sb) {
      exit_code = kExitSandbox;
      return Error{fmt::format("wand {}: sandbox: {}", cmd, sb.error().message)};
    }
    s.sb = std::move(*sb);
  }
  return s;
}

Result<reason::Solution> run_method(const std::string& method, llm::Backend& model, sandbox::Sandbox* sb,
                                    const std::string& question) {
  return method == "pot" ? reason::solve_pot(model, *sb, question) : reason::solve_cot(model, question);
}

}  // namespace

Command add_solve(CLI::App& app) {
  auto* cmd = app.add_subcommand("solve", "Answer a word problem: the model writes a program, the sandbox runs it");
  struct Args {
    std::string question, model, method = "pot";
    bool show = false, json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("question", a->question, "The question")->required();
  cmd->add_option("-m,--model", a->model, "local:PATH.gguf or openai:URL/MODEL (default: the shipped model)");
  cmd->add_option("--method", a->method, "pot (program, executed) or cot (prose; the model does the arithmetic)")
      ->check(CLI::IsMember({"pot", "cot"}))
      ->capture_default_str();
  cmd->add_flag("--show-program", a->show, "Print the program (or rationale) and its output");
  cmd->add_flag("--json", a->json, "Print the solution as JSON");
  return [a] {
    int rc = kExitOk;
    auto solver = open_solver(a->method, a->model, rc, "solve");
    if (!solver) {
      fmt::print(stderr, "{}\n", solver.error().message);
      return rc;
    }
    auto& model = solver->model;
    auto sol = run_method(a->method, *model, solver->sb.get(), a->question);
    if (!sol) {
      fmt::print(stderr, "wand solve: {}\n", sol.error().message);
      return model_error_exit_code(sol.error());
    }
    if (a->json) {
      fmt::print("{}\n", Json{{"model", model->id()},
                              {"method", sol->method},
                              {"answer", sol->answer},
                              {"generation", sol->generation},
                              {"output", sol->output},
                              {"error", sol->error},
                              {"completion_tokens", sol->completion_tokens},
                              {"generate_ms", sol->generate_ms},
                              {"execute_ms", sol->execute_ms}}
                             .dump(2));
    } else {
      if (a->show) {
        fmt::print("--- {} ({}) ---\n{}", a->method == "pot" ? "program" : "rationale", model->id(), sol->generation);
        if (!sol->generation.empty() && sol->generation.back() != '\n') fmt::print("\n");
        if (a->method == "pot") fmt::print("--- output ---\n{}", sol->output);
        fmt::print("--- answer ---\n");
      }
      if (!sol->error.empty()) fmt::print(stderr, "no answer: {}\n", sol->error);
      else fmt::print("{}\n", sol->answer);
    }
    return sol->answer.empty() ? kExitFailed : kExitOk;
  };
}

Command add_bench(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Score a reasoning method on a benchmark");
  bench->require_subcommand(1);
  auto* cmd = bench->add_subcommand("synthetic", "Held-out synthetic word problems (see models/MODEL_CARD.md)");
  struct Args {
    std::string model, method = "pot", set = "numbers", problems, out;
    int limit = 0;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--method", a->method, "pot or cot")->check(CLI::IsMember({"pot", "cot"}))->capture_default_str();
  cmd->add_option("-m,--model", a->model, "Model (default: the shipped model for the method)");
  cmd->add_option("--set", a->set, "numbers (train templates, new numbers) or templates (unseen templates)")
      ->check(CLI::IsMember({"numbers", "templates"}))
      ->capture_default_str();
  cmd->add_option("--problems", a->problems, "A JSONL file of {question, answer} (or PAL's {input, target}) instead of --set");
  cmd->add_option("--limit", a->limit, "Score only the first N problems")
      ->check(number({.lo = 1, .hi = 1e9, .integer = true}));
  cmd->add_option("--out", a->out, "Write each problem's result as JSONL here")->check(writable_file());
  cmd->add_flag("--json", a->json, "Print the summary as JSON");
  return [a] {
    std::string path = a->problems.empty() ? std::string(WAND_MODELS_DIR) + "/heldout-" + a->set + ".jsonl" : a->problems;
    std::vector<std::pair<std::string, std::string>> problems;
    auto r = for_each_json_line(path, [&](int line, const Json& j) -> VoidResult {
      // wand's held-out sets write {question, answer}; PAL's math sets (MultiArith, ASDiv, ...) {input, target}.
      bool pal = j.is_object() && j.contains("input");
      const char *q = pal ? "input" : "question", *want = pal ? "target" : "answer";
      if (!j.is_object() || !j.contains(q) || !j.contains(want) || !j[q].is_string())
        return Error{fmt::format("{} line {}: expected {{\"question\": ..., \"answer\": ...}} or PAL's "
                                 "{{\"input\": ..., \"target\": ...}}", path, line)};
      problems.emplace_back(j[q], j[want].is_string() ? j[want].get<std::string>() : j[want].dump());
      return ok_status();
    });
    if (!r) {
      fmt::print(stderr, "wand bench: {}\n", r.error().message);
      return kExitBadInput;
    }
    if (a->limit > 0 && problems.size() > std::size_t(a->limit)) problems.resize(a->limit);
    int rc = kExitOk;
    auto solver = open_solver(a->method, a->model, rc, "bench");
    if (!solver) {
      fmt::print(stderr, "{}\n", solver.error().message);
      return rc;
    }
    auto& model = solver->model;
    std::ofstream out;
    if (!a->out.empty()) {
      out.open(a->out, std::ios::trunc);
      if (!out) {
        fmt::print(stderr, "wand bench: --out {}: cannot write\n", a->out);
        return kExitBadInput;
      }
    }
    Progress progress("problems", problems.size());
    int correct = 0, no_answer = 0;
    long long tokens = 0;
    double gen_ms = 0, exec_ms = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (auto& [q, want] : problems) {
      auto sol = run_method(a->method, *model, solver->sb.get(), q);
      if (!sol) {
        fmt::print(stderr, "wand bench: {}\n", sol.error().message);
        return model_error_exit_code(sol.error());
      }
      bool ok = !sol->answer.empty() && feedback::answers_match(sol->answer, want);
      correct += ok;
      no_answer += sol->answer.empty();
      tokens += sol->completion_tokens;
      gen_ms += sol->generate_ms;
      exec_ms += sol->execute_ms;
      if (out.is_open())
        out << Json{{"question", q}, {"expected", want}, {"answer", sol->answer}, {"correct", ok},
                    {"generation", sol->generation}, {"error", sol->error}}
                   .dump(-1, ' ', false, Json::error_handler_t::replace)
            << "\n";
      if (out.is_open())  // each line as it is scored, so a failed write stops the run at once
        if (auto w = flush_file(out, a->out); !w) {
          fmt::print(stderr, "wand bench: --out {}\n", w.error().message);
          return kExitOutput;
        }
      progress.tick();
    }
    progress.finish();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::size_t n = problems.size();
    Json j = {{"model", model->id()},
              {"method", a->method},
              {"problems", path},
              {"n", n},
              {"correct", correct},
              {"accuracy", n ? double(correct) / n : 0.0},
              {"no_answer", no_answer},
              {"completion_tokens", tokens},
              {"tokens_per_s", gen_ms > 0 ? tokens * 1000.0 / gen_ms : 0.0},
              {"ms_per_problem", n ? secs * 1000 / n : 0.0},
              {"generate_ms_per_problem", n ? gen_ms / n : 0.0},
              {"execute_ms_per_problem", n ? exec_ms / n : 0.0}};
    if (a->json) {
      fmt::print("{}\n", j.dump(2));
    } else {
      fmt::print("{} on {} ({} problems, {})\n", a->method, path, n, model->id());
      fmt::print("  accuracy       {:.1f}%  ({} correct, {} without an answer)\n", 100.0 * j["accuracy"].get<double>(),
                 correct, no_answer);
      fmt::print("  generation     {} tokens, {:.0f} tokens/s\n", tokens, j["tokens_per_s"].get<double>());
      fmt::print("  per problem    {:.1f} ms end to end ({:.1f} generating, {:.1f} executing)\n",
                 j["ms_per_problem"].get<double>(), j["generate_ms_per_problem"].get<double>(),
                 j["execute_ms_per_problem"].get<double>());
    }
    return kExitOk;
  };
}

}  // namespace wand::cli
