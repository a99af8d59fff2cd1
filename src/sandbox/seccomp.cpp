#include "sandbox/seccomp.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace wand::sandbox {
namespace {

// Syscalls refused with EPERM: mounts and namespaces, tracing other processes, kernel
// modules and kexec, eBPF and perf, keyrings, system clock and host identity, swap, reboot,
// and the new mount API. Programs see an ordinary permission error, not a crash.
constexpr const char* kDenied[] = {
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "add_key", "request_key", "keyctl",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "vhangup",
    "sethostname", "setdomainname", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "iopl", "ioperm", "open_by_handle_at", "name_to_handle_at", "lookup_dcookie", "nfsservctl",
    "personality", "uselib", "fanotify_init", "mbind", "migrate_pages", "move_pages",
};

constexpr unsigned long kNamespaceFlags[] = {CLONE_NEWUSER, CLONE_NEWNS,  CLONE_NEWPID,
                                             CLONE_NEWNET,  CLONE_NEWIPC, CLONE_NEWUTS,
                                             CLONE_NEWCGROUP};

Result<std::string> build() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return Error{"seccomp_init failed"};
  struct Guard {
    scmp_filter_ctx c;
    ~Guard() { seccomp_release(c); }
  } guard{ctx};
  // Syscalls of other ABIs (i386, x32) would bypass the rules: kill the process instead.
  seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  int rc = 0;
  auto add = [&](uint32_t action, const char* name, unsigned n = 0, scmp_arg_cmp arg = {}) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return;  // not on this architecture
    int r = n ? seccomp_rule_add(ctx, action, nr, 1, arg) : seccomp_rule_add(ctx, action, nr, 0);
    if (r < 0 && rc == 0) rc = r;
  };
  for (const char* name : kDenied) add(SCMP_ACT_ERRNO(EPERM), name);
  // Threads and processes yes, new namespaces no. clone3 passes flags in memory that a filter
  // cannot read, so it reports ENOSYS and libc falls back to clone.
  for (unsigned long f : kNamespaceFlags)
    add(SCMP_ACT_ERRNO(EPERM), "clone", 1, SCMP_A0(SCMP_CMP_MASKED_EQ, f, f));
  add(SCMP_ACT_ERRNO(ENOSYS), "clone3");
  // Sockets: local, IPv4 and IPv6 only (no netlink, packet, raw-link families).
  for (int family = 0; family < AF_MAX; ++family)
    if (family != AF_UNIX && family != AF_INET && family != AF_INET6)
      add(SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family)));
  add(SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, SCMP_A0(SCMP_CMP_GE, AF_MAX));
  // TIOCSTI would let code type into a terminal outside the sandbox.
  add(SCMP_ACT_ERRNO(EPERM), "ioctl", 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, 0x5412u));
  if (rc < 0) return Error{fmt::format("seccomp rule: {}", std::strerror(-rc))};

  int fd = ::memfd_create("wand-seccomp", MFD_CLOEXEC);
  if (fd < 0) return Error{fmt::format("memfd_create: {}", std::strerror(errno))};
  rc = seccomp_export_bpf(ctx, fd);
  std::string bpf;
  if (rc == 0) {
    off_t size = ::lseek(fd, 0, SEEK_END);
    bpf.resize(size);
    if (::pread(fd, bpf.data(), size, 0) != size) rc = -EIO;
  }
  ::close(fd);
  if (rc < 0) return Error{fmt::format("seccomp_export_bpf: {}", std::strerror(-rc))};
  return bpf;
}

}  // namespace

const Result<std::string>& seccomp_program() {
  static const Result<std::string> program = build();
  return program;
}

}  // namespace wand::sandbox
