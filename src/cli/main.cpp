#include <fmt/core.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>

#include "cli/commands.h"
#include "common/module.h"
#include "common/output.h"
#include "common/text.h"
#include "llm/kernels.h"
#include "llm/llm.h"
#include "store/store.h"

namespace wand::cli {
namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop = true; }
}  // namespace

std::atomic<bool>& catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  return g_stop;
}
std::string models_dir() {
  if (auto dir = executable_dir()) {
    std::error_code ec;
    auto installed = std::filesystem::path(*dir) / "../share/wand/models";
    if (std::filesystem::is_directory(installed, ec)) return std::filesystem::weakly_canonical(installed, ec).string();
  }
  return WAND_MODELS_DIR;
}
std::string shared_data_dir() {
  if (const char* d = std::getenv("WAND_DATA"); d && *d) return d;
  std::error_code ec;
  auto dir = std::filesystem::weakly_canonical(WAND_SHARED_DATA_DIR, ec);
  return ec ? std::string(WAND_SHARED_DATA_DIR) : dir.string();
}
std::string store_error(const std::string& given, const std::string& message) {
  if (!given.empty()) return "--store " + message;
  return message + " (the default run store: " + store::kDefaultStoreSources + "; or give --store)";
}
std::string default_model_spec(std::string_view shipped) {
  if (const char* m = std::getenv("WAND_MODEL"); m && *m) return m;
  return "local:" + models_dir() + "/" + std::string(shipped);
}

namespace {
// "wand CMD: --OPTION: empty ..." for the first option given an empty or blank value (`-m "$MODEL"`
// with MODEL unset once ran the default model), "" when none was. Options whose empty value means
// something (--preload '') or that refuse it in words of their own are left to themselves.
std::string blank_option(const CLI::App& app, const std::string& path = "wand") {
  static const std::set<std::string> own_rule = {"--preload", "--token", "--host", "--mcp", "--entry", "--store"};
  for (const CLI::App* sub : app.get_subcommands()) {
    const std::string name = path + " " + sub->get_name();  // "wand tools list"
    for (const CLI::Option* o : sub->get_options()) {
      if (!o->nonpositional() || o->get_expected_min() == 0 || own_rule.contains(o->get_name())) continue;
      for (const std::string& v : o->results())
        if (is_blank(v))
          return fmt::format("{}: {}: empty (leave it out for the default)", name, o->get_name());
    }
    if (auto nested = blank_option(*sub, name); !nested.empty()) return nested;
  }
  return "";
}

// "wand runs: unknown command 'delete' (commands: ...)" for a word where a command goes that names
// none (CLI11 says only that a subcommand is required), "" when the words name commands.
std::string unknown_command(const CLI::App& app, int argc, char** argv) {
  const CLI::App* level = &app;
  std::string path = "wand";
  for (int i = 1; i < argc && argv[i][0] != '-' && !level->get_subcommands({}).empty(); ++i) {
    const CLI::App* next = nullptr;
    std::string names;
    for (const CLI::App* sub : level->get_subcommands({})) {
      if (sub->get_name() == argv[i]) next = sub;
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!next) return fmt::format("{}: unknown command '{}' (commands: {}; {} --help)", path, argv[i], names, path);
    path += " " + next->get_name();
    level = next;
  }
  return "";
}
}  // namespace

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
      {"merge", wand::cli::add_merge(app)},
      {"improve", wand::cli::add_improve(app)},
      {"study", wand::cli::add_study(app)},
      {"solve", wand::cli::add_solve(app)},
      {"bench", wand::cli::add_bench(app)},
      {"serve", wand::cli::add_serve(app)},
      {"runs", wand::cli::add_runs(app)},
      {"code", wand::cli::add_code(app)},
      {"tools", wand::cli::add_tools(app)},
      {"mcp", wand::cli::add_mcp(app)},
      {"agent", wand::cli::add_agent(app)},
      {"skills", wand::cli::add_skills(app)},
  };
  if (auto unknown = wand::cli::unknown_command(app, argc, argv); !unknown.empty()) {
    fmt::print(stderr, "{}\n", unknown);
    return wand::cli::kExitBadInput;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : wand::cli::kExitBadInput;
  }
  if (auto blank = wand::cli::blank_option(app); !blank.empty()) {
    fmt::print(stderr, "{}\n", blank);
    return wand::cli::kExitBadInput;
  }
  // A bad WAND_CPU (the engine's kernel path) is bad input, said before any work is done.
  if (auto path = wand::llm::kernel_path_from_env(); !path) {
    fmt::print(stderr, "wand: {}\n", path.error().message);
    return wand::cli::kExitBadInput;
  }
  // A closed pipe shows as EPIPE on the write, handled below, instead of killing the process.
  std::signal(SIGPIPE, SIG_IGN);
  int rc = wand::cli::kExitBadInput;
  wand::WriteError failure;
  try {
    for (auto* sub : app.get_subcommands()) rc = commands.at(sub->get_name())();
    if (wand::flush_stdout(&failure)) return rc;
  } catch (const std::system_error& e) {
    if (!std::ferror(stdout)) throw;  // not fmt::print's failed write of the results
    failure = {fmt::format("standard output: {}", e.code().message()), e.code().value() == EPIPE};
  }
  // The reader of a pipe went away (`wand ... | head -1`): end quietly; the output is incomplete
  // all the same, hence the status. Anything else (a full disk) is said.
  if (!failure.closed_pipe) fmt::print(stderr, "wand: {}\n", failure.message);
  return wand::cli::kExitOutput;
}
