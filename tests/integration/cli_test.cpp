// The `wand` command as a user runs it: exit codes, messages, JSON lines.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <tuple>

#include <fmt/core.h>

#include "python_syntax.h"
#include "serve_process.h"
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

// A repeatable option takes one value per occurrence: the program's file after it stays the file.
TEST(Cli, RepeatedOptionsLeaveThePositionalAlone) {
  std::string prog = ::testing::TempDir() + "wand_cli_argv" + std::to_string(::getpid()) + ".py";
  std::ofstream(prog) << "import sys; print(sys.argv[1:])";
  CliRun r = wand("exec --json --arg 1 --arg two " + prog);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(Json::parse(r.out)["stdout"], "['1', 'two']\n");
  CliRun dash = wand("exec --json --tools fs --workspace /tmp -", "print(callable(fs.read))");
  EXPECT_EQ(dash.rc, 0) << dash.out;
  EXPECT_EQ(Json::parse(dash.out)["stdout"], "True\n");
}

TEST(Cli, MissingFileIsBadInput) {
  std::string err;
  CliRun r = wand("exec /nonexistent/prog.py", "", &err);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(err.find("/nonexistent/prog.py"), std::string::npos) << err;
}

// A folder opens and reads as empty: as the program, its stdin or the batch it once ran as an
// empty program (exit 0). Each is refused naming it.
TEST(Cli, AFolderIsNotAProgramNorItsInput) {
  std::string dir = ::testing::TempDir(), err;
  CliRun program = wand("exec --lang python " + dir, "", &err);
  EXPECT_EQ(program.rc, 2);
  EXPECT_NE(err.find(dir + ": a folder, not a file"), std::string::npos) << err;
  CliRun input = wand("exec --stdin " + dir + " -", "print(input())", &err);
  EXPECT_EQ(input.rc, 2);
  EXPECT_NE(err.find("--stdin " + dir + ": a folder, not a file"), std::string::npos) << err;
  for (std::string mode : {"-", "--jsonl"}) {
    std::string cmd = fmt::format("{} exec {} < {} > /dev/null 2>&1", WAND_BINARY, mode, dir);
    EXPECT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 2) << cmd;
  }
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
  // a folder of samples was read as an empty file ("no samples")
  EXPECT_EQ(wand("eval --dataset " + dataset + " --samples " + ::testing::TempDir(), "", &err).rc, 2);
  EXPECT_NE(err.find("a folder, not a file"), std::string::npos) << err;
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
  // Options this dataset's tasks never read are refused, not ignored.
  std::string answers = ::testing::TempDir() + "cli_answers.jsonl";
  std::ofstream(answers) << R"({"question": "What is 2 + 2?", "answer": "#### 4"})" << "\n";
  for (auto [args, says] : std::vector<std::pair<std::string, std::string>>{
           {"--dataset " + answers + " --strict", "--strict: " + answers + " holds gsm8k tasks; --strict is for assert tasks"},
           {"--dataset " + answers + " --partial-credit", "--partial-credit: " + answers + " holds gsm8k tasks; --partial-credit is for tasks with several tests"},
           {"--dataset " + dataset + " --answer last-line", "--answer: " + dataset + " holds humaneval tasks; --answer is for answer tasks"},
           {"--dataset " + dataset + " --float-tol 0.1", "--float-tol: " + dataset + " holds humaneval tasks; --float-tol is for stdin/stdout"}}) {
    EXPECT_EQ(wand("eval --reference " + args, "", &err).rc, 2) << args;
    EXPECT_NE(err.find(says), std::string::npos) << err;
  }
  EXPECT_EQ(wand("eval --dataset " + dataset + " --reference --memory 0", "", &err).rc, 2);
  EXPECT_NE(err.find("--memory"), std::string::npos) << err;
  EXPECT_EQ(wand("eval --dataset " + dataset + " --reference --max-output x", "", &err).rc, 2);
  EXPECT_NE(err.find("--max-output"), std::string::npos) << err;
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

// `wand ARGS` sent one SIGINT after `after_s` seconds (as Ctrl-C sends one to wand; `timeout`
// signals its process group as well, a second one); stderr into `err_path`. The exit status is
// wand's own (130 when it handled the signal), `seconds` the whole run's.
struct Interrupted {
  int rc;
  std::string out;
  double seconds;
};
Interrupted interrupted_run(const std::string& args, int after_s, const std::string& err_path) {
  std::string out_path = err_path + ".out";
  std::string cmd = fmt::format("exec {} {} >{} 2>{}", WAND_BINARY, args, out_path, err_path);
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int st = 0;
  for (int i = 0; i < after_s * 100 && ::waitpid(pid, &st, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (::waitpid(pid, &st, WNOHANG) == 0) {
    ::kill(pid, SIGINT);
    ::waitpid(pid, &st, 0);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return {rc, slurp(out_path), seconds};
}

// Ctrl-C in `wand exec --jsonl`: no further run starts, and every line still gets its result in
// order, those not run saying so (the batch once died with the finished results behind an
// unfinished one unwritten, and no word).
TEST(Cli, ExecJsonlCtrlCGivesEveryLineItsResult) {
  std::string dir = ::testing::TempDir() + "exec_sigint" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const int n = 40;  // 0.25 s each on one cell: 10 s in all, interrupted after 3
  {
    std::ofstream in(dir + "/in.jsonl");
    for (int i = 0; i < n; ++i) in << Json{{"id", i}, {"code", "import time\ntime.sleep(0.25)\nprint(1)"}}.dump() << "\n";
  }
  auto r = interrupted_run(fmt::format("exec --jsonl --cells 1 < {}/in.jsonl", dir), 3, dir + "/err");
  std::string err = slurp(dir + "/err");
  EXPECT_EQ(r.rc, 130) << err;
  EXPECT_LT(r.seconds, 8) << "the runs after Ctrl-C were not skipped";
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(n)) << r.out;
  int ran = 0;  // one cell runs them in order: the lines that ran, then those that did not
  while (ran < n && lines[ran]["status"] == "ok") ++ran;
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(lines[i]["id"], i);
    EXPECT_EQ(lines[i]["status"], i < ran ? "ok" : "not_run") << i;
  }
  EXPECT_GT(ran, 0);
  EXPECT_LT(ran, n);
  EXPECT_NE(err.find(fmt::format("wand exec: interrupted: {} of {} requests ran, {} not run", ran, n, n - ran)), std::string::npos)
      << err;
  std::filesystem::remove_all(dir);
}

// Ctrl-C in `wand eval`: no further run starts, and the samples judged so far are summarized,
// written to --out and exit 130; an interrupted shard writes no shard file.
TEST(Cli, EvalCtrlCKeepsTheJudgedSamples) {
  namespace fs = std::filesystem;
  std::string dir = ::testing::TempDir() + "eval_sigint" + std::to_string(::getpid());
  fs::create_directories(dir);
  std::ofstream data(dir + "/tasks.jsonl"), samples(dir + "/samples.jsonl");
  const int n = 60;  // 0.25 s each on one cell: 15 s in all, interrupted after 3
  for (int i = 0; i < n; ++i) {
    data << Json{{"question", fmt::format("q{}", i)}, {"answer", "#### 1"}}.dump() << "\n";
    samples << Json{{"task_id", i}, {"completion", "import time\ntime.sleep(0.25)\nanswer = 1\n"}}.dump() << "\n";
  }
  data.close(), samples.close();
  std::string args = fmt::format("eval --dataset {}/tasks.jsonl --samples {}/samples.jsonl --cells 1 --json ", dir, dir);
  auto r = interrupted_run(args + "--out " + dir + "/out.jsonl --html " + dir + "/report.html", 3, dir + "/err");
  EXPECT_EQ(r.rc, 130) << slurp(dir + "/err");
  EXPECT_LT(r.seconds, 8) << "the runs after Ctrl-C were not skipped";
  auto j = Json::parse(r.out);
  EXPECT_EQ(j["interrupted"], true) << r.out;
  int judged = j["samples"].get<int>();
  EXPECT_GT(j["samples_not_run"].get<int>(), 0) << r.out;
  EXPECT_EQ(judged + j["samples_not_run"].get<int>(), n) << r.out;
  auto rows = json_lines(slurp(dir + "/out.jsonl"));
  EXPECT_EQ(static_cast<int>(rows.size()), judged);
  for (const auto& row : rows) EXPECT_EQ(row["passed"], true) << row.dump() << ": a skipped run counted as judged";
  EXPECT_NE(slurp(dir + "/err").find("interrupted: " + std::to_string(judged) + " samples judged"), std::string::npos)
      << slurp(dir + "/err");
  EXPECT_NE(slurp(dir + "/report.html").find("<b>Interrupted</b>: " + std::to_string(n - judged) + " samples were not run"),
            std::string::npos);

  auto shard = interrupted_run(args + "--shard 0/1 --out " + dir + "/shard.jsonl", 3, dir + "/err");
  EXPECT_EQ(shard.rc, 130) << slurp(dir + "/err");
  EXPECT_FALSE(fs::exists(dir + "/shard.jsonl")) << "a partial shard was written";
  EXPECT_NE(slurp(dir + "/err").find("not written"), std::string::npos) << slurp(dir + "/err");
  fs::remove_all(dir);
}

// Ctrl-C in `wand code --dataset`: the tasks done keep their samples in --out (exit 130).
TEST(Cli, CodeCtrlCKeepsTheTasksDone) {
  std::string dir = ::testing::TempDir() + "code_sigint" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  std::string tasks = std::string(WAND_SOURCE_DIR) + "/models/heldout-functions.jsonl";
  auto r = interrupted_run(fmt::format("code --dataset {} --out {}/s.jsonl --no-store --seed 1 --cells 1 --k 8", tasks, dir),
                           4, dir + "/err");
  std::string err = slurp(dir + "/err");
  EXPECT_EQ(r.rc, 130) << err;
  auto at = err.find("interrupted: ");
  ASSERT_NE(at, std::string::npos) << err;
  int done = std::atoi(err.c_str() + at + 13);
  EXPECT_LT(done, 200) << err;
  EXPECT_EQ(static_cast<int>(json_lines(slurp(dir + "/s.jsonl")).size()), 8 * done) << "k samples per task done";
  std::filesystem::remove_all(dir);
}

// `wand code` refuses what it would otherwise ignore or destroy.
TEST(Cli, CodeRefusesOptionsItsMethodNeverReads) {
  std::string err;
  for (auto [args, says] : std::vector<std::pair<std::string, std::string>>{
           {"--method sample --rounds 3 'Add two numbers.'", "--rounds: not read by --method sample (only by self-debug, roles)"},
           {"--method codet --feedback unit 'Add two numbers.'", "--feedback: not read by --method codet"},
           {"--method self-debug --gen-tests 5 'Add two numbers.'", "--gen-tests: not read by --method self-debug"},
           {"--entry '' 'Add two numbers.'", "--entry '': not a Python function name"},
           {"--limit 3 'Add two numbers.'", "--limit requires --dataset"}}) {
    CliRun r = wand("code --no-store " + args, "", &err);
    EXPECT_EQ(r.rc, 2) << args;
    EXPECT_NE(err.find(says), std::string::npos) << args << "\n" << err;
  }
  std::string data = ::testing::TempDir() + "code_same" + std::to_string(::getpid()) + ".jsonl";
  std::filesystem::copy_file(std::string(WAND_SOURCE_DIR) + "/models/heldout-functions.jsonl", data,
                             std::filesystem::copy_options::overwrite_existing);
  auto before = slurp(data);
  CliRun same = wand("code --no-store --dataset " + data + " --out " + data + " --limit 1", "", &err);
  EXPECT_EQ(same.rc, 2) << err;
  EXPECT_NE(err.find("the same file as --dataset"), std::string::npos) << err;
  EXPECT_EQ(slurp(data), before) << "the dataset was overwritten";
  std::filesystem::remove(data);
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

// --- wand solve: PoT/PAL/CoT with self-consistency (src/reason), recorded in the run store

std::string temp_store(const std::string& name) {
  std::string path = ::testing::TempDir() + "wand_cli_" + name + std::to_string(::getpid()) + ".db";
  std::filesystem::remove(path);
  return path;
}

// The run `wand solve` recorded: its one problem, with samples, from `wand runs show --json`.
Json recorded_run(const std::string& store) {
  CliRun list = wand("runs list --json --store " + store);
  EXPECT_EQ(list.rc, 0);
  Json runs = Json::parse(list.out);
  EXPECT_EQ(runs.size(), 1u) << list.out;
  if (runs.empty()) return {};
  CliRun show = wand("runs show --json --store " + store + " " + runs[0]["id"].get<std::string>());
  EXPECT_EQ(show.rc, 0);
  return Json::parse(show.out);
}

const char* kSolveQuestion = "Ava has 23 apples. She gets 17 more and then gives away 9. How many apples does she have now?";

TEST(Cli, SolvePalWithEightSamplesVotesAndRecordsTheRun) {
  std::string store = temp_store("solve_pal"), err;
  CliRun r = wand(fmt::format("solve --method pal --k 8 --seed 3 --show-program --store {} \"{}\"", store, kSolveQuestion), "", &err);
  ASSERT_EQ(r.rc, 0) << err << r.out;
  EXPECT_NE(r.out.find("--- program (sample "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--- vote (count) ---"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" of 8 samples"), std::string::npos) << r.out;
  EXPECT_TRUE(r.out.ends_with("--- answer ---\n31\n")) << r.out;
  Json run = recorded_run(store);
  EXPECT_EQ(run["kind"], "solve");
  EXPECT_EQ(run["method"], "pal");
  EXPECT_TRUE(run["model_spec"].get<std::string>().ends_with("/models/wand-pot.gguf")) << run["model_spec"];  // pal's default
  EXPECT_EQ(run["options"]["k"], 8);
  EXPECT_EQ(run["options"]["prompt_family"], "wand");
  EXPECT_EQ(run["seed"], 3);
  EXPECT_EQ(run["prompt_hash"].get<std::string>().size(), 64u);
  ASSERT_EQ(run["problems"].size(), 1u);
  const Json& p = run["problems"][0];
  EXPECT_EQ(p["answer"], "31");
  EXPECT_EQ(p["samples"].size(), 8u);
  EXPECT_EQ(p["samples"][0]["seed"], 3);
  EXPECT_NE(p["samples"][7]["seed"], p["samples"][0]["seed"]);
  EXPECT_FALSE(p["samples"][0]["program"].get<std::string>().empty());
  std::filesystem::remove(store);
}

TEST(Cli, SolveJsonCarriesSamplesAndTheVote) {
  CliRun r = wand(fmt::format("solve --json --no-store --k 3 \"{}\"", kSolveQuestion));
  ASSERT_EQ(r.rc, 0) << r.out;
  Json j = Json::parse(r.out);
  EXPECT_EQ(j["answer"], "31");
  EXPECT_EQ(j["samples"].size(), 3u);
  EXPECT_EQ(j["vote"]["answer"], "31");
  EXPECT_TRUE(j["run_id"].is_null());
  EXPECT_EQ(j["method"], "pot");
  // pot's default is the model that reads hand-written questions (models/MODEL_CARD.md)
  EXPECT_TRUE(j["model"].get<std::string>().ends_with("/models/wand-pot-delex.gguf")) << j["model"];
}

// The shipped delexicalized model (models/MODEL_CARD.md): a question in words it was never
// trained on ("marbles") is read as placeholders and names, and its one-expression program runs
// with the bindings. A hand-written question, from no test set.
TEST(Cli, SolveWithTheDelexicalizedModel) {
  // A question of models/dev-handwritten.jsonl that the shipped model answers.
  CliRun r = wand(fmt::format("solve --json --no-store --model local:{}/models/wand-pot-delex.gguf \"{}\"", WAND_SOURCE_DIR,
                              "There were 27 birds on a tree. 9 more birds came, and then 14 flew away. How many birds "
                              "are on the tree now?"));
  ASSERT_EQ(r.rc, 0) << r.out;
  Json j = Json::parse(r.out);
  EXPECT_EQ(j["answer"], "22");
  EXPECT_TRUE(j["samples"][0]["program"].get<std::string>().starts_with("n0 = 27\nn1 = 9\nn2 = 14\n"))
      << j["samples"][0]["program"];
  EXPECT_EQ(j["samples"][0]["completion"], "v0 = n0+n1\nanswer = v0-n2\n");
}

TEST(Cli, SolvePalAgainstWandServeOverHttp) {
  ServeProcess server;
  ASSERT_NE(server.port(), 0) << "wand serve did not start";
  std::string store = temp_store("solve_http"), err;
  std::string spec = fmt::format("openai:http://127.0.0.1:{}/v1/wand-pot", server.port());
  CliRun r = wand(fmt::format("solve --model {} --prompt-style wand --method pal --k 8 --show-program --store {} \"{}\"", spec,
                              store, kSolveQuestion),
                  "", &err);
  ASSERT_EQ(r.rc, 0) << err << r.out;
  EXPECT_NE(r.out.find("--- vote"), std::string::npos) << r.out;
  EXPECT_TRUE(r.out.ends_with("\n31\n")) << r.out;
  Json run = recorded_run(store);
  EXPECT_EQ(run["model_spec"], spec);
  EXPECT_EQ(run["method"], "pal");
  ASSERT_EQ(run["problems"].size(), 1u);
  EXPECT_EQ(run["problems"][0]["samples"].size(), 8u);
  EXPECT_EQ(run["problems"][0]["answer"], "31");
  std::filesystem::remove(store);
}

// `wand serve` lists its model as wand's, with the prompt format its GGUF records, so solve's
// auto prompt style picks wand's own prompts (chat, the default for servers, is refused by it).
TEST(Cli, SolveAgainstWandServePicksWandPromptsByItself) {
  ServeProcess server;
  ASSERT_NE(server.port(), 0) << "wand serve did not start";
  std::string err;
  std::string spec = fmt::format("openai:http://127.0.0.1:{}/v1/wand-pot", server.port());
  CliRun r = wand(fmt::format("solve --model {} --json --no-store \"{}\"", spec, kSolveQuestion), "", &err);
  ASSERT_EQ(r.rc, 0) << err << r.out;
  Json j = Json::parse(r.out);
  EXPECT_EQ(j["prompt_family"], "wand");
  EXPECT_EQ(j["answer"], "31");
  // Asked for explicitly, chat still goes to the server, which refuses it by name (exit 2).
  r = wand(fmt::format("solve --model {} --prompt-style chat --no-store \"{}\"", spec, kSolveQuestion), "", &err);
  EXPECT_EQ(r.rc, 2) << err;
  EXPECT_NE(err.find("not a chat model"), std::string::npos) << err;
}

// --constrain: the programs are decoded inside the grammar, so even hot samples parse; the
// grammar is recorded with the run.
TEST(Cli, SolveConstrainedGivesParseablePrograms) {
  std::string store = temp_store("solve_constrain"), err;
  CliRun r = wand(fmt::format("solve --constrain pot --k 6 --temperature 1.5 --seed 4 --json --store {} \"{}\"", store,
                              kSolveQuestion),
                  "", &err);
  ASSERT_EQ(r.rc, 0) << err << r.out;
  Json j = Json::parse(r.out);
  EXPECT_EQ(j["answer"], "31");
  std::vector<std::string> programs;
  for (auto& s : j["samples"]) {
    EXPECT_EQ(s["stage"], "sample");
    EXPECT_NE(s["outcome"], "syntax_error") << s.dump();
    programs.push_back(s["program"]);
  }
  EXPECT_EQ(programs.size(), 6u);
  EXPECT_EQ(count_unparsable(programs), 0);
  EXPECT_EQ(recorded_run(store)["options"]["constrain"], "pot");
  std::filesystem::remove(store);
}

TEST(Cli, SolveWithOwnPromptTemplateRecordsItsHash) {
  std::string tpl = ::testing::TempDir() + "wand_own_prompt" + std::to_string(::getpid()) + ".txt";
  std::ofstream(tpl) << "# wand-pot's own format, as a user's file\n@@ prompt\nQuestion: {{question}}\nProgram:\n"
                        "@@ stop\n\\nQuestion:\n";
  std::string store = temp_store("solve_prompt"), err;
  CliRun r = wand(fmt::format("solve --prompt {} -m local:{}/models/wand-pot.gguf --store {} \"{}\"", tpl, WAND_SOURCE_DIR,
                              store, kSolveQuestion),
                  "", &err);
  ASSERT_EQ(r.rc, 0) << err;
  EXPECT_EQ(r.out, "31\n");
  Json run = recorded_run(store);
  EXPECT_EQ(run["options"]["prompt"], tpl);
  FILE* p = ::popen(("sha256sum " + tpl).c_str(), "r");
  char sha[65] = {};
  ASSERT_EQ(fread(sha, 1, 64, p), 64u);
  ::pclose(p);
  EXPECT_EQ(run["prompt_hash"], std::string(sha));  // the file's own bytes
  std::filesystem::remove(tpl);
  std::filesystem::remove(store);
}

// --kv-cache q8 (the fastest for k samples decoded together) on the commands that sample k: solve
// still answers, bench records it with the run and a resume that asks for another is refused.
TEST(Cli, SolveAndBenchTakeAQ8KvCache) {
  std::string store = temp_store("kv_q8"), err;
  CliRun r = wand(fmt::format("solve --method pal --k 8 --seed 3 --kv-cache q8 --store {} \"{}\"", store, kSolveQuestion),
                  "", &err);
  ASSERT_EQ(r.rc, 0) << err << r.out;
  EXPECT_TRUE(r.out.ends_with("31\n")) << r.out;
  EXPECT_EQ(recorded_run(store)["options"]["kv_cache"], "q8");
  std::filesystem::remove(store);
  CliRun b = wand(fmt::format("bench synthetic --limit 2 --k 2 --seed 1 --kv-cache q8 --quiet --store {}", store), "", &err);
  ASSERT_EQ(b.rc, 0) << err << b.out;
  Json run = recorded_run(store);
  EXPECT_EQ(run["extra"]["bench"]["kv-cache"], "q8") << run["extra"].dump();
  CliRun other = wand(fmt::format("bench --resume {} --kv-cache f16 --store {}", run["id"].get<std::string>(), store), "", &err);
  EXPECT_EQ(other.rc, 2);
  EXPECT_NE(err.find("--kv-cache: run " + run["id"].get<std::string>() + " used q8, not f16"), std::string::npos) << err;
  std::filesystem::remove(store);
}

// --threads keeps an evaluation beside a training on the cores it is given: the same answers as
// every core (a machine option, not recorded with the run), and refused where it cannot apply.
TEST(Cli, BenchAndSolveTakeEngineThreads) {
  std::string store = temp_store("threads"), err;
  std::string one = ::testing::TempDir() + "wand_threads_1_" + std::to_string(::getpid()) + ".jsonl";
  std::string all = ::testing::TempDir() + "wand_threads_0_" + std::to_string(::getpid()) + ".jsonl";
  CliRun b = wand(fmt::format("bench synthetic --limit 3 --k 2 --seed 1 --threads 1 --quiet --store {} --out {}", store, one), "", &err);
  ASSERT_EQ(b.rc, 0) << err << b.out;
  EXPECT_FALSE(recorded_run(store)["extra"]["bench"].contains("threads")) << recorded_run(store)["extra"].dump();
  CliRun d = wand(fmt::format("bench synthetic --limit 3 --k 2 --seed 1 --quiet --no-store --out {}", all), "", &err);
  ASSERT_EQ(d.rc, 0) << err << d.out;
  auto answers = [](const std::string& path) {
    std::vector<std::string> v;
    std::ifstream f(path);
    for (std::string line; std::getline(f, line);) v.push_back(Json::parse(line).at("answer").get<std::string>());
    return v;
  };
  EXPECT_EQ(answers(one).size(), 3u);
  EXPECT_EQ(answers(one), answers(all));
  CliRun s = wand(fmt::format("solve --threads 1 --no-store \"{}\"", kSolveQuestion), "", &err);
  EXPECT_EQ(s.rc, 0) << err;
  struct Case {
    std::string args, says;
  };
  for (auto& c : std::vector<Case>{
           {"bench synthetic --limit 1 --threads -1", "--threads: must be an integer from 0 to"},
           {"bench synthetic --limit 1 --no-store --threads 1 -m openai:http://127.0.0.1:9/v1/m",
            "engine threads (1) are the embedded engine's setting; a served model runs on its server's"},
           {"bench --env kitchen --threads 1", "--threads: not an option of --env"},
           {"bench --report x --threads 1 --store " + store, "--threads: not an option of --report"},
           {"solve --threads 999 x", "--threads: must be an integer from 0 to"}}) {
    CliRun r = wand(c.args, "", &err);
    EXPECT_EQ(r.rc, 2) << c.args;
    EXPECT_NE((err + r.out).find(c.says), std::string::npos) << c.args << ": " << err << r.out;
  }
  for (auto& f : {store, one, all}) std::filesystem::remove(f);
}

// An option that means nothing without another is refused, not silently ignored; and the shared
// data defaults name the folder beside the source tree, whatever the current folder.
TEST(Cli, OptionsThatNeedAnotherAreRefusedAndDataDefaultsDoNotDependOnTheFolder) {
  std::string err;
  for (auto& [args, says] : std::vector<std::pair<std::string, std::string>>{
           {"generate --system hi x", "--system requires --chat"},
           {"corpus --out /tmp/wand-never --tokenizer t.gguf --vocab 300", "--vocab excludes --tokenizer"},
           // a test-set folder that is not there would turn decontamination off
           {"corpus --out /tmp/wand-never --test-sets /nonexistent/sets", "--test-sets: Directory does not exist: /nonexistent/sets"},
           {"eval --dataset d.jsonl --reference --remote-timeout 3", "--remote-timeout requires --remote"},
           // A batch's programs, inputs and arguments are its lines' own.
           {"exec --jsonl prog.py", "file excludes --jsonl"},
           {"exec --jsonl --stdin in.txt", "--stdin excludes --jsonl"},
           {"exec --jsonl --arg x", "--arg excludes --jsonl"},
           {"exec --jsonl --json", "--json excludes --jsonl"}}) {
    CliRun r = wand(args, "", &err);
    EXPECT_EQ(r.rc, 2) << args;
    EXPECT_NE((err + r.out).find(says), std::string::npos) << args << ": " << err << r.out;
  }
  std::string data = std::filesystem::weakly_canonical(WAND_SHARED_DATA).string();
  CliRun help = wand("corpus --help", "", &err);
  EXPECT_NE(help.out.find("--gsm8k TEXT=" + data + "/gsm8k/train.jsonl"), std::string::npos) << help.out;
  help = wand("study mixture --help", "", &err);
  EXPECT_NE(help.out.find("=" + data + "/pal-math/mawpsmultiarith.jsonl"), std::string::npos) << help.out;
}

// A run store that cannot be made is named by where its path came from: --store when given,
// else the default's variables (a bad $WAND_HOME is not blamed on an option nobody gave).
TEST(Cli, AStoreErrorSaysWhereThePathCameFrom) {
  std::string err;
  const char* home = std::getenv("WAND_HOME");
  std::string saved = home ? home : "";
  ::setenv("WAND_HOME", "/proc/wand-no-such", 1);
  CliRun by_default = wand("solve \"Tom has 3 apples.\"", "", &err);
  if (home) ::setenv("WAND_HOME", saved.c_str(), 1);
  else ::unsetenv("WAND_HOME");
  EXPECT_EQ(by_default.rc, 2);
  EXPECT_EQ(err.find("wand solve: run store /proc/wand-no-such/runs.db"), 0u) << err;
  EXPECT_NE(err.find("(the default run store: $WAND_STORE, else $WAND_HOME/runs.db"), std::string::npos) << err;
  CliRun given = wand("solve --store /proc/wand-no-such/r.db \"Tom has 3 apples.\"", "", &err);
  EXPECT_EQ(given.rc, 2);
  EXPECT_EQ(err.find("wand solve: --store run store /proc/wand-no-such/r.db"), 0u) << err;
}

TEST(Cli, SolveBadInputIsRefusedWithExitTwo) {
  std::string bad = ::testing::TempDir() + "wand_bad_prompt" + std::to_string(::getpid()) + ".txt";
  std::ofstream(bad) << "@@ prompt\nQ: {{questoin}}\n";
  struct Case {
    std::string args, says;
  };
  for (auto& c : std::vector<Case>{
           {"--k 0", "--k"},
           {"--k 65", "--k"},
           {"--temperature nan", "--temperature"},
           {"--top-p 0", "--top-p"},
           {"--method tot", "--method"},
           {"--prompt-style xml", "--prompt-style"},
           {"--prompt /nonexistent/prompt.txt", "/nonexistent/prompt.txt"},
           {"--prompt " + bad, bad + " line 2: unknown placeholder '{{questoin}}'"},
           {"--model local:/nonexistent/model.gguf", "/nonexistent/model.gguf"},
           {"--store /proc/wand/runs.db", "/proc/wand/runs.db"},
           {"--store /tmp/x.db --no-store", "excludes"},
           {"--kv-cache q4", "--kv-cache: q4 not in {f32,f16,q8}"},
           {"--kv-cache q8 -m openai:http://127.0.0.1:9/v1/m",
            "the KV cache type (q8) is the embedded engine's setting; a served model keeps its server's"},
           // --constrain: a grammar that cannot be read, that does not describe what the prompt asks
           // for (wand's own models write bare programs: forced into a fence they lose it), or a
           // backend that cannot constrain
           {"--constrain no-such", "wand solve: --constrain: grammar 'no-such' is neither a built-in one"},
           {"--method cot --constrain pot", "wand solve: grammar 'pot' describes programs; method cot writes prose"},
           {"--method cot --constrain python-block", "grammar 'python-block' describes programs"},
           {"--constrain python-block", "grammar 'python-block' writes a ```python block; method pot's wand prompt"},
           {"--method pal --prompt-style chat --constrain pot",
            "method pal's chat prompt asks for one ```python block (use --constrain python-block)"},
           {"--constrain pot -m openai:http://127.0.0.1:9/v1/m",
            "openai:http://127.0.0.1:9/v1/m: a decoding grammar (constrain 'pot') needs the embedded engine"},
           // flow: its budget options, which no other method takes, and wand's own models, which
           // cannot write programs that call llm()
           {"--method flow --flow-calls 0", "--flow-calls"},
           {"--method flow --flow-tokens 5000", "--flow-tokens"},
           {"--flow-calls 3", "wand solve: --flow-calls: an option of --method flow (this run's method is pot)"},
           {"--method flow", "wand solve: method flow needs a model that writes programs calling llm()"},
           // number names to shuffle: wand-pot (pal's default) reads the question as written
           {"--method pal --shuffle-names --k 2", "wand solve: --shuffle-names: the model's prompt format is 'pot'"},
           {fmt::format("--shuffle-names --k 2 -m local:{}/models/wand-pot.gguf", WAND_SOURCE_DIR),
            "wand solve: --shuffle-names: the model's prompt format is 'pot'"},
           // a wand model asked for a format it does not write (its text was once read as the answer)
           {fmt::format("--method cot -m local:{}/models/wand-pot-delex.gguf", WAND_SOURCE_DIR),
            "wand-pot-delex.gguf is a wand model of prompt format 'pot-delex', which writes programs (use method pot or pal)"},
           {fmt::format("-m local:{}/models/wand-cot.gguf", WAND_SOURCE_DIR),
            "method pot: local:" WAND_SOURCE_DIR "/models/wand-cot.gguf is a wand model of prompt format 'cot', which writes prose"},
           {fmt::format("--method pal -m local:{}/models/wand-code.gguf", WAND_SOURCE_DIR),
            "prompt format 'func', which is not a word-problem model; method pal needs one of format pot, pot-numbers or pot-delex"},
       }) {
    std::string err;
    CliRun r = wand("solve --no-store " + c.args + " \"What is 2 + 2?\"", "", &err);
    if (c.args.starts_with("--store")) r = wand("solve " + c.args + " \"What is 2 + 2?\"", "", &err);
    EXPECT_EQ(r.rc, 2) << c.args << "\n" << err;
    EXPECT_NE(err.find(c.says), std::string::npos) << c.args << "\n" << err;
    // The local engine gives log-probabilities: no claim that it did not.
    EXPECT_EQ(err.find("gave no log-probabilities"), std::string::npos) << c.args << "\n" << err;
  }
  std::filesystem::remove(bad);
}

// Options that change nothing in this run are named on stderr (the run goes on: a sweep over
// --k keeps its other options); --remote-token typed without --remote is refused, but the same
// token exported as WAND_REMOTE_TOKEN is not.
TEST(Cli, OptionsWithoutEffectAreNamed) {
  struct Case {
    std::string args, says;
  };
  for (auto& c : std::vector<Case>{{"--weighted", "wand solve: warning: --weighted: one sample (--k 1) has no vote"},
                                   {"--top-p 0.5", "wand solve: warning: --top-p: decoding is greedy"},
                                   {"--method cot --no-repair", "wand solve: warning: --no-repair: cot has no self-debug"},
                                   {"--select logprob", "wand solve: warning: --select logprob: one sample (--k 1) has nothing"},
                                   {"--k 2 --select logprob --weighted", "wand solve: warning: --weighted: --select logprob takes"}}) {
    std::string err;
    CliRun r = wand("solve --no-store " + c.args + " \"Tom has 3 apples and buys 4 more. How many apples does he have?\"",
                    "", &err);
    EXPECT_EQ(r.rc, 0) << c.args << "\n" << err;
    EXPECT_NE(err.find(c.says), std::string::npos) << c.args << "\n" << err;
  }
  std::string err;
  CliRun quiet = wand("solve --no-store --k 2 --weighted --top-p 0.9 \"What is 2 + 2?\"", "", &err);
  EXPECT_EQ(err.find("warning"), std::string::npos) << err;
  CliRun typed = wand("eval --dataset /nonexistent.jsonl --reference --remote-token t0ken", "", &err);
  EXPECT_EQ(typed.rc, 2);
  EXPECT_NE(err.find("wand eval: --remote-token: needs --remote"), std::string::npos) << err;
  ::setenv("WAND_REMOTE_TOKEN", "t0ken", 1);
  CliRun exported = wand("eval --dataset /nonexistent.jsonl --reference", "", &err);
  ::unsetenv("WAND_REMOTE_TOKEN");
  EXPECT_EQ(exported.rc, 2);
  EXPECT_EQ(err.find("--remote-token"), std::string::npos) << err;
  EXPECT_NE(err.find("/nonexistent.jsonl"), std::string::npos) << err;
}

// --select logprob --plausible through the CLI with the shipped model: the choice is named in the
// vote's header, the run records both options, and a select it does not know is refused.
TEST(Cli, SelectByLogprobWithPlausibleAnswers) {
  const std::string q = "\"Lily had 15 pencils. She bought 8 more at the store. How many pencils does she have now?\"";
  std::string err;
  CliRun r = wand("solve --no-store --seed 1 --k 4 --temperature 1 --select logprob --plausible --show-program " + q, "", &err);
  ASSERT_EQ(r.rc, 0) << err;
  EXPECT_NE(r.out.find("--- vote (top logprob) ---"), std::string::npos) << r.out;
  CliRun j = wand("solve --no-store --seed 1 --k 4 --temperature 1 --select logprob --plausible --json " + q, "", &err);
  ASSERT_EQ(j.rc, 0) << err;
  Json out = Json::parse(j.out);
  EXPECT_EQ(out["vote"]["weighting"], "top logprob");
  for (auto& s : out["samples"])  // an implausible answer never stands as a sample's answer
    if (s["outcome"] == "implausible") EXPECT_TRUE(s["answer"].is_null()) << s.dump();
  CliRun bad = wand("solve --no-store --select best " + q, "", &err);
  EXPECT_EQ(bad.rc, 2);
  EXPECT_NE(err.find("--select"), std::string::npos) << err;
  EXPECT_NE(err.find("best"), std::string::npos) << err;
}

// --select verifier: the shipped outcome verifier scores every answering sample and the best wins;
// a model that is not a verifier, and --verifier without --select verifier, are refused by name.
TEST(Cli, SelectByVerifier) {
  const std::string q = "\"Lily had 15 pencils. She bought 8 more at the store. How many pencils does she have now?\"";
  std::string err;
  CliRun r = wand("solve --no-store --seed 1 --k 4 --temperature 1 --select verifier --show-program " + q, "", &err);
  ASSERT_EQ(r.rc, 0) << err;
  EXPECT_NE(r.out.find("--- vote (top verified) ---"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(", verified 0."), std::string::npos) << r.out;
  CliRun j = wand("solve --no-store --seed 1 --k 4 --temperature 1 --select verifier --json " + q, "", &err);
  ASSERT_EQ(j.rc, 0) << err;
  Json out = Json::parse(j.out);
  EXPECT_EQ(out["vote"]["weighting"], "top verified");
  double best = -1;
  for (auto& s : out["samples"]) {
    if (s["answer"].is_null()) continue;
    ASSERT_TRUE(s["verified"].is_number()) << s.dump();
    EXPECT_GE(s["verified"].get<double>(), 0.0);
    EXPECT_LE(s["verified"].get<double>(), 1.0);
    best = std::max(best, s["verified"].get<double>());
  }
  EXPECT_EQ(out["samples"][out["winner"].get<int>()]["verified"].get<double>(), best);
  CliRun wrong = wand("solve --no-store --k 2 --temperature 1 --select verifier --verifier " + std::string(WAND_SOURCE_DIR) + "/models/wand-pot.gguf " + q, "", &err);
  EXPECT_EQ(wrong.rc, 2);
  EXPECT_NE(err.find("a wand model of prompt format 'pot', not a verifier"), std::string::npos) << err;
  CliRun alone = wand("solve --no-store --k 2 --temperature 1 --verifier " + std::string(WAND_SOURCE_DIR) + "/models/wand-verify.gguf " + q, "", &err);
  EXPECT_EQ(alone.rc, 2);
  EXPECT_NE(err.find("only --select verifier reads a verifier (this run selects by vote)"), std::string::npos) << err;
  CliRun missing = wand("solve --no-store --k 2 --temperature 1 --select verifier --verifier /nonexistent.gguf " + q, "", &err);
  EXPECT_EQ(missing.rc, 2);
  EXPECT_NE(err.find("--verifier"), std::string::npos) << err;
  EXPECT_NE(err.find("/nonexistent.gguf"), std::string::npos) << err;
}

// Every numeric option of every command: NaN, infinities, negatives, zero where it is not a
// value, absurd and out-of-double-range values get exit 2 and the one message form, before any work.
TEST(Cli, BadNumbersAreRefusedWithOneMessageForm) {
  struct Case {
    std::string command;  // the rest of a valid command line
    std::string option;
    std::vector<std::string> bad;
    std::string says;  // what the message says the value must be
  };
  const std::string eval = "eval --dataset /nonexistent.jsonl --reference";
  const std::string corpus = "corpus --out " + ::testing::TempDir() + "wand_cli_never_written";
  const std::vector<std::string> nonneg = {"nan", "inf", "-inf", "-1", "1e308", "1e400", "1.5", "x"};
  const std::vector<std::string> positive = {"nan", "inf", "-1", "0", "1e308", "1e400", "1.5", "x"};
  const std::vector<Case> cases = {
      {"exec -", "--timeout", {"nan", "inf", "-inf", "-1", "0", "1e308", "1e400", "-1e400", "x"},
       "must be a positive number of seconds up to 86400"},
      {"exec -", "--memory", positive, "must be a whole number of MiB from 1 to 1048576"},
      {"exec -", "--max-output", positive, "must be a whole number of bytes from 1 to 1073741824"},
      {"exec --jsonl", "--cells", {"nan", "-1", "0", "500", "1e308", "1e400"}, "must be an integer from 1 to"},
      {eval, "--timeout", {"nan", "inf", "0", "-1", "1e308", "1e400"}, "must be a positive number of seconds"},
      {eval, "--cells", {"nan", "0", "500", "1e400"}, "must be an integer from 1 to"},
      {eval, "--memory", positive, "must be a whole number of MiB from 1 to 1048576"},
      {eval, "--max-output", positive, "must be a whole number of bytes"},
      {eval, "--float-tol", {"nan", "inf", "-1", "2", "1e400"}, "must be a number from 0 to 1"},
      {eval, "--k", {"nan", "0", "1,-1", "1,1e400", "10abc", "1,,"},
       "each value must be an integer from 1 to 1000000"},
      {"generate x", "--max-tokens", positive, "must be an integer from 1 to 1048576"},
      {"generate x", "--temperature", {"nan", "inf", "-1", "2.5", "1e308", "1e400"}, "must be a number from 0 to 2"},
      {"solve x", "--temperature", {"nan", "inf", "-1", "2.5", "1e400"}, "must be a number from 0 to 2"},
      {"generate x", "--top-k", nonneg, "must be an integer from 0 to 1048576"},
      {"generate x", "--top-p", {"nan", "inf", "-1", "0", "2", "1e400"}, "must be a positive number up to 1"},
      {"generate x", "--min-p", {"nan", "inf", "-1", "2", "1e400"}, "must be a number from 0 to 1"},
      {"generate x", "--repeat-penalty", {"nan", "inf", "-1", "0", "1e308"}, "must be a positive number up to 100"},
      {"generate x", "--seed", {"nan", "inf", "-1", "1.5", "1e400", "18446744073709551616"},
       "must be an integer from 0 to 18446744073709551615"},
      {"generate x", "--samples", positive, "must be an integer from 1 to 1000"},
      {"generate x", "--threads", {"nan", "-1", "1e308", "1e400", "100000"}, "must be an integer from 0 to"},
      {"serve", "--port", {"nan", "-1", "65536", "1e400"}, "must be an integer from 0 to 65535"},
      {"serve", "--threads", {"nan", "-1", "100000"}, "must be an integer from 0 to"},
      {"serve", "--max-tokens-limit", positive, "must be an integer from 1 to 1048576"},
      {"bench synthetic", "--limit", positive, "must be an integer from 1 to 1000000000"},
      {corpus, "--tokens", positive, "must be an integer from 1 to 100000000000"},
      {corpus, "--vocab", {"nan", "-1", "0", "10", "258", "65536", "1e400"}, "must be an integer from 259 to 65535"},
      {corpus, "--seed", {"nan", "-1", "1e400"}, "must be an integer from 0 to"},
      {corpus, "--heldout", nonneg, "must be an integer from 0 to 1000000"},
      {corpus, "--shard-tokens", nonneg, "must be an integer from 0 to"},
      {corpus, "--verify", nonneg, "must be an integer from 0 to 1000000"},
  };
  for (const auto& c : cases)
    for (const auto& v : c.bad) {
      std::string err;
      auto t0 = std::chrono::steady_clock::now();
      CliRun r = wand(c.command + " " + c.option + "=" + v, "print(1)", &err);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      EXPECT_EQ(r.rc, 2) << c.command << " " << c.option << "=" << v << ": " << err;
      EXPECT_NE(err.find(c.option + ": " + c.says), std::string::npos) << c.option << "=" << v << ": " << err;
      if (c.option != "--k") {  // the value as given
        EXPECT_NE(err.find("got '" + v + "'"), std::string::npos) << err;
      }
      EXPECT_LT(err.size(), 400u) << "no 309-digit numbers: " << err;
      EXPECT_LT(s, 5.0) << "refused before any work";
    }
}

TEST(Cli, GoodNumbersStillWork) {
  CliRun r = wand("exec --json --timeout 0.5 --memory 64 --max-output 100 -", "print('x' * 10)");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(Json::parse(r.out)["stdout"], "xxxxxxxxxx\n");
  CliRun loop = wand("exec --json --timeout 0.3 -", "while True: pass");  // the limit holds
  EXPECT_EQ(loop.rc, 1);
  EXPECT_EQ(Json::parse(loop.out)["status"], "timeout");
}

std::string deep_line() { return std::string(200000, '[') + std::string(200000, ']'); }

// exec --jsonl: a number beyond double range or 200,000 levels of nesting in the middle of a
// batch is that line's invalid_request; the lines around it run and are printed, in order.
TEST(Cli, JsonlAnswersHostileLinesAndRunsTheRest) {
  std::string input = "{\"id\": 1, \"code\": \"print(1)\"}\n"
                      "{\"id\": 2, \"code\": \"print(2)\", \"timeout\": 1e400}\n" +
                      deep_line() + "\n{\"id\": 4, \"code\": \"print(4)\", \"args\": [1e999]}\n"
                      "{\"id\": 5, \"code\": \"print(5)\"}\n";
  std::string err;
  CliRun r = wand("exec --jsonl --preload ''", input, &err);
  EXPECT_EQ(r.rc, 2) << err;
  std::vector<Json> lines;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);) lines.push_back(Json::parse(l));
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_EQ(lines[0]["stdout"], "1\n");
  EXPECT_EQ(lines[1]["status"], "invalid_request");
  EXPECT_NE(lines[1]["error"].get<std::string>().find("stdin line 2: invalid JSON"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1]["error"].get<std::string>().find("1e400"), std::string::npos) << lines[1];
  EXPECT_EQ(lines[2]["status"], "invalid_request");
  EXPECT_EQ(lines[2]["error"], "stdin line 3: invalid JSON: nested deeper than 512 levels");
  EXPECT_EQ(lines[3]["status"], "invalid_request");
  EXPECT_NE(lines[3]["error"].get<std::string>().find("stdin line 4"), std::string::npos) << lines[3];
  EXPECT_EQ(lines[4]["id"], 5);
  EXPECT_EQ(lines[4]["stdout"], "5\n");
}

// The file readers (eval --dataset/--samples, bench --problems) name the file and line of a
// hostile line and exit 2 before any work; nothing crashes.
TEST(Cli, FileReadersNameTheHostileLine) {
  std::string dir = ::testing::TempDir();
  std::string dataset = dir + "cli_hostile_he.jsonl", samples = dir + "cli_hostile_samples.jsonl";
  std::string task = R"({"task_id": "T/0", "prompt": "def f(x):\n", "canonical_solution": "    return x\n", )"
                     R"("test": "def check(c):\n    assert c(2) == 2\n", "entry_point": "f"})";
  for (const std::string& bad : {std::string(R"({"task_id": "T/1", "completion": "x", "n": 1e400})"), deep_line()}) {
    std::string err;
    std::ofstream(dataset) << task << "\n" << bad << "\n" << task << "\n";
    EXPECT_EQ(wand("eval --reference --dataset " + dataset, "", &err).rc, 2);
    EXPECT_NE(err.find(dataset + " line 2: invalid JSON"), std::string::npos) << err;

    std::ofstream(dataset) << task << "\n";
    std::ofstream(samples) << R"({"task_id": "T/0", "completion": "    return x\n"})" << "\n\n" << bad << "\n";
    EXPECT_EQ(wand("eval --samples " + samples + " --dataset " + dataset, "", &err).rc, 2);
    EXPECT_NE(err.find(samples + " line 3: invalid JSON"), std::string::npos) << err;

    std::ofstream(samples) << R"({"question": "1+1?", "answer": "2"})" << "\n" << bad << "\n";
    EXPECT_EQ(wand("bench synthetic --problems " + samples, "", &err).rc, 2);
    EXPECT_NE(err.find(samples + " line 2: invalid JSON"), std::string::npos) << err;
  }
}

// Output: a full disk is reported and exits 4; a reader that closes the pipe ends the batch quietly
// (exit 4, nothing on stderr, the rest not run); unwritable output paths fail before any work.
TEST(Cli, FullDiskIsReportedNotIgnored) {
  std::string batch;
  for (int i = 0; i < 5; ++i) batch += "{\"code\": \"print(1)\"}\n";
  std::string err;
  CliRun r = wand("exec --jsonl --preload '' > /dev/full", batch, &err);
  EXPECT_EQ(r.rc, 4) << err;
  EXPECT_NE(err.find("standard output: No space left on device"), std::string::npos) << err;
  r = wand("exec --json - > /dev/full", "print(1)", &err);
  EXPECT_EQ(r.rc, 4) << err;
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;

  std::string dataset = ::testing::TempDir() + "cli_full_he.jsonl";
  std::ofstream(dataset) << R"({"task_id": "T/0", "prompt": "def f(x):\n", "canonical_solution": "    return x\n", )"
                         << R"("test": "def check(c):\n    assert c(2) == 2\n", "entry_point": "f"})" << "\n";
  r = wand("eval --reference --dataset " + dataset + " --out /dev/full", "", &err);
  EXPECT_EQ(r.rc, 4) << err;
  EXPECT_NE(err.find("--out /dev/full: write failed: No space left on device"), std::string::npos) << err;
  r = wand("eval --reference --dataset " + dataset + " --html /dev/full", "", &err);
  EXPECT_EQ(r.rc, 4) << err;
  EXPECT_NE(err.find("--html /dev/full: write failed: No space left on device"), std::string::npos) << err;
}

TEST(Cli, ClosedPipeEndsTheBatchQuietly) {
  std::string in_path = ::testing::TempDir() + "wand_pipe_in", err_path = ::testing::TempDir() + "wand_pipe_err";
  {
    std::ofstream in(in_path);
    for (int i = 0; i < 40; ++i) in << "{\"code\": \"import time; time.sleep(0.5); print(" << i << ")\"}\n";
  }
  std::string cmd = std::string(WAND_BINARY) + " exec --jsonl --cells 2 --preload '' < " + in_path + " 2> " + err_path;
  auto t0 = std::chrono::steady_clock::now();
  FILE* p = ::popen(cmd.c_str(), "r");
  char line[8192];
  ASSERT_NE(std::fgets(line, sizeof line, p), nullptr);  // the first result, then the reader goes away
  EXPECT_NE(std::string(line).find("\"stdout\":\"0\\n\""), std::string::npos) << line;
  int st = ::pclose(p);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(WIFEXITED(st)) << "killed by signal " << (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  EXPECT_EQ(WEXITSTATUS(st), 4);
  EXPECT_EQ(slurp(err_path), "") << "a closed pipe is not an error to print";
  EXPECT_LT(s, 5.0) << "the rest of the batch (40 x 0.5 s over 2 cells) is not run";
}

// An output written over the run store, a model or a checkpoint would destroy it (with every
// run and skill in the store): refused before anything is opened, the file left as it was.
TEST(Cli, AnOutputOverTheStoreOrAnInputModelIsRefused) {
  std::string dir = ::testing::TempDir() + "wand_over_" + std::to_string(::getpid()) + "/";
  std::filesystem::create_directories(dir);
  std::string store = dir + "runs.db", model = dir + "m.gguf", ckpt = dir + "c.wckpt";
  for (const auto& f : {store, model, ckpt}) std::ofstream(f) << "keep";
  std::string over_store = "the same file as --store " + store;
  struct Case {
    std::string command, message;
  };
  for (const Case& c : std::vector<Case>{
           {"bench synthetic --limit 1 --store " + store + " --out " + store, "--out " + store + ": " + over_store},
           {"bench synthetic --limit 1 --store " + store + " --html " + dir + "./runs.db", "--html " + dir + "./runs.db: " + over_store},
           {"runs export abc --store " + store + " --out " + store, "--out " + store + ": " + over_store},
           {"skills export --store " + store + " --out " + store, "--out " + store + ": " + over_store},
           {"export --run abc --store " + store + " --out " + store, "--out " + store + ": " + over_store},
           {"export --model " + model + " --out " + model, "--out " + model + ": the same file as --model " + model},
           {"export --checkpoint " + ckpt + " --tokenizer " + model + " --out " + ckpt,
            "--out " + ckpt + ": the same file as --checkpoint " + ckpt},
           {"export --checkpoint " + ckpt + " --tokenizer " + model + " --out " + model,
            "--out " + model + ": the same file as --tokenizer " + model}}) {
    std::string err;
    EXPECT_EQ(wand(c.command, "", &err).rc, 2) << c.command << "\n" << err;
    EXPECT_NE(err.find(c.message + "; give each its own"), std::string::npos) << c.command << "\n" << err;
    for (const auto& f : {store, model, ckpt}) EXPECT_EQ(slurp(f), "keep") << c.command << " wrote over " << f;
  }
  std::filesystem::remove_all(dir);
}

TEST(Cli, UnwritableOutputPathsFailBeforeAnyWork) {
  std::string he = std::string(WAND_SHARED_DATA) + "/humaneval/HumanEval.jsonl";
  if (!std::filesystem::exists(he)) GTEST_SKIP() << he << " not found";
  for (std::string opt : {"--html", "--out"})
    for (const std::string& path : {std::string("/nonexistent-dir/report.html"), ::testing::TempDir()}) {
      std::string err;
      auto t0 = std::chrono::steady_clock::now();
      CliRun r = wand("eval --reference --dataset " + he + " " + opt + " " + path, "", &err);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      EXPECT_EQ(r.rc, 2) << err;
      EXPECT_NE(err.find(opt + ": " + path + ": cannot write"), std::string::npos) << err;
      EXPECT_LT(s, 0.5) << "checked before the 164 samples run";
    }
  std::string err;
  // --out and --html naming one file (by any path): the page would overwrite the rows
  std::string same = ::testing::TempDir() + "wand_same_" + std::to_string(::getpid()) + ".txt";
  std::string same_too = ::testing::TempDir() + "./wand_same_" + std::to_string(::getpid()) + ".txt";
  EXPECT_EQ(wand("eval --reference --dataset " + he + " --out " + same + " --html " + same_too, "", &err).rc, 2);
  EXPECT_EQ(err, "wand eval: --html " + same_too + ": the same file as --out " + same + "; give each its own\n");
  EXPECT_EQ(wand("bench synthetic --limit 1 --no-store --out " + same + " --html " + same, "", &err).rc, 2);
  EXPECT_EQ(err, "wand bench: --html " + same + ": the same file as --out " + same + "; give each its own\n");
  // an output that is an input (by a hard link too) would overwrite it
  std::string samples = ::testing::TempDir() + "wand_same_samples_" + std::to_string(::getpid()) + ".jsonl";
  std::string link = samples + ".link";
  std::ofstream(samples) << "{\"task_id\": \"T/0\", \"completion\": \"\"}\n";
  std::filesystem::remove(link);
  std::filesystem::create_hard_link(samples, link);
  EXPECT_EQ(wand("eval --dataset " + he + " --samples " + samples + " --out " + link, "", &err).rc, 2);
  EXPECT_NE(err.find("--out " + link + ": the same file as --samples " + samples), std::string::npos) << err;
  EXPECT_EQ(wand("eval --dataset " + he + " --samples " + samples + " --html " + he, "", &err).rc, 2);
  EXPECT_NE(err.find("the same file as --dataset"), std::string::npos) << err;
  EXPECT_EQ(slurp(samples), "{\"task_id\": \"T/0\", \"completion\": \"\"}\n");
  std::filesystem::remove(link);
  std::filesystem::remove(samples);
  EXPECT_FALSE(std::filesystem::exists(same));
  // eval killed part-way leaves an earlier --out file as it was: it is opened at the end (Ctrl-C
  // writes the samples judged: EvalCtrlCKeepsTheJudgedSamples)
  std::ofstream(same) << "{\"earlier\": true}\n";
  int st = std::system(("timeout -s KILL 0.2 " + std::string(WAND_BINARY) + " eval --reference --dataset " + he +
                        " --timeout 5 --cells 1 --out " + same + " >/dev/null 2>&1").c_str());
  if (WEXITSTATUS(st) != 0) {  // stopped before the end (a fast machine may finish first)
    std::ifstream in(same);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text, "{\"earlier\": true}\n");
  }
  std::filesystem::remove(same);
  EXPECT_EQ(wand("bench synthetic --limit 1 --out /nonexistent-dir/r.jsonl", "", &err).rc, 2);
  EXPECT_NE(err.find("--out: /nonexistent-dir/r.jsonl: cannot write"), std::string::npos) << err;
  // bench takes flow's budget options only with --method flow, and flow not with wand's own models
  EXPECT_EQ(wand("bench synthetic --limit 1 --no-store --flow-calls 3", "", &err).rc, 2);
  EXPECT_EQ(err, "wand bench: --flow-calls: an option of --method flow (this run's method is pot)\n");
  EXPECT_EQ(wand("bench synthetic --limit 1 --no-store --method flow", "", &err).rc, 2);
  EXPECT_NE(err.find("wand bench: method flow needs a model that writes programs calling llm()"), std::string::npos) << err;
  // names to shuffle only for a model of number names (wand-pot, pal's default, reads the digits)
  EXPECT_EQ(wand("bench synthetic --limit 1 --no-store --k 2 --method pal --shuffle-names", "", &err).rc, 2);
  EXPECT_NE(err.find("wand bench: --shuffle-names: the model's prompt format is 'pot'"), std::string::npos) << err;
  EXPECT_EQ(wand("export --checkpoint c --tokenizer t --out /nonexistent-dir/m.gguf", "", &err).rc, 2);
  EXPECT_NE(err.find("--out: /nonexistent-dir/m.gguf: cannot write"), std::string::npos) << err;
}

// wand corpus: bad input is exit 2 with a message naming it, before any work.
TEST(Cli, CorpusBadInputIsExitTwo) {
  std::string dir = ::testing::TempDir() + "wand_cli_corpus", junk = ::testing::TempDir() + "wand_cli_junk.gguf";
  std::ofstream(junk) << "not a gguf";
  std::string err;
  EXPECT_EQ(wand("corpus --out " + dir + " --tokenizer /nonexistent/tok.gguf", "", &err).rc, 2);
  EXPECT_NE(err.find("--tokenizer /nonexistent/tok.gguf: cannot open"), std::string::npos) << err;
  EXPECT_EQ(wand("corpus --out " + dir + " --tokenizer " + junk, "", &err).rc, 2);
  EXPECT_NE(err.find("--tokenizer " + junk + ": not a GGUF file"), std::string::npos) << err;
  EXPECT_EQ(wand("corpus --out " + dir + " --mix pot=inf", "", &err).rc, 2);
  EXPECT_NE(err.find("--mix: the weight of 'pot' must be a positive number"), std::string::npos) << err;
  EXPECT_EQ(wand("corpus --out " + dir + " --mix cot=1 --number-names", "", &err).rc, 2);  // not silently ignored
  EXPECT_NE(err.find("--number-names: the mix has no pot, grammar or gsm8k part"), std::string::npos) << err;
  EXPECT_EQ(wand("corpus --out " + dir + " --mix pot=1 --shuffle-names", "", &err).rc, 2);
  EXPECT_NE(err.find("--shuffle-names shuffles number names: it needs --number-names"), std::string::npos) << err;
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(Cli, UnknownOptionIsBadInput) {
  EXPECT_EQ(wand("exec --no-such-flag -").rc, 2);
}


// The OpenAI client (libcurl), the server (cpp-httplib) and the PostgreSQL store (libpq) are modules loaded on first use, so a
// command that needs neither, like a one-shot `wand exec`, starts without mapping them.
TEST(CliModules, StartDoesNotLoadNetworkLibraries) {
  std::string err;
  CliRun r = wand("exec -", "print(1)", &err);
  ASSERT_EQ(r.rc, 0) << err;
  std::string cmd = std::string("LD_DEBUG=libs ") + WAND_BINARY + " --version 2>&1 >/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  std::string trace;
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) trace.append(buf, n);
  ASSERT_EQ(WEXITSTATUS(::pclose(p)), 0);
  EXPECT_NE(trace.find("libstdc++"), std::string::npos) << "no loader trace: " << trace;
  for (const char* lib : {"libcurl", "libcpp-httplib", "libssl", "libgnutls", "libkrb5", "libpq"})
    EXPECT_EQ(trace.find(lib), std::string::npos) << lib << " is loaded at start";
}

// Both modules end to end through the binary: `wand serve` (wand_server.so) answers `wand
// generate --model openai:` (wand_openai.so) with what the engine gives directly.
TEST(CliModules, ServeAnswersTheOpenAIClient) {
  std::string log = ::testing::TempDir() + "wand_serve_err" + std::to_string(::getpid());
  std::string model = std::string(WAND_SOURCE_DIR) + "/models/wand-pot.gguf";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!std::freopen(log.c_str(), "w", stderr)) _exit(127);
    ::execl(WAND_BINARY, "wand", "serve", "--model", ("local:" + model).c_str(), "--port", "0", "--threads", "1",
            static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string url;
  for (int i = 0; i < 600 && url.empty(); ++i) {
    std::string text = slurp(log);
    if (auto at = text.find("http://"); at != std::string::npos && text.find(" — ", at) != std::string::npos)
      url = text.substr(at, text.find(" — ", at) - at);
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(url.empty()) << slurp(log);
  std::string err;
  std::string args = " -n 8 --temperature 0 'Q: 2+3=?\nA:'";
  CliRun remote = wand("generate --model openai:" + url + "/wand-pot" + args, "", &err);
  CliRun local = wand("generate --model local:" + model + " --threads 1" + args);
  ::kill(pid, SIGTERM);
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_EQ(remote.rc, 0) << err;
  EXPECT_EQ(local.rc, 0);
  EXPECT_FALSE(remote.out.empty());
  EXPECT_EQ(remote.out, local.out);
}

// One program starts one interpreter: `wand exec FILE` execs `python3 main.py` in its cell (no
// fork-server), a batch runs in the fork-server; both report the same results.
TEST(CliModules, OneShotAndBatchRunPythonAlike) {
  std::string code = "import sys\nprint(__file__, sys.argv)\n1/0\n";
  std::string err;
  CliRun one = wand("exec --json -", code, &err);
  EXPECT_EQ(one.rc, 1) << err;
  Json j = Json::parse(one.out);
  EXPECT_EQ(j["stdout"], "/work/main.py ['main.py']\n");
  EXPECT_EQ(j["exception"]["type"], "ZeroDivisionError");
  EXPECT_EQ(j["exception"]["line"], 3);
  EXPECT_NE(j["stderr"].get<std::string>().find("File \"/work/main.py\", line 3"), std::string::npos);
  CliRun batch = wand("exec --jsonl --cells 1", Json{{"code", code}}.dump() + "\n", &err);
  auto lines = json_lines(batch.out);
  ASSERT_EQ(lines.size(), 1u) << err;
  EXPECT_EQ(lines[0]["stdout"], j["stdout"]);
  EXPECT_EQ(lines[0]["exception"], j["exception"]);
}

// A binary whose modules are missing says which file it could not load, and only when a command
// needs it; everything else still works.
TEST(CliModules, MissingModuleIsAClearError) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(::testing::TempDir()) / ("wand_alone" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(WAND_BINARY, dir / "wand", fs::copy_options::overwrite_existing);
  std::string bin = (dir / "wand").string();
  auto run = [&](const std::string& args, std::string* err) {
    std::string cmd = bin + " " + args + " 2>" + (dir / "err").string() + " </dev/null >/dev/null";
    int st = std::system(cmd.c_str());
    *err = slurp((dir / "err").string());
    return WEXITSTATUS(st);
  };
  std::string err;
  EXPECT_EQ(run("exec --lang python --json /dev/null", &err), 0) << err;
  EXPECT_EQ(run("generate --model openai:http://127.0.0.1:9/v1/m hi", &err), 2);
  EXPECT_NE(err.find((dir / "wand_openai.so").string()), std::string::npos) << err;
  EXPECT_NE(err.find("cannot load the module"), std::string::npos) << err;
  // A missing module is an installation problem the user fixes, like a bad option: 2, not 1.
  EXPECT_EQ(run("serve --model local:" + std::string(WAND_SOURCE_DIR) + "/models/wand-pot.gguf --port 0", &err), 2);
  EXPECT_NE(err.find((dir / "wand_server.so").string()), std::string::npos) << err;
  fs::remove_all(dir);
}

// A port it cannot take is the user's to change, like a bad option: exit 2, naming the address.
TEST(Cli, ServeOnATakenPortIsExitTwo) {
  auto [fd, port] = loopback_listener();
  ASSERT_GE(fd, 0);
  std::string err;
  CliRun r = wand(fmt::format("serve --port {} --threads 1", port), "", &err);
  ::close(fd);
  EXPECT_EQ(r.rc, 2) << err;
  EXPECT_NE(err.find(fmt::format("127.0.0.1:{}", port)), std::string::npos) << err;
}

// An empty question is bad input, not a question the model answers anyway (it used to print 40).
// A grammar file of the user's shapes a cot rationale (only the pot/pal fallback to cot is left
// unconstrained): the trial's grammar was silently ignored.
TEST(Cli, SolveCotFollowsAGrammarFileOfTheUsers) {
  std::string g = ::testing::TempDir() + "wand_cli_cot" + std::to_string(::getpid()) + ".gbnf";
  std::ofstream(g) << "root ::= \"The answer is 42.\"\n";
  std::string err;
  CliRun r = wand(fmt::format("solve --no-store --json --method cot -m local:{}/models/wand-cot.gguf --constrain {} "
                              "\"Ann has 5 pens and buys 3 more. How many pens does she have?\"",
                              WAND_SOURCE_DIR, g),
                  "", &err);
  ASSERT_EQ(r.rc, 0) << err;
  auto j = Json::parse(r.out);
  EXPECT_EQ(j["answer"], "42") << r.out;
  EXPECT_EQ(j["samples"][0]["completion"], "The answer is 42.") << r.out;
  std::filesystem::remove(g);
}

// $WAND_MODEL is every method's default, cot's too (it once took the shipped wand-cot whatever the
// variable said): a program model named there is refused for cot, and a CoT model answers.
TEST(Cli, SolveCotTakesWandModelFromTheEnvironment) {
  ::setenv("WAND_MODEL", (std::string("local:") + WAND_SOURCE_DIR + "/models/wand-pot.gguf").c_str(), 1);
  std::string err;
  CliRun r = wand("solve --no-store --method cot \"What is 2 + 2?\"", "", &err);
  ::setenv("WAND_MODEL", (std::string("local:") + WAND_SOURCE_DIR + "/models/wand-cot.gguf").c_str(), 1);
  CliRun cot = wand("solve --no-store --json --method cot \"What is 2 + 2?\"");
  ::unsetenv("WAND_MODEL");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(err.find("wand-pot.gguf is a wand model of prompt format 'pot'"), std::string::npos) << err;
  ASSERT_EQ(cot.rc, 0) << cot.out;
  EXPECT_TRUE(Json::parse(cot.out)["model"].get<std::string>().ends_with("/models/wand-cot.gguf"));
}

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

// WAND_CPU forces the engine's kernel path: each path this CPU runs gives the same greedy text on
// stories260K, one it lacks is refused by name; a name that is not a path is exit 2 naming it,
// before any work.
TEST(Cli, WandCpuForcesAKernelPathAndABadOneIsExitTwo) {
  const std::string model = std::string(WAND_SOURCE_DIR) + "/../shared/data/models/stories260K.gguf";
  if (!std::filesystem::exists(model)) GTEST_SKIP() << model << " not found";
  const std::string cmd = "generate --temperature 0 -n 24 -m local:" + model + " 'Once upon a time'";
  std::string err;
  CliRun best = wand(cmd, "", &err);
  ASSERT_EQ(best.rc, 0) << err;
  for (const std::string path : {"generic", "avx2", "avx512", "amx"}) {
    ::setenv("WAND_CPU", path.c_str(), 1);
    CliRun forced = wand(cmd, "", &err);
    ::unsetenv("WAND_CPU");
    if (forced.rc == 2 && err.find("WAND_CPU=" + path + ": this CPU or build lacks it") != std::string::npos)
      continue;  // a path this CPU does not run is refused by name
    EXPECT_EQ(forced.rc, 0) << path << ": " << err;
    EXPECT_EQ(forced.out, best.out) << path;
  }
  ::setenv("WAND_CPU", "sse9", 1);
  CliRun bad = wand(cmd, "", &err);
  ::unsetenv("WAND_CPU");
  EXPECT_EQ(bad.rc, 2);
  EXPECT_EQ(err, "wand: WAND_CPU=sse9: unknown kernel path (generic, avx2, avx512 or amx)\n");
  EXPECT_EQ(bad.out, "");
}

// --kv-cache f16 (llama.cpp's default cache type) and q8 give stories260K's greedy text as f32 does
// (llama.cpp's reference for it, tests/llm); another type is exit 2 naming the option and value.
TEST(Cli, KvCacheF16GivesTheSameGreedyTextAndABadTypeIsExitTwo) {
  const std::string model = std::string(WAND_SOURCE_DIR) + "/../shared/data/models/stories260K.gguf";
  if (!std::filesystem::exists(model)) GTEST_SKIP() << model << " not found";
  const std::string cmd = "generate --temperature 0 -n 40 -m local:" + model + " 'Once upon a time'";
  std::string err;
  CliRun f32 = wand(cmd + " --kv-cache f32", "", &err);
  ASSERT_EQ(f32.rc, 0) << err;
  CliRun f16 = wand(cmd + " --kv-cache f16", "", &err);
  ASSERT_EQ(f16.rc, 0) << err;
  EXPECT_EQ(f16.out, f32.out);
  EXPECT_NE(f16.out.find("little girl named Lily"), std::string::npos) << f16.out;
  CliRun q8 = wand(cmd + " --kv-cache q8", "", &err);
  ASSERT_EQ(q8.rc, 0) << err;
  EXPECT_EQ(q8.out, f32.out);
  CliRun bad = wand(cmd + " --kv-cache q8_0", "", &err);
  EXPECT_EQ(bad.rc, 2);
  EXPECT_NE(err.find("--kv-cache: q8_0 not in {f32,f16,q8}"), std::string::npos) << err;
  EXPECT_EQ(bad.out, "");
  // The embedded engine's settings with a served model: refused, not dropped (nothing listens on port 9).
  CliRun served = wand("generate -m openai:http://127.0.0.1:9/v1/m --kv-cache f16 hi", "", &err);
  EXPECT_EQ(served.rc, 2);
  EXPECT_NE(err.find("the KV cache type (f16) is the embedded engine's setting"), std::string::npos) << err;
  served = wand("generate -m openai:http://127.0.0.1:9/v1/m --threads 2 hi", "", &err);
  EXPECT_EQ(served.rc, 2);
  EXPECT_NE(err.find("engine threads (2) are the embedded engine's setting"), std::string::npos) << err;
}

// An option given an empty or blank value is refused, naming the command and the option
// (`-m "$MODEL"` with MODEL unset once ran the shipped model); --preload '' still means none.
TEST(Cli, AnEmptyOptionIsRefusedNotTakenForTheDefault) {
  struct Case {
    std::string args, says;
  };
  for (const Case& c : std::vector<Case>{{"solve -m '' q", "wand solve: --model: empty (leave it out for the default)"},
                                         {"bench synthetic --model ' '", "wand bench: --model: empty"},
                                         {"generate --constrain '' x", "wand generate: --constrain: empty"},
                                         {"exec --lang '' -", "wand exec: --lang: empty"},
                                         {"tools list --relevant ' '", "wand tools list: --relevant: empty"}}) {
    std::string err;
    CliRun r = wand(c.args, "print(1)", &err);
    EXPECT_EQ(r.rc, 2) << c.args;
    EXPECT_NE(err.find(c.says), std::string::npos) << c.args << "\n" << err;
  }
  CliRun none = wand("exec --json --preload '' -", "print(1)");
  ASSERT_EQ(none.rc, 0);
  EXPECT_EQ(Json::parse(none.out)["stdout"], "1\n");
}

// A word where a command goes that names none is said by name (CLI11 said "A subcommand is required").
TEST(Cli, AnUnknownCommandIsNamed) {
  std::string err;
  CliRun top = wand("foo", "", &err);
  EXPECT_EQ(top.rc, 2);
  EXPECT_EQ(err.rfind("wand: unknown command 'foo' (commands: ", 0), 0u) << err;
  CliRun nested = wand("runs delete x", "", &err);
  EXPECT_EQ(nested.rc, 2);
  EXPECT_EQ(err.rfind("wand runs: unknown command 'delete' (commands: ", 0), 0u) << err;
  EXPECT_EQ(wand("runs list --json --store " + temp_store("unknown_cmd")).rc, 0);  // a real one still runs
}

// --stop takes one value an occurrence: the prompt after it stays the prompt.
TEST(Cli, GenerateStopBeforeThePrompt) {
  std::string err;
  CliRun r = wand("generate --stop zzz --max-tokens 4 --stop yyy 'Question: What is 2 + 2?'", "", &err);
  EXPECT_EQ(r.rc, 0) << err;  // was 2: "prompt is required"
}

TEST(Cli, GenerateConstrainKeepsTheShippedModelInsideTheGrammar) {
  std::string model = std::string(WAND_SOURCE_DIR) + "/models/wand-pot.gguf", err;
  std::string prompt =
      "'Question: Mia has 12 shells and finds 30 more. How many shells does she have now?\nProgram:\n'";
  CliRun pot = wand("generate --constrain pot --temperature 1 --seed 3 -m local:" + model + " " + prompt, "", &err);
  EXPECT_EQ(pot.rc, 0) << err;
  EXPECT_NE(pot.out.find("answer = "), std::string::npos) << pot.out;
  EXPECT_NE(err.find("finish: stop"), std::string::npos) << err;
  CliRun block = wand("generate --constrain python-block -n 12 -m local:" + model + " " + prompt, "", &err);
  EXPECT_EQ(block.rc, 0) << err;
  EXPECT_EQ(block.out.rfind("```python\n", 0), 0u) << block.out;
}

TEST(Cli, GenerateConstrainBadGrammarsAreExitTwoNamingFileLineAndColumn) {
  std::string err;
  EXPECT_EQ(wand("generate --constrain no-such x", "", &err).rc, 2);
  EXPECT_EQ(err,
            "wand generate: --constrain: grammar 'no-such' is neither a built-in one (python-block, pot) nor a "
            "readable file\n");
  std::string path = ::testing::TempDir() + "wand_cli_bad" + std::to_string(::getpid()) + ".gbnf";
  std::ofstream(path) << "root ::= item+\nitem ::= [0-9] (\",\" item\n";
  EXPECT_EQ(wand("generate --constrain " + path + " x", "", &err).rc, 2);
  EXPECT_EQ(err,
            "wand generate: --constrain: " + path + ":3:1: expected ')' to close the group, got the end of the file\n");
  std::ofstream(path) << "root ::= root \"a\" | \"b\"\n";
  EXPECT_EQ(wand("generate --constrain " + path + " x", "", &err).rc, 2);
  EXPECT_NE(err.find(path + ":1:1: rule 'root' is left-recursive (root -> root)"), std::string::npos) << err;
  std::remove(path.c_str());
  EXPECT_EQ(wand("generate --constrain pot -m openai:http://127.0.0.1:9/v1/m x", "", &err).rc, 2);
  EXPECT_EQ(err,
            "wand generate: --constrain needs the embedded engine (--model local:PATH.gguf), got "
            "'openai:http://127.0.0.1:9/v1/m'\n");
}

// --- wand code (src/codegen) and wand export --run

const char* kAddTask = "Return the sum of a and b.";

std::string add_tests_file() {
  std::string path = ::testing::TempDir() + "wand_cli_add_tests" + std::to_string(::getpid()) + ".py";
  std::ofstream(path) << "# visible tests\nassert add(2, 3) == 5\nassert add(1, 1) == 2\n";
  return path;
}

int steps_of(const Json& j, const std::string& role) {
  int n = 0;
  for (auto& s : j["steps"]) n += s["role"] == role;
  return n;
}

// A family of models/heldout-functions.jsonl the shipped code model writes right greedily.
const int kEasyFamily = 4;  // reverse a string
const std::string kPotModel = std::string("local:") + WAND_SOURCE_DIR + "/models/wand-pot.gguf";

// The shipped arithmetic (PoT) model: its programs fail, which exercises every round.
TEST(Cli, CodeRunsEachMethodWithThePotModelAndRecordsIt) {
  std::string store = temp_store("code_methods"), tests = add_tests_file(), err;
  const std::map<std::string, std::string> own = {  // the options each method reads (others are refused)
      {"sample", ""}, {"self-debug", "--rounds 1"}, {"codet", "--gen-tests 3"}, {"roles", "--rounds 1 --gen-tests 3"}};
  for (std::string method : {"sample", "self-debug", "codet", "roles"}) {
    CliRun r = wand(fmt::format("code -m {} --method {} --k 2 {} --seed 1 --tests {} --store {} --json \"{}\"",
                                kPotModel, method, own.at(method), tests, store, kAddTask),
                    "", &err);
    ASSERT_TRUE(r.rc == 0 || r.rc == 1) << method << ": " << err;
    EXPECT_NE(err.find("not functions"), std::string::npos) << err;  // the warning: not a code model
    Json j = Json::parse(r.out);
    EXPECT_EQ(j["hidden"]["passed"].get<bool>(), r.rc == 0) << method;
    int coders = steps_of(j, "coder");
    if (method == "sample" || method == "codet") EXPECT_EQ(coders, 2) << method;
    else EXPECT_TRUE(coders >= 2 && coders <= 4) << method << " " << coders;  // k chains of 1 + at most R rounds
    EXPECT_EQ(steps_of(j, "tester") > 0, method == "codet" || method == "roles") << method;
    ASSERT_TRUE(j["chosen_step"].is_number_integer());
    EXPECT_EQ(j["steps"][j["chosen_step"].get<int>()]["role"], "coder");
    EXPECT_FALSE(j["run_id"].is_null());
    CliRun show = wand(fmt::format("runs show --json --store {} {}", store, j["run_id"].get<std::string>()));
    ASSERT_EQ(show.rc, 0);
    Json run = Json::parse(show.out);
    EXPECT_EQ(run["kind"], "code");
    EXPECT_EQ(run["method"], method);
    EXPECT_EQ(run["problems"][0]["samples"].size(), j["steps"].size()) << method;
  }
  // The text form: how it was chosen as comments, then the program.
  CliRun text = wand(fmt::format("code -m {} --seed 1 --tests {} --no-store \"{}\"", kPotModel, tests, kAddTask));
  EXPECT_TRUE(text.out.starts_with("# sample 0 of 1")) << text.out;
  EXPECT_NE(text.out.find("# --tests: "), std::string::npos) << text.out;
  std::filesystem::remove(store);
  std::filesystem::remove(tests);
}

// The shipped code model (the default: no --model) on a held-out-input task of a trained family
// (models/heldout-functions.jsonl, the pass@1 table's set): its greedy program passes the hidden
// tests, and every method runs end to end on the task.
TEST(Cli, CodeModelIsTheDefaultAndPassesAHeldOutInputTaskWithEachMethod) {
  std::string task;
  {
    std::ifstream in(std::string(WAND_SOURCE_DIR) + "/models/heldout-functions.jsonl");
    for (std::string line; std::getline(in, line);)
      if (Json::parse(line)["template"] == kEasyFamily) {
        task = line;
        break;
      }
  }
  ASSERT_FALSE(task.empty());
  std::string dataset = ::testing::TempDir() + "wand_cli_code_task" + std::to_string(::getpid()) + ".jsonl";
  std::string samples = dataset + ".samples", err;
  std::ofstream(dataset) << task << "\n";
  for (std::string method : {"sample", "self-debug", "codet", "roles"}) {
    CliRun r = wand(fmt::format("code --dataset {} --out {} --method {} --seed 1 --no-store --json", dataset, samples, method),
                    "", &err);
    ASSERT_EQ(r.rc, 0) << method << ": " << err;
    EXPECT_EQ(err.find("not functions"), std::string::npos) << err;  // not the arithmetic model
    Json s = Json::parse(r.out);
    EXPECT_EQ(s["model"], std::string("local:") + WAND_SOURCE_DIR + "/models/wand-code.gguf");
    EXPECT_EQ(s["judged"], 1) << method;
    if (method == "sample") {
      EXPECT_EQ(s["chosen_pass_rate"], 1.0) << slurp(samples);
    }
    EXPECT_EQ(json_lines(slurp(samples)).size(), 1u) << method;
  }
  std::filesystem::remove(dataset);
  std::filesystem::remove(samples);
}

TEST(Cli, CodeAgainstWandServeOverHttp) {
  ServeProcess server;
  ASSERT_NE(server.port(), 0) << "wand serve did not start";
  std::string spec = fmt::format("openai:http://127.0.0.1:{}/v1/wand-pot", server.port()), tests = add_tests_file(), err;
  CliRun codet = wand(fmt::format("code --model {} --prompt-style wand --method codet --k 3 --gen-tests 3 --entry add --seed 2 "
                                  "--no-store --json \"{}\"", spec, kAddTask),
                      "", &err);
  // No tests given: nothing judges the pick, but a program without `add` is a failure (exit 1).
  ASSERT_TRUE(codet.rc == 0 || codet.rc == 1) << err;
  Json j = Json::parse(codet.out);
  EXPECT_EQ(j["defines_entry"], codet.rc == 0) << codet.out;
  EXPECT_EQ(steps_of(j, "coder"), 3);
  EXPECT_GE(steps_of(j, "tester"), 1);
  EXPECT_EQ(j["model"], spec);
  EXPECT_FALSE(j["agreement"].is_null());
  EXPECT_EQ(err.find("not functions"), std::string::npos) << err;  // a model was named: no warning
  CliRun debug = wand(fmt::format("code --model {} --prompt-style wand --method self-debug --rounds 2 --tests {} --seed 2 "
                                  "--no-store --json \"{}\"", spec, tests, kAddTask),
                      "", &err);
  ASSERT_TRUE(debug.rc == 0 || debug.rc == 1) << err;
  Json d = Json::parse(debug.out);
  EXPECT_EQ(steps_of(d, "coder"), d["hidden"]["passed"].get<bool>() ? steps_of(d, "coder") : 3);
  std::filesystem::remove(tests);
}

// A run on a test set's questions exports with a warning, and never into a training corpus.
TEST(Cli, ExportOfATestSetRunWarnsAndMakesNoCorpus) {
  std::string store = temp_store("export_test_set"), err;
  std::string multiarith = std::string(WAND_SHARED_DATA) + "/pal-math/mawpsmultiarith.jsonl";
  if (!std::ifstream(multiarith)) GTEST_SKIP() << multiarith << " not found";
  CliRun b = wand(fmt::format("bench {} --limit 2 --seed 1 -q --json --store {}", multiarith, store), "", &err);
  ASSERT_EQ(b.rc, 0) << err;
  std::string id = Json::parse(b.out)["run_id"];
  CliRun rows = wand(fmt::format("export --run {} --format rewards --store {}", id, store), "", &err);
  EXPECT_EQ(rows.rc, 0) << err;
  // (MultiArith's questions are in ASDiv too: both are named)
  EXPECT_NE(err.find("warning: 2 of 2 problems of run " + id + " are test questions ("), std::string::npos) << err;
  EXPECT_NE(err.find("multiarith 2"), std::string::npos) << err;
  std::string corpus = ::testing::TempDir() + "wand_cli_test_corpus" + std::to_string(::getpid());
  CliRun c = wand(fmt::format("export --run {} --format sft --corpus {} --tokenizer {}/models/wand-pot.gguf --store {}", id,
                              corpus, WAND_SOURCE_DIR, store),
                  "", &err);
  EXPECT_EQ(c.rc, 2) << err;
  EXPECT_NE(err.find("a training corpus is never made from a test set"), std::string::npos) << err;
  EXPECT_FALSE(std::filesystem::exists(corpus + "/train.bin"));
}

TEST(Cli, CodeDatasetWritesSamplesThatEvalReadsAndExportsTrainingData) {
  std::string store = temp_store("code_dataset"), err;
  std::string samples = ::testing::TempDir() + "wand_cli_code_samples" + std::to_string(::getpid()) + ".jsonl";
  std::string mbpp = std::string(WAND_SHARED_DATA) + "/mbpp/mbpp.jsonl";
  CliRun r = wand(fmt::format("code --dataset {} --limit 2 --k 2 --seed 4 --out {} --store {}", mbpp, samples, store), "", &err);
  ASSERT_EQ(r.rc, 0) << err;
  EXPECT_NE(r.out.find("wrote 4 samples for 2 tasks"), std::string::npos) << r.out;
  auto lines = json_lines(slurp(samples));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["task_id"], "1");
  EXPECT_TRUE(lines[0]["completion"].is_string());
  CliRun ev = wand(fmt::format("eval --dataset {} --samples {} --json", mbpp, samples));
  EXPECT_EQ(ev.rc, 0);
  EXPECT_EQ(Json::parse(ev.out)["samples"], 4);
  Json run = recorded_run(store);
  EXPECT_EQ(run["problems"].size(), 2u);
  EXPECT_EQ(run["status"], "finished");
  std::string id = run["id"];
  CliRun rw = wand(fmt::format("export --run {} --format rewards --per-task 0 --store {}", id, store), "", &err);
  ASSERT_EQ(rw.rc, 0) << err;
  auto rows = json_lines(rw.out);
  EXPECT_GE(rows.size(), 1u);
  for (auto& row : rows) {
    EXPECT_EQ(row["run_id"], id);
    EXPECT_TRUE(row["prompt"].is_string());
    EXPECT_TRUE(row["reward"].is_number());
    EXPECT_TRUE(row["tests_total"].is_number_integer());
  }
  EXPECT_NE(err.find("rewards rows from run " + id), std::string::npos) << err;
  std::filesystem::remove(samples);
  std::filesystem::remove(store);
}

TEST(Cli, CodeAndExportRefuseBadInputWithExitTwo) {
  std::string err, tests = add_tests_file();
  std::string empty = ::testing::TempDir() + "wand_cli_no_tests" + std::to_string(::getpid());
  std::ofstream(empty) << "print('no asserts')\n";
  std::string cut = ::testing::TempDir() + "wand_cli_cut_tests" + std::to_string(::getpid());
  std::ofstream(cut) << "assert add(1, 1) == 2\nassert add(1,\n";
  std::string no_call = ::testing::TempDir() + "wand_cli_no_call" + std::to_string(::getpid()) + ".jsonl";
  std::ofstream(no_call) << R"({"task_id": 1, "text": "Be true.", "code": "x = 1", "test_list": ["assert True"]})" << "\n";
  std::string foreign = ::testing::TempDir() + "wand_cli_corpus" + std::to_string(::getpid());
  std::filesystem::create_directories(foreign);
  std::ofstream(foreign + "/manifest.json") << R"({"vocab": 512, "tokens": 1000})";
  std::string gsm = std::string(WAND_SHARED_DATA) + "/gsm8k/" + [] {
    for (auto& e : std::filesystem::directory_iterator(std::string(WAND_SHARED_DATA) + "/gsm8k"))
      if (e.path().extension() == ".jsonl") return e.path().filename().string();
    return std::string("missing");
  }();
  struct Case {
    std::string args, says;
  };
  std::vector<Case> cases = {
      {"code", "give a description, or --dataset FILE --out FILE"},
      {"code \"   \"", "the description is empty"},
      {"code x --dataset " + tests + " --out /tmp/x.jsonl", "excludes"},
      {"code --dataset " + tests, "requires --out"},
      {"code x --out /tmp/x.jsonl", "requires --dataset"},
      {"code x --feedback loud", "--feedback"},
      {"code x --method magic", "--method"},
      {"code x --k 0", "--k"},
      {"code x --rounds nan", "--rounds"},
      {"code x --tests " + empty, "no assert statements found"},
      {"code x --tests " + cut, "not a Python assert statement: assert add(1,"},
      {"code --dataset " + gsm + " --out /tmp/x.jsonl", "word problems, not code tasks"},
      {"code --method codet --no-store \"Print hello.\"", "needs an entry point (--entry NAME, or tests that call it)"},
      {"code --method codet --no-store --dataset " + no_call + " --out /tmp/x.jsonl",
       "needs an entry point (no test of this dataset task calls a function)"},
      {"code x --entry 'a(b'", "--entry 'a(b': not a Python function name"},
      {"export", "give --checkpoint, --tokenizer and --out (a GGUF model), --model and --out (a checkpoint), or --run ID"},
      {"export --run abc --checkpoint c", "excludes"},
      {"export --format sft", "requires --run"},
      {"export --run nosuch --store " + temp_store("export_none"), "--store"},
      {"export --run x --format dpo --shape messages --store " + temp_store("export_none"), "--shape messages is a shape of sft rows only"},
      {"export --run x --tokenizer t.gguf", "--tokenizer with --run goes with --corpus DIR"},
      {"export --run x --corpus /tmp/c", "--corpus needs --tokenizer"},
      {"export --run x --format rewards --corpus /tmp/c --tokenizer t.gguf", "--corpus takes sft or verifier rows"},
      {"export --corpus /tmp/c", "requires --run"},
      // a GGUF model into a checkpoint (--model): it needs --out, a GGUF, and none of the other modes' options
      {"export --model " + std::string(WAND_SOURCE_DIR) + "/models/wand-pot.gguf", "--model needs --out"},
      {"export --model " + std::string(WAND_SOURCE_DIR) + "/README.md --out /tmp/x.wckpt", "README.md: not a GGUF file"},
      {"export --model /nonexistent/m.gguf --out /tmp/x.wckpt", "/nonexistent/m.gguf"},
      {"export --model " + std::string(WAND_SOURCE_DIR) + "/models/wand-pot.gguf --run x", "excludes"},
      {"export --model " + std::string(WAND_SOURCE_DIR) + "/models/wand-pot.gguf --out /proc/x.wckpt", "/proc/x.wckpt"},
      // a folder `wand corpus` wrote (its manifest names no run): its held-out sets would stay
      {"export --run x --corpus " + foreign + " --tokenizer t.gguf",
       "--corpus " + foreign + ": holds files that are not an earlier export's"},
      {"export --run x --store '' ", "--store: must not be empty"},
      {"export --run x --store ' ' ", "--store: must not be empty or blank"},
  };
  for (auto& c : cases) {
    CliRun r = wand(c.args, "", &err);
    EXPECT_EQ(r.rc, 2) << c.args << "\n" << err;
    EXPECT_NE(err.find(c.says), std::string::npos) << c.args << "\n" << err;
  }
  for (auto& f : {tests, empty, cut, no_call}) std::filesystem::remove(f);
  std::filesystem::remove_all(foreign);
}

}  // namespace
}  // namespace wand::test
