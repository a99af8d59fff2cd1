// Sandbox speed, as ratios against baselines measured in the same run:
//   python3 -c pass (unsandboxed), bwrap around it, fresh interpreters importing numpy+sympy,
//   fresh interpreters two at a time for throughput, the same C++ binary run unsandboxed, and
//   one `wand exec FILE` process against python3 -c pass and python3 FILE.
// Usage: sandbox_bench [--quick]     (prints a table; numbers go in the issue notes)
#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "common/thread_pool.h"
#include "sandbox/sandbox.h"

extern char** environ;
using namespace wand;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

struct Stats {
  double p50 = 0, p99 = 0, mean = 0;
};
Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Stats s;
  s.p50 = v[v.size() / 2];
  s.p99 = v[std::min(v.size() - 1, static_cast<std::size_t>(v.size() * 0.99))];
  for (double x : v) s.mean += x / v.size();
  return s;
}

// Runs argv to completion with stdout/stderr to /dev/null; returns seconds.
double spawn_wait(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  auto t0 = Clock::now();
  pid_t pid;
  if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) return -1;
  int st;
  waitpid(pid, &st, 0);
  posix_spawn_file_actions_destroy(&fa);
  return secs(t0, Clock::now());
}

std::vector<double> repeat(int n, const std::function<double()>& f) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(f());
  return v;
}

double run_s(sandbox::Sandbox& sb, const std::string& code) {
  sandbox::ExecRequest req;
  req.code = code;
  auto t0 = Clock::now();
  auto r = sb.run(req);
  if (r.status != sandbox::Status::ok) fmt::print(stderr, "unexpected: {} {}\n", to_string(r.status), r.stderr_data);
  return secs(t0, Clock::now());
}

// Memory of the idle fork-servers (children of this process two pid namespaces deep).
std::pair<long, long> idle_cell_kb() {
  long rss = 0, pss = 0;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    if (!isdigit(e->d_name[0])) continue;
    std::string base = std::string("/proc/") + e->d_name;
    std::ifstream st(base + "/status");
    std::string line;
    bool ours = false;
    while (std::getline(st, line))
      if (line.rfind("PPid:", 0) == 0) ours = std::stoi(line.substr(5)) == getpid();
    if (!ours) continue;
    std::ifstream sm(base + "/smaps_rollup");
    while (std::getline(sm, line)) {
      if (line.rfind("Rss:", 0) == 0) rss += std::stol(line.substr(4));
      if (line.rfind("Pss:", 0) == 0) pss += std::stol(line.substr(4));
    }
  }
  closedir(d);
  return {rss, pss};
}

void row(const std::string& what, const std::string& value, const std::string& ratio = "") {
  fmt::print("{:<58} {:>22} {:>14}\n", what, value, ratio);
}
std::string ms(double s) { return fmt::format("{:.2f} ms", s * 1e3); }

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  int n = quick ? 30 : 200, n_base = quick ? 15 : 60, batch = quick ? 400 : 2000;
  std::string wand_bin = WAND_BINARY;
  fmt::print("sandbox benchmark ({} cores, {})\n\n", std::thread::hardware_concurrency(), quick ? "quick" : "full");
  fmt::print("{:<58} {:>22} {:>14}\n", "measure", "value", "ratio");

  // Baselines.
  Stats py = stats(repeat(n_base, [] { return spawn_wait({"/usr/bin/python3", "-c", "pass"}); }));
  row("baseline: python3 -c pass, unsandboxed (p50 / p99)", ms(py.p50) + " / " + ms(py.p99));
  std::vector<std::string> bwrap = {"/usr/bin/bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr",
                                    "/usr",           "--symlink",     "usr/lib",           "/lib",      "--symlink",
                                    "usr/lib64",      "/lib64",        "--symlink",         "usr/bin",   "/bin",
                                    "--proc",         "/proc",         "--dev",             "/dev",      "--tmpfs",
                                    "/tmp",           "/usr/bin/python3", "-c",             "pass"};
  bool have_bwrap = access("/usr/bin/bwrap", X_OK) == 0 && spawn_wait(bwrap) > 0;
  Stats bw{};
  if (have_bwrap) {
    bw = stats(repeat(n_base, [&] { return spawn_wait(bwrap); }));
    row("baseline: bwrap around python3 -c pass (p50 / p99)", ms(bw.p50) + " / " + ms(bw.p99));
  }

  // One program, one `wand exec` process, start to exit, against the bare interpreter in the
  // same run (interleaved, so load on the host weighs on both alike).
  {
    std::string file = "/tmp/wand-bench-hello-" + std::to_string(getpid()) + ".py";
    std::ofstream(file) << "print('hello')\n";
    std::vector<double> bare, script, once;
    for (int i = 0; i < n_base; ++i) {
      bare.push_back(spawn_wait({"/usr/bin/python3", "-c", "pass"}));
      script.push_back(spawn_wait({"/usr/bin/python3", file}));
      once.push_back(spawn_wait({wand_bin, "exec", file}));
    }
    std::remove(file.c_str());
    Stats b = stats(bare), f = stats(script), w = stats(once);
    row("baseline: python3 -c pass (p50), interleaved with:", ms(b.p50));
    row("baseline: python3 hello.py (p50)", ms(f.p50), fmt::format("{:.3f}x py", f.p50 / b.p50));
    row("wand exec hello.py, process start to exit (p50 / p99)", ms(w.p50) + " / " + ms(w.p99),
        fmt::format("{:.3f}x py", w.p50 / b.p50));
    row("  vs python3 hello.py", "", fmt::format("{:.3f}x file", w.p50 / f.p50));
  }

  sandbox::Options o;
  o.cells = std::max(1u, std::thread::hardware_concurrency());
  auto sbr = sandbox::Sandbox::create(o);
  if (!sbr) {
    fmt::print(stderr, "sandbox unavailable: {}\n", sbr.error().message);
    return 3;
  }
  auto& sb = *sbr.value();
  for (int i = 0; i < 10; ++i) run_s(sb, "pass");  // warm both cells

  Stats lib = stats(repeat(n, [&] { return run_s(sb, "x = 1"); }));
  row("wand library API: trivial snippet (p50 / p99)", ms(lib.p50) + " / " + ms(lib.p99),
      fmt::format("{:.3f}x py", lib.p50 / py.p50));
  row("  p99 vs python3 p50", "", fmt::format("{:.3f}x py", lib.p99 / py.p50));
  if (have_bwrap) row("  p50 vs bwrap p50", "", fmt::format("{:.3f}x bwrap", lib.p50 / bw.p50));

  // wand exec --jsonl, one cell, so per item = total / items (includes start-up, amortized).
  {
    std::string in = "/tmp/wand-bench-" + std::to_string(getpid()) + ".jsonl";
    {
      std::ofstream f(in);
      for (int i = 0; i < n; ++i) f << "{\"code\": \"x = " << i << "\"}\n";
    }
    std::string cmd = wand_bin + " exec --jsonl --cells 1 --preload '' < " + in + " > /dev/null";
    auto t0 = Clock::now();
    int rc = std::system(cmd.c_str());
    double total = secs(t0, Clock::now());
    std::remove(in.c_str());
    if (rc == 0)
      row(fmt::format("wand exec --jsonl: {} trivial items, 1 cell (per item)", n), ms(total / n),
          fmt::format("{:.3f}x py", total / n / py.p50));
  }

  // numpy + sympy.
  Stats fresh_np = stats(repeat(quick ? 3 : 8, [] {
    return spawn_wait({"/usr/bin/python3", "-c", "import numpy, sympy; print(numpy.ones(3).sum(), sympy.sqrt(8))"});
  }));
  Stats wand_np =
      stats(repeat(n / 2, [&] { return run_s(sb, "import numpy, sympy\nprint(numpy.ones(3).sum(), sympy.sqrt(8))"); }));
  row("baseline: fresh python3 importing numpy+sympy (p50)", ms(fresh_np.p50));
  row("wand: numpy+sympy snippet, preloaded (p50 / p99)", ms(wand_np.p50) + " / " + ms(wand_np.p99),
      fmt::format("{:.3f}x fresh", wand_np.p50 / fresh_np.p50));

  // Throughput on all cores.
  int nb = quick ? 100 : 400;
  auto tb = Clock::now();
  parallel_for(nb, 2, [&](std::size_t, std::size_t) { spawn_wait({"/usr/bin/python3", "-c", "pass"}); });
  double base_rate = nb / secs(tb, Clock::now());
  row(fmt::format("baseline: {} fresh python3, two at a time", nb), fmt::format("{:.0f} exec/s", base_rate));
  std::vector<sandbox::ExecRequest> reqs(batch);
  for (int i = 0; i < batch; ++i) reqs[i].code = "x = " + std::to_string(i);
  auto tw = Clock::now();
  auto results = sb.run_batch(reqs);
  double rate = batch / secs(tw, Clock::now());
  int bad = std::count_if(results.begin(), results.end(), [](auto& r) { return r.status != sandbox::Status::ok; });
  row(fmt::format("wand: batch of {} trivial programs, {} cells{}", batch, sb.cells(),
                  bad ? fmt::format(" ({} NOT ok)", bad) : ""),
      fmt::format("{:.0f} exec/s", rate), fmt::format("{:.2f}x fresh", rate / base_rate));

  // A compiled C++ program, compile excluded, against the same source built and run on the host.
  {
    const char* src = "#include <cstdio>\nint main(){ long s = 0; for (int i = 0; i < 1000; ++i) s += i; std::printf(\"%ld\\n\", s); }";
    std::string dir = "/tmp/wand-bench-cpp-" + std::to_string(getpid());
    std::system(("mkdir -p " + dir).c_str());
    std::ofstream(dir + "/m.cpp") << src;
    std::system(("g++ -O2 -o " + dir + "/m " + dir + "/m.cpp").c_str());
    Stats host = stats(repeat(n_base, [&] { return spawn_wait({dir + "/m"}); }));
    std::system(("rm -rf " + dir).c_str());
    std::vector<double> runs;
    for (int i = 0; i < (quick ? 5 : 20); ++i) {
      sandbox::ExecRequest req;
      req.language = "cpp";
      req.code = src;
      runs.push_back(sb.run(req).wall_s);
    }
    Stats w = stats(runs);
    row("baseline: C++ binary run on the host (p50)", ms(host.p50));
    row("wand: same C++ program, run step only (p50)", ms(w.p50), fmt::format("{:.2f}x host", w.p50 / host.p50));
  }

  // Time from a run's deadline until the cell has run the next program.
  {
    std::vector<double> rec;
    sandbox::Options one;
    one.cells = 1;
    one.preload = {};
    auto single = sandbox::Sandbox::create(one);
    for (int i = 0; i < (quick ? 3 : 10); ++i) {
      sandbox::ExecRequest req;
      req.code = "while True: pass";
      req.limits.timeout_s = 0.2;
      auto t0 = Clock::now();
      (*single)->run(req);
      run_s(**single, "pass");
      rec.push_back(secs(t0, Clock::now()) - 0.2);
    }
    Stats s = stats(rec);
    row("wand: deadline -> next trivial run done (p50 / p99)", ms(s.p50) + " / " + ms(s.p99));
  }

  auto [rss, pss] = idle_cell_kb();
  row(fmt::format("idle cells (numpy+sympy preloaded), {} of them: RSS / PSS", sb.cells()),
      fmt::format("{:.1f} / {:.1f} MiB", rss / 1024.0, pss / 1024.0));
  return 0;
}
