// What `wand solve` and `wand bench` both open: the model a method uses and a sandbox for its programs.
#pragma once
#include <initializer_list>
#include <memory>
#include <string>

#include "common/status.h"
#include "llm/llm.h"
#include "reason/reason.h"
#include "sandbox/sandbox.h"

namespace CLI {
class Option;
}

namespace wand::cli {

// --flow-calls / --flow-tokens given to a method other than flow: the message naming the first
// ("--flow-calls: an option of --method flow (this run's method is pot)"); "" when none is.
std::string flow_option_misplaced(const std::string& method, std::initializer_list<const CLI::Option*> flow_options);

// The model spec for a method: `given`, else $WAND_MODEL, else the shipped model for it:
// wand-pot-delex.gguf for pot, wand-cot.gguf for cot, wand-pot.gguf for pal and flow.
std::string model_for(const std::string& method, const std::string& given);

// A sandbox of `cells` cells without preloaded modules: the programs are plain arithmetic.
Result<std::unique_ptr<sandbox::Sandbox>> small_sandbox(int cells = 1);

struct Solver {
  std::unique_ptr<llm::Backend> model;
  std::unique_ptr<sandbox::Sandbox> sb;  // null for cot
};
// The model for the method, and a sandbox when the method runs programs. The error is a message
// for stderr ("wand CMD: ..."); exit_code is set to the exit status it calls for.
Result<Solver> open_solver(const std::string& method, const std::string& model_spec, int& exit_code, const char* cmd,
                           int cells = 1, const llm::BackendOptions& backend = {});

// --select verifier: opens c.verifier_spec (empty: the shipped wand-verify.gguf, its spec then
// recorded) into c.verifier. A --verifier without --select verifier is an error naming it; any
// other select opens nothing.
VoidResult open_verifier(reason::SolveConfig& c, const llm::BackendOptions& backend = {});

}  // namespace wand::cli
