// Helpers shared by the test binaries: one sandbox per binary, program files, host checks.
#pragma once
#include <gtest/gtest.h>

#include <dirent.h>

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

// Processes three pid namespaces deep (host, cell, run): what runs started. After a run has
// been reported, there must be none.
inline int run_processes() {
  int n = 0;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::istringstream in(slurp(std::string("/proc/") + e->d_name + "/status"));
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("NSpid:", 0) != 0) continue;
      std::istringstream ids(line.substr(6));
      int depth = 0;
      for (long id; ids >> id;) ++depth;
      if (depth >= 3) ++n;
    }
  }
  closedir(d);
  return n;
}

}  // namespace wand::test
