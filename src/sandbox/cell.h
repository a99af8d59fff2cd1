// A cell: fresh namespaces around a Python fork-server (zygote), and the host side of the
// protocol that drives one execution at a time in it. Internal to the sandbox module.
#pragma once
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "sandbox/cgroup.h"
#include "sandbox/sandbox.h"

namespace wand::sandbox {

struct CellConfig {
  std::vector<std::string> preload;
  std::size_t work_mb = 256;
  std::string name;  // names the run cgroup
  bool warm_stdlib = true;  // see Options
  bool fork_server = true;  // see Options; false: the C loop is pid 1 and Python is exec'd
};

// One step executed in a cell: Python code in the fork-server, or a program exec'd.
struct Step {
  std::vector<std::string> argv;  // empty: Python `code`
  std::string code;
  std::vector<std::string> args;
  std::string stdin_data;
  std::map<std::string, std::string> files;
  std::vector<std::string> collect;
  std::map<std::string, std::string> env;
  Limits limits;
  std::optional<std::string> channel;  // ExecRequest::channel: a socket at fd 3
  std::shared_ptr<Service> service;    // ExecRequest::service: a socket after the channel
  bool keep_work = false;  // leave the working directory for the next step (compile, then run)
};

// Counters taken before a run (or a session block), to report the run's own share.
struct Baseline {
  std::uint64_t oom_kills = 0, memory = 0;
  double cpu = -1;  // Cell::cpu_seconds(); -1 if it cannot be read
};

class Cell {
 public:
  static Result<std::unique_ptr<Cell>> start(const CellConfig& config);
  ~Cell();
  Cell(const Cell&) = delete;
  Cell& operator=(const Cell&) = delete;

  ExecResult execute(const Step& step);
  void reset_work();  // empty the working directory (after a failed compile)
  // CPU seconds used in the cell: the run cgroup's count (every process of the runs, and the
  // idle fork-server) where the host accounts CPU per cgroup, else the scheduler's count for
  // the current run's main process (0 while there is none). -1 if neither can be read. The
  // difference of two reads is a run's or a session block's own CPU time.
  double cpu_seconds() const;
  // Resets the peak memory and takes the counters a run's share is measured from.
  Baseline baseline();
  bool alive() const { return alive_; }
  pid_t pid() const { return pid_; }  // the zygote, as the host sees it
  const Json& ready_info() const { return ready_; }

  // A persistent Python process; blocks go to `cmd`, results come back on `res`.
  struct SessionPipes {
    int cmd_w = -1, res_r = -1, out_r = -1, err_r = -1;
  };
  // With `service_fd` >= 0, the interpreter holds it (at fd 5) for the session's life.
  Result<SessionPipes> start_session(const Limits& limits, int service_fd = -1);
  // The run cgroup (which also holds the fork-server).
  RunCgroup& cgroup() { return *cgroup_; }
  // Asks the zygote to kill the current run and waits for its report.
  Json kill_and_wait(double wait_s);
  // Reads the fork-server's report of an ended run if one arrives within `wait_s`.
  std::optional<Json> poll_done(double wait_s);
  int control_fd() const { return ctl_; }

 private:
  Cell() = default;
  // One message to the fork-server's C loop (see cellserver.c); limits only with a run.
  VoidResult send(uint32_t op, uint32_t flags, const Limits* limits, const std::string& payload,
                  const std::vector<int>& fds);
  std::optional<Json> read_reply();
  // Sets the run cgroup's limits for one run or session; returns the counters taken before.
  Result<Baseline> limit(const Limits& l);
  void mark_dead(const std::string& why);
  // The working directory seen from the host, through /proc/<zygote>/root/work.
  VoidResult write_inputs(const std::map<std::string, std::string>& files);
  std::map<std::string, CollectedFile> collect(const std::vector<std::string>& names, std::size_t cap);

  pid_t pid_ = -1;
  uid_t owner_uid_ = 0;  // the cell's root as the host sees it: owns the input files
  gid_t owner_gid_ = 0;
  int ctl_ = -1;       // stream socket to the zygote
  int diag_ = -1;      // the zygote's stderr, read when it dies
  bool alive_ = false;
  bool fork_server_ = true;  // CellConfig::fork_server
  std::string death_;
  std::unique_ptr<RunCgroup> cgroup_;
  Json ready_;
};

// The host's watch over one run or session block: its wall-clock deadline and, with
// limit_by cpu, its CPU time. When a limit is reached the caller kills the run, and `fired` is
// the record of which limit did it. Verdicts come from that record (and from the kernel's own:
// SIGXCPU, the cgroup's OOM kills), never from times read after the kill: the accounting of a
// process killed at its CPU limit can read below the limit, and more so on a loaded host.
class Watch {
 public:
  using Clock = std::chrono::steady_clock;
  Watch(const Cell& cell, const Limits& limits, const Baseline& before);
  // When the next check is due: the deadline, or, watching CPU, the soonest the run could have
  // used the rest of its CPU time running on every core (so a short run is never woken).
  Clock::time_point next() const { return next_; }
  // Checks the limits; true once one is reached (`fired` then says "wall" or "cpu").
  bool expired();
  // Records a limit the caller saw fire ("output"); the first one recorded stays.
  void fire(const char* limit) {
    if (fired.empty()) fired = limit;
  }
  std::string fired;

 private:
  const Cell& cell_;
  double cpu_before_, cpu_limit_;  // cpu_limit_ 0: not watching CPU
  Clock::time_point deadline_, next_;
};

// Milliseconds from now until `t` (at least 0, rounded up), for poll().
inline int poll_ms(Watch::Clock::time_point t) {
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - Watch::Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(ms, 0, 1 << 30));
}

// Wall-clock limit of a run: the timeout, or with limit_by cpu a cap of 2x + 1 s.
double wall_limit(const Limits& l);

// Wire helpers shared with the session code.
Result<Json> read_frame(int fd);
std::map<std::string, std::string> default_env();
long cpu_rlimit(const Limits& l);
// A failed Python run's exception from the end of its stderr; MemoryError is a memory limit.
void add_python_exception(ExecResult& r, std::string_view stderr_end);
// The verdict of an ended run from the records of what stopped it: `fired` (the host's watch),
// the cgroup's OOM kills since `before`, the signal (SIGXCPU is RLIMIT_CPU's), the exit code.
void fill_status(ExecResult& r, const Json& done, const std::string& fired, const Baseline& before, Cell& cell);

}  // namespace wand::sandbox
