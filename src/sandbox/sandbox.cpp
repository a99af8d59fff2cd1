// The pool of cells, language steps (compile, then run), and sessions.
#include "sandbox/sandbox.h"

#include <fmt/core.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/thread_pool.h"
#include "sandbox/cell.h"
#include "sandbox/io.h"
#include "sandbox/output.h"
#include "sandbox/service_port.h"

namespace wand::sandbox {

namespace {
std::atomic<int> g_cell_serial{0};

CellConfig cell_config(const Options& o) {
  return {o.preload, o.work_mb, fmt::format("cell-{}", g_cell_serial.fetch_add(1)), o.warm_stdlib, o.fork_server};
}

ExecResult failed(std::string why) {
  ExecResult r;
  r.status = Status::sandbox_error;
  r.error = std::move(why);
  return r;
}

// One request through one cell: compile if the language needs it, then run.
ExecResult execute(Cell& cell, const ExecRequest& req) {
  auto chosen = choose_language(req.language, "");
  if (!chosen) return failed(chosen.error().message);
  const Language* lang = *chosen;
  // Every caller's limits are checked here, not only those that came through JSON.
  if (auto ok = validate(req.limits); !ok) return failed(ok.error().message);
  if (auto ok = validate_env(req.env); !ok) return failed(ok.error().message);
  if (req.compile_limits)
    if (auto ok = validate(*req.compile_limits, "compile_timeout"); !ok) return failed(ok.error().message);
  Step run;
  run.args = req.args;
  run.stdin_data = req.stdin_data;
  run.collect = req.collect;
  run.env = req.env;
  run.limits = req.limits;
  run.files = req.files;
  run.channel = req.channel;
  run.service = req.service;
  if (lang->run_argv.empty()) {
    run.code = req.code;
    return cell.execute(run);
  }
  run.files[lang->source_file] = req.code;
  run.argv = lang->run_argv;
  if (lang->compile_argv.empty()) return cell.execute(run);

  Step compile;
  compile.argv = lang->compile_argv;
  compile.files = std::move(run.files);
  compile.limits = req.compile_limits.value_or(default_compile_limits());
  compile.keep_work = true;
  run.files.clear();
  ExecResult c = cell.execute(compile);
  if (c.status != Status::ok) {
    cell.reset_work();
    if (c.status == Status::sandbox_error) return c;
    ExecResult r = c;
    r.status = Status::compile_error;
    r.compile_output = c.stderr_data + c.stdout_data;
    r.compile_s = c.wall_s;
    if (c.status != Status::runtime_error)
      r.error = fmt::format("compiler stopped: {}{}", to_string(c.status),
                            c.limit_hit.empty() ? "" : " (" + c.limit_hit + " limit)");
    r.stdout_data.clear();
    r.stderr_data.clear();
    return r;
  }
  ExecResult r = cell.execute(run);
  r.compile_output = c.stderr_data;
  r.compile_s = c.wall_s;
  return r;
}
}  // namespace

// ------------------------------------------------------------------ the pool

struct Sandbox::Pool {
  Options options;
  std::vector<std::unique_ptr<Cell>> cells;
  std::vector<std::size_t> free;
  std::mutex mu;
  std::condition_variable cv;

  std::size_t acquire() {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return !free.empty(); });
    std::size_t i = free.back();
    free.pop_back();
    return i;
  }
  void release(std::size_t i) {
    {
      std::lock_guard lk(mu);
      free.push_back(i);
    }
    cv.notify_one();
  }
  // A cell is started on first use and restarted after it dies; started outside the lock so
  // that cells come up in parallel.
  Result<Cell*> ready(std::size_t i) {
    if (!cells[i] || !cells[i]->alive()) {
      cells[i].reset();
      auto c = Cell::start(cell_config(options));
      if (!c) return c.error();
      cells[i] = std::move(c.value());
    }
    return cells[i].get();
  }
};

Sandbox::Sandbox(Options o) : options_(std::move(o)) {}
Sandbox::~Sandbox() = default;

Result<std::unique_ptr<Sandbox>> Sandbox::create(Options options) {
  // A run that closes its end of a pipe must not kill the host.
  ::signal(SIGPIPE, SIG_IGN);
  if (options.cells == 0) options.cells = std::max(1u, std::thread::hardware_concurrency());
  std::unique_ptr<Sandbox> sb(new Sandbox(options));
  sb->pool_ = std::make_unique<Pool>();
  sb->pool_->options = options;
  sb->pool_->cells.resize(options.cells);
  for (std::size_t i = options.cells; i-- > 0;) sb->pool_->free.push_back(i);
  // Start one cell now so that a host that cannot run cells fails here, clearly.
  std::size_t i = sb->pool_->acquire();
  auto c = sb->pool_->ready(i);
  sb->pool_->release(i);
  if (!c) return c.error();
  return sb;
}

std::size_t Sandbox::cells() const { return options_.cells; }

ExecResult Sandbox::run(const ExecRequest& req) {
  std::size_t i = pool_->acquire();
  auto cell = pool_->ready(i);
  ExecResult r = cell ? execute(*cell.value(), req) : failed(cell.error().message);
  pool_->release(i);
  return r;
}

std::vector<ExecResult> Sandbox::run_batch(const std::vector<ExecRequest>& reqs,
                                           const std::function<void(std::size_t)>& on_done,
                                           const std::atomic<bool>* stop) {
  std::vector<ExecResult> results(reqs.size());
  parallel_for(reqs.size(), options_.cells, [&](std::size_t, std::size_t i) {
    if (stop && *stop) {
      results[i] = failed("not run: stopped");
      return;
    }
    results[i] = run(reqs[i]);
    if (on_done) on_done(i);
  });
  return results;
}

// ------------------------------------------------------------------ sessions

struct Session::Impl {
  std::unique_ptr<Cell> cell;
  std::unique_ptr<ServicePort> port;  // the Service the session was opened with, if any
  Cell::SessionPipes pipes;
  Limits limits;
  bool alive = false;

  void close_pipes() {
    for (int* fd : {&pipes.cmd_w, &pipes.res_r, &pipes.out_r, &pipes.err_r}) close_fd(*fd);
  }

  // Closes the session: the interpreter sees EOF on its blocks and exits, or is killed.
  void end() {
    if (!alive) return;
    alive = false;
    close_fd(pipes.cmd_w);
    if (!cell->poll_done(2)) cell->kill_and_wait(5);
    close_pipes();
  }
};

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() { close(); }
bool Session::alive() const { return impl_->alive; }
void Session::close() { impl_->end(); }

Result<std::unique_ptr<Session>> Sandbox::open_session(Limits per_block, std::shared_ptr<Service> service) {
  if (auto ok = validate(per_block); !ok) return ok.error();
  CellConfig config = cell_config(options_);
  config.fork_server = true;  // a session is one Python process that lives on
  auto cell = Cell::start(config);
  if (!cell) return cell.error();
  auto impl = std::make_unique<Session::Impl>();
  impl->cell = std::move(cell.value());
  impl->limits = per_block;
  if (service) {
    auto port = ServicePort::open(std::move(service));
    if (!port) return port.error();
    impl->port = std::move(port.value());
  }
  auto pipes = impl->cell->start_session(per_block, impl->port ? impl->port->child_fd() : -1);
  if (impl->port) impl->port->release_child();
  if (!pipes) return pipes.error();
  impl->pipes = pipes.value();
  impl->alive = true;
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

ExecResult Session::run(const std::string& code, const std::atomic<bool>* stop) {
  Impl& s = *impl_;
  if (!s.alive) return failed("the session is closed");
  using Clock = Watch::Clock;
  Baseline before = s.cell->baseline();
  auto t0 = Clock::now();
  Watch watch(*s.cell, s.limits, before);
  std::string line = dump_text(Json{{"code", code}}) + "\n";
  if (::write(s.pipes.cmd_w, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    s.end();
    return failed("the session's interpreter is gone");
  }
  Capture out(s.limits.max_output_bytes), err(s.limits.max_output_bytes);
  std::string res;
  std::optional<Json> died;
  bool stopped = false;
  for (;;) {
    if (stop && *stop) {  // the caller was interrupted: the block is not waited for
      died = s.cell->kill_and_wait(5);
      stopped = true;
      break;
    }
    struct pollfd p[6] = {{s.pipes.out_r, POLLIN, 0},
                          {s.pipes.err_r, POLLIN, 0},
                          {s.pipes.res_r, POLLIN, 0},
                          {s.cell->control_fd(), POLLIN, 0}};
    int np = 4;
    if (s.port && s.port->fd() >= 0) {
      p[np++] = {s.port->fd(), s.port->events(), 0};
      p[np++] = {s.port->wake_fd(), POLLIN, 0};
    }
    int rc = ::poll(p, np, stop ? std::min(poll_ms(watch.next()), 100) : poll_ms(watch.next()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc > 0) {
      if (np > 4 && p[4].revents) s.port->on_ready(p[4].revents);
      if (np > 4 && p[5].revents) s.port->on_wake();
      if (p[0].revents) out.drain(s.pipes.out_r);
      if (p[1].revents) err.drain(s.pipes.err_r);
      if (out.truncated || err.truncated) {
        watch.fire("output");
        died = s.cell->kill_and_wait(5);
        break;
      }
      if (p[3].revents) {  // the interpreter ended (os._exit, memory limit, a signal...)
        died = s.cell->poll_done(5).value_or(Json::object());
        break;
      }
      if (p[2].revents) {
        char buf[4096];
        ssize_t n = ::read(s.pipes.res_r, buf, sizeof buf);
        if (n > 0) res.append(buf, n);
        if (!res.empty() && res.back() == '\n') break;
      }
    }
    // Checked whether or not poll timed out, as in Cell::execute.
    if (Clock::now() >= watch.next() && watch.expired()) {
      died = s.cell->kill_and_wait(5);
      break;
    }
  }
  // Output written before the result line is already in the pipes.
  out.drain(s.pipes.out_r);
  err.drain(s.pipes.err_r);
  if (out.truncated || err.truncated) watch.fire("output");
  ExecResult r;
  r.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::string err_end = err.last();
  r.stdout_data = std::move(out.data);
  r.stderr_data = std::move(err.data);
  r.stdout_truncated = out.truncated;
  r.stderr_truncated = err.truncated;
  Json done = died ? *died : Json::object();
  if (!died) {
    auto parsed = parse_json(res, "session result");
    done["exit_code"] = parsed && parsed->is_object() ? parsed->value("exit_code", 1) : 1;
  }
  fill_status(r, done, watch.fired, before, *s.cell);
  if (stopped) r.status = Status::killed, r.error = "stopped: the caller was interrupted; the session is closed";
  add_python_exception(r, err_end);
  if (s.port) s.port->finish(r);
  if (died) {
    s.alive = false;  // the interpreter is gone already: nothing to wait for
    s.close_pipes();
    if (r.error.empty()) r.error = "the session's interpreter ended; the session is closed";
  }
  return r;
}

}  // namespace wand::sandbox
