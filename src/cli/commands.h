// The `wand` subcommands. Each registers its options on the app and returns the function
// that runs it; the function's return value is the process exit code.
#pragma once
#include <CLI/CLI.hpp>

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace wand::cli {

using Command = std::function<int()>;

// Exit codes shared by all subcommands.
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;     // the work ran and its outcome was not ok
constexpr int kExitBadInput = 2;   // unreadable or invalid input, bad usage
constexpr int kExitSandbox = 3;    // the sandbox could not run on this host
constexpr int kExitOutput = 4;     // results could not be written (a full disk; a closed pipe, quietly)
constexpr int kExitInterrupted = 130;  // 128 + SIGINT: stopped by Ctrl-C or SIGTERM

// For commands that record work item by item (bench, agent): Ctrl-C or SIGTERM sets the returned
// flag, so the item in progress finishes and is recorded before the command stops; the handler
// resets itself, so a second Ctrl-C kills at once.
std::atomic<bool>& catch_stop_signals();

// The shipped models and held-out sets: <binary>/../share/wand/models in an installed copy
// (`cmake --install`), else the source tree's models/ this binary was built from.
std::string models_dir();
// The shared datasets (GSM8K train, the test sets): $WAND_DATA, else ../shared/data beside the
// source tree this binary was built from, so a default does not depend on the current folder.
std::string shared_data_dir();

Command add_exec(CLI::App& app);
Command add_doctor(CLI::App& app);
Command add_eval(CLI::App& app);
Command add_generate(CLI::App& app);
Command add_corpus(CLI::App& app);
Command add_export(CLI::App& app);
Command add_merge(CLI::App& app);  // cmd_merge.cpp
Command add_improve(CLI::App& app);
Command add_study(CLI::App& app);  // cmd_study.cpp: `wand study mixture`
Command add_solve(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_serve(CLI::App& app);
Command add_runs(CLI::App& app);
Command add_code(CLI::App& app);
Command add_tools(CLI::App& app);
Command add_mcp(CLI::App& app);
Command add_agent(CLI::App& app);   // cmd_agent.cpp
Command add_skills(CLI::App& app);  // cmd_agent.cpp

// A run store's error as a face says it: "--store ..." when the option was given (`given`), else
// naming the default's sources, so a bad $WAND_HOME is not blamed on an option nobody gave.
std::string store_error(const std::string& given, const std::string& message);

// The model a command uses when --model is not given: $WAND_MODEL, else the shipped model
// `shipped` (a file of models/).
std::string default_model_spec(std::string_view shipped = "wand-pot.gguf");

// The exit code for an error from a model: kExitBadInput when the request itself was refused
// (an empty question, a prompt longer than the context), else kExitFailed.
int model_error_exit_code(const Error& e);

}  // namespace wand::cli
