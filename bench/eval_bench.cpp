// `wand eval`'s speed against the field's usual harness (one fresh unsandboxed /usr/bin/python3
// per sample, a pool over the cores), both measured in the same run, on two workloads:
//   references: HumanEval's 164 canonical solutions;
//   mixed:      1,640 samples, 10 per task: 5 passing, 2 failing, 2 raising, and one per task
//               that loops forever on every fourth task (timeout 1 s on both sides).
// wand's side is what `wand eval` runs: every sample in a sandbox cell, with the harness that
// judges each assertion on its own; then the same with --strict (tests in a trusted process,
// calls to the sample over a pipe), its time as a ratio to the default mode's. Also reported: per-sample p50/p99 and the share of wall time
// spent outside the sandboxed runs (dispatch, fork, collecting results), and for the references
// a floor: the same programs forked from one warm, unsandboxed interpreter with no isolation at
// all, i.e. what a fork per sample costs on this machine before any sandboxing.
// Usage: eval_bench [HumanEval.jsonl]   (default ../shared/data/humaneval/HumanEval.jsonl)
#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "common/json.h"
#include "common/thread_pool.h"
#include "feedback/feedback.h"

extern char** environ;
using namespace wand;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The baseline: each program to a file, a fresh interpreter on it, killed after `timeout` s.
double baseline(const std::vector<std::string>& programs, std::size_t cores, double timeout, int& passed) {
  std::string dir = "/tmp/wand-eval-bench-" + std::to_string(getpid());
  std::system(("mkdir -p " + dir).c_str());
  std::atomic<int> ok{0};
  auto t0 = Clock::now();
  parallel_for(programs.size(), cores, [&](std::size_t, std::size_t i) {
    std::string file = dir + "/p" + std::to_string(i) + ".py";
    std::ofstream(file) << programs[i];
    const char* args[] = {"/usr/bin/python3", file.c_str(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int st = 1;
    if (posix_spawn(&pid, args[0], &fa, nullptr, const_cast<char**>(args), environ) == 0) {
      auto start = Clock::now();
      while (waitpid(pid, &st, WNOHANG) == 0) {
        if (since(start) > timeout) {
          kill(pid, SIGKILL);
          waitpid(pid, &st, 0);
          break;
        }
        usleep(1000);
      }
    }
    posix_spawn_file_actions_destroy(&fa);
    ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
  });
  double s = since(t0);
  std::system(("rm -rf " + dir).c_str());
  passed = ok;
  return s;
}

// The floor: a warm /usr/bin/python3 with the eval preloads forks one child per program, `cores`
// children at a time; each child execs its program and exits. No namespaces, no limits.
double fork_floor(const std::vector<std::string>& programs, std::size_t cores) {
  std::string file = "/tmp/wand-eval-floor-" + std::to_string(getpid()) + ".json";
  std::ofstream(file) << Json(programs).dump();
  std::string modules;
  for (const auto& m : feedback::kEvalPreload) modules += m + ",";
  std::string script = fmt::format(
      "import json, os, sys, time\n"
      "for m in '{}'.split(','):\n    m and __import__(m)\n"
      "progs = json.load(open('{}'))\n"
      "t = time.perf_counter(); running = 0\n"
      "for src in progs:\n"
      "    if running == {}:\n        os.wait(); running -= 1\n"
      "    if os.fork() == 0:\n"
      "        fd = os.open('/dev/null', os.O_WRONLY); os.dup2(fd, 1); os.dup2(fd, 2)\n"
      "        try:\n            exec(compile(src, 'main.py', 'exec'), {{'__name__': '__main__'}})\n"
      "        finally:\n            os._exit(0)\n"
      "    running += 1\n"
      "while running:\n    os.wait(); running -= 1\n"
      "print(time.perf_counter() - t)\n",
      modules, file, cores);
  std::ofstream(file + ".py") << script;
  std::string out;
  if (FILE* f = ::popen(("/usr/bin/python3 " + file + ".py").c_str(), "r")) {
    char buf[64];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    ::pclose(f);
  }
  std::remove(file.c_str());
  std::remove((file + ".py").c_str());
  return out.empty() ? -1 : std::stod(out);
}

void compare(const char* name, sandbox::Sandbox& sb, const std::vector<feedback::Task>& tasks,
             const std::vector<std::pair<std::size_t, std::string>>& samples, std::size_t cores, double timeout,
             bool with_floor) {
  std::vector<std::string> classic;
  for (auto& [t, completion] : samples) classic.push_back(feedback::humaneval_program(tasks[t], completion));
  int base_ok = 0;
  double base = baseline(classic, cores, timeout, base_ok);

  // wand's path in a judging mode: prepare, run in the sandbox, judge.
  auto judged = [&](bool strict, int& ok) {
    feedback::JudgeOptions opt;
    opt.timeout_s = timeout;
    opt.strict = strict;
    std::vector<feedback::Submission> subs;
    std::vector<sandbox::ExecRequest> reqs;
    auto t0 = Clock::now();
    for (auto& [t, completion] : samples) {
      subs.push_back(feedback::prepare(tasks[t], completion, opt));
      reqs.push_back(subs.back().requests[0]);
    }
    auto results = sb.run_batch(reqs);
    ok = 0;
    for (std::size_t i = 0; i < samples.size(); ++i)
      ok += feedback::judge(tasks[samples[i].first], subs[i], std::span(&results[i], 1), opt).passed;
    return std::pair(since(t0), std::move(results));
  };
  int ok = 0, strict_ok = 0;
  auto [ours, results] = judged(false, ok);
  double strict = judged(true, strict_ok).first;
  std::vector<double> lat;
  double inside = 0;
  for (auto& r : results) {
    lat.push_back(r.wall_s);
    inside += r.wall_s;
  }
  std::sort(lat.begin(), lat.end());
  double outside = std::max(0.0, 1.0 - inside / (ours * static_cast<double>(cores)));
  fmt::print("\n{}: {} samples, {} cores, timeout {} s\n", name, samples.size(), cores, timeout);
  fmt::print("  baseline: fresh python3 per sample, {} at a time     {:7.2f} s  ({} passed)\n", cores, base, base_ok);
  fmt::print("  wand eval path: sandboxed, per-assertion harness    {:7.2f} s  ({} passed)  {:.2f}x faster\n", ours, ok,
             base / ours);
  fmt::print("  wand eval --strict: tests in a trusted process     {:7.2f} s  ({} passed)  {:.2f}x the default's time\n",
             strict, strict_ok, strict / ours);
  fmt::print("  wand per sample: p50 {:.1f} ms, p99 {:.1f} ms; share of wall time outside the runs {:.0f}%\n",
             lat[lat.size() / 2] * 1e3, lat[std::min(lat.size() - 1, lat.size() * 99 / 100)] * 1e3, 100 * outside);
  if (with_floor) {
    double floor = fork_floor(classic, cores);
    fmt::print("  floor: unsandboxed fork per sample, no harness      {:7.2f} s  ({:.2f}x the baseline: the most a\n"
               "         fork-per-sample design can gain on this machine)\n", floor, base / floor);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : std::string(WAND_SHARED_DATA) + "/humaneval/HumanEval.jsonl";
  auto tasks = feedback::load_tasks(path);
  if (!tasks) {
    fmt::print(stderr, "{}\n", tasks.error().message);
    return 2;
  }
  std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  sandbox::Options o;
  o.cells = cores;
  o.preload = feedback::kEvalPreload;
  auto sb = sandbox::Sandbox::create(o);  // cells start outside the timings
  if (!sb) {
    fmt::print(stderr, "sandbox unavailable: {}\n", sb.error().message);
    return 3;
  }
  std::vector<std::pair<std::size_t, std::string>> refs, mixed;
  for (std::size_t t = 0; t < tasks->size(); ++t) {
    const std::string& ref = (*tasks)[t].reference;
    refs.emplace_back(t, ref);
    for (int k = 0; k < 5; ++k) mixed.emplace_back(t, ref);
    for (int k = 0; k < 2; ++k) mixed.emplace_back(t, "    return None\n");
    for (int k = 0; k < 2; ++k) mixed.emplace_back(t, "    raise ValueError('not implemented')\n");
    mixed.emplace_back(t, t % 4 == 0 ? "    while True:\n        pass\n" : ref);
  }
  compare("references", **sb, *tasks, refs, cores, 10, true);
  compare("mixed", **sb, *tasks, mixed, cores, 1, false);
  return 0;
}
