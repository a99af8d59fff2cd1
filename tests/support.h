// Helpers shared by the test binaries: one sandbox per binary, program files, host checks.
#pragma once
#include <gtest/gtest.h>

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>

#include <fstream>
#include <sstream>
#include <string>

#include "sandbox/sandbox.h"

namespace wand::test {

inline sandbox::Sandbox& shared_sandbox() {
  static std::unique_ptr<sandbox::Sandbox> sb = [] {
    sandbox::Options o;
    o.cells = 2;
    auto r = sandbox::Sandbox::create(o);
    if (!r) {
      ADD_FAILURE() << "sandbox unavailable: " << r.error().message;
      std::abort();
    }
    return std::move(r.value());
  }();
  return *sb;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string program(const std::string& name) { return slurp(std::string(WAND_TEST_PROGRAMS) + "/" + name); }

inline pid_t parent_of(pid_t pid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return 0;
  std::istringstream in(stat.substr(close + 2));
  char state;
  pid_t ppid = 0;
  in >> state >> ppid;
  return ppid;
}

// Processes of this test process's cells three pid namespaces deep (host, cell, run): what
// runs started. After a run has been reported, there must be none. Other processes on the host
// (another test suite, say) are not counted.
inline int run_processes() {
  int n = 0;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::istringstream in(slurp(std::string("/proc/") + e->d_name + "/status"));
    int depth = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("NSpid:", 0) != 0) continue;
      std::istringstream ids(line.substr(6));
      for (long id; ids >> id;) ++depth;
    }
    if (depth < 3) continue;
    for (pid_t p = std::atoi(e->d_name); p > 1; p = parent_of(p))
      if (p == getpid()) {
        ++n;
        break;
      }
  }
  closedir(d);
  return n;
}

}  // namespace wand::test
