#include "agent/expert.h"

#include <fmt/core.h>

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

}  // namespace

Result<std::vector<ExpertStep>> expert_trajectory(Environment& env) {
  auto steps = env.expert_steps();
  auto calls = env.expert_calls();
  auto reg = env.tools();
  std::vector<ExpertStep> out;
  std::size_t next = 0;
  for (std::size_t s = 0; s < steps.size(); ++s) {
    std::string printed;
    // One call per line; comment lines and final_answer(...) are not tool calls.
    for (std::string_view line : split_lines(steps[s])) {
      if (line.empty() || line.rfind("#", 0) == 0 || line.rfind("final_answer(", 0) == 0) continue;
      if (next >= calls.size()) return Error{"expert: the steps make more calls than expert_calls() lists"};
      auto r = run_call(reg, calls[next++]);
      if (!r) return r.error();
      printed = line.rfind("print(", 0) == 0 ? r.value() : "";
    }
    out.push_back({steps[s], s + 1 == steps.size() ? "" : printed});
  }
  return out;
}

Result<std::vector<std::pair<Json, std::string>>> expert_call_trajectory(Environment& env) {
  auto reg = env.tools();
  std::vector<std::pair<Json, std::string>> out;
  for (auto& c : env.expert_calls()) {
    if (c["name"] == "final_answer") {
      out.emplace_back(c, "");
      continue;
    }
    auto r = run_call(reg, c);
    if (!r) return r.error();
    std::string obs = r.value();
    obs.pop_back();  // print()'s newline
    out.emplace_back(c, obs);
  }
  return out;
}

std::string env_tools_summary(Environment& env) { return tools_summary(env.tools()) + ", final_answer(answer)"; }

Result<std::string> expert_document(Environment& env, bool json_calls) {
  std::string doc = render_task(env.task().instruction, env_tools_summary(env), env.observe());
  if (json_calls) {
    auto t = expert_call_trajectory(env);
    if (!t) return t.error();
    for (auto& [call, obs] : t.value()) doc += render_call_step(call, obs);
  } else {
    auto t = expert_trajectory(env);
    if (!t) return t.error();
    for (auto& s : t.value()) doc += render_step(s.code, s.observation);
  }
  return doc;
}

}  // namespace wand::agent
