// The `wand` command as a user runs it: exit codes, messages, JSON lines.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
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
  // Named per process: other test runs on the host share TempDir().
  std::string tag = std::to_string(::getpid());
  std::string in_path = ::testing::TempDir() + "wand_cli_in" + tag, err_path = ::testing::TempDir() + "wand_cli_err" + tag;
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

std::vector<Json> json_lines(const std::string& out) {
  std::vector<Json> lines;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);) lines.push_back(Json::parse(l));
  return lines;
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
  std::vector<Json> lines = json_lines(r.out);
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

// An unknown language is an error naming it and listing the known ones, never a silent Python.
TEST(Cli, UnknownLanguageIsBadInput) {
  std::string err;
  CliRun r = wand("exec --lang rust -", "fn main() {}", &err);
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(r.out, "");  // nothing ran
  EXPECT_NE(err.find("'rust'"), std::string::npos) << err;
  EXPECT_NE(err.find("python, c, cpp, js, bash"), std::string::npos) << err;
  // The same for --jsonl, where --lang is the lines' default.
  r = wand("exec --jsonl --lang rust", "{\"code\": \"print(1)\"}\n", &err);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(err.find("'rust'"), std::string::npos) << err;
  r = wand("exec --jsonl --preload '' --lang bash", "{\"code\": \"echo $BASH_VERSION | cut -c1\"}\n");
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("\"stdout\":\"5\\n\""), std::string::npos) << r.out;
}

TEST(Cli, UnknownExtensionIsBadInputUnlessLangIsGiven) {
  std::string dir = ::testing::TempDir() + "wand_cli_lang" + std::to_string(::getpid()) + "/";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "prog.rs") << "print('from python')\n";
  std::ofstream(dir + "prog") << "print('from python')\n";
  std::string err;
  CliRun r = wand("exec " + dir + "prog.rs", "", &err);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(err.find("'.rs'"), std::string::npos) << err;
  EXPECT_NE(err.find("python, c, cpp, js, bash"), std::string::npos) << err;
  EXPECT_NE(err.find("--lang"), std::string::npos) << err;
  r = wand("exec " + dir + "prog", "", &err);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(err.find("no file extension"), std::string::npos) << err;
  r = wand("exec --json --lang python " + dir + "prog.rs");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(Json::parse(r.out)["stdout"], "from python\n");
  r = wand("exec --json -", "print('stdin is python')");  // standard input defaults to Python
  EXPECT_EQ(Json::parse(r.out)["stdout"], "stdin is python\n");
}

TEST(Cli, OptionsOutOfTheSandboxRangeAreBadInput) {
  std::string err;
  CliRun r = wand("exec --max-output 0 -", "print(1)", &err);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(err.find("'max_output_bytes'"), std::string::npos) << err;
  r = wand("exec --jsonl --timeout 1e308", "{\"code\": \"print(1)\"}\n", &err);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(err.find("1e+308"), std::string::npos) << err;
  EXPECT_LT(err.size(), 200u) << err;
}

TEST(Cli, AbsurdLimitsInJsonLinesAreNamed) {
  std::string input =
      "{\"code\": \"print(1)\", \"timeout\": 1e308}\n"
      "{\"code\": \"print(1)\", \"memory_mb\": 0}\n"
      "{\"code\": \"print(1)\", \"max_output_bytes\": 18446744073709551615}\n"
      "{\"code\": \"print(1)\", \"language\": \"rust\"}\n";
  std::string err;
  CliRun r = wand("exec --jsonl --preload ''", input, &err);
  EXPECT_EQ(r.rc, 2);
  std::vector<Json> lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  const char* fields[] = {"'timeout'", "'memory_mb'", "'max_output_bytes'", "'language'"};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(lines[i]["status"], "invalid_request");
    std::string e = lines[i]["error"].get<std::string>();
    EXPECT_NE(e.find(fields[i]), std::string::npos) << e;
    EXPECT_LT(e.size(), 200u) << e;
  }
}

// With and without cgroups (rlimits stand in), each limit is reported as itself: CPU (also for
// a program that ignores SIGXCPU), wall time and memory.
TEST(Cli, LimitVerdictsWithAndWithoutCgroups) {
  struct Case {
    const char* options;
    const char* code;
    const char* status;
    const char* limit;
  } cases[] = {
      {"--limit-by cpu --timeout 0.5", "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True: pass",
       "timeout", "cpu"},
      {"--timeout 0.5", "import time\ntime.sleep(10)", "timeout", "wall"},
      {"--memory 64", "a = []\nwhile True: a.append(bytearray(16 << 20))", "memory_limit", "memory"},
  };
  for (bool cgroups : {true, false}) {
    for (const Case& c : cases) {
      if (!cgroups) ::setenv("WAND_NO_CGROUPS", "1", 1);
      CliRun r = wand(std::string("exec --json ") + c.options + " -", c.code);
      ::unsetenv("WAND_NO_CGROUPS");
      EXPECT_EQ(r.rc, 1) << cgroups << c.options;
      auto j = Json::parse(r.out);
      EXPECT_EQ(j["status"], c.status) << cgroups << r.out;
      EXPECT_EQ(j["limit_hit"], c.limit) << cgroups << r.out;
    }
  }
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

}  // namespace
}  // namespace wand::test
