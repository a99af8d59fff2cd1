// Helpers shared by the test binaries: one sandbox per binary, program files, host checks.
#pragma once
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "feedback/feedback.h"
#include "sandbox/sandbox.h"

namespace wand::test {

inline sandbox::Sandbox& shared_sandbox() {
  static std::unique_ptr<sandbox::Sandbox> sb = [] {
    sandbox::Options o;
    o.cells = 2;
    // The *_direct test entries run a suite again on cells without a Python fork-server.
    if (const char* v = std::getenv("WAND_TEST_FORK_SERVER"); v && std::string_view(v) == "0") o.fork_server = false;
    auto r = sandbox::Sandbox::create(o);
    if (!r) {
      ADD_FAILURE() << "sandbox unavailable: " << r.error().message;
      std::abort();
    }
    return std::move(r.value());
  }();
  return *sb;
}

// A TCP socket listening on 127.0.0.1 at a port the kernel picked: {fd, port}; the caller closes
// fd. fd is -1 when the socket could not be made.
inline std::pair<int, int> loopback_listener() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return {-1, 0};
  }
  return {fd, ntohs(addr.sin_port)};
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

// Judges completion i against task i, all in one batch over the shared sandbox.
inline std::vector<feedback::Verdict> judge_all(const std::vector<feedback::Task>& tasks,
                                                const std::vector<std::string>& completions,
                                                const feedback::JudgeOptions& opt = {},
                                                std::vector<sandbox::ExecResult>* runs = nullptr) {
  std::vector<feedback::Submission> subs;
  std::vector<sandbox::ExecRequest> reqs;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    subs.push_back(feedback::prepare(tasks[i], completions[i], opt));
    for (auto& r : subs.back().requests) reqs.push_back(r);
  }
  auto results = shared_sandbox().run_batch(reqs);
  std::vector<feedback::Verdict> out;
  std::size_t k = 0;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    std::span<const sandbox::ExecResult> rs(results.data() + k, subs[i].requests.size());
    k += rs.size();
    out.push_back(feedback::judge(tasks[i], subs[i], rs, opt));
  }
  if (runs) *runs = std::move(results);
  return out;
}

// A HumanEval-format task: `prompt` + completion, judged by `check(candidate)`.
inline feedback::Task humaneval_task(const std::string& entry_point, const std::string& prompt,
                                     const std::string& check_body) {
  feedback::Task t;
  t.task_id = "T/" + entry_point;
  t.format = "humaneval";
  t.kind = feedback::TaskKind::asserts;
  t.prompt = prompt;
  t.entry_point = entry_point;
  t.test = "def check(candidate):\n" + check_body;
  return t;
}

}  // namespace wand::test
