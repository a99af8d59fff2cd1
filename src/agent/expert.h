// The experts' solutions as training text for wand's own agent models, in the loop's compact
// completion format (agent.h: render_header, render_step): each step of
// Environment::expert_steps() with the observation the CodeAct loop shows after it. The corpus's
// agent parts (`wand corpus --mix agent=1`, `agent_json=1`) are made of these documents.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/env.h"

namespace wand::agent {

struct ExpertStep {
  std::string thought;      // the block's leading "# ..." comment
  std::string code;         // the block without that comment
  std::string stdout_text;  // what the block prints
  std::string observation;  // what the loop shows: the output, then "Final answer: <JSON>" for the last
};

// Runs the expert's calls on `env` in this process (the tools' handlers, without a sandbox) and
// returns its steps with their observations; stdout_text is byte for byte what the sandbox
// prints for the block (tested). `env` is changed: pass a fresh instance. Errors: a call that
// fails (an expert that does not solve its instance: a bug the tests catch).
// With `mistake`, its failed call is a step of its own before that step (thought: the step's).
struct Mistake;
Result<std::vector<ExpertStep>> expert_trajectory(Environment& env, const Mistake* mistake = nullptr);

// The solution as JSON tool calls: per call, the thought of the expert step it starts ("" for
// the step's later calls), the call, and its observation (the tool's result as print() shows it;
// "Final answer: <JSON>" for final_answer).
struct ExpertCall {
  std::string thought;
  Json call;
  std::string observation;
};
Result<std::vector<ExpertCall>> expert_call_trajectory(Environment& env, const Mistake* mistake = nullptr);

// One JSON tool-call step: ["Task: <task>\n"] ["Thought: ...\n"] "Action: {compact JSON}\nObservation:\n...\n\n",
// the JSON variant of render_step (agent.h) for the CodeAct-vs-JSON comparison; `task` is the
// lean prompt's reminder ("" for none).
std::string render_call_step(const std::string& task, const std::string& thought, const Json& call,
                             const std::string& observation);
// What a JSON tool-call agent sees after `call` on `reg`: the result as print() shows it, or
// "Error: <why>" (an unknown tool, bad arguments, a failed precondition). Runs the call.
std::string call_observation(const tools::Registry& reg, const Json& call);

// A wrong call shown before step `step` of the expert's solution, with its real error, so that
// a model trained on the trajectories sees errors and the recovery from them (the correct step
// follows). The call fails without changing the environment (a skipped precondition), so the
// expert's continuation stays right.
struct Mistake {
  std::size_t step = 0;
  Json call;  // {"name", "arguments"}
};
// A mistake for the instance `fresh()` makes (called once per try: a try runs calls on its own
// copy): a later call of a step made before the calls it depends on, in the first step from
// `pick % steps` on that has one; nullopt when no step does (a one-call task).
std::optional<Mistake> find_mistake(const std::function<std::unique_ptr<Environment>()>& fresh, uint64_t pick);
// The loop's observation of a code step that raised `type` with `message` at line `line` of
// `code` ("Error: ToolError raised at line 1: `take('milk')`: ...").
std::string error_observation(const std::string& code, const std::string& type, const std::string& message, int line);

// A whole training document for a fresh instance in the lean prompt of wand's own models
// (agent.h: the task and state, no rules or tools; the task restated before each step), then
// every step, as CodeAct steps or (json_calls) JSON tool calls; with `mistake`, its wrong call
// and error come before that step. Errors: an expert that fails, a mistake that does not.
Result<std::string> expert_document(Environment& env, bool json_calls, const Mistake* mistake = nullptr);

}  // namespace wand::agent
