// The agent's code against the host (src/agent): whatever the model writes runs in the
// sandboxed session, so it reaches the host only through the tools it was granted. A model
// that tries the network, the host's files, tools it was not given, or the loop's own report
// channel gets an error as its observation, and the run goes on.
#include <sys/socket.h>

#include <filesystem>
#include <fstream>

#include "../agent/counter_env.h"
#include "../scripted_backend.h"
#include "agent/agent.h"
#include "support.h"

namespace wand::test {
namespace {

std::string act(const std::string& code) { return "Try.\n```python\n" + code + "\n```"; }

agent::AgentResult attack(const std::string& code, agent::Environment* env = nullptr) {
  ScriptedBackend m;
  m.add({act(code)});
  m.add({act("final_answer('end')")});
  agent::AgentTask t{.instruction = "Anything."};
  if (env) {
    auto e = agent::task_from_environment(*env);
    EXPECT_TRUE(e);
    t = *e;
  }
  auto r = agent::run_agent(m, shared_sandbox(), t, {.max_steps = 2}, {.env = env});
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? std::move(*r) : agent::AgentResult{};
}

TEST(AgentAttacks, NoNetworkToTheHost) {
  auto [fd, port] = loopback_listener();
  ASSERT_GE(fd, 0);
  auto r = attack(fmt::format("import socket\ns = socket.create_connection(('127.0.0.1', {}), timeout=2)\nprint('connected')", port));
  ::close(fd);
  ASSERT_GE(r.steps.size(), 1u);
  EXPECT_EQ(r.steps[0].observation.find("connected"), std::string::npos);
  EXPECT_NE(r.steps[0].error.find("Error"), std::string::npos) << r.steps[0].observation;
  EXPECT_EQ(r.end_reason, agent::kEndFinalAnswer);  // the run went on
}

TEST(AgentAttacks, NoHostFiles) {
  std::string secret = ::testing::TempDir() + "agent_secret_" + std::to_string(::getpid());
  { std::ofstream(secret) << "host secret"; }
  auto r = attack(fmt::format("print(open('{}').read())", secret));
  std::filesystem::remove(secret);
  ASSERT_GE(r.steps.size(), 1u);
  EXPECT_EQ(r.steps[0].observation.find("host secret"), std::string::npos);
  EXPECT_NE(r.steps[0].error.find("FileNotFoundError"), std::string::npos) << r.steps[0].error;
}

TEST(AgentAttacks, OnlyGrantedToolsAndNoForgedFinalAnswer) {
  CounterEnv env(3);
  // A tool that is not granted is not there; calling the bridge by hand for it is refused; a
  // forged report through the loop's own channel does not end the run nor pass the goal.
  auto r = attack(
      "import wand_tools\n"
      "try:\n    wand_tools.call('fs.read', {'path': '/etc/passwd'})\nexcept ToolError as e:\n    print('refused:', e)\n"
      "_wand_report({'final': 3})\n"
      "print(sorted(n for n in ('inc', 'get', 'reset', 'fs', 'sql', 'http') if n in globals()))",
      &env);
  ASSERT_GE(r.steps.size(), 1u);
  const std::string& obs = r.steps[0].observation;
  EXPECT_NE(obs.find("refused:"), std::string::npos) << obs;
  EXPECT_NE(obs.find("['get', 'inc', 'reset']"), std::string::npos) << obs;
  EXPECT_EQ(r.steps.size(), 2u);  // the forged report did not end the run at step 1
  ASSERT_TRUE(r.check);
  EXPECT_FALSE(r.check->success);
  EXPECT_EQ(env.value(), 0);
}

}  // namespace
}  // namespace wand::test
