// MCP's stdio transport: the server is a child process; newline-delimited JSON-RPC on its
// stdin/stdout (basic/transports/stdio). One reader thread dispatches responses by id, so calls
// from several threads share the process; another keeps the tail of its stderr for messages.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/core.h>

#include "tools/mcp/mcp_client.h"

extern char** environ;

namespace wand::tools::mcp {
namespace {

constexpr std::size_t kStderrTail = 4096;
constexpr std::size_t kMaxLine = 64 << 20;  // a message longer than this is a broken server

// Forks on one thread that lives as long as wand. PR_SET_PDEATHSIG fires when the *thread* that
// forked exits, not the process: a server started again from a tool call's thread was sent
// SIGTERM as soon as that call's thread ended. Returns the child's pid, or -errno.
pid_t fork_on_lasting_thread(const std::function<void()>& in_child) {
  struct Spawner {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::packaged_task<pid_t()>> jobs;
    Spawner() {
      std::thread([this] {
        for (;;) {
          std::unique_lock lk(mu);
          cv.wait(lk, [&] { return !jobs.empty(); });
          auto job = std::move(jobs.front());
          jobs.pop_front();
          lk.unlock();
          job();
        }
      }).detach();
    }
  };
  static Spawner* spawner = new Spawner;  // never destroyed: its thread must outlive every server
  std::packaged_task<pid_t()> job([&] {
    pid_t pid = ::fork();
    if (pid == 0) {
      in_child();
      _exit(127);
    }
    return pid < 0 ? -errno : pid;
  });
  auto pid = job.get_future();
  {
    std::lock_guard lk(spawner->mu);
    spawner->jobs.push_back(std::move(job));
  }
  spawner->cv.notify_one();
  return pid.get();
}

struct Pending {
  std::optional<Json> response;
  std::function<void(const Notice&)> on_notice;
  Json token;  // the progressToken this request asked for, if any
};

class StdioTransport final : public Transport {
 public:
  StdioTransport(std::string command, std::map<std::string, std::string> env)
      : command_(std::move(command)), env_(std::move(env)) {}
  ~StdioTransport() override { stop(); }

  VoidResult start() {
    // stdin is a socket, so that writing to a server that died fails with EPIPE (send's
    // MSG_NOSIGNAL) instead of raising SIGPIPE in wand.
    int in[2], out[2], err[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
      return Error{fmt::format("MCP server '{}': pipe: {}", command_, strerror(errno))};
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) {
      std::string_view kv(*e);
      if (!env_.count(std::string(kv.substr(0, kv.find('='))))) envs.emplace_back(kv);
    }
    for (auto& [k, v] : env_) envs.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : envs) envp.push_back(s.data());
    envp.push_back(nullptr);
    pid_t parent = getpid();
    const std::string cmd = "exec " + command_;
    pid_t pid = fork_on_lasting_thread([&] {
      // Its own process group, so that stop() ends what it started too (npx starts node); and
      // SIGTERM when wand is gone, however it ended.
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(127);
      dup2(in[0], 0), dup2(out[1], 1), dup2(err[1], 2);
      signal(SIGPIPE, SIG_DFL);
      execle("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr, envp.data());
    });
    if (pid < 0) return Error{fmt::format("MCP server '{}': fork: {}", command_, strerror(-pid))};
    ::close(in[0]), ::close(out[1]), ::close(err[1]);
    pid_ = pid, to_ = in[1], from_ = out[0], errfd_ = err[0];
    {
      std::lock_guard lk(mu_);
      closed_ = stderr_done_ = false;
      exit_note_.clear();
      stderr_tail_.clear();
      stray_.clear();
    }
    reader_ = std::thread([this] { read_loop(); });
    err_reader_ = std::thread([this] { stderr_loop(); });
    return ok_status();
  }

  Result<Json> round_trip(const Json& request, double timeout_s,
                          const std::function<void(const Notice&)>& on_notice) override {
    std::string id = request["id"].dump();
    std::unique_lock lk(mu_);
    if (closed_) return Error{gone_message(), "closed"};
    auto& p = pending_[id];
    p.on_notice = on_notice;
    if (request.contains("params") && request["params"].contains("_meta") &&
        request["params"]["_meta"].contains("progressToken"))
      p.token = request["params"]["_meta"]["progressToken"];
    lk.unlock();
    if (auto w = write_line(dump_text(request)); !w) {
      lk.lock();
      pending_.erase(id);
      // A server that already exited: say how (its status), once the reader has seen it.
      if (cv_.wait_for(lk, std::chrono::seconds(2), [&] { return closed_; })) return Error{gone_message(), "closed"};
      return w.error();
    }
    lk.lock();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    bool done = cv_.wait_until(lk, deadline, [&] { return closed_ || pending_[id].response.has_value(); });
    auto node = pending_.extract(id);
    if (node.mapped().response) return std::move(*node.mapped().response);
    if (!done)
      return Error{fmt::format("no answer within {:g} s{}", timeout_s,
                               stray_.empty() ? "" : fmt::format("; the server wrote a line that is not JSON-RPC to its "
                                                                 "stdout (where only MCP messages may go): {}",
                                                                 Json(stray_).dump())),
                   "timeout"};
    return Error{gone_message(), "closed"};
  }

  VoidResult notify(const Json& n) override { return write_line(dump_text(n)); }
  void set_protocol_version(const std::string&) override {}

  bool alive() const override {
    std::lock_guard lk(mu_);
    return !closed_;
  }

  void close() override { stop(); }
  VoidResult restart() override {
    stop();
    return start();
  }

  std::string diagnostics() const override {
    std::lock_guard lk(mu_);
    std::string tail = stderr_tail_;
    while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
    return tail;
  }

 private:
  VoidResult write_line(std::string line) {
    line += '\n';
    std::lock_guard wl(write_mu_);
    for (std::size_t off = 0; off < line.size();) {
      ssize_t n = ::send(to_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Error{fmt::format("cannot write to the server: {}", strerror(errno)), "closed"};
      off += static_cast<std::size_t>(n);
    }
    return ok_status();
  }

  std::string gone_message() const {
    return exit_note_.empty() ? std::string("the server closed its output") : exit_note_;
  }

  void dispatch(const std::string& line) {
    auto j = parse_json(line, "server message");
    if (!j || !j->is_object()) {  // the spec forbids anything else on stdout: skipped, kept for a timeout's message
      std::lock_guard lk(mu_);
      stray_ = line.substr(0, 200);
      return;
    }
    const Json& m = *j;
    if (m.contains("method")) {
      if (m.contains("id")) {
        // A request from the server (ping; sampling, roots and elicitation are not offered).
        Json reply = {{"jsonrpc", "2.0"}, {"id", m["id"]}};
        if (m["method"] == "ping")
          reply["result"] = Json::object();
        else
          reply["error"] = {{"code", kMethodNotFound}, {"message", "wand's MCP client does not offer this"}};
        (void)write_line(reply.dump());
        return;
      }
      Notice n{m["method"].is_string() ? m["method"].get<std::string>() : "", m.value("params", Json::object())};
      std::vector<std::function<void(const Notice&)>> targets;
      {
        std::lock_guard lk(mu_);
        for (auto& [id, p] : pending_) {
          if (!p.on_notice) continue;
          // Progress goes to the request that asked for it; other notices (log messages) to every waiting call.
          if (n.method == "notifications/progress" && !(n.params.is_object() && n.params.value("progressToken", Json()) == p.token))
            continue;
          targets.push_back(p.on_notice);
        }
      }
      for (auto& t : targets) t(n);
      return;
    }
    if (!m.contains("id")) return;
    std::lock_guard lk(mu_);
    auto it = pending_.find(m["id"].dump());
    if (it == pending_.end()) return;  // a late answer to a call that timed out
    it->second.response = m;
    cv_.notify_all();
  }

  void read_loop() {
    std::string buf;
    char chunk[65536];
    for (;;) {
      ssize_t n = ::read(from_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      buf.append(chunk, static_cast<std::size_t>(n));
      std::size_t start = 0;
      for (std::size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1)
        if (nl > start) dispatch(buf.substr(start, nl - start));
      buf.erase(0, start);
      if (buf.size() > kMaxLine) break;
    }
    // The output closed: the process ended (or closed stdout). Say how, for the calls waiting.
    int status = 0;
    const bool over = buf.size() > kMaxLine;  // it is still running, writing: stop() ends it
    std::string note = over ? fmt::format("the server sent a message over {} MiB (the cap)", kMaxLine >> 20)
                            : "the server closed its output";
    for (int i = 0; i < 100 && !over; ++i) {  // it usually exits right after; wait up to 1 s
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        note = WIFEXITED(status) ? fmt::format("the server exited with status {}", WEXITSTATUS(status))
                                 : fmt::format("the server was killed by signal {}", WTERMSIG(status));
        reaped_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::unique_lock lk(mu_);
    // Its last words on stderr explain the exit ("command not found"): let them arrive first.
    cv_.wait_for(lk, std::chrono::milliseconds(500), [&] { return stderr_done_; });
    closed_ = true;
    exit_note_ = note;
    cv_.notify_all();
  }

  void stderr_loop() {
    char chunk[4096];
    for (;;) {
      ssize_t n = ::read(errfd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      std::lock_guard lk(mu_);
      stderr_tail_.append(chunk, static_cast<std::size_t>(n));
      if (stderr_tail_.size() > kStderrTail) stderr_tail_.erase(0, stderr_tail_.size() - kStderrTail);
    }
    std::lock_guard lk(mu_);
    stderr_done_ = true;
    cv_.notify_all();
  }

  // Closes stdin (the spec's shutdown), then SIGTERM and SIGKILL to the group if it lingers.
  void stop() {
    if (pid_ <= 0) return;
    if (to_ >= 0) {
      std::lock_guard wl(write_mu_);
      ::close(to_), to_ = -1;
    }
    auto wait_exit = [&](int ms) {
      for (int i = 0; i < ms / 10; ++i) {
        if (reaped_ || waitpid(pid_, nullptr, WNOHANG) == pid_) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      return false;
    };
    if (!wait_exit(500)) {
      kill(-pid_, SIGTERM);
      if (!wait_exit(1000)) {
        kill(-pid_, SIGKILL);
        if (!reaped_) waitpid(pid_, nullptr, 0);
      }
    }
    kill(-pid_, SIGKILL);  // whatever it started and left behind in its group
    reaped_ = true;
    if (reader_.joinable()) reader_.join();
    if (err_reader_.joinable()) err_reader_.join();
    ::close(from_), ::close(errfd_);
    from_ = errfd_ = -1;
    pid_ = -1;
    reaped_ = false;
    std::lock_guard lk(mu_);
    closed_ = true;
    cv_.notify_all();
  }

  std::string command_;
  std::map<std::string, std::string> env_;
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1, errfd_ = -1;
  std::atomic<bool> reaped_ = false;
  std::thread reader_, err_reader_;
  mutable std::mutex mu_;
  std::mutex write_mu_;
  std::condition_variable cv_;
  std::map<std::string, Pending> pending_;
  bool closed_ = true, stderr_done_ = false;
  std::string exit_note_, stderr_tail_;
  std::string stray_;  // the last line on its stdout that was not a JSON-RPC message (the start of it)
};

}  // namespace

Result<std::unique_ptr<Transport>> open_stdio(const std::string& command, const std::map<std::string, std::string>& env) {
  if (command.find_first_not_of(" \t") == std::string::npos) return Error{"the MCP server command is empty"};
  auto t = std::make_unique<StdioTransport>(command, env);
  if (auto s = t->start(); !s) return s.error();
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace wand::tools::mcp
