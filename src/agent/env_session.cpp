#include "agent/env_session.h"

#include <mutex>

#include <fmt/core.h>

namespace wand::agent {

struct EnvSession::State {
  std::mutex mu;
  bool answered = false;
  Json answer;
};

EnvSession::EnvSession(std::unique_ptr<sandbox::Session> s, std::shared_ptr<State> st)
    : session_(std::move(s)), state_(std::move(st)) {}
EnvSession::~EnvSession() = default;

Result<std::unique_ptr<EnvSession>> EnvSession::open(sandbox::Sandbox& sb, Environment& env, sandbox::Limits per_block) {
  auto reg = env.tools();
  auto st = std::make_shared<State>();
  tools::Tool fa;
  fa.name = "final_answer";
  fa.description = "Ends the task with its answer.";
  fa.parameters = {{"type", "object"}, {"properties", {{"answer", Json::object()}}}, {"required", {"answer"}}};
  fa.inline_call = true;
  fa.handler = [st](const Json& a, const tools::CallContext&) -> Result<Json> {
    std::lock_guard lk(st->mu);
    st->answered = true;
    st->answer = a["answer"];
    return Json(nullptr);
  };
  if (auto added = reg.add(std::move(fa)); !added) return added.error();
  auto s = tools::open_session(sb, reg, per_block);
  if (!s) return s.error();
  return std::unique_ptr<EnvSession>(new EnvSession(std::move(s.value()), st));
}

EnvSession::Step EnvSession::run(const std::string& code) {
  Step out{"", session_->run(code)};
  const auto& r = out.result;
  out.observation = r.stdout_data;
  if (r.exception) out.observation += fmt::format("{}: {}\n", r.exception->type, r.exception->message);
  else if (r.status != sandbox::Status::ok)
    out.observation += fmt::format("the block did not finish: {}\n", r.limit_hit.empty() ? r.error : r.limit_hit + " limit");
  if (out.observation.empty()) out.observation = "(no output)\n";
  return out;
}

bool EnvSession::answered() const {
  std::lock_guard lk(state_->mu);
  return state_->answered;
}
Json EnvSession::answer() const {
  std::lock_guard lk(state_->mu);
  return state_->answer;
}
bool EnvSession::alive() const { return session_->alive(); }

}  // namespace wand::agent
