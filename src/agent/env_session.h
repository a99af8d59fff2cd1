// Acting in an environment from sandboxed Python: a persistent session (tools::open_session)
// granted the environment's primitives and final_answer(answer), in which code blocks run one
// after the other. What the experts' tests and a model's step-by-step driver run blocks in.
#pragma once
#include <memory>
#include <string>

#include "agent/env.h"
#include "sandbox/sandbox.h"

namespace wand::agent {

class EnvSession {
 public:
  // Errors: the session could not start (the sandbox's message).
  static Result<std::unique_ptr<EnvSession>> open(sandbox::Sandbox& sb, Environment& env, sandbox::Limits per_block = {});
  ~EnvSession();

  struct Step {
    // What the block printed, then, when it raised, "Type: message" (a failed primitive is
    // ToolError with the precondition's message); a block that printed nothing and raised
    // nothing reads "(no output)".
    std::string observation;
    sandbox::ExecResult result;
  };
  Step run(const std::string& code);
  bool answered() const;  // final_answer(...) was called
  Json answer() const;    // its argument; null before
  bool alive() const;

 private:
  struct State;
  EnvSession(std::unique_ptr<sandbox::Session> s, std::shared_ptr<State> st);
  std::unique_ptr<sandbox::Session> session_;
  std::shared_ptr<State> state_;
};

}  // namespace wand::agent
