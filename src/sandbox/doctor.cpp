// `wand doctor`: what isolation and limits this host offers, checked for real by starting a
// cell and running code in it.
#include <fmt/core.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "sandbox/cell.h"
#include "sandbox/seccomp.h"

namespace wand::sandbox {

namespace {
std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}
}  // namespace

Json HostReport::to_json() const {
  Json checks_j = Json::array();
  for (const auto& c : checks) checks_j.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}});
  bool all_ok = true;
  for (const auto& c : checks) all_ok = all_ok && c.ok;
  return {{"ok", all_ok}, {"checks", checks_j}, {"warnings", warnings}};
}

HostReport doctor() {
  HostReport rep;
  auto add = [&](std::string name, bool ok, std::string detail) {
    rep.checks.push_back({std::move(name), ok, std::move(detail)});
  };
  add("user", true, ::geteuid() == 0 ? "root (the cell's root maps to host user nobody)"
                                     : fmt::format("uid {} (the cell's root maps to it)", ::geteuid()));
  std::string max_ns = first_line("/proc/sys/user/max_user_namespaces");
  std::string unpriv = first_line("/proc/sys/kernel/unprivileged_userns_clone");
  add("user namespaces", max_ns != "0",
      fmt::format("max_user_namespaces={}{}", max_ns.empty() ? "?" : max_ns,
                  unpriv.empty() ? "" : ", unprivileged_userns_clone=" + unpriv));
  const auto& bpf = seccomp_program();
  add("seccomp", bpf.ok(),
      bpf ? fmt::format("filter of {} BPF instructions; actions: {}", bpf.value().size() / 8,
                        first_line("/proc/sys/kernel/seccomp/actions_avail"))
          : bpf.error().message);
  const CgroupHost& cg = cgroup_host();
  add("cgroups", cg.mode != CgroupMode::none, cg.detail);
  if (cg.mode == CgroupMode::none)
    rep.warnings.push_back(
        "no usable cgroups: memory is limited by RLIMIT_DATA and processes by RLIMIT_NPROC "
        "instead; peak memory is the main process's maximum RSS");
  if (cg.mode != CgroupMode::none && cg.cpu_base.empty())
    rep.warnings.push_back("no CPU accounting controller: CPU time is the run's own rusage, and limit_by cpu "
                           "counts the run's main process only");

  CellConfig config{{"numpy", "sympy"}, 64, fmt::format("doctor-{}", ::getpid())};
  auto cell = Cell::start(config);
  add("cell", cell.ok(),
      cell ? "user, pid, net, mount, ipc, uts namespaces; read-only system; tmpfs /work and /tmp"
           : cell.error().message);
  if (cell) {
    const Json& ready = (*cell)->ready_info();
    add("python", true, fmt::format("/usr/bin/python3 {} (fork-server)", ready.value("python", "?")));
    for (const char* mod : {"numpy", "sympy"}) {
      auto errs = ready.value("preload_errors", Json::object());
      bool ok = !errs.contains(mod);
      add(mod, ok, ok ? "importable in the sandbox, preloaded" : errs[mod].get<std::string>());
      if (!ok) rep.warnings.push_back(fmt::format("{} is missing: apt-get install python3-{}", mod, mod));
    }
    Step probe;
    probe.code =
        "import os, socket\n"
        "s = socket.socket(); s.settimeout(1)\n"
        "try:\n    s.connect(('1.1.1.1', 53)); print('net: open')\n"
        "except OSError as e:\n    print('net: closed')\n"
        "print('host files:', os.path.exists('/root') or os.path.exists('/home'))\n";
    ExecResult r = (*cell)->execute(probe);
    bool contained = r.status == Status::ok && r.stdout_data.find("net: closed") != std::string::npos &&
                     r.stdout_data.find("host files: False") != std::string::npos;
    add("containment probe", contained,
        r.status == Status::ok ? "no route out, no host home directories" : to_string(r.status) + (" " + r.error));
  }
  for (const auto& l : languages()) {
    const auto& argv = l.compile_argv.empty() ? l.run_argv : l.compile_argv;
    if (argv.empty()) continue;
    bool found = ::access(argv[0].c_str(), X_OK) == 0;
    add(l.name, found, found ? argv[0] : argv[0] + " not found");
  }
  add("cores", true, std::to_string(std::thread::hardware_concurrency()));
  return rep;
}

}  // namespace wand::sandbox
