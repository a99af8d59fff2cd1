#include "sandbox/cgroup.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "common/log.h"

namespace wand::sandbox {
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool write_file(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::write(fd, value.data(), value.size());
  ::close(fd);
  return n == static_cast<ssize_t>(value.size());
}

std::uint64_t read_u64(const std::string& path) {
  std::string s = slurp(path);
  return s.empty() ? 0 : std::strtoull(s.c_str(), nullptr, 10);
}

// "key value" lines (memory.events, memory.oom_control, cpu.stat).
std::uint64_t read_key(const std::string& path, const std::string& key) {
  std::istringstream in(slurp(path));
  std::string k;
  std::uint64_t v;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

struct Mounts {
  std::string v2;                         // unified mount point
  std::map<std::string, std::string> v1;  // controller -> mount point
};

Mounts find_mounts() {
  Mounts m;
  std::istringstream in(slurp("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    // ... mount-point ... - fstype source super-options
    std::istringstream ls(line);
    std::string f[5];
    for (auto& x : f) ls >> x;
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream rest(line.substr(dash + 3));
    std::string type, source, opts;
    rest >> type >> source >> opts;
    if (type == "cgroup2") {
      m.v2 = f[4];
    } else if (type == "cgroup") {
      std::istringstream os(opts);
      for (std::string o; std::getline(os, o, ',');)
        if (o == "memory" || o == "pids" || o == "cpuacct") m.v1[o] = f[4];
    }
  }
  return m;
}

// controller ("" for v2) -> this process's path in that hierarchy
std::map<std::string, std::string> self_paths() {
  std::map<std::string, std::string> r;
  std::istringstream in(slurp("/proc/self/cgroup"));
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string ctrls = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (ctrls.empty()) r[""] = path;
    std::istringstream cs(ctrls);
    for (std::string c; std::getline(cs, c, ',');) r[c] = path;
  }
  return r;
}

// Removes wand-<pid> directories left by processes that died without cleaning up.
void sweep_stale(const std::string& parent) {
  std::error_code ec;
  for (auto& e : fs::directory_iterator(parent, ec)) {
    std::string n = e.path().filename();
    if (n.rfind("wand-", 0) != 0) continue;
    pid_t pid = std::atoi(n.c_str() + 5);
    if (pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    for (auto& sub : fs::directory_iterator(e.path(), ec))
      if (sub.is_directory()) ::rmdir(sub.path().c_str());
    ::rmdir(e.path().c_str());
  }
}

std::string make_base(std::string parent) {
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  sweep_stale(parent);
  std::string base = fmt::format("{}/wand-{}", parent, ::getpid());
  if (::mkdir(base.c_str(), 0755) != 0 && errno != EEXIST) return {};
  return base;
}

CgroupHost setup_v2(const Mounts& m, const std::string& self) {
  CgroupHost h;
  std::string parent = m.v2 + self;
  std::string ctrls = slurp(parent + "/cgroup.controllers");
  if (ctrls.find("memory") == std::string::npos || ctrls.find("pids") == std::string::npos) {
    h.detail = fmt::format("cgroup v2 at {} lacks the memory/pids controllers (has: {})", parent,
                           ctrls.empty() ? "none" : ctrls.substr(0, ctrls.find('\n')));
    return h;
  }
  // Controllers can only be handed to children of a cgroup with no processes of its own
  // (unless it is the root), so on EBUSY this process moves into a leaf first.
  if (!write_file(parent + "/cgroup.subtree_control", "+memory +pids")) {
    std::string leaf = fmt::format("{}/wand-host-{}", parent, ::getpid());
    ::mkdir(leaf.c_str(), 0755);
    if (!write_file(leaf + "/cgroup.procs", std::to_string(::getpid())) ||
        !write_file(parent + "/cgroup.subtree_control", "+memory +pids")) {
      h.detail = fmt::format("cgroup v2 at {}: cannot enable memory/pids for children: {}", parent,
                             std::strerror(errno));
      return h;
    }
  }
  write_file(parent + "/cgroup.subtree_control", "+cpu");  // optional: CPU accounting
  std::string base = make_base(parent);
  if (base.empty() || !write_file(base + "/cgroup.subtree_control", "+memory +pids")) {
    h.detail = fmt::format("cgroup v2 at {}: cannot create a delegated subtree: {}", parent,
                           std::strerror(errno));
    return h;
  }
  write_file(base + "/cgroup.subtree_control", "+cpu");
  h.mode = CgroupMode::v2;
  h.memory_base = h.pids_base = h.cpu_base = base;
  h.detail = fmt::format("cgroup v2, run cgroups under {}", base);
  return h;
}

CgroupHost setup_v1(const Mounts& m, const std::map<std::string, std::string>& self) {
  CgroupHost h;
  if (!m.v1.count("memory") || !m.v1.count("pids")) {
    h.detail = "no cgroup v1 memory and pids hierarchies";
    return h;
  }
  auto base_for = [&](const std::string& c) {
    auto it = self.find(c);
    return make_base(m.v1.at(c) + (it == self.end() ? "" : it->second));
  };
  h.memory_base = base_for("memory");
  h.pids_base = base_for("pids");
  if (h.memory_base.empty() || h.pids_base.empty()) {
    h.detail = fmt::format("cgroup v1: cannot create run cgroups: {}", std::strerror(errno));
    return h;
  }
  if (m.v1.count("cpuacct")) h.cpu_base = base_for("cpuacct");
  h.mode = CgroupMode::v1;
  h.detail = fmt::format("cgroup v1 (memory {}, pids {}{})", h.memory_base, h.pids_base,
                         h.cpu_base.empty() ? "" : ", cpuacct " + h.cpu_base);
  return h;
}

CgroupHost detect() {
  if (const char* e = std::getenv("WAND_NO_CGROUPS"); e && *e == '1')
    return {CgroupMode::none, "", "", "", "disabled by WAND_NO_CGROUPS=1"};
  Mounts m = find_mounts();
  auto self = self_paths();
  std::string why;
  if (!m.v2.empty() && self.count("")) {
    CgroupHost h = setup_v2(m, self[""]);
    if (h.mode != CgroupMode::none) return h;
    why = h.detail;
  }
  CgroupHost h = setup_v1(m, self);
  if (h.mode == CgroupMode::none && !why.empty()) h.detail = why + "; " + h.detail;
  return h;
}

struct HostHolder {
  CgroupHost host = detect();
  ~HostHolder() {
    for (auto* b : {&host.memory_base, &host.pids_base, &host.cpu_base})
      if (!b->empty()) ::rmdir(b->c_str());
  }
};

}  // namespace

const CgroupHost& cgroup_host() {
  static HostHolder holder;
  return holder.host;
}

Result<std::unique_ptr<RunCgroup>> RunCgroup::create(const CgroupHost& host, const std::string& name) {
  std::unique_ptr<RunCgroup> cg(new RunCgroup);
  cg->mode_ = host.mode;
  if (host.mode == CgroupMode::none) return cg;
  auto make = [&](const std::string& base) -> std::string {
    std::string d = base + "/" + name;
    if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) return {};
    cg->dirs_.push_back(d);
    return d;
  };
  cg->mem_ = make(host.memory_base);
  cg->pids_ = host.pids_base == host.memory_base ? cg->mem_ : make(host.pids_base);
  if (!host.cpu_base.empty())
    cg->cpu_ = host.cpu_base == host.memory_base ? cg->mem_ : make(host.cpu_base);
  if (cg->mem_.empty() || cg->pids_.empty())
    return Error{fmt::format("cannot create run cgroup {}: {}", name, std::strerror(errno))};
  if (host.mode == CgroupMode::v1) write_file(cg->mem_ + "/memory.swappiness", "0");
  return cg;
}

RunCgroup::~RunCgroup() {
  kill_all();
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) ::rmdir(it->c_str());
}

VoidResult RunCgroup::add(pid_t pid) {
  for (const auto& d : dirs_)
    if (!write_file(d + "/cgroup.procs", std::to_string(pid)))
      return Error{fmt::format("cannot move process {} into {}: {}", pid, d, std::strerror(errno))};
  return ok_status();
}

VoidResult RunCgroup::set_limits(std::uint64_t memory_bytes, int max_pids) {
  if (mode_ == CgroupMode::none) return ok_status();
  if (memory_bytes != memory_) {
    std::string file = mode_ == CgroupMode::v2 ? "/memory.max" : "/memory.limit_in_bytes";
    if (!write_file(mem_ + file, std::to_string(memory_bytes)))
      return Error{fmt::format("cannot set {}{}: {}", mem_, file, std::strerror(errno))};
    if (mode_ == CgroupMode::v2) write_file(mem_ + "/memory.swap.max", "0");
    memory_ = memory_bytes;
  }
  if (max_pids != pids_max_) {
    if (!write_file(pids_ + "/pids.max", std::to_string(max_pids)))
      return Error{fmt::format("cannot set {}/pids.max: {}", pids_, std::strerror(errno))};
    pids_max_ = max_pids;
  }
  return ok_status();
}

std::uint64_t RunCgroup::reset_peak() {
  if (mode_ == CgroupMode::v1) write_file(mem_ + "/memory.max_usage_in_bytes", "0");
  if (mode_ == CgroupMode::v2) write_file(mem_ + "/memory.peak", "reset");  // Linux >= 6.12
  return usage_bytes();
}

std::uint64_t RunCgroup::usage_bytes() const {
  if (mode_ == CgroupMode::v1) return read_u64(mem_ + "/memory.usage_in_bytes");
  if (mode_ == CgroupMode::v2) return read_u64(mem_ + "/memory.current");
  return 0;
}

std::uint64_t RunCgroup::peak_bytes() const {
  if (mode_ == CgroupMode::v1) return read_u64(mem_ + "/memory.max_usage_in_bytes");
  if (mode_ == CgroupMode::v2) return read_u64(mem_ + "/memory.peak");
  return 0;
}

std::uint64_t RunCgroup::oom_kills() const {
  if (mode_ == CgroupMode::v1) return read_key(mem_ + "/memory.oom_control", "oom_kill");
  if (mode_ == CgroupMode::v2) return read_key(mem_ + "/memory.events", "oom_kill");
  return 0;
}

double RunCgroup::cpu_seconds() const {
  if (cpu_.empty()) return -1;
  if (mode_ == CgroupMode::v1) return read_u64(cpu_ + "/cpuacct.usage") / 1e9;
  return read_key(cpu_ + "/cpu.stat", "usage_usec") / 1e6;
}

void RunCgroup::kill_all() {
  if (mode_ == CgroupMode::none) return;
  if (mode_ == CgroupMode::v2 && write_file(mem_ + "/cgroup.kill", "1")) return;
  // v1: no cgroup.kill; repeat until no process is left (a fork may race one pass).
  for (int pass = 0; pass < 100; ++pass) {
    std::istringstream in(slurp(pids_ + "/cgroup.procs"));
    bool any = false;
    for (pid_t p; in >> p;) {
      ::kill(p, SIGKILL);
      any = true;
    }
    if (!any) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace wand::sandbox
