#include <fmt/core.h>

#include <cstdlib>
#include <map>

#include "cli/commands.h"
#include "llm/llm.h"

namespace wand::cli {
std::string default_model_spec() {
  if (const char* m = std::getenv("WAND_MODEL"); m && *m) return m;
  return std::string("local:") + WAND_MODELS_DIR + "/wand-pot.gguf";
}

int model_error_exit_code(const Error& e) {
  return e.code == llm::kInvalidRequest || e.code == llm::kContextLengthExceeded ? kExitBadInput : kExitFailed;
}
}  // namespace wand::cli

int main(int argc, char** argv) {
  CLI::App app{"wand — language models that reason, act and improve through code"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "wand 0.1.0");
  std::map<std::string, wand::cli::Command> commands = {
      {"exec", wand::cli::add_exec(app)},
      {"doctor", wand::cli::add_doctor(app)},
      {"eval", wand::cli::add_eval(app)},
      {"generate", wand::cli::add_generate(app)},
      {"corpus", wand::cli::add_corpus(app)},
      {"export", wand::cli::add_export(app)},
      {"solve", wand::cli::add_solve(app)},
      {"bench", wand::cli::add_bench(app)},
      {"serve", wand::cli::add_serve(app)},
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : wand::cli::kExitBadInput;
  }
  for (auto* sub : app.get_subcommands()) return commands.at(sub->get_name())();
  return wand::cli::kExitBadInput;
}
