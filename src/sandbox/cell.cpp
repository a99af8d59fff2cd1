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

#include "common/base64.h"
#include "common/log.h"
#include "sandbox/output.h"
#include "sandbox/seccomp.h"

extern const std::string_view wand_embedded_zygote;
extern const std::string_view wand_embedded_cellserver;

namespace wand::sandbox {
namespace {

using Clock = std::chrono::steady_clock;
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
  // System directories; on merged-/usr systems /bin, /lib... are symlinks and stay symlinks.
  for (const char* p : {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    struct stat st;
    if (::lstat(p, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = ::readlink(p, buf, sizeof buf - 1);
      if (n > 0) plan.push_back({MountStep::symlink, staged(p), std::string(buf, n), ""});
    } else if (S_ISDIR(st.st_mode)) {
      plan.push_back({MountStep::bind_ro, staged(p), p, ""});
    }
  }
  // A few files of /etc that interpreters and compilers read; never the whole of /etc.
  plan.push_back({MountStep::dir, staged("/etc"), "", ""});
  for (const char* p : {"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
                        "/etc/localtime", "/etc/python3", "/etc/python3.11", "/etc/mime.types"}) {
    struct stat st;
    if (::lstat(p, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = ::readlink(p, buf, sizeof buf - 1);
      if (n > 0) plan.push_back({MountStep::symlink, staged(p), std::string(buf, n), ""});
    } else {
      plan.push_back({MountStep::bind_ro, staged(p), p, ""});
    }
  }
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
  if (::setresgid(0, 0, 0) != 0) child_fail(a->err_w, "setresgid");
  if (::setresuid(0, 0, 0) != 0) child_fail(a->err_w, "setresuid");
  if (a->host_root && ::setgroups(0, nullptr) != 0) child_fail(a->err_w, "setgroups");
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
  ::execve(kPython, a->argv, a->envp);
  child_fail(err_fd, "execute /usr/bin/python3");
}

// ------------------------------------------------------------------ wire format

// Mirrors struct wire_request / wire_reply in cellserver.c.
enum : uint32_t { kOpRun = 1, kOpKill = 2, kOpReset = 3 };
enum : uint32_t { kKeepWork = 1, kSession = 2, kExec = 4 };
struct WireRequest {
  uint32_t magic = 0x4e555257u, op = kOpRun, flags = 0, payload_len = 0;
  int64_t rlimits[7] = {-1, -1, -1, -1, -1, -1, -1};  // cpu fsize nofile core memlock nproc data
};
struct WireReply {
  uint32_t magic;
  int32_t exit_code, signal, error_len;
  double cpu_s;
  int64_t maxrss_kb;
};
static_assert(sizeof(WireRequest) == 72 && sizeof(WireReply) == 32);

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= w;
  }
  return true;
}

bool read_all(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= r;
  }
  return true;
}

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == 0) r = fds[0], w = fds[1];
  }
};

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void set_nonblock(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// The exec payload: argv, an empty string, the environment, an empty string.
std::string exec_payload(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  std::string p;
  for (const auto& a : argv) p += a + '\0';
  p += '\0';
  for (const auto& [k, v] : env) p += k + "=" + v + '\0';
  p += '\0';
  return p;
}

// ------------------------------------------------------------------ the working directory, from the host

// Opens `name` under `dir` refusing symlinks, "..", magic links and absolute paths: whatever a
// run left in its working directory, the host never reads or writes outside it.
int open_beneath(int dir, const std::string& name, int flags, mode_t mode = 0) {
  struct open_how how {};
  how.flags = flags | O_CLOEXEC | O_NOFOLLOW;
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, dir, name.c_str(), &how, sizeof how));
}

}  // namespace

// ------------------------------------------------------------------ shared helpers

Result<Json> read_frame(int fd) {
  uint32_t n;
  if (!read_all(fd, reinterpret_cast<char*>(&n), 4)) return Error{"fork-server closed its channel"};
  std::string body(n, '\0');
  if (!read_all(fd, body.data(), n)) return Error{"fork-server closed its channel mid-message"};
  return parse_json(body, "fork-server message");
}

std::map<std::string, std::string> default_env() {
  return {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", "/work"},       {"TMPDIR", "/tmp"},
          {"LANG", "C.UTF-8"},                      {"LC_ALL", "C.UTF-8"},   {"USER", "root"},
          {"PYTHONDONTWRITEBYTECODE", "1"},         {"OPENBLAS_NUM_THREADS", "1"},
          {"OMP_NUM_THREADS", "1"}};
}

long cpu_rlimit(const Limits& l) {
  // In cpu mode this is the limit itself (the kernel SIGKILLs at the hard limit, even a pid 1
  // that ignores SIGXCPU); in wall mode, a backstop per process.
  return static_cast<long>(std::ceil(l.limit_by == LimitBy::cpu ? l.timeout_s : l.timeout_s + 1));
}

Baseline Baseline::take(RunCgroup& cg) {
  Baseline b;
  b.memory = cg.reset_peak();
  b.oom_kills = cg.oom_kills();
  b.cpu = cg.cpu_seconds();
  return b;
}

void fill_status(ExecResult& r, const Json& done, const Limits& limits, bool wall_hit,
                 bool output_hit, const Baseline& before, RunCgroup& cg) {
  r.signal = done.value("signal", 0);
  r.exit_code = r.signal ? -1 : done.value("exit_code", -1);
  double cpu = cg.cpu_seconds();
  // A finished run's own rusage is exact; a live session's blocks are measured on the cgroup.
  r.cpu_s = done.contains("cpu") ? done["cpu"].get<double>() : before.cpu >= 0 && cpu >= 0 ? cpu - before.cpu : 0;
  std::uint64_t peak = cg.peak_bytes();
  r.peak_memory_kb = peak ? (peak - std::min(peak, before.memory)) / 1024 : done.value("maxrss_kb", 0);
  bool oom = cg.oom_kills() > before.oom_kills;
  if (done.contains("setup_error")) {
    r.status = Status::sandbox_error;
    r.error = done["setup_error"].get<std::string>();
  } else if (output_hit) {
    r.status = Status::output_limit;
    r.limit_hit = "output";
  } else if (wall_hit) {
    r.status = Status::timeout;
    r.limit_hit = "wall";
  } else if ((limits.limit_by == LimitBy::cpu && r.cpu_s > limits.timeout_s) ||
             (r.signal == SIGKILL && !oom && r.cpu_s >= cpu_rlimit(limits) - 0.05)) {
    r.status = Status::timeout;
    r.limit_hit = "cpu";
  } else if (oom) {
    r.status = Status::memory_limit;
    r.limit_hit = "memory";
  } else if (r.signal) {
    r.status = Status::killed;
  } else if (r.exit_code != 0) {
    r.status = Status::runtime_error;
  } else {
    r.status = Status::ok;
  }
}

// ------------------------------------------------------------------ Cell

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
  int lib = ::memfd_create("wand-cellserver", MFD_CLOEXEC);
  if (sync.r < 0 || err.r < 0 || diag.r < 0 || lib < 0 ||
      ::write(lib, wand_embedded_cellserver.data(), wand_embedded_cellserver.size()) !=
          static_cast<ssize_t>(wand_embedded_cellserver.size()))
    return Error{fmt::format("pipe/memfd: {}", std::strerror(errno))};

  std::vector<MountStep> plan = build_plan(config.work_mb);
  std::string code(wand_embedded_zygote);
  std::vector<std::string> argv_s = {"python3", "-I", "-B", "-c", code};
  std::vector<std::string> env_s;
  for (auto& [k, v] : default_env()) env_s.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (auto& s : argv_s) argv.push_back(s.data());
  for (auto& s : env_s) envp.push_back(s.data());
  argv.push_back(nullptr);
  envp.push_back(nullptr);

  ChildArgs args{&plan, sync.r, err.w, sv[1], diag.w, lib, ::geteuid() == 0, argv.data(), envp.data()};
  std::vector<char> stack(256 * 1024);
  int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
  pid_t pid = ::clone(child_main, stack.data() + stack.size(), flags | SIGCHLD, &args);
  int clone_errno = errno;
  for (int fd : {sync.r, err.w, diag.w, sv[1], lib}) ::close(fd);
  if (pid < 0) {
    ::close(sync.w), ::close(err.r), ::close(diag.r), ::close(sv[0]);
    return Error{fmt::format("cannot create namespaces (clone): {}{}", std::strerror(clone_errno),
                             clone_errno == EPERM || clone_errno == ENOSPC
                                 ? " — are user namespaces enabled? (see `wand doctor`)"
                                 : "")};
  }
  cell->pid_ = pid;
  cell->ctl_ = sv[0];
  cell->diag_ = diag.r;

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
  auto joined = cell->cgroup_->add(pid);
  (void)!::write(sync.w, "x", 1);
  ::close(sync.w);
  char buf[512];
  ssize_t n = ::read(err.r, buf, sizeof buf);
  ::close(err.r);
  if (!mapped || !joined || n > 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    cell->pid_ = -1;
    if (!mapped) return Error{fmt::format("cannot write uid/gid map of the cell: {}", std::strerror(map_errno))};
    if (!joined) return joined.error();
    return Error{fmt::format("cell set-up failed at {}", std::string(buf, n))};
  }
  cell->alive_ = true;

  Json tmpfs = Json::array();
  std::string size = fmt::format("size={}m,nr_inodes=16384", config.work_mb);
  tmpfs.push_back({{"path", "/work"}, {"options", size + ",mode=0755"}});
  tmpfs.push_back({{"path", "/tmp"}, {"options", size + ",mode=1777"}});
  tmpfs.push_back({{"path", "/dev/shm"}, {"options", size + ",mode=1777"}});
  std::string hex;
  hex.reserve(bpf.value().size() * 2);
  for (unsigned char ch : bpf.value()) hex += fmt::format("{:02x}", ch);
  std::string body = Json{{"seccomp", hex}, {"lib_fd", 4}, {"tmpfs", tmpfs}, {"preload", config.preload}}.dump();
  uint32_t len = body.size();
  if (!write_all(cell->ctl_, reinterpret_cast<char*>(&len), 4) || !write_all(cell->ctl_, body.data(), len)) {
    cell->mark_dead("cannot configure the fork-server");
    return Error{cell->death_};
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

VoidResult Cell::send(uint32_t op, uint32_t flags, const Limits* limits, const std::string& payload,
                      const std::vector<int>& fds) {
  WireRequest h;
  h.op = op;
  h.flags = flags;
  h.payload_len = payload.size();
  if (limits) {
    bool fallback = cgroup_host().mode == CgroupMode::none;  // rlimits stand in for cgroups
    int64_t v[7] = {cpu_rlimit(*limits), static_cast<int64_t>(limits->max_file_mb) << 20,
                    limits->max_open_files, 0, 0, fallback ? limits->max_processes : -1,
                    fallback ? static_cast<int64_t>(limits->memory_mb) << 20 : -1};
    std::memcpy(h.rlimits, v, sizeof v);
  }
  // The descriptors travel with the header; the payload follows as plain stream data.
  struct msghdr mh {};
  struct iovec iov {&h, sizeof h};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 8)];
  if (!fds.empty()) {
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    struct cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t w = ::sendmsg(ctl_, &mh, MSG_NOSIGNAL);
  if (w < 0 || !write_all(ctl_, reinterpret_cast<char*>(&h) + w, sizeof h - w) ||
      !write_all(ctl_, payload.data(), payload.size())) {
    mark_dead(fmt::format("fork-server channel broken: {}", std::strerror(errno)));
    return Error{death_};
  }
  return ok_status();
}

std::optional<Json> Cell::read_reply() {
  WireReply rep;
  if (!read_all(ctl_, reinterpret_cast<char*>(&rep), sizeof rep) || rep.magic != 0x4e4f4457u) {
    mark_dead("fork-server closed its channel");
    return std::nullopt;
  }
  std::string err(std::max(0, rep.error_len), '\0');
  if (!err.empty() && !read_all(ctl_, err.data(), err.size())) {
    mark_dead("fork-server closed its channel mid-reply");
    return std::nullopt;
  }
  Json done = {{"cpu", rep.cpu_s}, {"maxrss_kb", rep.maxrss_kb}};
  if (rep.signal) done["signal"] = rep.signal;
  else done["exit_code"] = rep.exit_code;
  if (!err.empty()) done["setup_error"] = err;
  return done;
}

void Cell::reset_work() {
  if (alive_ && send(kOpReset, 0, nullptr, "", {}) && !poll_done(5)) mark_dead("fork-server did not reset");
}

std::optional<Json> Cell::poll_done(double wait_s) {
  struct pollfd p {ctl_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait_s * 1000)) <= 0) return std::nullopt;
  return read_reply();
}

Json Cell::kill_and_wait(double wait_s) {
  if (!alive_) return Json::object();
  (void)send(kOpKill, 0, nullptr, "", {});
  if (auto done = poll_done(wait_s)) return *done;
  mark_dead("fork-server did not report a killed run");
  return Json::object();
}

VoidResult Cell::write_inputs(const std::map<std::string, std::string>& files) {
  if (files.empty()) return ok_status();
  int dir = ::open(fmt::format("/proc/{}/root/work", pid_).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return Error{fmt::format("cannot reach the cell's working directory: {}", std::strerror(errno))};
  // Files are created as the cell's root: the cell's tmpfs takes no owner its namespace cannot
  // map, and the program then owns its inputs. setfsuid changes this thread only.
  uid_t old_uid = ::setfsuid(owner_uid_);
  gid_t old_gid = ::setfsgid(owner_gid_);
  std::string failure;
  for (const auto& [name, data] : files) {
    for (std::size_t slash = name.find('/'); slash != std::string::npos; slash = name.find('/', slash + 1))
      ::mkdirat(dir, name.substr(0, slash).c_str(), 0755);  // parent directories, one at a time
    bool exec = name.size() > 3 && name.compare(name.size() - 3, 3, ".sh") == 0;
    int fd = open_beneath(dir, name, O_WRONLY | O_CREAT | O_TRUNC, exec ? 0755 : 0644);
    bool ok = fd >= 0 && ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
    if (!ok && failure.empty()) failure = fmt::format("cannot write input file {}: {}", name, std::strerror(errno));
    if (fd >= 0) ::close(fd);
  }
  ::setfsuid(old_uid);
  ::setfsgid(old_gid);
  ::close(dir);
  if (!failure.empty()) return Error{failure};
  return ok_status();
}

std::map<std::string, CollectedFile> Cell::collect(const std::vector<std::string>& names, std::size_t cap) {
  std::map<std::string, CollectedFile> out;
  int dir = ::open(fmt::format("/proc/{}/root/work", pid_).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  for (const auto& name : names) {
    CollectedFile& f = out[name];
    int fd = dir < 0 ? -1 : open_beneath(dir, name, O_RDONLY | O_NONBLOCK);
    struct stat st;
    if (fd < 0) {
      f.error = errno == ELOOP || errno == EXDEV ? "refused: a symlink or a path leaving the working directory"
                                                 : std::strerror(errno);
    } else if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      f.error = "not a regular file";
    } else {
      f.data.resize(cap + 1);
      ssize_t n = ::read(fd, f.data.data(), cap + 1);
      f.data.resize(std::max<ssize_t>(n, 0));
      if (f.data.size() > cap) f.data.resize(cap), f.truncated = true;
    }
    if (fd >= 0) ::close(fd);
  }
  if (dir >= 0) ::close(dir);
  return out;
}

ExecResult Cell::execute(const Step& step) {
  ExecResult r;
  const Limits& L = step.limits;
  if (!alive_) {
    r.error = death_;
    return r;
  }
  // The fork-server lives in the run cgroup, so the run's share is what grows past it.
  Baseline before = Baseline::take(*cgroup_);
  if (auto s = cgroup_->set_limits(before.memory + (static_cast<std::uint64_t>(L.memory_mb) << 20),
                                   L.max_processes + 1);
      !s) {
    r.error = s.error().message;
    return r;
  }
  if (auto w = write_inputs(step.files); !w) {
    r.error = w.error().message;
    reset_work();
    return r;
  }
  auto env = default_env();
  for (auto& [k, v] : step.env) env[k] = v;
  std::string payload;
  uint32_t flags = step.keep_work || !step.collect.empty() ? kKeepWork : 0;
  if (step.argv.empty()) {
    Json req = {{"code", step.code}, {"args", step.args}};
    if (!step.env.empty()) req["env"] = env;  // the fork-server already has the default one
    payload = req.dump(-1, ' ', false, Json::error_handler_t::replace);
  } else {
    std::vector<std::string> argv = step.argv;
    argv.insert(argv.end(), step.args.begin(), step.args.end());
    payload = exec_payload(argv, env);
    flags |= kExec;
  }

  Pipe in, out, err;
  if (in.r < 0 || out.r < 0 || err.r < 0) {
    r.error = fmt::format("pipe: {}", std::strerror(errno));
    return r;
  }
  auto t0 = Clock::now();
  VoidResult sent = send(kOpRun, flags, &L, payload, {in.r, out.w, err.w});
  close_fd(in.r);
  close_fd(out.w);
  close_fd(err.w);
  if (!sent) {
    close_fd(in.w), close_fd(out.r), close_fd(err.r);
    r.error = sent.error().message;
    return r;
  }
  set_nonblock(in.w);
  set_nonblock(out.r);
  set_nonblock(err.r);
  std::size_t in_off = 0;
  if (step.stdin_data.empty()) close_fd(in.w);

  Capture out_cap(L.max_output_bytes), err_cap(L.max_output_bytes);
  double wall_limit = L.limit_by == LimitBy::wall ? L.timeout_s : 2 * L.timeout_s + 1;
  auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wall_limit));
  std::optional<Json> done;
  Clock::time_point t_end{}, kill_deadline{};
  bool wall_hit = false, output_hit = false, kill_sent = false;
  auto request_kill = [&] {
    if (kill_sent) return;
    kill_sent = true;
    kill_deadline = Clock::now() + std::chrono::seconds(5);
    (void)send(kOpKill, 0, nullptr, "", {});
  };

  while (alive_ && (!done || out.r >= 0 || err.r >= 0)) {
    struct pollfd p[4];
    int np = 0, i_out = -1, i_err = -1, i_in = -1, i_ctl = -1;
    if (out.r >= 0) i_out = np, p[np++] = {out.r, POLLIN, 0};
    if (err.r >= 0) i_err = np, p[np++] = {err.r, POLLIN, 0};
    if (in.w >= 0) i_in = np, p[np++] = {in.w, POLLOUT, 0};
    if (!done) i_ctl = np, p[np++] = {ctl_, POLLIN, 0};
    auto until = done ? t_end + std::chrono::seconds(2) : kill_sent ? kill_deadline : deadline;
    int wait_ms = std::max<long>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count() + 1);
    int rc = ::poll(p, np, wait_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0 && Clock::now() >= until) {
      if (done) break;  // output pipes held open past the run: nothing more is coming
      if (kill_sent) {
        mark_dead("fork-server did not stop a run");
        break;
      }
      wall_hit = true;
      request_kill();
      continue;
    }
    if (i_out >= 0 && p[i_out].revents && !out_cap.drain(out.r)) close_fd(out.r);
    if (i_err >= 0 && p[i_err].revents && !err_cap.drain(err.r)) close_fd(err.r);
    if ((out_cap.truncated || err_cap.truncated) && !output_hit && !done) {
      output_hit = true;
      request_kill();
    }
    if (i_in >= 0 && p[i_in].revents) {
      ssize_t w = ::write(in.w, step.stdin_data.data() + in_off, step.stdin_data.size() - in_off);
      if (w > 0) in_off += w;
      if ((w < 0 && errno != EAGAIN) || in_off == step.stdin_data.size()) close_fd(in.w);
    }
    if (i_ctl >= 0 && p[i_ctl].revents) {
      done = read_reply();
      if (!done) break;
      t_end = Clock::now();
      close_fd(in.w);
    }
  }
  close_fd(in.w), close_fd(out.r), close_fd(err.r);
  std::string err_end = err_cap.last();
  r.stdout_data = std::move(out_cap.data);
  r.stderr_data = std::move(err_cap.data);
  r.stdout_truncated = out_cap.truncated;
  r.stderr_truncated = err_cap.truncated;
  r.wall_s = std::chrono::duration<double>((done ? t_end : Clock::now()) - t0).count();
  if (!done) {
    r.status = Status::sandbox_error;
    r.error = death_.empty() ? "the run ended without a report" : death_;
    return r;
  }
  fill_status(r, *done, L, wall_hit, output_hit, before, *cgroup_);
  if (step.argv.empty() && r.exit_code != 0 && r.status != Status::sandbox_error) {
    r.exception = parse_python_traceback(err_end);
    if (r.status == Status::runtime_error && r.exception && r.exception->type == "MemoryError") {
      r.status = Status::memory_limit;
      r.limit_hit = "memory";
    }
  }
  if (!step.collect.empty()) {
    r.files = collect(step.collect, 1 << 20);
    if (!step.keep_work) reset_work();
  }
  return r;
}

Result<Cell::SessionPipes> Cell::start_session(const Limits& limits) {
  if (!alive_) return Error{death_};
  Baseline before = Baseline::take(*cgroup_);
  if (auto s = cgroup_->set_limits(before.memory + (static_cast<std::uint64_t>(limits.memory_mb) << 20),
                                   limits.max_processes + 1);
      !s)
    return s.error();
  Pipe cmd, res, out, err;
  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (cmd.r < 0 || res.r < 0 || out.r < 0 || err.r < 0 || null < 0)
    return Error{fmt::format("pipe: {}", std::strerror(errno))};
  Limits session = limits;
  session.limit_by = LimitBy::wall;
  session.timeout_s = 365 * 24 * 3600.0;  // per-block deadlines are the host's
  std::string payload = Json{{"session", true}}.dump();
  VoidResult sent = send(kOpRun, kSession, &session, payload, {null, out.w, err.w, cmd.r, res.w});
  ::close(null);
  close_fd(out.w), close_fd(err.w), close_fd(cmd.r), close_fd(res.w);
  if (!sent) return sent.error();
  set_nonblock(res.r);
  set_nonblock(out.r);
  set_nonblock(err.r);
  return SessionPipes{cmd.w, res.r, out.r, err.r};
}

}  // namespace wand::sandbox
