// HumanEval reference solutions: wand's sandboxed batch vs the field's usual harness (one fresh
// unsandboxed /usr/bin/python3 per sample, a pool over the cores), measured in the same run.
// Usage: eval_bench [HumanEval.jsonl]   (default ../shared/data/humaneval/HumanEval.jsonl)
#include <fcntl.h>
#include <fmt/core.h>
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

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : std::string(WAND_SHARED_DATA) + "/humaneval/HumanEval.jsonl";
  auto tasks = feedback::load_humaneval(path);
  if (!tasks) {
    fmt::print(stderr, "{}\n", tasks.error().message);
    return 2;
  }
  std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::string> programs;
  for (const auto& t : *tasks) programs.push_back(feedback::humaneval_program(t, t.canonical_solution));

  // Baseline: write each program to a file, run a fresh interpreter on it.
  std::string dir = "/tmp/wand-eval-bench-" + std::to_string(getpid());
  std::system(("mkdir -p " + dir).c_str());
  std::atomic<int> base_ok{0};
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
    if (posix_spawn(&pid, args[0], &fa, nullptr, const_cast<char**>(args), environ) == 0) waitpid(pid, &st, 0);
    posix_spawn_file_actions_destroy(&fa);
    base_ok += st == 0;
  });
  double base = std::chrono::duration<double>(Clock::now() - t0).count();
  std::system(("rm -rf " + dir).c_str());

  sandbox::Options o;
  o.cells = cores;
  o.preload = {};
  auto sb = sandbox::Sandbox::create(o);
  if (!sb) {
    fmt::print(stderr, "sandbox unavailable: {}\n", sb.error().message);
    return 3;
  }
  std::vector<sandbox::ExecRequest> reqs(programs.size());
  for (std::size_t i = 0; i < programs.size(); ++i) reqs[i].code = programs[i];
  auto t1 = Clock::now();
  auto results = (*sb)->run_batch(reqs);
  double ours = std::chrono::duration<double>(Clock::now() - t1).count();
  int ok = std::count_if(results.begin(), results.end(), [](auto& r) { return r.status == sandbox::Status::ok; });
  std::vector<double> lat;
  for (auto& r : results) lat.push_back(r.wall_s);
  std::sort(lat.begin(), lat.end());
  fmt::print("HumanEval reference solutions, {} samples, {} cores\n", programs.size(), cores);
  fmt::print("baseline: fresh python3 per sample, {} at a time   {:.2f} s  ({} passed)\n", cores, base, base_ok.load());
  fmt::print("wand: sandboxed batch (cells started outside the timing) {:.2f} s  ({} passed)  {:.2f}x faster\n", ours, ok,
             base / ours);
  fmt::print("wand per-sample wall time: p50 {:.1f} ms, p99 {:.1f} ms\n", lat[lat.size() / 2] * 1e3,
             lat[std::min(lat.size() - 1, lat.size() * 99 / 100)] * 1e3);
  return 0;
}
