// wand-train as a child process, for the pipelines that train (`wand improve`, `wand study`).
#pragma once
#include <string>
#include <vector>

#include "common/status.h"

namespace wand::train {

// Runs args[0] (the wand-train binary) with args, stdin from /dev/null, stdout and stderr
// appended to `log`; waits for it. Errors: it cannot start (naming the binary), or it exits
// non-zero or by a signal (naming the log).
VoidResult run_trainer(const std::vector<std::string>& args, const std::string& log);

}  // namespace wand::train
