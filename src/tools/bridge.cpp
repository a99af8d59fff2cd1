// The host's side of the bridge: one run's calls, checked, budgeted, timed out and logged.
#include <fmt/core.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "tools/tools.h"

extern const std::string_view wand_embedded_bridge;

namespace wand::tools {

std::string_view python_module() { return wand_embedded_bridge; }

namespace {
using Clock = std::chrono::steady_clock;

// One call being served: whichever of its worker and the watchdog finishes it first answers
// the program and logs the call.
struct Pending {
  std::mutex mu;
  bool done = false;
  Json id;
  sandbox::Service::Reply reply;
  ToolCall record;
  Clock::time_point start, deadline;
};

std::string error_frame(const Json& id, const std::string& message, bool fatal = false) {
  Json j = {{"id", id}, {"error", message}};
  if (fatal) j["fatal"] = true;
  return dump_text(j);
}
}  // namespace

struct Bridge::State {
  Registry tools;
  Budget budget;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ToolCall> calls;
  std::size_t n_calls = 0, result_bytes = 0, in_flight = 0;
  double tool_seconds = 0;
  int prelude_at = 0;  // attach() put a line after this many of the program's; 0: none (a session)
  std::shared_ptr<RunUsage> usage = std::make_shared<RunUsage>();  // the tools' own budgets
  // The watchdog answers calls whose worker is past the tool's timeout.
  std::multimap<Clock::time_point, std::shared_ptr<Pending>> deadlines;
  bool stop = false;
  std::thread watchdog;

  void log(ToolCall c) {
    std::lock_guard lk(mu);
    calls.push_back(std::move(c));
  }

  // Answers and logs one call, unless it was answered already. Thread-safe.
  void complete(Pending& p, Result<Json> result) {
    std::lock_guard plk(p.mu);
    if (p.done) return;
    p.done = true;
    p.record.duration_s = std::chrono::duration<double>(Clock::now() - p.start).count();
    std::string frame;
    {
      std::lock_guard lk(mu);
      tool_seconds += p.record.duration_s;
      if (result) {
        frame = dump_text(Json{{"id", p.id}, {"result", std::move(result.value())}});
        if (result_bytes + frame.size() > budget.max_result_bytes) {
          p.record.error = fmt::format("budget: the results of this program's tool calls would exceed {} bytes",
                                       budget.max_result_bytes);
        } else {
          result_bytes += frame.size();
          p.record.result_bytes = frame.size();
        }
      } else {
        p.record.error = result.error().message;
      }
      if (!p.record.error.empty()) frame = error_frame(p.id, p.record.error);
      calls.push_back(p.record);
    }
    p.reply(std::move(frame));
  }

  void watch() {
    std::unique_lock lk(mu);
    while (!stop) {
      if (deadlines.empty()) {
        cv.wait(lk);
        continue;
      }
      auto [when, pending] = *deadlines.begin();
      if (Clock::now() < when) {
        cv.wait_until(lk, when);
        continue;
      }
      deadlines.erase(deadlines.begin());
      lk.unlock();
      double limit = std::chrono::duration<double>(pending->deadline - pending->start).count();
      complete(*pending, Error{fmt::format("tool '{}': timed out after {:g} s", pending->record.name, limit)});
      lk.lock();
    }
  }
};

Bridge::Bridge(Registry tools, Budget budget) : state_(std::make_shared<State>()) {
  state_->tools = std::move(tools);
  state_->budget = budget;
}

Bridge::~Bridge() {
  {
    std::lock_guard lk(state_->mu);
    state_->stop = true;
  }
  state_->cv.notify_all();
  if (state_->watchdog.joinable()) state_->watchdog.join();
}

std::size_t Bridge::max_frame() const { return state_->budget.max_frame_bytes; }

std::vector<ToolCall> Bridge::calls() const {
  std::lock_guard lk(state_->mu);
  return state_->calls;
}

std::string Bridge::prelude() const {
  Json specs = Json::array();
  for (const Tool* t : state_->tools.list()) {
    specs.push_back({{"name", t->name},
                     {"params", parameter_order(t->parameters)},
                     {"required", t->parameters.value("required", Json::array())},
                     {"doc", python_signature(*t)}});
  }
  // One line, so the program's own lines move by exactly one. JSON strings are Python strings.
  Json src = std::string(python_module());
  return fmt::format(
      "import sys as _wand_sys; _wand_m = type(_wand_sys)('wand_tools'); "
      "exec(compile({}, 'wand_tools.py', 'exec'), _wand_m.__dict__); _wand_sys.modules['wand_tools'] = _wand_m; "
      "_wand_m.install({}, globals(), {}); del _wand_sys, _wand_m\n",
      src.dump(-1, ' ', true), Json(specs.dump()).dump(-1, ' ', true), state_->budget.max_frame_bytes);
}

VoidResult Bridge::attach(sandbox::ExecRequest& req) {
  if (req.language != "python")
    return Error{fmt::format("tools are offered to Python programs; this one is {}", req.language)};
  // The prelude goes first, or after the `from __future__` imports, which Python wants first.
  std::size_t at = 0, line = 0, lines_before = 0;
  for (std::size_t pos = 0; pos < req.code.size(); ++line) {
    std::size_t end = std::min(req.code.find('\n', pos), req.code.size());
    std::string_view text(req.code.data() + pos, end - pos);
    text.remove_prefix(std::min(text.size(), text.find_first_not_of(" \t")));
    if (text.rfind("from __future__ import", 0) == 0) at = end + 1, lines_before = line + 1;
    pos = end + 1;
  }
  at = std::min(at, req.code.size());
  std::string head = req.code.substr(0, at);
  if (!head.empty() && head.back() != '\n') head += '\n';
  req.code = head + prelude() + req.code.substr(at);
  state_->prelude_at = static_cast<int>(lines_before) + 1;
  req.service = shared_from_this();
  return ok_status();
}

void Bridge::on_error(const std::string& why, Reply reply) {
  state_->log({.name = "", .arguments = nullptr, .error = why});
  reply(error_frame(nullptr, "the tool channel is closed: " + why, true));
}

void Bridge::on_frame(std::string body, Reply reply) {
  State& s = *state_;
  auto start = Clock::now();
  auto refuse = [&](const Json& id, const std::string& name, Json args, std::string why) {
    s.log({.name = name, .arguments = std::move(args), .error = why});
    reply(error_frame(id, why));
  };
  auto parsed = parse_json(body, "tool request frame");
  if (!parsed || !parsed->is_object() || !(*parsed)["id"].is_number_integer() || !(*parsed)["tool"].is_string() ||
      !parsed->contains("args")) {
    std::string why = !parsed ? parsed.error().message
                              : "tool request frame: expected {\"id\": integer, \"tool\": string, \"args\": object}";
    return refuse(nullptr, "", nullptr, why);
  }
  Json& req = *parsed;
  Json id = req["id"];
  std::string name = req["tool"].get<std::string>();
  Json args = std::move(req["args"]);
  std::string over;  // a budget this call is over
  bool flood = false;
  {
    std::lock_guard lk(s.mu);
    if (s.n_calls >= s.budget.max_calls) {
      over = fmt::format("budget: this program may make at most {} tool calls", s.budget.max_calls);
      flood = s.n_calls > s.budget.max_calls;
    } else if (s.budget.max_wall_s > 0 && s.tool_seconds >= s.budget.max_wall_s) {
      over = fmt::format("budget: this program's tool calls used their {:g} seconds", s.budget.max_wall_s);
    }
    ++s.n_calls;
  }
  // The log keeps the first refusal of a flood, not every one.
  if (flood) return reply(error_frame(id, over));
  if (!over.empty()) return refuse(id, name, std::move(args), over);
  auto tool = s.tools.get(name);
  if (!tool) {
    std::string granted;
    for (const Tool* t : s.tools.list()) granted += (granted.empty() ? "" : ", ") + t->name;
    return refuse(id, name, std::move(args),
                  fmt::format("tool '{}' is not granted to this run (granted: {})", name, granted.empty() ? "none" : granted));
  }
  if (auto ok = validate_args(tool->parameters, args); !ok)
    return refuse(id, name, std::move(args), fmt::format("tool '{}': {}", name, ok.error().message));

  auto p = std::make_shared<Pending>();
  p->id = id;
  p->reply = reply;  // a copy: refuse() below may still answer through `reply`
  p->start = start;
  p->deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(tool->timeout_s));
  p->record = {.name = name, .arguments = args};
  CallContext ctx{name, p->deadline, tool->timeout_s, s.usage};
  auto invoke = [tool, args = std::move(args), ctx]() -> Result<Json> {
    try {
      auto r = tool->handler(args, ctx);
      if (!r) return Error{fmt::format("tool '{}': {}", tool->name, r.error().message)};
      return r;
    } catch (const std::exception& e) {
      return Error{fmt::format("tool '{}' failed: {}", tool->name, e.what())};
    }
  };
  if (tool->inline_call) return s.complete(*p, invoke());
  // Anything that may block runs on a thread of its own, so calls from several program
  // threads proceed at once and the run's output keeps flowing; but a program may not hold a
  // thousand host threads at once.
  {
    std::unique_lock lk(s.mu);
    if (s.in_flight >= s.budget.max_in_flight) {
      lk.unlock();
      return refuse(id, name, std::move(p->record.arguments),
                    fmt::format("budget: at most {} tool calls may be in flight at once", s.budget.max_in_flight));
    }
    ++s.in_flight;
    s.deadlines.emplace(p->deadline, p);
    if (!s.watchdog.joinable()) s.watchdog = std::thread([&s] { s.watch(); });
  }
  s.cv.notify_all();
  std::thread([state = state_, p, invoke = std::move(invoke)] {
    state->complete(*p, invoke());
    std::lock_guard lk(state->mu);
    --state->in_flight;
    state->cv.notify_all();
  }).detach();
}

void Bridge::finish(sandbox::ExecResult& r) {
  State& s = *state_;
  std::unique_lock lk(s.mu);
  // Workers that outlive their timeout are waited for a little: their handlers may hold what
  // the caller owns. Built-in tools stop themselves at their deadline.
  s.cv.wait_for(lk, std::chrono::seconds(5), [&] { return s.in_flight == 0; });
  Json log = Json::array();
  for (const auto& c : s.calls) log.push_back(to_json(c));
  r.tool_calls = std::move(log);
  s.calls.clear();
  s.n_calls = 0;
  s.result_bytes = 0;
  s.tool_seconds = 0;
  s.usage = std::make_shared<RunUsage>();
  if (s.prelude_at > 0 && r.exception && r.exception->line > s.prelude_at) --r.exception->line;
}

sandbox::ExecResult run(sandbox::Sandbox& sb, sandbox::ExecRequest req, const Registry& tools, const Budget& budget) {
  if (tools.empty()) return sb.run(req);
  auto bridge = std::make_shared<Bridge>(tools, budget);
  if (auto ok = bridge->attach(req); !ok) {
    sandbox::ExecResult r;
    r.error = ok.error().message;
    return r;
  }
  return sb.run(req);
}

Result<std::unique_ptr<sandbox::Session>> open_session(sandbox::Sandbox& sb, const Registry& tools,
                                                       sandbox::Limits per_block, const Budget& budget) {
  if (tools.empty()) return sb.open_session(per_block);
  auto bridge = std::make_shared<Bridge>(tools, budget);
  auto session = sb.open_session(per_block, bridge);
  if (!session) return session.error();
  sandbox::ExecResult r = (*session)->run(bridge->prelude());
  if (r.status != sandbox::Status::ok)
    return Error{fmt::format("the session could not define its tools: {} {}", to_string(r.status),
                             r.error.empty() ? r.stderr_data : r.error)};
  return session;
}

}  // namespace wand::tools
