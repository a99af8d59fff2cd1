// Environments an agent acts in (DESIGN.md layer 3, `agent`): a deterministic world whose action
// primitives are tools (tools::Tool) the agent's code calls, whose state is shown as Python
// literals and dataclass-style reprs (`Fridge(open=False, contents=['milk'])`), and whose tasks
// have checkable goals. The CodeAct loop (agent.h) only sees this interface; the worlds
// (kitchen, data, shop) and their expert planners live beside it.
//
// Instances are generated from (split, index, seed) and are reproducible: the same triple gives
// the same world and task byte for byte. Splits: "train" (what the corpus's agent part draws
// from) and "held-out" (what `wand agent --split held-out` and `wand bench` measure).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "tools/tools.h"

namespace wand::agent {

// One task of an environment: what the agent is told, and what the expert needs to know.
struct Task {
  std::string env;          // "kitchen", "data", "shop"
  std::string id;           // stable, e.g. "kitchen/held-out/17"
  std::string split;        // "train" or "held-out"
  std::string instruction;  // the task as the agent reads it ("Put a warm mug of milk on the table.")
  int min_steps = 1;        // actions the expert needs (1-3 for the short tasks)
};

// Whether the goal holds, and why not.
struct GoalCheck {
  bool success = false;
  std::string reason;  // empty on success; otherwise what is still wrong ("the mug is cold")
};

// One environment instance: a world in a state, with one task. Not thread-safe: one agent run
// owns it. The tools it hands out capture the instance and stay valid while it lives.
class Environment {
 public:
  virtual ~Environment() = default;
  virtual const Task& task() const = 0;
  // Rules and conventions for the system prompt (what the primitives mean, units, what counts
  // as done); a few lines.
  virtual std::string describe() const = 0;
  // The action primitives as tools bound to this instance (look(), go(place), open(x), ...). A
  // precondition that does not hold is the tool's Error with a precise message ("the fridge is
  // closed"), which the program receives as ToolError.
  virtual tools::Registry tools() = 0;
  // The current state as Python literals / dataclass-style reprs: the first observation.
  virtual std::string observe() const = 0;
  // Checks the goal against the world's state and, for question tasks, the agent's final answer
  // (the JSON value the program passed to final_answer; null when it gave none).
  virtual GoalCheck check(const Json& final_answer) const = 0;
  // The expert's solution as CodeAct steps: one Python code block per step, calling the tools
  // and ending with final_answer(...). Deterministic; solves every instance (tested).
  virtual std::vector<std::string> expert_steps() const = 0;
  // The same solution as JSON tool calls, one {"name": ..., "arguments": {...}} per action,
  // for the CodeAct-vs-JSON comparison; the last is {"name": "final_answer", ...}.
  virtual std::vector<Json> expert_calls() const = 0;
};

// The environments this build knows: {"kitchen", "data", "shop"}.
std::vector<std::string> environment_names();

// Makes instance `index` of `split` of environment `name`. Errors name the bad argument: an
// unknown environment (listing the known ones), an unknown split, an index out of range.
Result<std::unique_ptr<Environment>> make_environment(const std::string& name, const std::string& split,
                                                      int index, uint64_t seed = 1);

// How many instances a split has (the held-out split of every environment has at least 200).
Result<int> split_size(const std::string& name, const std::string& split);

}  // namespace wand::agent
