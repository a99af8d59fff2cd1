// Running in a cell: the wire protocol to the fork-server's C loop, inputs and outputs through
// /proc/<pid>/root, one execution's poll loop, and what its outcome means (fill_status).
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
#include <sstream>
#include <utility>
#include <thread>

#include "common/base64.h"
#include "common/log.h"
#include "sandbox/io.h"
#include "sandbox/output.h"
#include "sandbox/seccomp.h"
#include "sandbox/service_port.h"

namespace wand::sandbox {
namespace {

using Clock = std::chrono::steady_clock;

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

// A small file of /proc, read whole; empty (errno set) when it cannot be read.
std::string slurp_small(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  int e = errno;
  ::close(fd);
  errno = n < 0 ? e : 0;
  return n > 0 ? std::string(buf, n) : std::string();
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
  // The soft RLIMIT_CPU of every process of a run (the hard one is a second higher, see
  // cellserver.c): at it the kernel sends SIGXCPU, which ends the process and says which limit
  // fired. It counts per process, which is why the host's Watch enforces limit_by cpu itself (to
  // fractions of a second, on the whole run). With wall, a backstop past the deadline.
  return static_cast<long>(std::ceil(l.limit_by == LimitBy::cpu ? l.timeout_s : l.timeout_s + 1));
}

double wall_limit(const Limits& l) { return l.limit_by == LimitBy::wall ? l.timeout_s : 2 * l.timeout_s + 1; }

namespace {
// How long until a run with `cpu_left` seconds of CPU to go could have used them: CPU time
// grows at most as fast as wall time on every core. Never under 2 ms, so that a run near its
// limit does not keep the host busy.
Watch::Clock::duration cpu_interval(double cpu_left) {
  static const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  return std::chrono::duration_cast<Watch::Clock::duration>(
      std::chrono::duration<double>(std::max(0.002, cpu_left / cores)));
}
}  // namespace

Watch::Watch(const Cell& cell, const Limits& limits, const Baseline& before)
    : cell_(cell), cpu_before_(before.cpu), cpu_limit_(limits.limit_by == LimitBy::cpu ? limits.timeout_s : 0) {
  auto now = Clock::now();
  deadline_ = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wall_limit(limits)));
  if (cpu_before_ < 0) cpu_limit_ = 0;  // CPU cannot be read here: RLIMIT_CPU alone limits it
  next_ = cpu_limit_ > 0 ? std::min(deadline_, now + cpu_interval(cpu_limit_)) : deadline_;
}

bool Watch::expired() {
  auto now = Clock::now();
  // CPU first: a run that has used its CPU time by the deadline was stopped by the CPU limit.
  if (cpu_limit_ > 0 && now >= next_) {
    double used = cell_.cpu_seconds() - cpu_before_;
    if (used >= cpu_limit_) {
      fire("cpu");
      return true;
    }
    next_ = std::min(deadline_, now + cpu_interval(cpu_limit_ - used));
  }
  if (now >= deadline_) {
    fire("wall");
    return true;
  }
  return false;
}

void fill_status(ExecResult& r, const Json& done, const std::string& fired, const Baseline& before, Cell& cell) {
  r.signal = done.value("signal", 0);
  r.exit_code = r.signal ? -1 : done.value("exit_code", -1);
  // A finished run's own rusage is exact; a live session's blocks are measured on the cell.
  if (done.contains("cpu")) {
    r.cpu_s = done["cpu"].get<double>();
  } else if (double cpu = cell.cpu_seconds(); before.cpu >= 0 && cpu >= 0) {
    r.cpu_s = std::max(0.0, cpu - before.cpu);
  }
  RunCgroup& cg = cell.cgroup();
  std::uint64_t peak = cg.peak_bytes();
  r.peak_memory_kb = peak ? (peak - std::min(peak, before.memory)) / 1024 : done.value("maxrss_kb", 0);
  if (done.contains("setup_error")) {
    r.status = Status::sandbox_error;
    r.error = done["setup_error"].get<std::string>();
  } else if (!fired.empty()) {
    r.status = fired == "output" ? Status::output_limit : Status::timeout;
    r.limit_hit = fired;
  } else if (cg.oom_kills() > before.oom_kills) {  // the kernel's count: the memory limit fired
    r.status = Status::memory_limit;
    r.limit_hit = "memory";
  } else if (r.signal == SIGXCPU) {  // only RLIMIT_CPU sends it (or the program, to itself)
    r.status = Status::timeout;
    r.limit_hit = "cpu";
  } else if (r.signal) {
    r.status = Status::killed;
  } else if (r.exit_code != 0) {
    r.status = Status::runtime_error;
  } else {
    r.status = Status::ok;
  }
}

void add_python_exception(ExecResult& r, std::string_view stderr_end) {
  if (r.exit_code == 0 || r.status == Status::sandbox_error) return;
  r.exception = parse_python_traceback(stderr_end);
  // Python raises MemoryError when an allocation fails under the limit rather than being killed.
  if (r.status == Status::runtime_error && r.exception && r.exception->type == "MemoryError") {
    r.status = Status::memory_limit;
    r.limit_hit = "memory";
  }
}

// ------------------------------------------------------------------ running in a cell

VoidResult Cell::send(uint32_t op, uint32_t flags, const Limits* limits, const std::string& payload,
                      const std::vector<int>& fds) {
  WireRequest h;
  h.op = op;
  h.flags = flags;
  h.payload_len = payload.size();
  if (limits) {
    bool fallback = cgroup_host().mode == CgroupMode::none;  // rlimits stand in for cgroups
    int64_t v[7] = {cpu_rlimit(*limits), static_cast<int64_t>(limits->max_file_mb) << 20,
                    limits->max_open_files, 0, 0, fallback ? limits->max_processes + 1 : -1,  // + the run's init
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

double Cell::cpu_seconds() const {
  if (double cg = cgroup_->cpu_seconds(); cg >= 0) return cg;
  // No per-cgroup CPU accounting: the run's main process and its init, the fork-server's children.
  std::string children = slurp_small(fmt::format("/proc/{}/task/{}/children", pid_, pid_));
  if (children.empty()) return errno == ENOENT && pid_ > 0 ? -1 : 0;
  double seconds = 0;
  std::istringstream pids(children);
  for (long pid; pids >> pid;) {
    std::string stat = slurp_small(fmt::format("/proc/{}/schedstat", pid));
    if (!stat.empty()) seconds += std::strtoull(stat.c_str(), nullptr, 10) / 1e9;  // nanoseconds on a CPU
  }
  return seconds;
}

Baseline Cell::baseline() {
  Baseline b;
  b.memory = cgroup_->reset_peak();
  b.oom_kills = cgroup_->oom_kills();
  b.cpu = cpu_seconds();
  return b;
}

Result<Baseline> Cell::limit(const Limits& l) {
  // The fork-server lives in the run cgroup: the run may grow by its limit past what is there
  // now, and start its processes beside the fork-server's one and the run's init (its pid 1).
  Baseline before = baseline();
  if (auto s = cgroup_->set_limits(before.memory + (static_cast<std::uint64_t>(l.memory_mb) << 20),
                                   l.max_processes + 2);
      !s)
    return s.error();
  return before;
}

ExecResult Cell::execute(const Step& step) {
  ExecResult r;
  const Limits& L = step.limits;
  if (!alive_) {
    r.error = death_;
    return r;
  }
  auto limited = limit(L);
  if (!limited) {
    r.error = limited.error().message;
    return r;
  }
  const Baseline& before = limited.value();
  const bool python = step.argv.empty();
  // Without a fork-server, Python code is a file exec'd as `python3 main.py`, run as the zygote
  // runs it: -E -s (what -I gives the zygote) and -B; /work, the script's directory, comes first
  // on sys.path.
  const bool python_exec = python && !fork_server_;
  std::map<std::string, std::string> with_main;
  if (python_exec) {
    with_main = step.files;
    with_main["main.py"] = step.code;
  }
  if (auto w = write_inputs(python_exec ? with_main : step.files); !w) {
    r.error = w.error().message;
    reset_work();
    return r;
  }
  // The service socket comes after stdio and the channel; the program finds it by its number.
  std::unique_ptr<ServicePort> port;
  if (step.service) {
    auto opened = ServicePort::open(step.service);
    if (!opened) {
      r.error = opened.error().message;
      return r;
    }
    port = std::move(opened.value());
  }
  auto env = default_env();
  for (auto& [k, v] : step.env) env[k] = v;
  if (port) env["WAND_SERVICE_FD"] = std::to_string(step.channel ? 4 : 3);
  std::string payload;
  uint32_t flags = step.keep_work || !step.collect.empty() ? uint32_t{kKeepWork} : 0u;
  if (python && !python_exec) {
    Json req = {{"code", step.code}, {"args", step.args}};
    if (!step.env.empty() || port) req["env"] = env;  // the fork-server already has the default one
    payload = dump_text(req);
  } else {
    std::vector<std::string> argv =
        python_exec ? std::vector<std::string>{"/usr/bin/python3", "-E", "-s", "-B", "main.py"} : step.argv;
    argv.insert(argv.end(), step.args.begin(), step.args.end());
    payload = exec_payload(argv, env);
    flags |= kExec;
  }

  Pipe in, out, err;
  if (in.r < 0 || out.r < 0 || err.r < 0) {
    r.error = fmt::format("pipe: {}", std::strerror(errno));
    return r;
  }
  // The channel (fd 3 in the program): one socket both ways; the host's end writes the
  // request's bytes, then shuts its writing side so the program reads end of file.
  int chan = -1, chan_child = -1;
  if (step.channel) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      r.error = fmt::format("socketpair: {}", std::strerror(errno));
      return r;
    }
    chan = sv[0], chan_child = sv[1];
  }
  std::vector<int> fds = {in.r, out.w, err.w};
  if (chan_child >= 0) fds.push_back(chan_child);
  if (port) fds.push_back(port->child_fd());
  Watch watch(*this, L, before);
  auto t0 = Clock::now();
  VoidResult sent = send(kOpRun, flags, &L, payload, fds);
  close_fd(in.r);
  close_fd(out.w);
  close_fd(err.w);
  close_fd(chan_child);
  if (port) port->release_child();
  if (!sent) {
    close_fd(chan);
    r.error = sent.error().message;
    return r;
  }
  set_nonblock(in.w);
  set_nonblock(out.r);
  set_nonblock(err.r);
  std::size_t in_off = 0, chan_off = 0;
  if (step.stdin_data.empty()) close_fd(in.w);
  bool chan_writing = chan >= 0;
  if (chan >= 0) set_nonblock(chan);
  auto chan_wrote = [&] {  // all of the channel's input is out: the program reads end of file
    chan_writing = false;
    ::shutdown(chan, SHUT_WR);
  };
  if (chan_writing && step.channel->empty()) chan_wrote();

  Capture out_cap(L.max_output_bytes), err_cap(L.max_output_bytes), chan_cap(L.max_output_bytes);
  auto over_cap = [&] { return out_cap.truncated || err_cap.truncated || chan_cap.truncated; };
  std::optional<Json> done;
  Clock::time_point t_end{}, kill_deadline{};
  bool kill_sent = false;
  auto request_kill = [&] {
    if (kill_sent) return;
    kill_sent = true;
    kill_deadline = Clock::now() + std::chrono::seconds(5);
    (void)send(kOpKill, 0, nullptr, "", {});
  };

  while (alive_ && (!done || out.r >= 0 || err.r >= 0 || chan >= 0)) {
    struct pollfd p[7];
    int np = 0, i_out = -1, i_err = -1, i_in = -1, i_ctl = -1, i_chan = -1, i_svc = -1, i_wake = -1;
    if (port && port->fd() >= 0 && !done) {
      i_svc = np, p[np++] = {port->fd(), port->events(), 0};
      i_wake = np, p[np++] = {port->wake_fd(), POLLIN, 0};
    }
    if (out.r >= 0) i_out = np, p[np++] = {out.r, POLLIN, 0};
    if (err.r >= 0) i_err = np, p[np++] = {err.r, POLLIN, 0};
    if (chan >= 0) i_chan = np, p[np++] = {chan, static_cast<short>(POLLIN | (chan_writing ? POLLOUT : 0)), 0};
    if (in.w >= 0) i_in = np, p[np++] = {in.w, POLLOUT, 0};
    if (!done) i_ctl = np, p[np++] = {ctl_, POLLIN, 0};
    auto until = done ? t_end + std::chrono::seconds(2) : kill_sent ? kill_deadline : watch.next();
    int rc = ::poll(p, np, poll_ms(until));
    if (rc < 0 && errno == EINTR) continue;
    if (rc > 0) {
      if (i_svc >= 0 && p[i_svc].revents) port->on_ready(p[i_svc].revents);
      if (i_wake >= 0 && p[i_wake].revents) port->on_wake();
      if (i_out >= 0 && p[i_out].revents && !out_cap.drain(out.r)) close_fd(out.r);
      if (i_err >= 0 && p[i_err].revents && !err_cap.drain(err.r)) close_fd(err.r);
      if (i_chan >= 0 && (p[i_chan].revents & POLLOUT) && chan_writing) {
        ssize_t w = ::send(chan, step.channel->data() + chan_off, step.channel->size() - chan_off, MSG_NOSIGNAL);
        if (w > 0) chan_off += w;
        if ((w < 0 && errno != EAGAIN) || chan_off == step.channel->size()) chan_wrote();
      }
      if (i_chan >= 0 && (p[i_chan].revents & ~POLLOUT) && !chan_cap.drain(chan)) close_fd(chan);
      if (over_cap() && !done) {
        watch.fire("output");
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
        continue;
      }
    }
    // Checked whether or not poll timed out: a run that writes without pause must not keep
    // the deadline from being seen.
    if (Clock::now() < until) continue;
    if (done) break;  // output pipes held open past the run: nothing more is coming
    if (kill_sent) {
      mark_dead("fork-server did not stop a run");
      break;
    }
    if (watch.expired()) request_kill();
  }
  // Output past the cap is a record of the host's reader, whether or not the run ended first.
  if (over_cap()) watch.fire("output");
  std::string err_end = err_cap.last();
  r.stdout_data = std::move(out_cap.data);
  r.stderr_data = std::move(err_cap.data);
  r.stdout_truncated = out_cap.truncated;
  r.stderr_truncated = err_cap.truncated;
  r.channel_data = std::move(chan_cap.data);
  close_fd(chan);
  r.wall_s = std::chrono::duration<double>((done ? t_end : Clock::now()) - t0).count();
  if (!done) {
    r.status = Status::sandbox_error;
    r.error = death_.empty() ? "the run ended without a report" : death_;
    if (port) port->finish(r);
    return r;
  }
  fill_status(r, *done, watch.fired, before, *this);
  if (python) add_python_exception(r, err_end);
  if (port) port->finish(r);
  if (!step.collect.empty()) {
    r.files = collect(step.collect, 1 << 20);
    if (!step.keep_work) reset_work();
  }
  return r;
}

Result<Cell::SessionPipes> Cell::start_session(const Limits& limits, int service_fd) {
  if (!alive_) return Error{death_};
  if (!fork_server_) return Error{"a session needs a cell with a Python fork-server (Options::fork_server)"};
  if (auto limited = limit(limits); !limited) return limited.error();
  Pipe cmd, res, out, err;
  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (cmd.r < 0 || res.r < 0 || out.r < 0 || err.r < 0 || null < 0)
    return Error{fmt::format("pipe: {}", std::strerror(errno))};
  Limits session = limits;
  session.limit_by = LimitBy::wall;
  session.timeout_s = 365 * 24 * 3600.0;  // per-block deadlines are the host's
  Json req = {{"session", true}};
  std::vector<int> fds = {null, out.w, err.w, cmd.r, res.w};
  if (service_fd >= 0) {
    auto env = default_env();
    env["WAND_SERVICE_FD"] = "5";
    req["env"] = env;
    fds.push_back(service_fd);
  }
  VoidResult sent = send(kOpRun, kSession, &session, req.dump(), fds);
  ::close(null);
  if (!sent) return sent.error();
  set_nonblock(res.r);
  set_nonblock(out.r);
  set_nonblock(err.r);
  return SessionPipes{std::exchange(cmd.w, -1), std::exchange(res.r, -1), std::exchange(out.r, -1),
                      std::exchange(err.r, -1)};
}

}  // namespace wand::sandbox
