#include "agent/expert.h"

#include <fmt/core.h>

#include "agent/agent.h"
#include "agent/python_text.h"
#include "common/text.h"

namespace wand::agent {
namespace {

// Calls one tool of `reg` in-process; its result as print() writes it, or the call's error.
Result<std::string> run_call(const tools::Registry& reg, const Json& call) {
  const auto* tool = reg.find(call["name"].get<std::string>());
  if (!tool) return Error{fmt::format("expert: no tool '{}'", call["name"].get<std::string>())};
  auto r = tools::call(*tool, call["arguments"]);
  if (!r) return Error{fmt::format("expert: {} failed: {}", call.dump(), r.error().message)};
  return python_print(r.value());
}

// The loop's observation of a block that printed `out` and, when `final`, ended the run with it.
std::string loop_observation(std::string out, const Json* final) {
  if (final) out += (out.empty() || out.back() == '\n' ? "" : "\n") + std::string("Final answer: ") + final->dump();
  return out.empty() ? "(no output)" : out;
}

}  // namespace

Result<std::vector<ExpertStep>> expert_trajectory(Environment& env) {
  auto steps = env.expert_steps();
  auto calls = env.expert_calls();
  auto reg = env.tools();
  std::vector<ExpertStep> out;
  std::size_t next = 0;
  for (std::size_t s = 0; s < steps.size(); ++s) {
    ExpertStep step;
    bool final = false;
    // One call per line; the comment line is the thought; final_answer(...) is the loop's.
    for (std::string_view line : split_lines(steps[s])) {
      if (line.empty()) continue;
      if (line.rfind("# ", 0) == 0 && step.thought.empty() && step.code.empty()) {
        step.thought = std::string(line.substr(2));
        continue;
      }
      step.code += std::string(line) + "\n";
      if (line.rfind("final_answer(", 0) == 0) {
        final = true;
        continue;
      }
      if (next >= calls.size()) return Error{"expert: the steps make more calls than expert_calls() lists"};
      auto r = run_call(reg, calls[next++]);
      if (!r) return r.error();
      if (line.rfind("print(", 0) == 0) step.stdout_text += r.value();
    }
    const Json* answer = final ? &calls.back()["arguments"]["answer"] : nullptr;
    step.observation = loop_observation(step.stdout_text, answer);
    out.push_back(std::move(step));
  }
  return out;
}

Result<std::vector<ExpertCall>> expert_call_trajectory(Environment& env) {
  auto reg = env.tools();
  auto steps = env.expert_steps();
  // Which calls start a step, and that step's thought (the same walk as expert_trajectory).
  std::vector<std::string> thoughts;
  for (auto& s : steps) {
    std::string thought;
    bool first = true;
    for (std::string_view line : split_lines(s)) {
      if (line.empty()) continue;
      if (line.rfind("# ", 0) == 0 && first && thought.empty()) {
        thought = std::string(line.substr(2));
        continue;
      }
      thoughts.push_back(first ? thought : "");
      first = false;
    }
  }
  std::vector<ExpertCall> out;
  auto calls = env.expert_calls();
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const auto& c = calls[i];
    std::string thought = i < thoughts.size() ? thoughts[i] : "";
    if (c["name"] == "final_answer") {
      out.push_back({thought, c, loop_observation("", &c["arguments"]["answer"])});
      continue;
    }
    auto r = run_call(reg, c);
    if (!r) return r.error();
    out.push_back({thought, c, r.value()});
  }
  return out;
}

std::string render_call_step(const std::string& thought, const Json& call, const std::string& observation) {
  std::string out = thought.empty() ? "" : std::string(kThoughtStart) + thought + "\n";
  out += "Action: " + call.dump() + "\nObservation:\n" + observation;
  if (observation.empty() || observation.back() != '\n') out += "\n";
  return out + "\n";
}

Result<std::string> expert_document(Environment& env, bool json_calls) {
  std::string doc = render_header({.instruction = env.task().instruction,
                                   .rules = env.describe(),
                                   .tools = tools_text(env.tools()),
                                   .observation = env.observe()});
  if (json_calls) {
    auto t = expert_call_trajectory(env);
    if (!t) return t.error();
    for (auto& c : t.value()) doc += render_call_step(c.thought, c.call, c.observation);
  } else {
    auto t = expert_trajectory(env);
    if (!t) return t.error();
    for (auto& s : t.value()) doc += render_step({s.thought, s.code, s.observation});
  }
  return doc;
}

}  // namespace wand::agent
