// The experts' solutions as training text: each step of Environment::expert_steps() with the
// observation the CodeAct loop would show after it, in the format of format.h. The corpus's
// agent parts (`wand corpus --mix agent=1`, `agent_json=1`) are made of these documents.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "agent/env.h"

namespace wand::agent {

struct ExpertStep {
  std::string code;         // the Python block (its first line "# thought")
  std::string observation;  // what the block prints; "" for the last block (final_answer)
};

// Runs the expert's calls on `env` in this process (the tools' handlers, without a sandbox) and
// returns its steps with their observations: what print() of the last call of each block writes,
// byte for byte what the sandbox prints (tested). `env` is changed: pass a fresh instance.
// Errors: a call that fails (an expert that does not solve its instance: a bug).
Result<std::vector<ExpertStep>> expert_trajectory(Environment& env);

// The same solution as JSON tool calls, each with its observation (the tool's result as print()
// shows it, without the final newline); the last is final_answer with an empty observation.
Result<std::vector<std::pair<Json, std::string>>> expert_call_trajectory(Environment& env);

// A whole training document for a fresh instance: render_task(...) then every step, CodeAct
// (json_calls false) or JSON tool calls (true).
Result<std::string> expert_document(Environment& env, bool json_calls);

// The tools line of an environment's prompt: its primitives and final_answer(answer).
std::string env_tools_summary(Environment& env);

}  // namespace wand::agent
