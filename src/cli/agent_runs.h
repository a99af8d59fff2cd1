// What `wand agent` and `wand bench --env` share: running the CodeAct loop (src/agent) over a
// free-form task or an environment's task set, recording it, and reporting it.
#pragma once
#include <optional>
#include <string>

#include "agent/agent.h"
#include "cli/tool_options.h"

namespace wand::cli {

struct AgentArgs {
  std::string task;                 // free-form; "" with --env
  std::string env, split = "held-out";
  std::optional<int> task_index;    // --task N
  int limit = 0;                    // --limit N: the split's first N tasks (0: all of them)
  uint64_t env_seed = 1;            // --env-seed: which generated instances
  std::string model, store, skills = "on";
  agent::AgentConfig config;
  ToolArgs tools;
  bool json = false, quiet = false, no_store = false, show_steps = true;
};

// Runs the task(s) `a` names and prints them; the exit code (0: ran and, for one task,
// succeeded; 1: a single task failed; 2: bad input; 3: no sandbox). `cmd` names the command in
// messages ("agent", "bench").
int run_agents(AgentArgs& a, const char* cmd);

}  // namespace wand::cli
