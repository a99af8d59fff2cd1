// `wand agent`, `wand skills`, `wand runs show --steps` and `wand export --format trajectories`
// as processes: bad input gets exit 2 and a message naming it; skills persist across processes;
// and the loop runs against `wand serve` over OpenAI-compatible HTTP with the shipped model.
#include <sys/wait.h>

#include <fmt/core.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "serve_process.h"
#include "support.h"

namespace wand::test {
namespace {

namespace fs = std::filesystem;

struct Ran {
  int rc;
  std::string out;  // stdout and stderr together
};

Ran wand(const std::string& args) {
  std::string cmd = fmt::format("env -u WAND_AGENT_MODEL {} {} 2>&1", WAND_BINARY, args);
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string temp_store(const std::string& name) {
  std::string p = ::testing::TempDir() + "wand_agent_" + name + "_" + std::to_string(::getpid()) + ".db";
  fs::remove(p);
  return p;
}

TEST(AgentCli, BadInputIsExitTwoNamingIt) {
  auto none = wand("agent");
  EXPECT_EQ(none.rc, 2);
  EXPECT_NE(none.out.find("give a TASK (free-form text) or --env NAME"), std::string::npos) << none.out;
  auto both = wand("agent 'do it' --env kitchen");
  EXPECT_EQ(both.rc, 2);
  EXPECT_NE(both.out.find("give a TASK or --env, not both"), std::string::npos) << both.out;
  auto env = wand("agent --env nowhere --task 0 --model local:/nonexistent.gguf");
  EXPECT_EQ(env.rc, 2);
  EXPECT_NE(env.out.find("--env "), std::string::npos) << env.out;
  EXPECT_NE(env.out.find("'nowhere'"), std::string::npos) << env.out;
  auto steps = wand("agent 'x' --max-steps 0");
  EXPECT_EQ(steps.rc, 2);
  EXPECT_NE(steps.out.find("--max-steps"), std::string::npos) << steps.out;
  auto task = wand("agent 'x' --task 3");
  EXPECT_EQ(task.rc, 2);
  auto split = wand("agent 'x' --split train");  // a task set's option without --env: refused, not ignored
  EXPECT_EQ(split.rc, 2);
  EXPECT_NE(split.out.find("--split requires --env"), std::string::npos) << split.out;
  auto both_sets = wand("agent --env kitchen --task 3 --limit 5 --no-store");
  EXPECT_EQ(both_sets.rc, 2);
  EXPECT_NE(both_sets.out.find("--task and --limit"), std::string::npos) << both_sets.out;
  auto skills = wand("agent 'x' --skills maybe");
  EXPECT_EQ(skills.rc, 2);
  EXPECT_NE(skills.out.find("--skills"), std::string::npos) << skills.out;
  auto model = wand("agent 'x' --model openai:not-a-url --no-store");
  EXPECT_EQ(model.rc, 2);
  EXPECT_NE(model.out.find("--model"), std::string::npos) << model.out;
  if (!fs::exists(std::string(WAND_MODELS_DIR) + "/wand-agent.gguf")) {
    auto no_model = wand("agent 'x' --no-store");
    EXPECT_EQ(no_model.rc, 2);
    EXPECT_NE(no_model.out.find("no agent model"), std::string::npos) << no_model.out;
    EXPECT_NE(no_model.out.find("--model openai:http://HOST:PORT/v1/MODEL"), std::string::npos);
  }
  {  // a model that cannot be opened is named by where it came from
    std::string cmd = fmt::format("WAND_AGENT_MODEL=local:/nonexistent.gguf {} agent x --no-store 2>&1", WAND_BINARY);
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    int st = ::pclose(p);
    EXPECT_EQ(WEXITSTATUS(st), 2) << out;
    EXPECT_NE(out.find("$WAND_AGENT_MODEL "), std::string::npos) << out;
    EXPECT_EQ(out.find("--model"), std::string::npos) << out;
  }
  auto pg = wand("skills list --store postgresql://127.0.0.1:1/x");  // not "no skills yet": skills need a store file
  EXPECT_EQ(pg.rc, 2) << pg.out;
  EXPECT_EQ(pg.out.find("no skills yet"), std::string::npos) << pg.out;
  auto env_timeout = wand("bench --env kitchen --limit 1 --timeout 5");  // the agent's steps have their own
  EXPECT_EQ(env_timeout.rc, 2) << env_timeout.out;
  EXPECT_NE(env_timeout.out.find("--timeout: not an option of --env"), std::string::npos) << env_timeout.out;
  auto bench = wand("bench --env kitchen --k 3");
  EXPECT_EQ(bench.rc, 2);
  EXPECT_NE(bench.out.find("--k: not an option of --env"), std::string::npos) << bench.out;
}

// A model that never answers (here: nothing listens on the port) stops a many-task run at its
// first task with exit 1, rather than retrying every task and reporting 0% with exit 0.
TEST(AgentCli, AModelThatNeverAnsweredStopsAManyTaskRun) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = wand("agent --env kitchen --limit 20 --no-store --model openai:http://127.0.0.1:1/v1/wand-agent");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("the model has not answered"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the other 19 tasks are not run"), std::string::npos) << r.out;
  EXPECT_LT(s, 60) << "every task was tried";
}

TEST(AgentCli, SkillsImportListExportRemoveAcrossProcesses) {
  std::string store = temp_store("skills");
  std::string file = store + ".jsonl";
  {
    std::ofstream f(file);
    f << R"J({"name": "heat_milk", "description": "Heats milk until warm.", "signature": "heat_milk()", "code": "def heat_milk():\n    return 'warm'", "tests": "assert heat_milk() == 'warm'"})J"
      << "\n"
      << R"J({"name": "broken", "description": "Fails its test.", "code": "def broken():\n    return 1", "tests": "assert broken() == 2"})J"
      << "\n";
  }
  auto imp = wand(fmt::format("skills import {} --store {}", file, store));
  ASSERT_EQ(imp.rc, 0) << imp.out;
  EXPECT_NE(imp.out.find("imported: 2 added, 0 new versions, 0 merged"), std::string::npos) << imp.out;
  auto list = wand(fmt::format("skills list --json --store {}", store));
  ASSERT_EQ(list.rc, 0) << list.out;
  EXPECT_NE(list.out.find("\"name\":\"heat_milk\""), std::string::npos) << list.out;
  auto test = wand(fmt::format("skills test --store {}", store));
  EXPECT_EQ(test.rc, 1) << test.out;
  EXPECT_NE(test.out.find("broken"), std::string::npos);
  EXPECT_NE(test.out.find("FAIL (demoted)"), std::string::npos) << test.out;
  auto show = wand(fmt::format("skills show broken --store {}", store));
  EXPECT_EQ(show.rc, 0);
  EXPECT_NE(show.out.find("demoted"), std::string::npos) << show.out;
  auto exp = wand(fmt::format("skills export --store {}", store));
  EXPECT_EQ(exp.rc, 0);
  EXPECT_EQ(std::count(exp.out.begin(), exp.out.end(), '\n'), 2);
  EXPECT_EQ(wand(fmt::format("skills rm broken --store {}", store)).rc, 0);
  auto gone = wand(fmt::format("skills show broken --store {}", store));
  EXPECT_EQ(gone.rc, 2);
  EXPECT_NE(gone.out.find("no skill 'broken'"), std::string::npos) << gone.out;
  {
    std::ofstream f(file);
    f << R"J({"name": "x y", "code": "def x(): pass"})J" << "\n";
  }
  auto bad = wand(fmt::format("skills import {} --store {}", file, store));
  EXPECT_EQ(bad.rc, 2);
  EXPECT_NE(bad.out.find("line 1: field 'name': 'x y' is not a Python identifier"), std::string::npos) << bad.out;
  {  // a good line before a bad one: nothing is imported
    std::ofstream f(file);
    f << R"J({"name": "ok_one", "code": "def ok_one():\n    return 1"})J" << "\nbroken\n";
  }
  auto half = wand(fmt::format("skills import {} --store {}", file, store));
  EXPECT_EQ(half.rc, 2);
  EXPECT_NE(half.out.find("line 2: not JSON (nothing imported)"), std::string::npos) << half.out;
  EXPECT_EQ(wand(fmt::format("skills show ok_one --store {}", store)).rc, 2) << "the line before the bad one was imported";
  {  // code that would run when loaded, or replace what the session has: refused, nothing imported
    std::ofstream f(file);
    f << R"J({"name": "ok_two", "code": "def ok_two():\n    return 2"})J" << "\n"
      << R"J({"name": "runs", "code": "import os\nos.system('touch /tmp/x')\ndef runs():\n    return 1"})J" << "\n";
  }
  auto runs = wand(fmt::format("skills import {} --store {}", file, store));
  EXPECT_EQ(runs.rc, 2) << runs.out;
  EXPECT_NE(runs.out.find("line 2: field 'code' of 'runs' could not be loaded into a session: line 2: only function "
                          "definitions and imports may be at a skill's top level (nothing imported)"),
            std::string::npos)
      << runs.out;
  EXPECT_EQ(wand(fmt::format("skills show ok_two --store {}", store)).rc, 2) << "the line before the refused one was imported";
  {
    std::ofstream f(file);
    f << R"J({"name": "decorated", "code": "@print\ndef decorated():\n    return 1"})J" << "\n";
  }
  auto decorated = wand(fmt::format("skills import {} --store {}", file, store));
  EXPECT_EQ(decorated.rc, 2) << decorated.out;
  EXPECT_NE(decorated.out.find("line 1: field 'code' of 'decorated'"), std::string::npos) << decorated.out;
  {
    std::ofstream f(file);
    f << R"J({"name": "shadow", "code": "def shadow():\n    return 1\ndef final_answer(x):\n    return x"})J" << "\n";
  }
  auto shadow = wand(fmt::format("skills import {} --store {}", file, store));
  EXPECT_EQ(shadow.rc, 2) << shadow.out;
  EXPECT_NE(shadow.out.find("it would replace 'final_answer'"), std::string::npos) << shadow.out;
  auto folder = wand(fmt::format("skills import {} --store {}", ::testing::TempDir(), store));
  EXPECT_EQ(folder.rc, 2) << folder.out;
  EXPECT_NE(folder.out.find("a folder, not a JSON-lines file"), std::string::npos) << folder.out;
  fs::remove(file);
  fs::remove(store);
}

// The loop against `wand serve` (the shipped model over OpenAI-compatible HTTP): it runs,
// records the trajectory with the server's token counts, replays it and exports it. The small
// math model is no agent; the test checks the path, not the answer.
TEST(AgentCli, RunsAgainstWandServeAndRecordsTheTrajectory) {
  ServeProcess serve;
  ASSERT_GT(serve.port(), 0);
  std::string store = temp_store("serve");
  auto r = wand(fmt::format("agent 'Compute 12 * 7 and give the answer.' --model openai:http://127.0.0.1:{}/v1 "
                            "--max-steps 2 --step-tokens 48 --skills off --store {} --json",
                            serve.port(), store));
  ASSERT_TRUE(r.rc == 0 || r.rc == 1) << r.out;
  Json j = Json::parse(r.out.substr(r.out.find('{')), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["prompt_format"], "completion");  // wand serve says the model is a wand model
  ASSERT_GE(j["steps"].size(), 1u);
  EXPECT_GT(j["steps"][0]["prompt_tokens"].get<int>(), 0);
  EXPECT_EQ(j["steps"][0]["prompt"].get<std::string>().rfind("Task: Compute 12 * 7", 0), 0u);
  std::string id = j["run_id"];
  auto show = wand(fmt::format("runs show {} --steps --store {}", id, store));
  ASSERT_EQ(show.rc, 0) << show.out;
  EXPECT_NE(show.out.find("── step 1 (act)"), std::string::npos) << show.out;
  auto traj = wand(fmt::format("export --run {} --format trajectories --store {}", id, store));
  ASSERT_EQ(traj.rc, 0) << traj.out;
  std::string first = traj.out.substr(traj.out.find('{'));  // after the summary on stderr
  Json line = Json::parse(first.substr(0, first.find('\n')), nullptr, false);
  ASSERT_FALSE(line.is_discarded()) << traj.out;
  EXPECT_EQ(line["task_id"], "free-form");
  EXPECT_EQ(line["steps"].size(), j["steps"].size());
  auto dpo = wand(fmt::format("export --run {} --format dpo --store {}", id, store));
  EXPECT_EQ(dpo.rc, 2);
  EXPECT_NE(dpo.out.find("exports as trajectories or sft"), std::string::npos) << dpo.out;
  fs::remove(store);
}

// wand's own agent model served by `wand serve`: the client learns from GET /v1/models that it
// is a wand agent model and its context, so the loop sends the same lean completion prompts to
// /v1/completions as it does to the embedded engine, and the run is the same, step for step.
TEST(AgentCli, AgentModelOverWandServeRunsAsEmbedded) {
  std::string model = std::string(WAND_MODELS_DIR) + "/wand-agent.gguf";
  ServeProcess serve("local:" + model);
  ASSERT_GT(serve.port(), 0);
  for (int task : {0, 4}) {
    std::string common = fmt::format("agent --env kitchen --task {} --max-steps 3 --skills off --no-store --json", task);
    auto remote = wand(fmt::format("{} --model openai:http://127.0.0.1:{}/v1", common, serve.port()));
    auto local = wand(fmt::format("{} --model local:{}", common, model));
    ASSERT_TRUE(remote.rc == 0 || remote.rc == 1) << remote.out;
    ASSERT_EQ(local.rc, remote.rc) << local.out << remote.out;
    Json r = Json::parse(remote.out.substr(remote.out.find('{')), nullptr, false);
    Json l = Json::parse(local.out.substr(local.out.find('{')), nullptr, false);
    ASSERT_FALSE(r.is_discarded() || l.is_discarded()) << remote.out << local.out;
    EXPECT_EQ(r["prompt_format"], "completion");
    ASSERT_GE(r["steps"].size(), 1u);
    const std::string prompt = r["steps"][0]["prompt"];
    EXPECT_EQ(prompt.rfind("Task: ", 0), 0u) << prompt;
    EXPECT_EQ(prompt.find("Rules:"), std::string::npos) << prompt;  // the lean prompt of wand's agent models
    ASSERT_EQ(r["steps"].size(), l["steps"].size()) << remote.out << local.out;
    for (std::size_t i = 0; i < r["steps"].size(); ++i) {
      EXPECT_EQ(r["steps"][i]["prompt"], l["steps"][i]["prompt"]) << i;
      EXPECT_EQ(r["steps"][i]["output"], l["steps"][i]["output"]) << i;
    }
    EXPECT_EQ(r["success"], l["success"]);
  }
}

}  // namespace
}  // namespace wand::test
