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

TEST(Cli, UnknownOptionIsBadInput) {
  EXPECT_EQ(wand("exec --no-such-flag -").rc, 2);
}

// An empty question is bad input, not a question the model answers anyway (it used to print 40).
TEST(Cli, SolveRefusesAnEmptyQuestion) {
  for (std::string q : {"''", "'  \t '"}) {
    std::string err;
    CliRun r = wand("solve " + q, "", &err);
    EXPECT_EQ(r.rc, 2) << q;
    EXPECT_EQ(r.out, "") << q;
    EXPECT_NE(err.find("the question is empty"), std::string::npos) << err;
  }
}

// Without --seed, each run samples differently and records the seed it drew; giving that seed
// repeats the run. A prompt the model cannot take is bad input.
TEST(Cli, GenerateDrawsAndRecordsASeedAndRefusesAnOverlongPrompt) {
  auto texts = [](const Json& j) {
    std::vector<std::string> t;
    for (auto& c : j["choices"]) t.push_back(c["text"]);
    return t;
  };
  auto run = [](const std::string& extra) {
    CliRun r = wand("generate --json --temperature 1.5 -n 24 --samples 2 " + extra + " 'Question: '");
    EXPECT_EQ(r.rc, 0) << r.out;
    return Json::parse(r.out, nullptr, false);
  };
  Json a = run(""), b = run("");
  ASSERT_TRUE(a.contains("seed") && b.contains("seed")) << a.dump();
  EXPECT_NE(a["seed"], b["seed"]);
  EXPECT_NE(texts(a), texts(b));
  Json again = run("--seed " + a["seed"].dump());
  EXPECT_EQ(again["seed"], a["seed"]);
  EXPECT_EQ(texts(again), texts(a));

  std::string longer, err;
  for (int i = 0; i < 300; ++i) longer += "7 ";
  CliRun r = wand("generate '" + longer + "'", "", &err);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(err.find("context holds"), std::string::npos) << err;
}

}  // namespace
}  // namespace wand::test
