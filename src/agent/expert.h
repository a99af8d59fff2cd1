// The experts' solutions as training text for wand's own agent models, in the loop's compact
// completion format (agent.h: render_header, render_step): each step of
// Environment::expert_steps() with the observation the CodeAct loop shows after it. The corpus's
// agent parts (`wand corpus --mix agent=1`, `agent_json=1`) are made of these documents.
#pragma once
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
Result<std::vector<ExpertStep>> expert_trajectory(Environment& env);

// The solution as JSON tool calls: per call, the thought of the expert step it starts ("" for
// the step's later calls), the call, and its observation (the tool's result as print() shows it;
// "Final answer: <JSON>" for final_answer).
struct ExpertCall {
  std::string thought;
  Json call;
  std::string observation;
};
Result<std::vector<ExpertCall>> expert_call_trajectory(Environment& env);

// One JSON tool-call step: ["Thought: ...\n"] "Action: {compact JSON}\nObservation:\n...\n\n", the
// JSON variant of render_step (agent.h) for the CodeAct-vs-JSON comparison.
std::string render_call_step(const std::string& thought, const Json& call, const std::string& observation);

// A whole training document for a fresh instance: render_header (task, rules, tools, state) then
// every step, as CodeAct steps or (json_calls) JSON tool calls.
Result<std::string> expert_document(Environment& env, bool json_calls);

}  // namespace wand::agent
