// `wand eval`'s speed against the field's usual harness (one fresh unsandboxed /usr/bin/python3
// per sample, a pool over the cores), both measured in the same run, on two workloads:
//   references: HumanEval's 164 canonical solutions;
//   mixed:      1,640 samples, 10 per task: 5 passing, 2 failing, 2 raising, and one per task
//               that loops forever on every fourth task (timeout 1 s on both sides).
// wand's side is what `wand eval` runs: every sample in a sandbox cell, with the harness that
// judges each assertion on its own. Also reported: per-sample p50/p99 and the share of wall time
// spent outside the sandboxed runs (dispatch, fork, collecting results).
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

void compare(const char* name, sandbox::Sandbox& sb, const std::vector<feedback::Task>& tasks,
             const std::vector<std::pair<std::size_t, std::string>>& samples, std::size_t cores, double timeout) {
  std::vector<std::string> classic;
  for (auto& [t, completion] : samples) classic.push_back(feedback::humaneval_program(tasks[t], completion));
  int base_ok = 0;
  double base = baseline(classic, cores, timeout, base_ok);

  feedback::JudgeOptions opt;
  opt.timeout_s = timeout;
  std::vector<feedback::Submission> subs;
  std::vector<sandbox::ExecRequest> reqs;
  auto t0 = Clock::now();
  for (auto& [t, completion] : samples) {
    subs.push_back(feedback::prepare(tasks[t], completion, opt));
    reqs.push_back(subs.back().requests[0]);
  }
  auto results = sb.run_batch(reqs);
  int ok = 0;
  for (std::size_t i = 0; i < samples.size(); ++i)
    ok += feedback::judge(tasks[samples[i].first], subs[i], std::span(&results[i], 1), opt).passed;
  double ours = since(t0);
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
  fmt::print("  wand per sample: p50 {:.1f} ms, p99 {:.1f} ms; share of wall time outside the runs {:.0f}%\n",
             lat[lat.size() / 2] * 1e3, lat[std::min(lat.size() - 1, lat.size() * 99 / 100)] * 1e3, 100 * outside);
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
  compare("references", **sb, *tasks, refs, cores, 10);
  compare("mixed", **sb, *tasks, mixed, cores, 1);
  return 0;
}
