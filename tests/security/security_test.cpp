// Hostile programs against the real sandbox. Each attack must be contained with a precise
// status, and leave the host and the next run unaffected.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "support.h"

namespace wand::test {
namespace {
using sandbox::ExecRequest;
using sandbox::ExecResult;
using sandbox::Status;

class Security : public ::testing::Test {
 protected:
  ExecResult attack(const std::string& file, ExecRequest req = {}) {
    req.code = program(file);
    if (const auto* lang = sandbox::language_for_path(file)) req.language = lang->name;
    if (req.limits.timeout_s == 10) req.limits.timeout_s = 3;
    ExecResult r = shared_sandbox().run(req);
    SCOPED_TRACE(file);
    EXPECT_NE(r.status, Status::sandbox_error) << r.error;
    return r;
  }

  void TearDown() override {
    // Nothing a run started outlives its report, and the next run is unaffected.
    EXPECT_EQ(run_processes(), 0);
    ExecRequest ok;
    ok.code = "print(sum(range(10)))";
    ExecResult r = shared_sandbox().run(ok);
    EXPECT_EQ(r.status, Status::ok) << r.error << r.stderr_data;
    EXPECT_EQ(r.stdout_data, "45\n");
  }
};

TEST_F(Security, ForkBombIsHeldByThePidsLimitAndKilledAtTimeout) {
  ExecRequest req;
  req.limits.timeout_s = 2;
  req.limits.max_processes = 32;
  ExecResult r = attack("fork_bomb.py", req);
  EXPECT_EQ(r.status, Status::timeout);
  EXPECT_EQ(r.limit_hit, "wall");
}

TEST_F(Security, ShellForkBombIsContained) {
  ExecRequest req;
  req.limits.timeout_s = 2;
  req.limits.max_processes = 32;
  ExecResult r = attack("fork_bomb.sh", req);
  EXPECT_EQ(r.status, Status::timeout);
}

TEST_F(Security, MemoryBombHitsTheMemoryLimit) {
  ExecRequest req;
  req.limits.memory_mb = 128;
  ExecResult r = attack("memory_bomb.py", req);
  EXPECT_EQ(r.status, Status::memory_limit) << r.stderr_data;
  EXPECT_EQ(r.limit_hit, "memory");
}

TEST_F(Security, CompiledMemoryBombHitsTheMemoryLimit) {
  ExecRequest req;
  req.limits.memory_mb = 128;
  ExecResult r = attack("memory_bomb.c", req);
  EXPECT_EQ(r.status, Status::memory_limit) << r.stderr_data << r.compile_output;
  EXPECT_LE(r.peak_memory_kb, 130u * 1024);
}

TEST_F(Security, DiskFillerRunsOutOfItsOwnTmpfs) {
  ExecResult r = attack("disk_filler.py");
  EXPECT_EQ(r.status, Status::runtime_error);
  ASSERT_TRUE(r.exception);
  EXPECT_EQ(r.exception->type, "OSError");
  EXPECT_NE(r.exception->message.find("No space left"), std::string::npos) << r.exception->message;
}

TEST_F(Security, FileSizeLimitStopsOneHugeFile) {
  ExecRequest req;
  req.limits.max_file_mb = 8;
  ExecResult r = attack("big_file.py", req);
  EXPECT_EQ(r.status, Status::runtime_error);
  ASSERT_TRUE(r.exception);
  EXPECT_NE(r.exception->message.find("File too large"), std::string::npos) << r.exception->message;
}

TEST_F(Security, LoopIgnoringSigtermIsKilledAtTheDeadline) {
  ExecRequest req;
  req.limits.timeout_s = 1;
  ExecResult r = attack("ignore_sigterm.py", req);
  EXPECT_EQ(r.status, Status::timeout);
  EXPECT_EQ(r.limit_hit, "wall");
  EXPECT_LT(r.wall_s, 2.0);
}

TEST_F(Security, CpuLimitCountsCpuNotWall) {
  ExecRequest req;
  req.limits.timeout_s = 1;
  req.limits.limit_by = sandbox::LimitBy::cpu;
  ExecResult r = attack("ignore_sigterm.py", req);
  EXPECT_EQ(r.status, Status::timeout);
  EXPECT_EQ(r.limit_hit, "cpu");
  EXPECT_GE(r.cpu_s, 0.9);
}

TEST_F(Security, DaemonDoesNotOutliveTheRun) {
  ExecResult r = attack("daemon.py");
  EXPECT_EQ(r.status, Status::ok);
  EXPECT_EQ(r.stdout_data, "parent leaves\n");
  // TearDown checks that no process of the run (the `sleep 31337`) is left.
}

TEST_F(Security, OutputFloodIsCutAtTheLimit) {
  ExecRequest req;
  req.limits.max_output_bytes = 1 << 20;
  ExecResult r = attack("output_flood.py", req);
  EXPECT_EQ(r.status, Status::output_limit);
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_EQ(r.stdout_data.size(), 1u << 20);
}

TEST_F(Security, HostSecretsAreNotVisible) {
  const char* home = std::getenv("HOME");
  std::string marker = std::string(home ? home : "/root") + "/.wand-security-marker";
  { std::ofstream(marker) << "host-secret-marker"; }
  ExecRequest req;
  req.args = {marker};
  ExecResult r = attack("read_host_files.py", req);
  std::filesystem::remove(marker);
  EXPECT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data.find("READ"), std::string::npos) << r.stdout_data;
  EXPECT_EQ(r.stdout_data.find("LISTED"), std::string::npos) << r.stdout_data;
  EXPECT_EQ(r.stdout_data.find("host-secret-marker"), std::string::npos);
  EXPECT_NE(r.stdout_data.find("/etc/shadow denied"), std::string::npos) << r.stdout_data;
}

TEST_F(Security, NothingOutsideTheWorkingDirectoryIsWritable) {
  std::string host_tmp = "/tmp/wand-security-write-" + std::to_string(::getpid());
  ExecRequest req;
  req.args = {host_tmp};
  ExecResult r = attack("write_outside.py", req);
  EXPECT_EQ(r.status, Status::ok) << r.stderr_data;
  // Only the last path, under /tmp, is writable: the cell's /tmp is a tmpfs of its own.
  EXPECT_EQ(r.stdout_data.find("WRITTEN"), r.stdout_data.find(host_tmp + " WRITTEN") + host_tmp.size() + 1)
      << r.stdout_data;
  EXPECT_EQ(r.stdout_data.find("WRITTEN"), r.stdout_data.rfind("WRITTEN"));
  EXPECT_FALSE(std::filesystem::exists(host_tmp));
  for (const char* p : {"/usr/wand-pwned", "/etc/wand-pwned", "/wand-pwned"}) EXPECT_FALSE(std::filesystem::exists(p));
}

TEST_F(Security, SymlinksLeadNowhereAndAreNotCollected) {
  const char* home = std::getenv("HOME");
  std::string marker = std::string(home ? home : "/root") + "/.wand-symlink-marker";
  { std::ofstream(marker) << "host-secret-marker"; }
  ExecRequest req;
  req.args = {marker};
  req.collect = {"out.txt"};
  ExecResult r = attack("symlink_out.py", req);
  std::filesystem::remove(marker);
  EXPECT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_NE(r.stdout_data.find("marker denied"), std::string::npos) << r.stdout_data;
  ASSERT_EQ(r.files.count("out.txt"), 1u);
  EXPECT_FALSE(r.files["out.txt"].error.empty());  // a symlink is refused, not followed
  EXPECT_TRUE(r.files["out.txt"].data.empty());
}

TEST_F(Security, HostLoopbackIsUnreachable) {
  auto [s, port] = loopback_listener();
  ASSERT_GE(s, 0);
  ExecRequest req;
  req.args = {std::to_string(port)};
  ExecResult r = attack("connect_host.py", req);
  pollfd p{s, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);  // no connection ever arrived
  ::close(s);
  EXPECT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data.rfind("refused", 0), 0u) << r.stdout_data;
}

TEST_F(Security, KillingEverythingReachesOnlyTheRunItself) {
  ExecResult r = attack("kill_everything.py");
  EXPECT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_NE(r.stdout_data.find("still here"), std::string::npos);
  // The test process, the cells and the next run are all alive: TearDown runs code.
}

TEST_F(Security, DangerousSyscallsAreRefused) {
  ExecResult r = attack("syscalls.py");
  EXPECT_EQ(r.status, Status::ok) << r.stderr_data;
  for (const char* name : {"ptrace", "mount", "unshare", "unshare_net", "setns", "sethostname", "bpf", "kexec_load"})
    EXPECT_NE(r.stdout_data.find(std::string(name) + " EPERM"), std::string::npos) << name << "\n" << r.stdout_data;
  EXPECT_NE(r.stdout_data.find("packet_socket EAFNOSUPPORT"), std::string::npos) << r.stdout_data;
  EXPECT_NE(r.stdout_data.find("hostname wand"), std::string::npos);
  char host[256];
  ::gethostname(host, sizeof host);
  EXPECT_NE(std::string(host), "evil");
}

TEST_F(Security, HostEnvironmentIsNotPassed) {
  ::setenv("WAND_TEST_SECRET", "wand-secret-value", 1);
  ExecResult r = attack("env_secret.py");
  EXPECT_EQ(r.status, Status::ok);
  EXPECT_NE(r.stdout_data.find("clean"), std::string::npos) << r.stdout_data;
  EXPECT_EQ(r.stdout_data.find("WAND_TEST_SECRET"), std::string::npos);
}

TEST_F(Security, RlimitsCannotBeRaised) {
  ExecResult r = attack("raise_rlimits.py");
  EXPECT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data.find("RAISED"), std::string::npos) << r.stdout_data;
  EXPECT_NE(r.stdout_data.find("RLIMIT_CPU denied"), std::string::npos);
}

}  // namespace
}  // namespace wand::test
