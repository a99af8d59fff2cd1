// The `wand` command as a user runs it: exit codes, messages, JSON lines.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>

#include "support.h"

namespace wand::test {
namespace {

struct CliRun {
  int rc;
  std::string out;
};

// Runs `wand ARGS` with `input` on stdin; stderr goes to a file read into err.
CliRun wand(const std::string& args, const std::string& input = "", std::string* err = nullptr) {
  std::string in_path = ::testing::TempDir() + "wand_cli_in", err_path = ::testing::TempDir() + "wand_cli_err";
  std::ofstream(in_path) << input;
  std::string cmd = std::string(WAND_BINARY) + " " + args + " < " + in_path + " 2> " + err_path;
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int st = ::pclose(p);
  if (err) *err = slurp(err_path);
  return {WEXITSTATUS(st), out};
}

TEST(Cli, ExecReportsAndExitsByStatus) {
  CliRun ok = wand("exec -", "print('hi')");
  EXPECT_EQ(ok.rc, 0);
  EXPECT_NE(ok.out.find("status     ok"), std::string::npos) << ok.out;
  CliRun fail = wand("exec --json -", "raise SystemExit(4)");
  EXPECT_EQ(fail.rc, 1);
  auto j = Json::parse(fail.out);
  EXPECT_EQ(j["status"], "runtime_error");
  EXPECT_EQ(j["exit_code"], 4);
}

TEST(Cli, MissingFileIsBadInput) {
  std::string err;
  CliRun r = wand("exec /nonexistent/prog.py", "", &err);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(err.find("/nonexistent/prog.py"), std::string::npos) << err;
}

TEST(Cli, JsonlKeepsOrderAndReportsBadLines) {
  std::string input =
      "{\"id\": 1, \"code\": \"print(1)\"}\n"
      "{not json\n"
      "\n"
      "{\"id\": \"three\", \"language\": \"bash\", \"code\": \"echo 3\"}\n"
      "{\"code\": \"print(4)\", \"timeout\": \"soon\"}\n";
  std::string err;
  CliRun r = wand("exec --jsonl --preload ''", input, &err);
  EXPECT_EQ(r.rc, 2);
  std::vector<Json> lines;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);) lines.push_back(Json::parse(l));
  ASSERT_EQ(lines.size(), 4u) << r.out;  // the blank line is skipped
  EXPECT_EQ(lines[0]["id"], 1);
  EXPECT_EQ(lines[0]["stdout"], "1\n");
  EXPECT_EQ(lines[1]["status"], "invalid_request");
  EXPECT_NE(lines[1]["error"].get<std::string>().find("line 2"), std::string::npos);
  EXPECT_EQ(lines[2]["id"], "three");
  EXPECT_EQ(lines[2]["stdout"], "3\n");
  EXPECT_EQ(lines[3]["status"], "invalid_request");
  EXPECT_NE(lines[3]["error"].get<std::string>().find("timeout"), std::string::npos);
  EXPECT_NE(err.find("line 2"), std::string::npos);
}

TEST(Cli, DoctorSaysTheSandboxIsReady) {
  CliRun r = wand("doctor --json");
  EXPECT_EQ(r.rc, 0) << r.out;
  auto j = Json::parse(r.out);
  EXPECT_TRUE(j["ok"].get<bool>());
  bool saw_cgroups = false;
  for (auto& c : j["checks"]) saw_cgroups |= c["name"] == "cgroups";
  EXPECT_TRUE(saw_cgroups);
}

TEST(Cli, EvalRejectsBadInputClearly) {
  std::string dataset = ::testing::TempDir() + "cli_he.jsonl", samples = ::testing::TempDir() + "cli_samples.jsonl";
  std::ofstream(dataset) << R"({"task_id": "T/0", "prompt": "def f(x):\n", "canonical_solution": "    return x\n", )"
                         << R"("test": "def check(c):\n    assert c(2) == 2\n", "entry_point": "f"})" << "\n";
  std::ofstream(samples) << R"({"task_id": "T/9", "completion": "    return x\n"})" << "\n";
  std::string err;
  EXPECT_EQ(wand("eval --dataset " + dataset, "", &err).rc, 2);  // neither --samples nor --reference
  EXPECT_NE(err.find("--reference"), std::string::npos) << err;
  EXPECT_EQ(wand("eval --dataset " + dataset + " --samples " + samples, "", &err).rc, 2);
  EXPECT_NE(err.find("T/9"), std::string::npos) << err;
  EXPECT_EQ(wand("eval --dataset /nonexistent.jsonl --reference", "", &err).rc, 2);
  CliRun ok = wand("eval --json --k 1 --dataset " + dataset + " --reference");
  EXPECT_EQ(ok.rc, 0);
  EXPECT_DOUBLE_EQ(Json::parse(ok.out)["pass_at_k"]["pass@1"].get<double>(), 1.0) << ok.out;
}

TEST(Cli, EvalRefusesADatasetWithADuplicateTaskId) {
  std::string dataset = ::testing::TempDir() + "cli_dup.jsonl";
  std::ofstream(dataset) << R"({"question": "q1", "answer": "#### 1", "task_id": "a"})" << "\n"
                         << R"({"question": "q2", "answer": "#### 2", "task_id": "b"})" << "\n"
                         << R"({"question": "q3", "answer": "#### 3", "task_id": "a"})" << "\n";
  std::string err;
  EXPECT_EQ(wand("eval --reference --dataset " + dataset, "", &err).rc, 2);
  EXPECT_NE(err.find(dataset + " line 3: duplicate task_id 'a' (first on line 1)"), std::string::npos) << err;
}

// A chat model's fenced answer to HumanEval/0 passes with --extract-code and not without; a k
// no task has enough samples for is reported as not computed, with why, in both outputs.
TEST(Cli, EvalExtractsFencedCodeAndSaysWhichPassAtKIsNotComputed) {
  std::string dataset = std::string(WAND_SHARED_DATA) + "/humaneval/HumanEval.jsonl";
  if (!std::ifstream(dataset)) GTEST_SKIP() << dataset << " not found";
  std::string first;
  std::getline(std::ifstream(dataset) >> std::ws, first);
  auto task = Json::parse(first);
  std::string chat = "Here is the function:\n\n```python\n" + task["prompt"].get<std::string>() +
                     task["canonical_solution"].get<std::string>() + "```\n\nIt compares every pair.";
  std::string samples = ::testing::TempDir() + "cli_chat_samples.jsonl";
  std::ofstream(samples) << Json{{"task_id", task["task_id"]}, {"completion", chat}}.dump() << "\n"
                         << Json{{"task_id", task["task_id"]}, {"completion", chat}}.dump() << "\n";
  std::string args = "eval --dataset " + dataset + " --samples " + samples + " --k 1,2,10";
  CliRun with = wand(args + " --json --extract-code"), without = wand(args + " --json");
  ASSERT_EQ(with.rc, 0) << with.out;
  ASSERT_EQ(without.rc, 0) << without.out;
  auto w = Json::parse(with.out), wo = Json::parse(without.out);
  EXPECT_EQ(w["tasks"], 1);
  EXPECT_DOUBLE_EQ(w["pass_at_k"]["pass@1"].get<double>(), 1.0) << with.out;
  EXPECT_DOUBLE_EQ(w["pass_at_k"]["pass@2"].get<double>(), 1.0) << with.out;
  EXPECT_DOUBLE_EQ(wo["pass_at_k"]["pass@1"].get<double>(), 0.0) << without.out;
  EXPECT_FALSE(w["pass_at_k"].contains("pass@10"));
  auto& nc = w["pass_at_k_not_computed"]["pass@10"];
  EXPECT_EQ(nc["tasks_with_fewer_samples"], 1) << with.out;
  EXPECT_EQ(nc["fewest_samples"], 2) << with.out;
  EXPECT_EQ(nc["reason"], "1 of 1 tasks have fewer than 10 samples (fewest: 2)");
  CliRun table = wand(args + " --extract-code");
  EXPECT_NE(table.out.find("pass@10        not computed: 1 of 1 tasks have fewer than 10 samples (fewest: 2)"),
            std::string::npos) << table.out;
}

// The README's `wand solve` example, run exactly as written there, gives the answer the README
// shows, so the README stays true as the shipped model changes.
TEST(Cli, TheReadmesSolveExampleGivesItsAnswer) {
  std::string readme = slurp(std::string(WAND_SOURCE_DIR) + "/README.md");
  const std::string start = "\nwand solve \"";
  auto at = readme.find(start);
  ASSERT_NE(at, std::string::npos) << "README.md has no `wand solve \"...\"` example";
  auto end = readme.find('\n', at + 1);
  std::string line = readme.substr(at + 1, end - at - 1);  // wand solve "QUESTION"   # ANSWER
  auto close = line.find('"', start.size() - 1);
  auto hash = line.find("# ", close);
  ASSERT_NE(hash, std::string::npos) << "the example's line shows no answer (`# N`): " << line;
  std::string question = line.substr(start.size() - 1, close - (start.size() - 1));
  std::string answer = line.substr(hash + 2);
  std::string err;
  CliRun r = wand("solve \"" + question + "\"", "", &err);
  EXPECT_EQ(r.rc, 0) << err;
  EXPECT_EQ(r.out, answer + "\n") << question << "\n" << err;
}

TEST(Cli, UnknownOptionIsBadInput) {
  EXPECT_EQ(wand("exec --no-such-flag -").rc, 2);
}

}  // namespace
}  // namespace wand::test
