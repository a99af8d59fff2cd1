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

TEST(Cli, EvalLimitsAndStrictModeAreOptions) {
  // A sample that needs 300 MB and prints 200 kB: within wand's defaults (512 MiB, 1 MiB of
  // output), outside --memory 100 or --max-output 100000.
  std::string dataset = ::testing::TempDir() + "cli_limits.jsonl", samples = ::testing::TempDir() + "cli_limits_s.jsonl";
  std::ofstream(dataset) << R"({"task_id": "T/0", "prompt": "def f(x):\n", "canonical_solution": "    return x\n", )"
                         << R"("test": "def check(c):\n    assert c(2) == 2\n", "entry_point": "f"})" << "\n";
  std::ofstream(samples) << R"({"task_id": "T/0", "completion": "    return x\nblock = bytearray(300 << 20)\nprint('x' * 200000)\n"})"
                         << "\n";
  auto outcomes = [&](const std::string& extra) {
    CliRun r = wand("eval --json --k 1 --dataset " + dataset + " --samples " + samples + " " + extra);
    EXPECT_EQ(r.rc, 0) << extra;
    return r.rc == 0 ? Json::parse(r.out)["outcomes"] : Json();
  };
  EXPECT_EQ(outcomes(""), (Json{{"none", 1}}));
  EXPECT_EQ(outcomes("--strict"), (Json{{"none", 1}}));
  EXPECT_EQ(outcomes("--memory 100"), (Json{{"memory_limit", 1}}));
  EXPECT_EQ(outcomes("--max-output 100000"), (Json{{"output_limit", 1}}));
  std::string err;
  EXPECT_EQ(wand("eval --dataset " + dataset + " --reference --memory 0", "", &err).rc, 2);
  EXPECT_NE(err.find("--memory"), std::string::npos) << err;
  EXPECT_EQ(wand("eval --dataset " + dataset + " --reference --max-output x", "", &err).rc, 2);
  EXPECT_NE(err.find("--max-output"), std::string::npos) << err;
}

TEST(Cli, UnknownOptionIsBadInput) {
  EXPECT_EQ(wand("exec --no-such-flag -").rc, 2);
}

}  // namespace
}  // namespace wand::test
