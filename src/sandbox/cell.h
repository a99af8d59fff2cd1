// A cell: fresh namespaces around a Python fork-server (zygote), and the host side of the
// protocol that drives one execution at a time in it. Internal to the sandbox module.
#pragma once
#include <sys/types.h>

#include <optional>

#include <cstdint>
#include <map>
#include <memory>
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
  bool keep_work = false;  // leave the working directory for the next step (compile, then run)
};

// Counters of the run cgroup taken before a run, to report the run's own share.
struct Baseline {
  std::uint64_t oom_kills = 0, memory = 0;
  double cpu = -1;
  static Baseline take(RunCgroup& cg);
};

class Cell {
 public:
  static Result<std::unique_ptr<Cell>> start(const CellConfig& config);
  ~Cell();
  Cell(const Cell&) = delete;
  Cell& operator=(const Cell&) = delete;

  ExecResult execute(const Step& step);
  void reset_work();  // empty the working directory (after a failed compile)
  bool alive() const { return alive_; }
  pid_t pid() const { return pid_; }  // the zygote, as the host sees it
  const Json& ready_info() const { return ready_; }

  // A persistent Python process; blocks go to `cmd`, results come back on `res`.
  struct SessionPipes {
    int cmd_w = -1, res_r = -1, out_r = -1, err_r = -1;
  };
  Result<SessionPipes> start_session(const Limits& limits);
  // The run cgroup (which also holds the fork-server): counters for session blocks.
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
  std::string death_;
  std::unique_ptr<RunCgroup> cgroup_;
  Json ready_;
};

// Wire helpers shared with the session code.
Result<Json> read_frame(int fd);
std::map<std::string, std::string> default_env();
long cpu_rlimit(const Limits& l);
// A failed Python run's exception from the end of its stderr; MemoryError is a memory limit.
void add_python_exception(ExecResult& r, std::string_view stderr_end);
void fill_status(ExecResult& r, const Json& done, const Limits& limits, bool wall_hit,
                 bool output_hit, const Baseline& before, RunCgroup& cg);

}  // namespace wand::sandbox
