// `wand exec`: one program with a readable report (or --json), or a batch as JSON lines.
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <mutex>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/tool_options.h"
#include "common/output.h"
#include "common/progress.h"
#include "common/thread_pool.h"
#include "sandbox/sandbox.h"
#include "tools/tools.h"

namespace wand::cli {
namespace {

struct ExecArgs {
  std::string file;
  std::string lang;
  std::string stdin_file;
  double timeout = 10;
  std::size_t memory = 512;
  std::string limit_by = "wall";
  std::size_t max_output = 1 << 20;
  std::vector<std::string> preload;
  bool preload_set = false;
  std::size_t cells = 0;
  bool json = false, jsonl = false;
  std::vector<std::string> args;
  ToolArgs tools;  // --tools and the built-ins' options
};

std::string read_stream(std::istream& in) {
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Standard input redirected from a folder (`wand exec - < dir`) reads as empty, which would run an
// empty program or batch: refused as a bad input instead.
bool stdin_is_folder() {
  struct stat st{};
  return ::fstat(STDIN_FILENO, &st) == 0 && S_ISDIR(st.st_mode);
}

std::string human_size(std::size_t kb) {
  return kb >= 1024 ? fmt::format("{:.1f} MiB", kb / 1024.0) : fmt::format("{} KiB", kb);
}

void print_tool_calls(const Json& calls) {
  if (calls.empty()) return;
  fmt::print("--- tool calls ---\n");
  constexpr std::size_t kShown = 20;  // a loop of calls is summed up, not listed (--json has them all)
  for (std::size_t i = 0; i < calls.size(); ++i) {
    if (i == kShown) {
      fmt::print("... and {} more (--json lists them all)\n", calls.size() - kShown);
      break;
    }
    const Json& c = calls[i];
    std::string args = dump_text(c["arguments"]);
    if (args.size() > 80) args = args.substr(0, 77) + "...";
    std::string name = c["name"].get<std::string>();
    fmt::print("{}({}) {:.2f} ms: {}\n", name.empty() ? "(frame)" : name, args, c["duration_s"].get<double>() * 1000,
               c.contains("error") ? "error: " + c["error"].get<std::string>()
                                   : fmt::format("{} bytes", c["result_bytes"].get<std::size_t>()));
  }
}

void print_report(const sandbox::ExecResult& r) {
  fmt::print("status     {}{}\n", to_string(r.status), r.limit_hit.empty() ? "" : " (" + r.limit_hit + " limit)");
  if (r.signal)
    fmt::print("signal     {} ({})\n", r.signal, strsignal(r.signal));
  else
    fmt::print("exit code  {}\n", r.exit_code);
  fmt::print("time       wall {:.3f} s, cpu {:.3f} s{}\n", r.wall_s, r.cpu_s,
             r.compile_s > 0 ? fmt::format(", compile {:.3f} s", r.compile_s) : "");
  fmt::print("memory     peak {}\n", human_size(r.peak_memory_kb));
  if (r.exception)
    fmt::print("exception  {}: {} (line {})\n", r.exception->type, r.exception->message, r.exception->line);
  if (!r.error.empty()) fmt::print("error      {}\n", r.error);
  if (!r.compile_output.empty()) fmt::print("--- compiler ---\n{}\n", r.compile_output);
  auto section = [](const char* name, const std::string& s, bool truncated) {
    if (s.empty() && !truncated) return;
    fmt::print("--- {}{} ---\n{}{}", name, truncated ? " (truncated)" : "", s,
               s.empty() || s.back() == '\n' ? "" : "\n");
  };
  section("stdout", r.stdout_data, r.stdout_truncated);
  section("stderr", r.stderr_data, r.stderr_truncated);
  print_tool_calls(r.tool_calls);
}

// A line's "tools": an array of tool names.
Result<std::vector<std::string>> tool_names(const Json& v) {
  std::vector<std::string> names;
  if (!v.is_array()) return Error{"must be an array of tool names"};
  for (const auto& x : v) {
    if (!x.is_string()) return Error{"must be an array of tool names"};
    names.push_back(x.get<std::string>());
  }
  return names;
}

sandbox::ExecRequest defaults_from(const ExecArgs& a) {
  sandbox::ExecRequest d;
  d.limits.timeout_s = a.timeout;
  d.limits.memory_mb = a.memory;
  d.limits.limit_by = a.limit_by == "cpu" ? sandbox::LimitBy::cpu : sandbox::LimitBy::wall;
  d.limits.max_output_bytes = a.max_output;
  return d;
}

Result<std::unique_ptr<sandbox::Sandbox>> make_sandbox(const ExecArgs& a, std::size_t cells,
                                                       std::vector<std::string> default_preload) {
  sandbox::Options o;
  o.cells = cells;
  o.preload = a.preload_set ? a.preload : std::move(default_preload);
  o.warm_stdlib = a.jsonl;  // one program gains nothing from imports made before its fork
  // Nor from a fork-server at all, unless it is asked to preload modules: one program starts
  // one interpreter, its own.
  o.fork_server = a.jsonl || !o.preload.empty();
  return sandbox::Sandbox::create(o);
}

int run_one(ExecArgs& a) {
  std::string code;
  if (a.file == "-") {
    if (stdin_is_folder()) {
      fmt::print(stderr, "wand exec: standard input is a folder, not a program\n");
      return kExitBadInput;
    }
    // Without a file the program comes from standard input: say so on a terminal, or it looks hung.
    if (isatty(STDIN_FILENO)) fmt::print(stderr, "wand exec: reading the program from standard input (Ctrl-D ends it)\n");
    code = read_stream(std::cin);
  } else {
    auto c = read_file(a.file);
    if (!c) {
      fmt::print(stderr, "wand exec: {}\n", c.error().message);
      return kExitBadInput;
    }
    code = std::move(c.value());
  }
  auto lang = sandbox::choose_language(a.lang, a.file);
  if (!lang) {
    if (a.lang.empty())
      fmt::print(stderr, "wand exec: {}; give the language with --lang\n", lang.error().message);
    else
      fmt::print(stderr, "wand exec: --lang: {}\n", lang.error().message);
    return kExitBadInput;
  }
  sandbox::ExecRequest req = defaults_from(a);
  req.code = std::move(code);
  req.args = a.args;
  req.language = (*lang)->name;
  if (!a.stdin_file.empty()) {
    auto s = read_file(a.stdin_file);
    if (!s) {
      fmt::print(stderr, "wand exec: --stdin {}\n", s.error().message);
      return kExitBadInput;
    }
    req.stdin_data = std::move(s.value());
  }
  auto granted = open_tools(a.tools, a.tools.specs);
  if (!granted) {
    fmt::print(stderr, "wand exec: {}\n", granted.error().message);
    return kExitBadInput;
  }
  if (!granted->empty() && req.language != "python") {
    fmt::print(stderr, "wand exec: --tools: tools are offered to Python programs; this one is {}\n", req.language);
    return kExitBadInput;
  }
  // One program: nothing is gained by preloading modules it may not import.
  auto sb = make_sandbox(a, 1, {});
  if (!sb) {
    fmt::print(stderr, "wand exec: sandbox unavailable: {}\n", sb.error().message);
    return kExitSandbox;
  }
  sandbox::ExecResult r = tools::run(**sb, std::move(req), *granted, {.max_calls = a.tools.max_calls});
  if (a.json)
    fmt::print("{}\n", dump_text(to_json(r)));
  else
    print_report(r);
  if (r.status == sandbox::Status::sandbox_error) return kExitSandbox;
  return r.status == sandbox::Status::ok ? kExitOk : kExitFailed;
}

// Requests as JSON lines on stdin, results as JSON lines on stdout, in input order, each
// written as soon as every earlier one is done (so a long batch streams).
int run_jsonl(ExecArgs& a) {
  struct Line {
    Json id;
    std::optional<sandbox::ExecRequest> req;
    std::string error;
    tools::Registry tools;  // what the line is granted: its "tools", else all of --tools
  };
  if (stdin_is_folder()) {
    fmt::print(stderr, "wand exec: --jsonl: standard input is a folder, not JSON lines\n");
    return kExitBadInput;
  }
  auto loaded = open_tools(a.tools, a.tools.specs);
  if (!loaded) {
    fmt::print(stderr, "wand exec: {}\n", loaded.error().message);
    return kExitBadInput;
  }
  std::vector<Line> lines;
  sandbox::ExecRequest defaults = defaults_from(a);
  // --lang is the default of the lines' "language" field.
  auto lang = sandbox::choose_language(a.lang, "");
  if (!lang) {
    fmt::print(stderr, "wand exec: --lang: {}\n", lang.error().message);
    return kExitBadInput;
  }
  defaults.language = (*lang)->name;
  std::size_t n = 0;
  for (std::string text; std::getline(std::cin, text);) {
    ++n;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    Line line;
    auto j = parse_json(text, fmt::format("stdin line {}", n));
    if (!j) {
      line.error = j.error().message;
    } else {
      if (j->is_object() && j->contains("id")) line.id = (*j)["id"];
      // "tools" is this command's field, not the sandbox's: a subset of --tools by name.
      line.tools = *loaded;
      if (j->is_object() && j->contains("tools")) {
        auto names = tool_names((*j)["tools"]);
        auto granted = names ? loaded->select(*names) : Result<tools::Registry>(names.error());
        if (granted) line.tools = std::move(*granted);
        else line.error = fmt::format("stdin line {}: field 'tools': {}", n, granted.error().message);
        j->erase("tools");
      }
      auto req = sandbox::request_from_json(*j, defaults);
      if (line.error.empty()) {  // else "tools" was refused
        if (!req)
          line.error = fmt::format("stdin line {}: {}", n, req.error().message);
        else if (!line.tools.empty() && req->language != "python")
          line.error = fmt::format("stdin line {}: field 'tools': tools are offered to Python programs; this one is {}",
                                   n, req->language);
        else
          line.req = std::move(req.value());
      }
    }
    lines.push_back(std::move(line));
  }
  auto sb = make_sandbox(a, a.cells, {"numpy", "sympy"});
  if (!sb) {
    fmt::print(stderr, "wand exec: sandbox unavailable: {}\n", sb.error().message);
    return kExitSandbox;
  }
  std::vector<std::optional<Json>> out(lines.size());
  std::size_t next = 0;
  std::mutex mu;
  // Standard output failed (a full disk, or the reader closed the pipe): the rest is not run;
  // main() reports it (quietly for a closed pipe) and exits 4.
  std::atomic<bool> output_failed = false;
  Progress progress("exec", lines.size());
  auto emit = [&](std::size_t i, Json j) {
    if (!lines[i].id.is_null()) j["id"] = lines[i].id;
    std::lock_guard lk(mu);
    out[i] = std::move(j);
    for (; next < out.size() && out[next] && !output_failed; ++next) {
      if (!write_stdout(dump_text(*out[next]) + "\n")) output_failed = true;
      out[next].reset();
    }
  };
  bool invalid = false;
  std::vector<sandbox::ExecRequest> reqs;
  std::vector<std::size_t> where;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].req) {
      reqs.push_back(std::move(*lines[i].req));
      where.push_back(i);
    } else {
      invalid = true;
      fmt::print(stderr, "wand exec: {}\n", lines[i].error);
      emit(i, Json{{"status", "invalid_request"}, {"error", lines[i].error}});
      progress.tick();
    }
  }
  // Ctrl-C: no further run starts, the runs in progress finish, and every line still gets its
  // result line in order (one not run says so), so nothing finished is lost behind one that was not.
  std::atomic<bool>& stop = catch_stop_signals();
  std::atomic<std::size_t> not_run = 0;
  parallel_for(reqs.size(), (*sb)->cells(), [&](std::size_t, std::size_t k) {
    if (output_failed) return;
    if (stop) {
      ++not_run;
      emit(where[k], Json{{"status", "not_run"}, {"error", "interrupted before it ran"}});
      return;
    }
    emit(where[k], to_json(tools::run(**sb, reqs[k], lines[where[k]].tools, {.max_calls = a.tools.max_calls})));
    progress.tick();
  });
  progress.finish();
  if (output_failed) return kExitOutput;
  if (stop) {
    fmt::print(stderr, "wand exec: interrupted: {} of {} requests ran, {} not run (status not_run)\n",
               reqs.size() - not_run, reqs.size(), not_run.load());
    return kExitInterrupted;
  }
  return invalid ? kExitBadInput : kExitOk;
}

}  // namespace

Command add_exec(CLI::App& app) {
  auto a = std::make_shared<ExecArgs>();
  auto* cmd = app.add_subcommand("exec", "Run untrusted code in the sandbox");
  cmd->footer(
      "Exit status: 0 the program ran and ended ok; 1 it ended otherwise (error, timeout, limit);\n"
      "2 bad input; 3 the sandbox is unavailable on this host (see `wand doctor`); 4 the results could not\n"
      "be written (a full disk; quietly when the reader of a pipe went away).\n"
      "With --jsonl: 0 when every line was a valid request (whatever the programs did), 2 otherwise.");
  auto* file = cmd->add_option("file", a->file, "Program to run, or - for standard input")->default_val("-");
  cmd->add_option("--lang", a->lang,
                  "python, c, cpp, js or bash (default: from the file's extension; python for - and for --jsonl lines)");
  cmd->add_option("--timeout", a->timeout, "Time limit in seconds")->default_val(10)->check(number(kSeconds));
  cmd->add_option("--memory", a->memory, "Memory limit in MiB")->default_val(512)->check(number(kMemoryMiB));
  cmd->add_option("--limit-by", a->limit_by, "Apply --timeout to wall-clock or CPU time")
      ->default_val("wall")
      ->check(CLI::IsMember({"wall", "cpu"}));
  cmd->add_option("--max-output", a->max_output, "Bytes kept per output stream before the run is stopped")
      ->default_val(1 << 20)
      ->check(number(kOutputBytes));
  auto* stdin_file = cmd->add_option("--stdin", a->stdin_file, "File to feed to the program's standard input");
  // One value per occurrence (allow_extra_args(false)): a vector option would otherwise also take
  // the program's file that follows it (`--arg 1 prog.py`).
  auto* arg = cmd->add_option("--arg", a->args, "Argument passed to the program (repeatable)")->allow_extra_args(false);
  // One comma-separated token, split here: `--preload numpy,sympy -` keeps its `-`.
  cmd->add_option_function<std::string>(
      "--preload",
      [a](const std::string& list) {
        a->preload_set = true;
        std::istringstream in(list);
        for (std::string m; std::getline(in, m, ',');)
          if (!m.empty()) a->preload.push_back(m);
      },
      "Modules the Python fork-server imports once, comma-separated (default: none for one "
      "program, numpy,sympy for --jsonl)");
  cmd->add_option("--cells", a->cells, "Parallel cells for --jsonl (default: number of cores)")->check(parallel(false));
  auto* json = cmd->add_flag("--json", a->json, "Print the result as one JSON object");
  add_tool_options(cmd, a->tools);
  // A batch's programs, inputs and arguments are its lines' own: these would be ignored.
  cmd->add_flag("--jsonl", a->jsonl,
                "Batch: requests as JSON lines on stdin, results as JSON lines on stdout (schema in README)")
      ->excludes(file, stdin_file, arg, json);
  return [a] { return a->jsonl ? run_jsonl(*a) : run_one(*a); };
}

}  // namespace wand::cli
