// The sandbox: runs untrusted code in isolated cells and reports what happened as data.
//
//   auto sb = wand::sandbox::Sandbox::create({});
//   ExecResult r = (*sb)->run({.language = "python", .code = "print(6*7)"});
//   // r.status == Status::ok, r.stdout_data == "42\n"
//
// A cell is a set of fresh namespaces (user, pid, net, mount, ipc, uts) holding a read-only
// view of the system, a private /proc, a minimal /dev and size-limited tmpfs for work. Python
// runs from a pre-warmed fork-server inside the cell; other languages are exec'd from it.
// Every execution gets its own pid namespace, cgroup limits (or rlimits where the host has no
// cgroups), no capabilities and a seccomp filter. Results are values, never exceptions.
#pragma once
#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/numbers.h"
#include "common/status.h"

namespace wand::sandbox {

enum class Status {
  ok,
  runtime_error,  // non-zero exit or uncaught exception
  timeout,        // wall or CPU limit; `limit_hit` says which
  memory_limit,
  output_limit,   // stdout or stderr exceeded max_output_bytes; the run was stopped
  compile_error,
  killed,         // ended by a signal that no limit explains; `signal` says which
  sandbox_error,  // the sandbox could not run the request; `error` says why
};
const char* to_string(Status s);
std::optional<Status> status_from_string(std::string_view s);

enum class LimitBy { wall, cpu };

struct Limits {
  double timeout_s = 10;            // seconds of wall time, or of CPU time if limit_by == cpu
  // With cpu: the CPU time of every process of the run where cgroups account it (else of its
  // main process); wall time is still capped at 2x + 1 s.
  LimitBy limit_by = LimitBy::wall;
  std::size_t memory_mb = 512;
  int max_processes = 64;
  std::size_t max_file_mb = 64;     // largest file a run may write
  int max_open_files = 256;
  std::size_t max_output_bytes = 1 << 20;  // per stream (stdout, stderr)
};

// Limits for the compile step of C and C++: compilers need more room than the programs.
Limits default_compile_limits();

// The range each limit takes: validate() below, the JSON-lines schema and the CLI's options all
// read these, so a value is refused in the same words wherever it is given (common/numbers.h).
inline constexpr NumberRule kTimeoutRange{.lo = 0, .hi = 24 * 3600, .lo_open = true, .unit = "seconds"};
inline constexpr NumberRule kMemoryMbRange{.lo = 1, .hi = 1 << 20, .integer = true, .unit = "MiB"};
inline constexpr NumberRule kMaxProcessesRange{.lo = 1, .hi = 1 << 22, .integer = true};
inline constexpr NumberRule kMaxFileMbRange{.lo = 1, .hi = 1 << 20, .integer = true, .unit = "MiB"};
inline constexpr NumberRule kMaxOpenFilesRange{.lo = 1, .hi = 1 << 20, .integer = true};
inline constexpr NumberRule kMaxOutputBytesRange{.lo = 1, .hi = 1 << 30, .integer = true, .unit = "bytes"};

// Checks that every limit is finite, > 0 and no larger than the sandbox accepts (a timeout of
// at most a day, memory_mb <= 2^20, max_processes <= 2^22, max_file_mb <= 2^20,
// max_open_files <= 2^20, max_output_bytes <= 2^30): beyond that a value is a mistake, and byte
// counts derived from it would overflow. The error names the field as the JSON-lines schema
// does ('timeout', 'memory_mb', ...); `timeout_field` names the timeout ('compile_timeout').
VoidResult validate(const Limits& l, std::string_view timeout_field = "timeout");
// Checks a program's environment (ExecRequest::env): names non-empty, without '=' or NUL, values
// without NUL; the error names the variable as field 'env' does.
VoidResult validate_env(const std::map<std::string, std::string>& env);

struct ExecResult;

// A host-side service a program reaches through a socket of its own (the tool bridge, see
// src/tools): the program finds its descriptor in the environment variable WAND_SERVICE_FD. The
// wire is frames both ways: a 4-byte little-endian length, then that many bytes. While the
// program runs (a run, or a session block), the sandbox reads its frames and hands each to
// on_frame on the run's own thread; answers go back through the Reply, at once or later from
// any thread (the sandbox queues them and writes them from the run's thread, so a program that
// does not read blocks nobody). A frame longer than max_frame() bytes breaks the framing: the
// sandbox calls on_error, writes what it replies, and closes the socket.
class Service {
 public:
  using Reply = std::function<void(std::string body)>;
  virtual ~Service() = default;
  virtual void on_frame(std::string body, Reply reply) = 0;
  virtual void on_error(const std::string& why, Reply reply) = 0;
  // The run or the session block ended (the socket is no longer read): add the record of what
  // was served to `r` (ExecResult::tool_calls). Calls still in flight get no answer.
  virtual void finish(ExecResult& r) = 0;
  virtual std::size_t max_frame() const = 0;
};

struct ExecRequest {
  std::string language = "python";  // python, c, cpp, js, bash
  std::string code;
  std::string stdin_data;
  std::vector<std::string> args;
  std::map<std::string, std::string> files;  // name (relative) -> bytes, placed in the working dir
  std::vector<std::string> collect;          // files to bring back after the run
  std::map<std::string, std::string> env;    // added to a minimal environment; host's is never passed
  Limits limits;
  std::optional<Limits> compile_limits;
  // A private channel to a trusted harness in the program (see src/feedback): when set, the
  // program holds a Unix stream socket at fd 3; it reads these bytes from it, then end of file,
  // and what it writes there comes back in ExecResult::channel_data (capped at max_output_bytes,
  // past which the run stops as output_limit). A socket, not a pipe: a pipe can be reopened
  // through /proc/self/fd in the other direction, a socket cannot.
  std::optional<std::string> channel;
  // A host-side service for the program (Python only), see Service. Null: none.
  std::shared_ptr<Service> service;
};

struct ExceptionInfo {
  std::string type;
  std::string message;
  int line = 0;  // in the submitted code; 0 if unknown
};

struct CollectedFile {
  std::string data;
  bool truncated = false;
  std::string error;  // set when the file could not be collected (missing, symlink, ...)
};

struct ExecResult {
  Status status = Status::sandbox_error;
  int exit_code = -1;  // -1 when ended by a signal
  int signal = 0;
  std::string stdout_data, stderr_data;
  bool stdout_truncated = false, stderr_truncated = false;
  std::string channel_data;  // what the program wrote to fd 3, when the request opened a channel
  double wall_s = 0, cpu_s = 0;
  std::size_t peak_memory_kb = 0;
  std::string limit_hit;  // "wall", "cpu", "memory", "output" or empty
  std::optional<ExceptionInfo> exception;  // Python: parsed from the traceback
  std::map<std::string, CollectedFile> files;
  std::string error;            // sandbox_error detail
  std::string compile_output;   // compiler diagnostics (compile_error, or warnings)
  double compile_s = 0;
  // The record of the calls a Service served (the tool bridge's ToolCall records); empty
  // without one. In to_json only when not empty.
  Json tool_calls = Json::array();
};

Json to_json(const ExecResult& r);
// Request from the JSON-lines schema (see README); errors name the offending field.
Result<ExecRequest> request_from_json(const Json& j, const ExecRequest& defaults = {});

// The exception type, message and line of the last Python traceback in `stderr_text`.
std::optional<ExceptionInfo> parse_python_traceback(std::string_view stderr_text);

// Languages: one table entry each (see languages.cpp).
struct Language {
  std::string name;
  std::string source_file;                  // where the code is written in the working dir
  std::vector<std::string> compile_argv;    // empty: interpreted
  std::vector<std::string> run_argv;        // empty: Python in the fork-server
  std::vector<std::string> extensions;      // for guessing from a file name
};
const std::vector<Language>& languages();
const Language* find_language(std::string_view name);  // a name or an alias (c++, node, sh); null if unknown
const Language* language_for_path(std::string_view path);  // by extension; null if none matches
std::string known_languages();  // "python, c, cpp, js, bash"
// The language of a program: `name` when given (an unknown name is an error, never a silent
// Python), else `path`'s extension (unknown or missing: an error naming it and listing the
// known ones), else Python when the program comes from standard input (`path` empty or "-").
Result<const Language*> choose_language(std::string_view name, std::string_view path);

struct Options {
  std::size_t cells = 0;  // concurrent executions; 0 = number of cores
  // Imported once in every fork-server, so runs that use them pay nothing for the import.
  std::vector<std::string> preload = {"numpy", "sympy"};
  // Also import the standard modules programs commonly use (math, re, collections, typing, ...).
  // Worth it for many runs; a sandbox for one run turns it off, since a module imported before
  // the only fork costs that run as much as importing it itself, or nothing if it is unused.
  bool warm_stdlib = true;
  // Python runs in a fork-server: a Python process started once per cell that forks per run.
  // Off, a cell's pid 1 is a small C loop and Python code runs as `python3 -E -s -B main.py`,
  // exec'd (same isolation, limits and results; tracebacks name "/work/main.py"). A single run
  // then starts one interpreter instead of two; many runs are faster with the fork-server.
  // Sessions always get one. Without it, `preload` and `warm_stdlib` do nothing.
  bool fork_server = true;
  std::size_t work_mb = 256;  // size of the tmpfs working directory (and of /tmp)
};

class Cell;
class Session;

// A pool of cells. Thread-safe: run() from any number of threads uses a free cell.
class Sandbox {
 public:
  static Result<std::unique_ptr<Sandbox>> create(Options options = {});
  ~Sandbox();

  ExecResult run(const ExecRequest& req);
  // Runs all requests in parallel over the cells; results in request order.
  // on_done(i) is called (from worker threads) as each request finishes. Once `*stop` is true
  // (Ctrl-C), requests not yet started are not run: their results are sandbox_error "not run:
  // stopped" and on_done is not called for them; runs in progress finish.
  std::vector<ExecResult> run_batch(const std::vector<ExecRequest>& reqs,
                                    const std::function<void(std::size_t)>& on_done = {},
                                    const std::atomic<bool>* stop = nullptr);
  // A persistent Python interpreter in a cell of its own.
  // With a `service`, the interpreter holds its socket for the session's life; it is served
  // while a block runs, and each block's result carries that block's record.
  Result<std::unique_ptr<Session>> open_session(Limits per_block = {}, std::shared_ptr<Service> service = nullptr);

  std::size_t cells() const;
  const Options& options() const { return options_; }

 private:
  explicit Sandbox(Options o);
  struct Pool;
  Options options_;
  std::unique_ptr<Pool> pool_;
};

// Successive Python blocks sharing variables, files and imports; each block gets the
// session's limits. A block that times out ends the session (its state cannot be trusted).
class Session {
 public:
  ~Session();
  // Once `*stop` is true (Ctrl-C) the block is killed within about 0.1 s and the session ends:
  // status killed, error "stopped". Without it a block runs to its end or its limits.
  ExecResult run(const std::string& code, const std::atomic<bool>* stop = nullptr);
  bool alive() const;
  void close();

 private:
  friend class Sandbox;
  struct Impl;
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What this host offers for isolation and limits, and what falls back (`wand doctor`).
struct HostReport {
  struct Check {
    std::string name;
    bool ok;
    std::string detail;
  };
  std::vector<Check> checks;
  std::vector<std::string> warnings;
  Json to_json() const;
};
HostReport doctor();

}  // namespace wand::sandbox
