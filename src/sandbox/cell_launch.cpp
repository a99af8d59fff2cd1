// Assembling a cell: the mount plan, the clone child that builds the namespaces and execs the
// Python fork-server, and Cell::start, which configures it. The run half is in cell.cpp.
#include "sandbox/cell.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <grp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>
#include <utility>

#include "common/base64.h"
#include "common/log.h"
#include "sandbox/io.h"
#include "sandbox/output.h"
#include "sandbox/seccomp.h"

extern const std::string_view wand_embedded_zygote;
extern const std::string_view wand_embedded_cellserver;
extern const std::string_view wand_embedded_cellexec;

namespace wand::sandbox {
namespace {

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kStage = "/tmp";  // the new root is assembled here, in the cell's mount ns

// ------------------------------------------------------------------ the mount plan

// One step of assembling the cell's root file system. Built by the parent (which may
// allocate); executed by the clone child (which must not: the parent is multi-threaded).
struct MountStep {
  enum Kind { dir, bind_ro, bind_dev, tmpfs, proc, symlink, file } kind;
  std::string target;  // under kStage
  std::string source;  // bind source, symlink target, or file contents
  std::string data;    // tmpfs options
};

std::vector<MountStep> build_plan(std::size_t work_mb) {
  std::vector<MountStep> plan;
  auto staged = [](const std::string& p) { return std::string(kStage) + p; };
  // A host path appears as it is: a symlink stays a symlink (on merged-/usr systems /bin, /lib...
  // are links into /usr), anything else is bound read-only. Missing paths are skipped.
  auto mirror = [&](const char* p) {
    struct stat st;
    if (::lstat(p, &st) != 0) return;
    if (!S_ISLNK(st.st_mode)) {
      plan.push_back({MountStep::bind_ro, staged(p), p, ""});
      return;
    }
    char buf[4096];
    ssize_t n = ::readlink(p, buf, sizeof buf - 1);
    if (n > 0) plan.push_back({MountStep::symlink, staged(p), std::string(buf, n), ""});
  };
  for (const char* p : {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) mirror(p);
  // A few files of /etc that interpreters and compilers read; never the whole of /etc.
  plan.push_back({MountStep::dir, staged("/etc"), "", ""});
  for (const char* p : {"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
                        "/etc/localtime", "/etc/python3", "/etc/python3.11", "/etc/mime.types"})
    mirror(p);
  plan.push_back({MountStep::file, staged("/etc/passwd"), "root:x:0:0:sandbox:/work:/bin/sh\n", ""});
  plan.push_back({MountStep::file, staged("/etc/group"), "root:x:0:\n", ""});
  plan.push_back({MountStep::file, staged("/etc/hostname"), "wand\n", ""});
  plan.push_back({MountStep::file, staged("/etc/hosts"), "127.0.0.1 localhost wand\n::1 localhost\n", ""});
  plan.push_back({MountStep::file, staged("/etc/nsswitch.conf"),
                  "passwd: files\ngroup: files\nhosts: files\n", ""});
  // /dev: a few harmless devices, bound from the host (a user namespace cannot mknod).
  plan.push_back({MountStep::tmpfs, staged("/dev"), "", "size=64k,nr_inodes=64,mode=0755"});
  for (const char* d : {"null", "zero", "full", "random", "urandom"})
    plan.push_back({MountStep::bind_dev, staged(std::string("/dev/") + d), std::string("/dev/") + d, ""});
  plan.push_back({MountStep::symlink, staged("/dev/fd"), "/proc/self/fd", ""});
  plan.push_back({MountStep::symlink, staged("/dev/stdin"), "/proc/self/fd/0", ""});
  plan.push_back({MountStep::symlink, staged("/dev/stdout"), "/proc/self/fd/1", ""});
  plan.push_back({MountStep::symlink, staged("/dev/stderr"), "/proc/self/fd/2", ""});
  std::string size = fmt::format("size={}m,nr_inodes=16384", work_mb);
  plan.push_back({MountStep::tmpfs, staged("/dev/shm"), "", size + ",mode=1777"});
  plan.push_back({MountStep::proc, staged("/proc"), "", ""});
  plan.push_back({MountStep::tmpfs, staged("/work"), "", size + ",mode=0755"});
  plan.push_back({MountStep::tmpfs, staged("/tmp"), "", size + ",mode=1777"});
  return plan;
}

// ------------------------------------------------------------------ the clone child

struct ChildArgs {
  const std::vector<MountStep>* plan;
  int sync_r, err_w, ctl, diag_w;
  int lib_fd;  // the fork-server's C loop (a memfd), lands on 4
  bool host_root;
  bool fork_server;  // exec the Python zygote; else the C loop itself, from lib_fd
  char* const* argv;
  char* const* envp;
};

// Reports which step failed and exits. Only async-signal-safe calls from here on.
[[noreturn]] void child_fail(int err_w, const char* what) {
  int e = errno;
  char buf[512];
  size_t n = 0;
  for (const char* p = what; *p && n < 300; ++p) buf[n++] = *p;
  buf[n++] = ':';
  buf[n++] = ' ';
  for (const char* p = strerrordesc_np(e); p && *p && n < sizeof buf; ++p) buf[n++] = *p;
  (void)!::write(err_w, buf, n);
  _exit(1);
}

bool make_file(const char* path, const std::string& content) {
  int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = content.empty() || ::write(fd, content.data(), content.size()) == ssize_t(content.size());
  ::close(fd);
  return ok;
}

int child_main(void* p) {
  auto* a = static_cast<ChildArgs*>(p);
  char c;
  if (::read(a->sync_r, &c, 1) != 1) _exit(1);  // parent has written our uid/gid maps
  // Raw syscalls: glibc's wrappers apply set*id to every thread it knows of, and this child
  // inherited the parent's list of threads without the threads; it would wait on them forever.
  if (::syscall(SYS_setresgid, 0, 0, 0) != 0) child_fail(a->err_w, "setresgid");
  if (::syscall(SYS_setresuid, 0, 0, 0) != 0) child_fail(a->err_w, "setresuid");
  if (a->host_root && ::syscall(SYS_setgroups, 0, nullptr) != 0) child_fail(a->err_w, "setgroups");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    child_fail(a->err_w, "make mounts private");
  if (::mount("tmpfs", kStage, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=256,mode=0755") != 0)
    child_fail(a->err_w, "mount root tmpfs");
  for (const MountStep& s : *a->plan) {
    const char* t = s.target.c_str();
    struct stat st;
    switch (s.kind) {
      case MountStep::dir:
        if (::mkdir(t, 0755) != 0 && errno != EEXIST) child_fail(a->err_w, t);
        break;
      case MountStep::bind_ro:
      case MountStep::bind_dev:
        if (::stat(s.source.c_str(), &st) != 0) child_fail(a->err_w, s.source.c_str());
        if (S_ISDIR(st.st_mode) ? ::mkdir(t, 0755) != 0 : !make_file(t, "")) child_fail(a->err_w, t);
        if (::mount(s.source.c_str(), t, nullptr, MS_BIND | MS_REC, nullptr) != 0)
          child_fail(a->err_w, t);
        if (s.kind == MountStep::bind_ro &&
            ::mount(nullptr, t, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
                    nullptr) != 0)
          child_fail(a->err_w, t);
        break;
      case MountStep::tmpfs:
        if (::mkdir(t, 0755) != 0 && errno != EEXIST) child_fail(a->err_w, t);
        if (::mount("tmpfs", t, "tmpfs", MS_NOSUID | MS_NODEV, s.data.c_str()) != 0)
          child_fail(a->err_w, t);
        break;
      case MountStep::proc:
        if (::mkdir(t, 0755) != 0) child_fail(a->err_w, t);
        if (::mount("proc", t, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
          child_fail(a->err_w, "mount /proc");
        break;
      case MountStep::symlink:
        if (::symlink(s.source.c_str(), t) != 0) child_fail(a->err_w, t);
        break;
      case MountStep::file:
        if (!make_file(t, s.source)) child_fail(a->err_w, t);
        break;
    }
  }
  // Swap roots; the host's tree is detached and gone from this namespace.
  if (::chdir(kStage) != 0) child_fail(a->err_w, "chdir new root");
  if (::syscall(SYS_pivot_root, ".", ".") != 0) child_fail(a->err_w, "pivot_root");
  if (::umount2(".", MNT_DETACH) != 0) child_fail(a->err_w, "detach old root");
  if (::chdir("/") != 0) child_fail(a->err_w, "chdir /");
  if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0)
    child_fail(a->err_w, "remount root read-only");
  if (::sethostname("wand", 4) != 0) child_fail(a->err_w, "sethostname");
  // Loopback up: code may talk to itself, and to nothing else.
  if (int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); s >= 0) {
    struct ifreq ifr {};
    std::memcpy(ifr.ifr_name, "lo", 3);
    if (::ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
      ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
      ::ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    ::close(s);
  }
  // Descriptors: 0,1 /dev/null, 2 diagnostics, 3 control, 4 the C loop, 5 the error pipe.
  // Move everything high first so that no dup2 clobbers a descriptor still to be moved.
  int hi_ctl = ::fcntl(a->ctl, F_DUPFD_CLOEXEC, 100);
  int hi_diag = ::fcntl(a->diag_w, F_DUPFD_CLOEXEC, 100);
  int hi_err = ::fcntl(a->err_w, F_DUPFD_CLOEXEC, 100);
  int hi_lib = ::fcntl(a->lib_fd, F_DUPFD_CLOEXEC, 100);
  int null = ::open("/dev/null", O_RDWR);
  if (null < 0 || hi_ctl < 0 || hi_diag < 0 || hi_err < 0 || hi_lib < 0) child_fail(a->err_w, "descriptors");
  const int err_fd = 5;
  if (::dup2(null, 0) < 0 || ::dup2(null, 1) < 0 || ::dup2(hi_diag, 2) < 0 || ::dup2(hi_ctl, 3) < 0 ||
      ::dup2(hi_lib, 4) < 0 || ::dup3(hi_err, err_fd, O_CLOEXEC) < 0)
    child_fail(hi_err, "dup2");
  ::syscall(SYS_close_range, err_fd + 1, ~0U, 0);
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  if (!a->fork_server) {
    ::syscall(SYS_execveat, 4, "", a->argv, a->envp, AT_EMPTY_PATH);
    child_fail(err_fd, "execute the cell's C loop");
  }
  ::execve(kPython, a->argv, a->envp);
  child_fail(err_fd, "execute /usr/bin/python3");
}

}  // namespace

Result<std::unique_ptr<Cell>> Cell::start(const CellConfig& config) {
  const auto& bpf = seccomp_program();
  if (!bpf) return Error{"seccomp: " + bpf.error().message};
  std::unique_ptr<Cell> cell(new Cell);
  auto cg = RunCgroup::create(cgroup_host(), config.name);
  if (!cg) return cg.error();
  cell->cgroup_ = std::move(cg.value());

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return Error{fmt::format("socketpair: {}", std::strerror(errno))};
  Pipe sync, err, diag;
  // The C loop: a library the zygote loads, or, without a fork-server, the cell's program.
  std::string_view loop = config.fork_server ? wand_embedded_cellserver : wand_embedded_cellexec;
  int lib = ::memfd_create("wand-cellserver", MFD_CLOEXEC);
  if (sync.r < 0 || err.r < 0 || diag.r < 0 || lib < 0 ||
      ::write(lib, loop.data(), loop.size()) != static_cast<ssize_t>(loop.size()))
    return Error{fmt::format("pipe/memfd: {}", std::strerror(errno))};

  std::vector<MountStep> plan = build_plan(config.work_mb);
  std::string hex;
  hex.reserve(bpf.value().size() * 2);
  for (unsigned char ch : bpf.value()) hex += fmt::format("{:02x}", ch);
  std::string size = fmt::format("size={}m,nr_inodes=16384", config.work_mb);
  std::vector<std::pair<std::string, std::string>> tmpfs = {
      {"/work", size + ",mode=0755"}, {"/tmp", size + ",mode=1777"}, {"/dev/shm", size + ",mode=1777"}};
  std::vector<std::string> argv_s;
  if (config.fork_server) {
    argv_s = {"python3", "-I", "-B", "-c", std::string(wand_embedded_zygote)};
  } else {  // the C loop takes its configuration as arguments (see cellmain.c)
    argv_s = {"wand-cell", hex};
    for (auto& [path, options] : tmpfs) argv_s.insert(argv_s.end(), {path, options});
  }
  std::vector<std::string> env_s;
  for (auto& [k, v] : default_env()) env_s.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (auto& s : argv_s) argv.push_back(s.data());
  for (auto& s : env_s) envp.push_back(s.data());
  argv.push_back(nullptr);
  envp.push_back(nullptr);

  ChildArgs args{&plan,   sync.r, err.w, sv[1], diag.w, lib, ::geteuid() == 0, config.fork_server,
                 argv.data(), envp.data()};
  std::vector<char> stack(256 * 1024);
  int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
  pid_t pid = ::clone(child_main, stack.data() + stack.size(), flags | SIGCHLD, &args);
  int clone_errno = errno;
  close_fd(sync.r), close_fd(err.w), close_fd(diag.w), ::close(sv[1]), ::close(lib);
  if (pid < 0) {
    ::close(sv[0]);
    return Error{fmt::format("cannot create namespaces (clone): {}{}", std::strerror(clone_errno),
                             clone_errno == EPERM || clone_errno == ENOSPC
                                 ? " — are user namespaces enabled? (see `wand doctor`)"
                                 : "")};
  }
  cell->pid_ = pid;
  cell->ctl_ = sv[0];
  cell->diag_ = std::exchange(diag.r, -1);

  // As root, the cell's root maps to an unprivileged host user (nobody): even out of every
  // other fence, it would own nothing. Otherwise it maps to the caller's own ids.
  auto write_proc = [&](const char* file, const std::string& v) {
    int fd = ::open(fmt::format("/proc/{}/{}", pid, file).c_str(), O_WRONLY | O_CLOEXEC);
    bool ok = fd >= 0 && ::write(fd, v.data(), v.size()) == ssize_t(v.size());
    if (fd >= 0) ::close(fd);
    return ok;
  };
  bool mapped;
  if (::geteuid() == 0) {
    cell->owner_uid_ = cell->owner_gid_ = 65534;
    mapped = write_proc("uid_map", "0 65534 1\n") && write_proc("gid_map", "0 65534 1\n");
  } else {
    cell->owner_uid_ = ::geteuid(), cell->owner_gid_ = ::getegid();
    mapped = write_proc("setgroups", "deny") &&
             write_proc("uid_map", fmt::format("0 {} 1\n", ::geteuid())) &&
             write_proc("gid_map", fmt::format("0 {} 1\n", ::getegid()));
  }
  int map_errno = errno;
  // The child builds its file system while it joins the run cgroup: on cgroup v1 the first
  // join waits for an RCU grace period (about 10 ms on a VM), and the set-up is trusted code.
  // Every run is forked after Cell::start returns, so inside the cgroup.
  (void)!::write(sync.w, "x", 1);
  close_fd(sync.w);
  auto joined = cell->cgroup_->add(pid);
  char buf[512];
  ssize_t n = ::read(err.r, buf, sizeof buf);
  close_fd(err.r);
  if (!mapped || !joined || n > 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    cell->pid_ = -1;
    if (!mapped) return Error{fmt::format("cannot write uid/gid map of the cell: {}", std::strerror(map_errno))};
    if (!joined) return joined.error();
    return Error{fmt::format("cell set-up failed at {}", std::string(buf, n))};
  }
  cell->alive_ = true;
  cell->fork_server_ = config.fork_server;

  if (config.fork_server) {
    Json mounts = Json::array();
    for (auto& [path, options] : tmpfs) mounts.push_back({{"path", path}, {"options", options}});
    std::string body = Json{{"seccomp", hex}, {"lib_fd", 4}, {"tmpfs", mounts}, {"preload", config.preload},
                            {"warm", config.warm_stdlib}}
                           .dump();
    uint32_t len = body.size();
    if (!write_all(cell->ctl_, reinterpret_cast<char*>(&len), 4) || !write_all(cell->ctl_, body.data(), len)) {
      cell->mark_dead("cannot configure the fork-server");
      return Error{cell->death_};
    }
  }
  auto ready = read_frame(cell->ctl_);
  if (!ready) {
    cell->mark_dead("fork-server did not start");
    return Error{cell->death_};
  }
  cell->ready_ = ready.value();
  Json preload_errors = cell->ready_.value("preload_errors", Json::object());
  for (auto& [name, why] : preload_errors.items()) log::warn("preload {}: {}", name, why.get<std::string>());
  return cell;
}

Cell::~Cell() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  close_fd(ctl_);
  close_fd(diag_);
}

void Cell::mark_dead(const std::string& why) {
  if (!alive_ && !death_.empty()) return;
  alive_ = false;
  std::string diag;
  if (diag_ >= 0) {
    set_nonblock(diag_);
    char buf[4096];
    ssize_t n = ::read(diag_, buf, sizeof buf);
    if (n > 0) diag.assign(buf, n);
  }
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  death_ = diag.empty() ? why : why + ": " + diag;
  log::warn("cell {}", death_);
}

}  // namespace wand::sandbox
