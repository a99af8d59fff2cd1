// A minimal driver for wand's own agent models on the environments' held-out tasks: the prompt
// is the corpus's format (agent/python_text.h); the model writes a step, the step runs (a code block
// in a sandboxed session, or a JSON tool call on the host), its observation is appended, until
// final_answer or the step budget. Prints the success rate with a 95% Wilson interval, overall
// and for tasks of 1-3 expert actions.
//
//   agent_eval MODEL.gguf [--env kitchen] [--split held-out] [--limit 200] [--format code|json]
//              [--max-steps 8] [--threads 2] [--context 864] [--offset 0] [--seed 1] [--verbose]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include <fmt/core.h>

#include "agent/agent.h"
#include "agent/env.h"
#include "agent/expert.h"
#include "agent/python_text.h"
#include "llm/llm.h"
#include "reason/bench.h"

using namespace wand;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: agent_eval MODEL.gguf [--env E] [--split S] [--limit N] [--format code|json] [--max-steps N] [--verbose]\n");
    return 2;
  }
  std::string model = argv[1], env_name = "kitchen", split = "held-out", format = "code";
  int limit = 200, max_steps = 8, threads = 2, offset = 0, context = 1024 - 160;
  uint64_t seed = 1;  // the instances' seed: another one draws other worlds for the same held-out combinations
  bool verbose = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", a.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--env") env_name = next();
    else if (a == "--split") split = next();
    else if (a == "--limit") limit = std::stoi(next());
    else if (a == "--offset") offset = std::stoi(next());
    else if (a == "--format") format = next();
    else if (a == "--max-steps") max_steps = std::stoi(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--context") context = std::stoi(next());
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--verbose") verbose = true;
    else { std::fprintf(stderr, "unknown option %s\n", a.c_str()); return 2; }
  }
  if (format != "code" && format != "json") { std::fprintf(stderr, "--format: code or json\n"); return 2; }
  llm::BackendOptions bo;
  bo.threads = threads;
  auto backend = llm::open_backend(model, bo);
  if (!backend) { std::fprintf(stderr, "%s\n", backend.error().message.c_str()); return 2; }
  sandbox::Options so;
  so.cells = 1;
  so.preload = {};
  auto sb = sandbox::Sandbox::create(so);
  if (!sb) { std::fprintf(stderr, "%s\n", sb.error().message.c_str()); return 1; }

  int n = 0, solved = 0, n_short = 0, solved_short = 0;
  long steps_total = 0, tokens_total = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = offset; i < offset + limit; ++i) {
    auto env = agent::make_environment(env_name, split, i, seed);
    if (!env) { std::fprintf(stderr, "%s\n", env.error().message.c_str()); return 2; }
    auto& e = **env;
    bool answered = false;
    Json answer;
    int steps = 0;
    if (format == "code") {
      auto task = agent::task_from_environment(e);
      if (!task) { std::fprintf(stderr, "%s\n", task.error().message.c_str()); return 1; }
      agent::AgentConfig cfg;
      cfg.max_steps = max_steps;
      cfg.step_tokens = 160;
      cfg.format = "completion";
      cfg.context_tokens = context;  // the model's context less a step: older steps are condensed to fit
      auto r = agent::run_agent(**backend, **sb, *task, cfg, {.env = &e});
      if (!r) { std::fprintf(stderr, "%s\n", r.error().message.c_str()); return 1; }
      steps = r->actions;
      tokens_total += r->completion_tokens;
      if (r->final_answer) answered = true, answer = *r->final_answer;
      if (verbose)
        for (auto& s : r->steps) std::fprintf(stderr, "Thought: %s\nCode:\n%s\nObservation:\n%s\n", s.thought.c_str(), s.code.c_str(), s.observation.c_str());
    } else {
      // The corpus's agent_json documents (agent::expert_document): the lean header, then per
      // action "Task: ...\n" [Thought] "Action: {...}" and its observation.
      const std::string instruction = e.task().instruction;
      std::string prompt = agent::render_header({.instruction = instruction, .observation = e.observe()});
      auto reg = e.tools();
      for (; steps < max_steps && !answered; ++steps) {
        llm::GenerateOptions go;
        go.max_tokens = 160;
        go.stop = {agent::kStepStop};
        const std::string start = "Task: " + agent::one_line_task(instruction) + "\n";
        auto out = (*backend)->complete(prompt + start, go);
        if (!out || out->empty()) break;
        std::string text = out->front().text;
        tokens_total += out->front().completion_tokens;
        auto a = text.find("Action: ");
        if (a == std::string::npos) break;
        auto nl = text.find('\n', a);
        std::string thought = text.substr(0, a);
        if (thought.rfind(agent::kThoughtStart, 0) == 0) thought = thought.substr(std::string(agent::kThoughtStart).size());
        while (!thought.empty() && (thought.back() == '\n' || thought.back() == ' ')) thought.pop_back();
        std::string action = text.substr(a + 8, nl == std::string::npos ? std::string::npos : nl - a - 8);
        auto call = parse_json(action, "action");
        Json shown = call ? *call : Json(action);
        std::string obs;
        if (call && call->is_object() && call->value("name", Json()) == "final_answer") {
          answered = true;
          answer = call->value("arguments", Json::object()).value("answer", Json());
          obs = "Final answer: " + answer.dump();
        } else {
          obs = agent::call_observation(reg, call ? *call : Json());
        }
        prompt += agent::render_call_step(instruction, thought, shown, obs);
      }
      if (verbose) std::fprintf(stderr, "%s\n", prompt.c_str());
    }
    auto c = e.check(answered ? answer : Json());
    bool is_short = e.task().min_steps <= 3;
    ++n, solved += c.success, steps_total += steps;
    n_short += is_short, solved_short += is_short && c.success;
    if (verbose || !c.success)
      std::fprintf(stderr, "%s [%d actions] %s: %s\n", e.task().id.c_str(), e.task().min_steps, c.success ? "ok" : "FAIL",
                   c.success ? "" : c.reason.c_str());
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto [lo, hi] = reason::wilson_interval(solved, n);
  auto [slo, shi] = reason::wilson_interval(solved_short, n_short);
  std::printf("%s %s %s (%s): %d/%d solved = %.1f%% [95%% Wilson %.1f-%.1f]; 1-3-action tasks %d/%d = %.1f%% [%.1f-%.1f]; "
              "%.2f steps and %.0f generated tokens per task; %.2f s per task\n",
              model.c_str(), env_name.c_str(), split.c_str(), format.c_str(), solved, n, 100.0 * solved / n, 100 * lo, 100 * hi,
              solved_short, n_short, n_short ? 100.0 * solved_short / n_short : 0.0, 100 * slo, 100 * shi, double(steps_total) / n,
              double(tokens_total) / n, secs / n);
  return 0;
}
