// Agent runs as records: one store::ProblemRecord per task, one SampleRecord per step (prompt,
// model output, code, execution result, tool calls, timings and tokens in `extra`), read back
// for `wand runs show ID --steps`, and exported as trajectories or as SFT rows in the compact
// completion format (agent.h), the one wand's agent model is trained on.
#pragma once
#include <iosfwd>
#include <string>

#include "agent/agent.h"
#include "store/store.h"

namespace wand::agent {

// The record of one task's run. `head` is what the prompt's header showed (for exports).
store::ProblemRecord to_problem(int index, const std::string& task_id, const PromptHead& head, const AgentResult& r);
// A stored step back (the fields to_problem kept).
Step step_from_sample(const store::SampleRecord& s);

// One step, readable: a rule with its kind, tokens and times, then the thought, code and
// observation (plans: the plan). What `wand agent` prints as it goes and `wand runs show --steps`.
std::string format_step(const Step& s);

// One task of a stored agent run as a JSON trajectory: {"run_id", "task_id", "instruction",
// "success", "end_reason", "end_detail", "final_answer", "steps": [{kind, thought, code,
// observation, error, value, tool_calls, prompt_tokens, completion_tokens, model_s, exec_s}],
// "text": the whole trajectory in the compact format}.
Json trajectory(const std::string& run_id, const store::ProblemRecord& p);

struct TrajectoryExport {
  int tasks = 0;      // tasks in the run
  int rows = 0;       // lines written
  int skipped = 0;    // sft: tasks that did not succeed (no rows from them)
};
// format "trajectories": one line per task (trajectory()). format "sft": for each task that
// succeeded, one {"prompt", "completion", "task_id", "step"} row per action in the compact format:
// the prompt is the trajectory up to "Thought: ", the completion the step up to and including
// "\nObservation:" (so the model learns where a step stops). Errors: a run that is not of kind
// "agent", an unknown format.
Result<TrajectoryExport> export_trajectories(const store::Run& run, const std::string& format, std::ostream& out);

}  // namespace wand::agent
