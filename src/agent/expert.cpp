#include "agent/expert.h"

#include <fmt/core.h>

#include "agent/agent.h"
#include "agent/python_text.h"
#include "agent/worlds.h"
#include "common/text.h"
#include "feedback/feedback.h"

namespace wand::agent {
namespace {

// Calls one tool of `reg` in-process: its result, or the tool's error message.
Result<Json> call_tool(const tools::Registry& reg, const Json& call) {
  const auto* tool = reg.find(call["name"].get<std::string>());
  if (!tool) return Error{fmt::format("no tool '{}'", call["name"].get<std::string>())};
  return tools::call(*tool, call["arguments"]);
}

// The expert's call: its result as print() writes it; an error is a bug of the expert.
Result<std::string> run_call(const tools::Registry& reg, const Json& call) {
  auto r = call_tool(reg, call);
  if (!r) return Error{fmt::format("expert: {} failed: {}", call.dump(), r.error().message)};
  return python_print(r.value());
}

// The loop's observation of a block that printed `out` and, when `final`, ended the run with it.
std::string loop_observation(std::string out, const Json* final) {
  if (final) out += (out.empty() || out.back() == '\n' ? "" : "\n") + std::string("Final answer: ") + final->dump();
  return out.empty() ? "(no output)" : out;
}

// The mistake's call run where the expert would run step mistake.step: its error message (it
// must fail, and so leaves the environment as it was).
Result<std::string> run_mistake(const tools::Registry& reg, const Mistake& m) {
  auto r = call_tool(reg, m.call);
  if (r) return Error{fmt::format("expert: the mistake {} did not fail", m.call.dump())};
  return r.error().message;
}

// How many calls each expert step makes (final_answer left out): one per line after the
// step's leading "# thought" comment.
std::vector<std::size_t> calls_per_step(const Environment& env) {
  std::vector<std::size_t> out;
  for (auto& s : env.expert_steps()) {
    std::size_t n = 0;
    bool thought = false;
    for (std::string_view line : split_lines(s)) {
      if (line.empty()) continue;
      if (line.rfind("# ", 0) == 0 && !thought && n == 0) {
        thought = true;
        continue;
      }
      n += line.rfind("final_answer(", 0) != 0;
    }
    out.push_back(n);
  }
  return out;
}

}  // namespace

std::string error_observation(const std::string& code, const std::string& type, const std::string& message, int line) {
  sandbox::ExecResult failed;
  failed.status = sandbox::Status::runtime_error;
  failed.exception = sandbox::ExceptionInfo{type, message, line};
  return "Error: " + feedback::judge_asserts(failed, code).feedback;
}

std::string call_observation(const tools::Registry& reg, const Json& call) {
  if (!call.is_object() || !call.contains("name") || !call["name"].is_string())
    return "Error: the action is not a JSON tool call {\"name\": ..., \"arguments\": {...}}";
  Json args = call.value("arguments", Json::object());
  auto r = call_tool(reg, {{"name", call["name"]}, {"arguments", args}});
  return r ? python_print(r.value()) : "Error: " + r.error().message;
}

std::optional<Mistake> find_mistake(const std::function<std::unique_ptr<Environment>()>& fresh, uint64_t pick) {
  auto probe = fresh();
  auto counts = calls_per_step(*probe);
  auto calls = probe->expert_calls();
  if (counts.empty()) return std::nullopt;
  for (std::size_t k = 0; k < counts.size(); ++k) {
    std::size_t s = (pick + k) % counts.size(), first = 0;
    for (std::size_t i = 0; i < s; ++i) first += counts[i];
    for (std::size_t j = 1; j < counts[s]; ++j) {
      auto env = fresh();
      auto reg = env->tools();
      for (std::size_t c = 0; c < first; ++c)
        if (!call_tool(reg, calls[c])) return std::nullopt;  // an expert that fails: expert_document says so
      if (!call_tool(reg, calls[first + j])) return Mistake{s, calls[first + j]};
    }
  }
  return std::nullopt;
}

Result<std::vector<ExpertStep>> expert_trajectory(Environment& env, const Mistake* mistake) {
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
        if (mistake && mistake->step == s) {
          auto why = run_mistake(reg, *mistake);
          if (!why) return why.error();
          std::string code = render_call(reg, mistake->call);
          out.push_back({step.thought, code, "", error_observation(code, "ToolError", why.value(), 1)});
        }
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

Result<std::vector<ExpertCall>> expert_call_trajectory(Environment& env, const Mistake* mistake) {
  auto reg = env.tools();
  auto steps = env.expert_steps();
  // Which calls start a step, and that step's thought (the same walk as expert_trajectory).
  std::vector<std::string> thoughts;
  std::vector<std::size_t> step_of;
  for (std::size_t k = 0; k < steps.size(); ++k) {
    std::string thought;
    bool first = true;
    for (std::string_view line : split_lines(steps[k])) {
      if (line.empty()) continue;
      if (line.rfind("# ", 0) == 0 && first && thought.empty()) {
        thought = std::string(line.substr(2));
        continue;
      }
      thoughts.push_back(first ? thought : "");
      step_of.push_back(first ? k : steps.size());
      first = false;
    }
  }
  std::vector<ExpertCall> out;
  auto calls = env.expert_calls();
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const auto& c = calls[i];
    std::string thought = i < thoughts.size() ? thoughts[i] : "";
    if (mistake && i < step_of.size() && step_of[i] == mistake->step) {
      auto why = run_mistake(reg, *mistake);
      if (!why) return why.error();
      out.push_back({thought, mistake->call, "Error: " + why.value()});
    }
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

std::string render_call_step(const std::string& task, const std::string& thought, const Json& call,
                             const std::string& observation) {
  std::string out = task.empty() ? "" : "Task: " + one_line_task(task) + "\n";
  if (!thought.empty()) out += std::string(kThoughtStart) + one_line_task(thought) + "\n";
  out += "Action: " + call.dump() + "\nObservation:\n" + observation;
  if (observation.empty() || observation.back() != '\n') out += "\n";
  return out + "\n";
}

Result<std::string> expert_document(Environment& env, bool json_calls, const Mistake* mistake) {
  const std::string task = env.task().instruction;
  std::string doc = render_header({.instruction = task, .observation = env.observe()});
  if (json_calls) {
    auto t = expert_call_trajectory(env, mistake);
    if (!t) return t.error();
    for (auto& c : t.value()) doc += render_call_step(task, c.thought, c.call, c.observation);
  } else {
    auto t = expert_trajectory(env, mistake);
    if (!t) return t.error();
    for (auto& s : t.value()) doc += render_step({s.thought, s.code, s.observation, task});
  }
  return doc;
}

}  // namespace wand::agent
