#include <fmt/core.h>

#include "cli/commands.h"
#include "sandbox/sandbox.h"

namespace wand::cli {

Command add_doctor(CLI::App& app) {
  auto* cmd = app.add_subcommand("doctor", "Report what isolation and limits this host supports");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print the report as JSON");
  return [json] {
    sandbox::HostReport rep = sandbox::doctor();
    Json j = rep.to_json();
    if (*json) {
      fmt::print("{}\n", j.dump(2));
    } else {
      for (const auto& c : rep.checks) fmt::print("{:<4} {:<18} {}\n", c.ok ? "ok" : "FAIL", c.name, c.detail);
      for (const auto& w : rep.warnings) fmt::print("warning: {}\n", w);
      fmt::print("{}\n", j["ok"].get<bool>() ? "sandbox ready" : "sandbox NOT fully available (see above)");
    }
    return j["ok"].get<bool>() ? kExitOk : kExitSandbox;
  };
}

}  // namespace wand::cli
