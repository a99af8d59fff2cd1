// Per-cell run cgroups: memory and process limits, peak memory, OOM and CPU accounting.
// Detects cgroup v2, v1 (or a hybrid like v1 memory/pids beside a bare v2), or none, once per
// process; with none, limits fall back to rlimits (see Cell) and doctor() says so.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace wand::sandbox {

enum class CgroupMode { none, v1, v2 };

struct CgroupHost {
  CgroupMode mode = CgroupMode::none;
  // Base directories this process created (wand-<pid>), one per controller on v1.
  std::string memory_base, pids_base, cpu_base;
  std::string detail;  // what was found, or why there is nothing usable
};

// Detected and set up on first use; the base directories are removed at exit.
const CgroupHost& cgroup_host();

class RunCgroup {
 public:
  static Result<std::unique_ptr<RunCgroup>> create(const CgroupHost& host, const std::string& name);
  ~RunCgroup();

  // Moves a process (the cell's fork-server) in; its children are born inside, which costs
  // nothing, where moving each child in would cost an RCU grace period (v1) per run.
  VoidResult add(pid_t pid);
  VoidResult set_limits(std::uint64_t memory_bytes, int max_pids);
  // Resets the peak to the current usage and returns that usage (page cache left by an
  // earlier step, say), so a run's own peak is peak_bytes() minus it.
  std::uint64_t reset_peak();
  std::uint64_t usage_bytes() const;
  std::uint64_t peak_bytes() const;
  std::uint64_t oom_kills() const;
  double cpu_seconds() const;  // all processes that ever ran in it
  void kill_all();

 private:
  RunCgroup() = default;
  CgroupMode mode_ = CgroupMode::none;
  std::vector<std::string> dirs_;  // every directory created (memory, pids, cpu on v1)
  std::string mem_, pids_, cpu_;
  std::uint64_t memory_ = 0;
  int pids_max_ = -1;
};

}  // namespace wand::sandbox
