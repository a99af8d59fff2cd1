// The CodeAct loop (agent.h): prompt, generate, run the block in the session, observe, until
// final_answer or a budget; planning, stuck detection, condensation of old steps, skills.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "agent/agent.h"
#include "agent/skills.h"
#include "common/text.h"
#include "feedback/feedback.h"
#include "reason/prompt.h"

extern const std::string_view wand_embedded_agent_session;
extern const std::string_view wand_embedded_prompt_agent_chat;
extern const std::string_view wand_embedded_prompt_agent_plan;
extern const std::string_view wand_embedded_prompt_agent_replan;

namespace wand::agent {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kReportTool = "_wand_report";

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }


// The loop's own tool: the session's step driver (session.py) reports each step's outcome
// through it, out of the program's stdout. It only acknowledges; the report is read from the
// call's logged arguments.
tools::Tool report_tool() {
  return {.name = kReportTool,
          .description = "Internal: the agent loop's step report.",
          .parameters = {{"type", "object"}, {"properties", {{"report", Json::object()}}}, {"required", {"report"}}},
          .handler = [](const Json&, const tools::CallContext&) -> Result<Json> { return Json(nullptr); },
          .inline_call = true,
          .source = "agent"};
}

Result<reason::Template> embedded(std::string_view text, const char* name) {
  return reason::parse_template(std::string(text), name, {"question", "rules", "tools", "skills", "observation"}, {});
}

std::string or_none(const std::string& s) { return s.empty() ? "(none)" : s; }

std::string one_line(std::string s, std::size_t max) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (s.size() > max) s = s.substr(0, max) + "…";
  return s;
}

// What the model sees of an older step once condensed.
std::string condensed_line(const Step& s) {
  std::string obs = s.error.empty() ? s.observation : "error: " + s.error;
  std::string code = s.code.substr(0, s.code.find('\n'));
  return fmt::format("- step {}: {} | {} | {}\n", s.index + 1, one_line(s.thought, 80), one_line(code, 60),
                     one_line(obs, 100));
}

}  // namespace

std::string render_replan(const std::string& why, const std::string& plan) {
  return "Replan: " + one_line(why, 300) + "\n" + render_plan(plan);
}

std::string tools_text(const tools::Registry& tools) {
  return tools::python_signatures(tools) +
         "def final_answer(answer) -> None:\n"
         "    \"\"\"Gives the task's answer (any value) and ends the run.\"\"\"\n";
}

bool AgentResult::success() const { return check ? check->success : final_answer.has_value(); }

Json to_json(const Step& s, bool texts) {
  Json j = {{"index", s.index},
            {"kind", s.kind},
            {"thought", s.thought},
            {"code", s.code},
            {"observation", s.observation},
            {"error", s.error},
            {"tool_calls", s.tool_calls},
            {"prompt_tokens", s.prompt_tokens},
            {"completion_tokens", s.completion_tokens},
            {"model_s", s.model_s},
            {"exec_s", s.exec_s},
            {"condensed", s.condensed}};
  if (s.value) j["value"] = *s.value;
  if (texts) j.update({{"output", s.output}, {"prompt", s.prompt}, {"exec", s.exec}});
  return j;
}

Json AgentResult::to_json() const {
  Json steps_json = Json::array();
  for (const auto& s : steps) steps_json.push_back(agent::to_json(s));
  Json j = {{"end_reason", end_reason},
            {"end_detail", end_detail},
            {"final_answer", final_answer ? *final_answer : Json(nullptr)},
            {"success", success()},
            {"plan", plan},
            {"skills_loaded", skills_loaded},
            {"skills_demoted", skills_demoted},
            {"skills_saved", skills_saved},
            {"prompt_tokens", prompt_tokens},
            {"completion_tokens", completion_tokens},
            {"actions", actions},
            {"tool_calls", tool_calls},
            {"wall_s", wall_s},
            {"prompt_format", prompt_format},
            {"lean_prompt", lean},
            {"steps", steps_json}};
  if (check) j["check"] = {{"success", check->success}, {"reason", check->reason}};
  return j;
}

VoidResult validate(const AgentConfig& c) {
  auto bad = [](const char* field, const char* rule, auto v) { return Error{fmt::format("{}: must be {}, got {}", field, rule, v)}; };
  if (c.max_steps < 1 || c.max_steps > 1000) return bad("max_steps", "1..1000", c.max_steps);
  if (c.max_tokens < 0) return bad("max_tokens", "0 (no limit) or more", c.max_tokens);
  if (!(c.max_wall_s >= 0) || c.max_wall_s > 86400) return bad("max_wall_s", "0 (no limit) to 86400 seconds", c.max_wall_s);
  if (c.step_tokens < 1 || c.step_tokens > 65536) return bad("step_tokens", "1..65536", c.step_tokens);
  if (c.context_tokens < 256 || c.context_tokens > 1 << 20) return bad("context_tokens", "256..1048576", c.context_tokens);
  if (c.keep_recent < 1) return bad("keep_recent", "at least 1", c.keep_recent);
  if (c.observation_chars < 100) return bad("observation_chars", "at least 100", c.observation_chars);
  if (c.stuck_repeats < 2) return bad("stuck_repeats", "at least 2", c.stuck_repeats);
  if (c.format != "auto" && c.format != "chat" && c.format != "completion")
    return Error{fmt::format("format: must be auto, chat or completion, got '{}'", c.format)};
  if (c.skills < 0 || c.skills > 50) return bad("skills", "0..50", c.skills);
  return ok_status();
}

Result<AgentTask> task_from_environment(Environment& env, const tools::Registry& extra) {
  AgentTask t;
  t.instruction = env.task().instruction;
  t.rules = env.describe();
  t.observation = env.observe();
  t.tools = env.tools();
  if (auto m = t.tools.merge(extra); !m) return Error{"the granted tools and the environment's: " + m.error().message};
  return t;
}

namespace {

class Loop {
 public:
  Loop(llm::Backend& model, sandbox::Sandbox& sb, const AgentTask& task, const AgentConfig& cfg, const RunHooks& hooks)
      : model_(model), sb_(sb), task_(task), cfg_(cfg), hooks_(hooks) {}

  Result<AgentResult> run() {
    start_ = Clock::now();
    if (auto v = validate(cfg_); !v) return v.error();
    if (is_blank(task_.instruction)) return Error{"the task is empty"};
    compact_ = cfg_.format == "completion" || (cfg_.format == "auto" && !model_.prompt_format().empty());
    r_.prompt_format = compact_ ? "completion" : "chat";
    lean_ = compact_ && lean_prompt(model_.prompt_format());
    r_.lean = lean_;
    for (auto [text, name, out] : {std::tuple{wand_embedded_prompt_agent_chat, "prompts/agent.chat.txt", &chat_},
                                   std::tuple{wand_embedded_prompt_agent_plan, "prompts/agent.plan.txt", &plan_tpl_},
                                   std::tuple{wand_embedded_prompt_agent_replan, "prompts/agent.replan.txt", &replan_tpl_}}) {
      auto t = embedded(text, name);
      if (!t) return t.error();
      *out = std::move(*t);
    }
    tools_ = task_.tools;
    if (auto a = tools_.add(report_tool()); !a) return Error{"the granted tools: " + a.error().message};
    if (auto s = open(); !s) return s.error();
    retrieve_skills();

    if (cfg_.plan && !make_plan("", false)) return finish();
    while (r_.end_reason.empty()) {
      if (!within_budgets()) break;
      act();
      if (!r_.end_reason.empty()) break;
      if (hooks_.stop && hooks_.stop->load()) end(kEndInterrupted, "stopped by a signal");
      else after_step();
    }
    return finish();
  }

 private:
  llm::Backend& model_;
  sandbox::Sandbox& sb_;
  const AgentTask& task_;
  const AgentConfig& cfg_;
  const RunHooks& hooks_;
  AgentResult r_;
  Clock::time_point start_;
  bool compact_ = false;
  bool lean_ = false;  // wand's own model: no rules or tools in the header, the task before each step
  reason::Template chat_, plan_tpl_, replan_tpl_;
  tools::Registry tools_;
  std::unique_ptr<sandbox::Session> session_;
  std::vector<Skill> skills_;       // loaded into the session
  std::string skills_text_;
  // The transcript: actions and plans in order ("plan" entries hold the plan text in output).
  std::vector<const Step*> transcript_;
  double tokens_per_byte_ = 0.25;   // the estimate until the backend reports a count
  int failures_in_a_row_ = 0, same_code_ = 0, same_error_ = 0, stuck_replans_ = 0;
  std::vector<std::string> successful_code_;

  void end(const char* reason, std::string detail) {
    if (!r_.end_reason.empty()) return;
    r_.end_reason = reason;
    r_.end_detail = std::move(detail);
  }

  VoidResult open() {
    sandbox::Limits limits = cfg_.step_limits;
    auto s = tools::open_session(sb_, tools_, limits, cfg_.tool_budget);
    if (!s) return Error{"the agent's session: " + s.error().message};
    session_ = std::move(*s);
    std::string prelude = std::string(wand_embedded_agent_session) +
                          fmt::format("\n_wand_clip = {}\n", cfg_.observation_chars);
    auto r = session_->run(prelude);
    if (r.status != sandbox::Status::ok)
      return Error{fmt::format("the agent's session could not start: {} {}", sandbox::to_string(r.status),
                               r.error.empty() ? r.stderr_data : r.error)};
    return ok_status();
  }

  // The driver's report in a block's result; null when the block never sent one. The last one:
  // the driver reports after the step's code has finished, so a report the code sent itself
  // comes before it and is ignored.
  static Json report_of(const sandbox::ExecResult& r) {
    Json found = nullptr;
    for (const auto& c : r.tool_calls)
      if (c.value("name", "") == kReportTool) found = c["arguments"].value("report", Json::object());
    return found;
  }

  // Runs a call of the driver in the session: its result (without the loop's own tool calls)
  // and the driver's report (null when none came).
  std::pair<sandbox::ExecResult, Json> run_block(const std::string& call) {
    auto r = session_->run(call, hooks_.stop);  // Ctrl-C ends a long block too, not only the loop
    Json report = report_of(r);
    Json kept = Json::array();
    for (auto& c : r.tool_calls)
      if (c.value("name", "") != kReportTool) kept.push_back(c);
    r.tool_calls = kept;
    return {std::move(r), std::move(report)};
  }

  // Whether a function of this name, loaded as a skill, would replace something the program is
  // given: a granted tool or tool namespace (final_answer and the environment's primitives
  // among them), a Python built-in or a private name (the session's step driver is _wand_step).
  // Such a function is neither saved nor loaded; session.py checks the rest of a skill's code.
  bool shadows(const std::string& name) const {
    if (!reserved_skill_name(name).empty()) return true;
    for (const tools::Tool* t : tools_.list())
      if (t->name == name || t->name.rfind(name + ".", 0) == 0) return true;
    return false;
  }

  void retrieve_skills() {
    if (!hooks_.skills || cfg_.skills == 0) return;
    auto found = hooks_.skills->search(task_.instruction, cfg_.skills);
    if (!found) return;  // the library is an aid: a broken one does not stop the run
    for (auto& s : *found) {
      // Loading counts against the run's time budget: past it, the rest are not loaded (the
      // loop then ends as max_time before its first step).
      if (cfg_.max_wall_s > 0 && seconds_since(start_) >= cfg_.max_wall_s) return;
      if (shadows(s.name)) continue;  // a library saved before names were checked: not loaded here
      // The tests run in a program of their own, where the granted tools are stubs: in the
      // session they could reach the real tools (any function's __globals__) or patch its
      // builtins before the first step. A test that calls a tool leaves the skill untested.
      std::string why = skill_test_failure(s);
      if (hooks_.stop && hooks_.stop->load()) return;  // killed by Ctrl-C, not by its tests: not demoted
      if (why.empty()) {  // then only definitions go into the session (session.py checks the code)
        auto [r, report] = run_block(fmt::format("_wand_skill_load({})", dump_text(Json(s.code))));
        if (hooks_.stop && hooks_.stop->load()) return;
        if (report.is_object() && !report.contains("error")) {
          r_.skills_loaded.push_back(s.name);
          skills_.push_back(s);
          continue;
        }
        why = report.is_object() ? report["error"].value("type", "") + ": " + report["error"].value("message", "")
                                 : "the session did not report (" + std::string(sandbox::to_string(r.status)) + ")";
      }
      if (hooks_.write_skills) (void)hooks_.skills->set_demoted(s.name, why);
      r_.skills_demoted.push_back(s.name);
      if (!session_->alive() && !open()) return;
    }
    skills_text_ = render_skills(skills_);
  }

  // A skill's code and tests in a fresh sandboxed program where every granted tool is a stub
  // that raises: "" when they pass or call a tool (untested), else why they fail.
  std::string skill_test_failure(const Skill& s) {
    std::string stubs =
        "class _WandToolInTest(BaseException):\n    pass\n"
        "def _wand_stub(name):\n    def tool(*a, **k):\n        raise _WandToolInTest(name)\n    return tool\n"
        "class _WandStubs:\n    def __init__(self, name):\n        self._name = name\n"
        "    def __getattr__(self, a):\n        raise _WandToolInTest(self._name + '.' + a)\n";
    std::set<std::string> roots;
    for (const tools::Tool* t : tools_.list()) {
      if (t->name == kReportTool) continue;
      auto dot = t->name.find('.');
      std::string root = t->name.substr(0, dot);
      if (!roots.insert(root).second) continue;
      stubs += dot == std::string::npos ? fmt::format("{} = _wand_stub({})\n", root, dump_text(Json(root)))
                                        : fmt::format("{} = _WandStubs({})\n", root, dump_text(Json(root)));
    }
    sandbox::ExecRequest req;
    req.code = stubs + s.code + "\n" + s.tests + "\n";
    req.limits = cfg_.step_limits;
    sandbox::ExecResult r = sb_.run(req);
    if (r.stderr_data.find("_WandToolInTest") != std::string::npos) return {};
    // Lines counted from the skill's own code, after the stubs.
    int first = 1 + static_cast<int>(std::count(stubs.begin(), stubs.end(), '\n'));
    auto v = feedback::judge_asserts(r, req.code, {}, first);
    return v.passed ? "" : v.feedback.empty() ? std::string(sandbox::to_string(r.status)) : v.feedback;
  }

  bool within_budgets() {
    if (r_.actions >= cfg_.max_steps) {
      end(kEndMaxSteps, fmt::format("{} actions, the step budget (--max-steps {})", r_.actions, cfg_.max_steps));
      return false;
    }
    if (cfg_.max_wall_s > 0 && seconds_since(start_) >= cfg_.max_wall_s) {
      end(kEndMaxTime, fmt::format("{:.1f} s, the time budget ({} s)", seconds_since(start_), cfg_.max_wall_s));
      return false;
    }
    if (cfg_.max_tokens > 0 && used_tokens() >= cfg_.max_tokens) {
      end(kEndMaxTokens, fmt::format("{} tokens, the token budget ({})", used_tokens(), cfg_.max_tokens));
      return false;
    }
    return true;
  }

  long used_tokens() const { return r_.prompt_tokens + r_.completion_tokens; }

  // --- prompts

  int estimate(const std::string& text) const { return static_cast<int>(text.size() * tokens_per_byte_) + 1; }
  int estimate(const std::vector<llm::Message>& msgs) const {
    int n = 0;
    for (auto& m : msgs) n += estimate(m.content) + 4;
    return n;
  }

  // Steps [0, condensed) of the transcript's actions are shown condensed; the oldest `dropped`
  // condensed lines are left out altogether (only their count is said).
  struct Shape {
    std::size_t condensed = 0, dropped = 0;
  };

  std::string summary(const Shape& shape) const {
    if (shape.condensed == 0) return "";
    std::string out = "Earlier steps (condensed):\n";
    if (shape.dropped) out += fmt::format("- ({} earlier steps left out)\n", shape.dropped);
    std::size_t seen = 0;
    for (const Step* s : transcript_) {
      if (s->kind != "act") continue;
      if (seen >= shape.condensed) break;
      if (seen++ >= shape.dropped) out += condensed_line(*s);
    }
    return out;
  }

  std::string head_text() const {
    return render_header({.instruction = task_.instruction,
                          .rules = lean_ ? "" : task_.rules,
                          .tools = lean_ ? "" : tools_text(task_.tools),
                          .skills = skills_text_,
                          .observation = task_.observation});
  }

  // The task restated before each step of a lean prompt; "" otherwise.
  std::string reminder() const { return lean_ ? task_.instruction : ""; }

  // The compact prompt: header, condensed summary, then the plans and steps after it.
  std::string compact_prompt(const Shape& shape) const {
    std::string out = head_text() + summary(shape);
    if (shape.condensed) out += "\n";
    std::size_t seen = 0;
    for (const Step* s : transcript_) {
      if (s->kind == "act") {
        if (seen++ < shape.condensed) continue;
        out += render_step({s->thought, s->code, s->observation, reminder()});
      } else if (s->kind == "plan") {
        out += render_plan(s->output);
      } else {
        out += render_replan(s->thought, s->output);
      }
    }
    return out;
  }

  // A user turn; joined to the previous one when that is a user turn too (chat templates want
  // the roles to alternate).
  static void say(std::vector<llm::Message>& msgs, const std::string& text) {
    if (!msgs.empty() && msgs.back().role == "user") msgs.back().content += "\n\n" + text;
    else msgs.push_back({"user", text});
  }

  std::string request(const reason::Template& t, const std::string& why) const {
    return reason::render(t, {{"question", why}}).messages.back().content;
  }

  std::vector<llm::Message> chat_prompt(const Shape& shape) const {
    auto rendered = reason::render(chat_, {{"question", task_.instruction},
                                           {"rules", or_none(task_.rules)},
                                           {"tools", tools_text(task_.tools)},
                                           {"skills", skills_text_.empty() ? "" : "\nSkills saved from earlier tasks (already defined):\n" + skills_text_},
                                           {"observation", task_.observation.empty() ? "" : "Current state:\n" + task_.observation}});
    auto msgs = rendered.messages;
    if (shape.condensed) say(msgs, summary(shape));
    std::size_t seen = 0;
    for (const Step* s : transcript_) {
      if (s->kind == "act") {
        if (seen++ < shape.condensed) continue;
        msgs.push_back({"assistant", s->output});
        say(msgs, "Observation:\n" + s->observation);
      } else {
        say(msgs, s->kind == "replan" ? request(replan_tpl_, s->thought) : request(plan_tpl_, ""));
        msgs.push_back({"assistant", "Plan:\n" + s->output});
        say(msgs, "Now carry out the plan, one step per turn.");
      }
    }
    return msgs;
  }

  // The prompt that fits the context budget: condenses the oldest actions first (keeping the
  // newest keep_recent whole), then leaves out the oldest condensed lines.
  template <class Build>
  auto fitted(Build build, const std::string& tail_text, bool& condensed) const {
    std::size_t actions = 0;
    for (const Step* s : transcript_) actions += s->kind == "act";
    // The model's own context bounds the budget too (a 1k-context local model under the default
    // 4k budget was sent prompts it refused); the completion keeps at most a quarter of it.
    int limit = cfg_.context_tokens;
    if (int ctx = model_.context_length(); ctx > 0) limit = std::min(limit, ctx);
    int budget = limit - std::min(cfg_.step_tokens, limit / 4) - estimate(tail_text);
    Shape shape;
    auto p = build(shape);
    // The newest keep_recent steps stay whole while the budget allows; a model whose context is
    // tight (wand's own 1k-context models) gets them condensed too, the newest last.
    for (std::size_t keep : {static_cast<std::size_t>(cfg_.keep_recent), std::size_t{1}, std::size_t{0}})
      while (estimate(p) > budget && actions > keep + shape.condensed) {
        ++shape.condensed;
        p = build(shape);
      }
    while (estimate(p) > budget && shape.dropped < shape.condensed) {
      ++shape.dropped;
      p = build(shape);
    }
    condensed = shape.condensed > 0;
    return p;
  }

  struct Generated {
    std::string prompt_record, output;
    llm::Completion completion;
    bool ok = false;
  };

  // One model call; the request `extra` is appended (chat: a user turn; compact: text).
  Generated generate(const std::string& chat_request, const std::string& compact_tail, bool& condensed,
                     std::vector<std::string> stop) {
    Generated g;
    llm::GenerateOptions opt;
    opt.max_tokens = cfg_.step_tokens;
    if (cfg_.max_tokens > 0) opt.max_tokens = static_cast<int>(std::max<long>(1, std::min<long>(opt.max_tokens, cfg_.max_tokens - used_tokens())));
    opt.temperature = cfg_.temperature;
    opt.seed = cfg_.seed + transcript_.size();
    opt.stop = std::move(stop);
    // A model that hangs must not hold the run past its time budget or a Ctrl-C.
    opt.cancel = hooks_.stop;
    if (cfg_.max_wall_s > 0)
      opt.deadline = start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg_.max_wall_s));
    auto t0 = Clock::now();
    Result<std::vector<llm::Completion>> out = Error{""};
    std::size_t bytes = 0;
    // The prompt is fitted by an estimate of its tokens; a model that says it is still too long
    // (the estimate ran low: a plan, code the tokenizer splits finely) gets it fitted again with
    // the estimate raised, up to three times, before that ends the run.
    for (int attempt = 0; attempt < 4; ++attempt) {
      bytes = 0;
      if (compact_) {
        std::string p = fitted([&](const Shape& s) { return compact_prompt(s); }, compact_tail, condensed) + compact_tail;
        bytes = p.size();
        g.prompt_record = p;
        out = model_.complete(p, opt);
      } else {
        auto msgs = fitted([&](const Shape& s) { return chat_prompt(s); }, chat_request, condensed);
        if (!chat_request.empty()) say(msgs, chat_request);
        Json j = Json::array();
        for (auto& m : msgs) {
          j.push_back({{"role", m.role}, {"content", m.content}});
          bytes += m.content.size() + 16;
        }
        g.prompt_record = dump_text(j);
        out = model_.chat(msgs, opt);
      }
      if (out || out.error().code != llm::kContextLengthExceeded) break;
      tokens_per_byte_ *= 1.3;
    }
    double secs = seconds_since(t0);
    if (!out && out.error().code == llm::kCancelled) {
      if (hooks_.stop && hooks_.stop->load()) end(kEndInterrupted, "stopped by a signal while the model was answering");
      else end(kEndMaxTime, fmt::format("{:.1f} s, the time budget ({} s), while the model was answering",
                                        seconds_since(start_), cfg_.max_wall_s));
      return g;
    }
    if (!out || out->empty()) {
      end(kEndModelError, out ? "the model returned no completion" : "the model failed: " + out.error().message);
      return g;
    }
    g.completion = (*out)[0];
    g.completion.prompt_ms = secs * 1000;  // carried to the step as model_s
    g.output = g.completion.text;
    r_.prompt_tokens += g.completion.prompt_tokens;
    r_.completion_tokens += g.completion.completion_tokens;
    if (g.completion.prompt_tokens > 0 && bytes > 0)
      tokens_per_byte_ = std::max(0.05, double(g.completion.prompt_tokens) / double(bytes));
    g.ok = true;
    return g;
  }

  // --- steps

  Step& new_step(const char* kind) {
    auto& s = r_.steps.emplace_back();
    s.index = static_cast<int>(r_.steps.size()) - 1;
    s.kind = kind;
    return s;
  }

  // Rebuilds the transcript's pointers (steps may move when the vector grows).
  void note(const Step& s) {
    transcript_.clear();
    for (const auto& x : r_.steps) transcript_.push_back(&x);
    if (hooks_.on_step) hooks_.on_step(s);
  }

  bool make_plan(const std::string& why, bool replan) {
    bool condensed = false;
    std::string chat_request = replan ? request(replan_tpl_, why) : request(plan_tpl_, "");
    std::string tail = replan ? "Replan: " + one_line(why, 300) + "\nPlan:\n" : "Plan:\n";
    // A compact plan ends at its blank line; a chat model's reply is the plan, whatever its shape.
    std::vector<std::string> stop;
    if (compact_) stop = {"\n\n", "\nThought:", "\nCode:"};
    auto g = generate(chat_request, tail, condensed, stop);
    if (!g.ok) return false;
    Step& s = new_step(replan ? "replan" : "plan");
    s.prompt = g.prompt_record;
    s.output = g.output;
    std::string plan = g.output;
    if (plan.rfind("Plan:", 0) == 0) plan = plan.substr(5);
    auto b = plan.find_first_not_of(" \n");
    plan = b == std::string::npos ? "" : plan.substr(b);
    while (!plan.empty() && (plan.back() == '\n' || plan.back() == ' ')) plan.pop_back();
    s.output = plan;
    s.thought = why;
    s.prompt_tokens = g.completion.prompt_tokens;
    s.completion_tokens = g.completion.completion_tokens;
    s.model_s = g.completion.prompt_ms / 1000;
    s.condensed = condensed;
    r_.plan = plan;
    note(s);
    return true;
  }

  void act() {
    bool condensed = false;
    auto g = generate("", step_prompt(reminder()), condensed, {kStepStop});
    if (!g.ok) return;
    Step& s = new_step("act");
    ++r_.actions;
    s.prompt = g.prompt_record;
    s.output = g.output;
    s.prompt_tokens = g.completion.prompt_tokens;
    s.completion_tokens = g.completion.completion_tokens;
    s.model_s = g.completion.prompt_ms / 1000;
    s.condensed = condensed;
    auto parsed = parse_step(g.output, compact_);
    s.thought = parsed.thought;
    s.code = parsed.code;
    if (s.code.empty()) {
      s.error = compact_ ? "No code: write the step's Python after \"Code:\"."
                         : "No code block: write one ```python block with the step's code.";
      s.observation = s.error;
      note(s);
      return;
    }
    run_code(s);
    note(s);
  }

  void run_code(Step& s) {
    auto t0 = Clock::now();
    auto [r, report] = run_block(fmt::format("_wand_step({})", dump_text(Json(s.code))));
    s.exec_s = seconds_since(t0);
    s.exec = sandbox::to_json(r);
    s.tool_calls = r.tool_calls;
    r_.tool_calls += static_cast<int>(r.tool_calls.size());
    std::string out;
    if (!r.stdout_data.empty()) out += r.stdout_data;
    if (r.stdout_truncated) out += "\n[output truncated]\n";
    if (report.is_object()) {
      if (report.contains("value")) {
        s.value = report["value"];
        if (!out.empty() && out.back() != '\n') out += '\n';
        out += report["value"].is_string() ? report["value"].get<std::string>() : dump_text(report["value"]);
      }
      if (report.contains("error")) {
        // The verdict's feedback text, as every method gives errors back to a model.
        sandbox::ExecResult failed = r;
        failed.status = sandbox::Status::runtime_error;
        failed.exception = sandbox::ExceptionInfo{report["error"].value("type", ""), report["error"].value("message", ""),
                                                  report["error"].value("line", 0)};
        s.error = feedback::judge_asserts(failed, s.code).feedback;
      }
      if (report.contains("final")) {
        r_.final_answer = report["final"];
        s.error.clear();
      }
    } else {
      // No report: the block itself was stopped (a time or memory limit, or the session died).
      std::string what = r.status == sandbox::Status::timeout ? fmt::format("the step ran past its time limit ({} s)", cfg_.step_limits.timeout_s)
                         : r.error.empty() ? fmt::format("the step ended with {}", sandbox::to_string(r.status))
                                           : r.error;
      s.error = what;
      if (!session_->alive()) {
        s.error += "; the session was restarted, so variables from earlier steps are gone";
        if (auto o = open(); !o) {
          end(kEndSandboxError, o.error().message);
        } else {
          reload_skills();
        }
      }
    }
    if (!r.stderr_data.empty() && s.error.empty() && !r_.final_answer) out += (out.empty() ? "" : "\n") + std::string("stderr: ") + r.stderr_data;
    if (!s.error.empty()) out += (out.empty() || out.back() == '\n' ? "" : "\n") + std::string("Error: ") + s.error;
    if (r_.final_answer) out += (out.empty() || out.back() == '\n' ? "" : "\n") + std::string("Final answer: ") + dump_text(*r_.final_answer);
    if (out.empty()) out = "(no output)";
    s.observation = clip_middle(out, cfg_.observation_chars);
    if (s.error.empty()) successful_code_.push_back(s.code);
    if (r_.final_answer) end(kEndFinalAnswer, "the program called final_answer");
  }

  void reload_skills() {
    for (auto& s : skills_) (void)run_block(fmt::format("_wand_run({}, globals())", dump_text(Json(s.code))));
  }

  // Stuck detection and re-planning, after an action.
  void after_step() {
    const Step& s = r_.steps.back();
    if (s.kind != "act") return;
    const Step* prev = nullptr;
    for (auto it = r_.steps.rbegin() + 1; it != r_.steps.rend(); ++it)
      if (it->kind == "act") {
        prev = &*it;
        break;
      } else {
        break;  // a plan in between starts the counts afresh
      }
    same_code_ = prev && prev->code == s.code ? same_code_ + 1 : 1;
    same_error_ = !s.error.empty() && prev && prev->error == s.error ? same_error_ + 1 : (s.error.empty() ? 0 : 1);
    failures_in_a_row_ = s.error.empty() ? 0 : failures_in_a_row_ + 1;
    bool blocked = false;
    for (auto& c : s.tool_calls) blocked |= c.contains("error") && !c["error"].get<std::string>().empty();

    std::string stuck;
    if (same_code_ >= cfg_.stuck_repeats) stuck = fmt::format("the same code {} times in a row", same_code_);
    else if (same_error_ >= cfg_.stuck_repeats) stuck = fmt::format("the same error {} times in a row ({})", same_error_, one_line(s.error, 200));
    if (!stuck.empty()) {
      if (stuck_replans_ > 0) {
        end(kEndStuck, stuck + ", also after re-planning");
        return;
      }
      ++stuck_replans_;
      if (!within_budgets()) return;
      make_plan("you wrote " + stuck + ".", true);
      same_code_ = same_error_ = failures_in_a_row_ = 0;
      return;
    }
    if (!cfg_.plan) return;
    std::string why;
    if (failures_in_a_row_ >= 2) why = fmt::format("the last {} steps failed (last error: {}).", failures_in_a_row_, one_line(s.error, 200));
    else if (blocked) why = "an action was blocked: " + one_line(s.error.empty() ? "a tool call failed" : s.error, 200);
    if (why.empty() || !within_budgets()) return;
    make_plan(why, true);
    failures_in_a_row_ = 0;
  }

  Result<AgentResult> finish() {
    if (hooks_.env) r_.check = hooks_.env->check(r_.final_answer ? *r_.final_answer : Json(nullptr));
    r_.wall_s = seconds_since(start_);
    if (hooks_.skills && hooks_.write_skills) keep_skills();
    if (session_) session_->close();
    return std::move(r_);
  }

  // The library learns from the run: loaded skills the code called count a use (and a success
  // when the run succeeded); a successful run's functions are saved (CRAFT: only verified code).
  void keep_skills() {
    bool ok = r_.success();
    for (auto& sk : skills_) {
      bool called = false;
      for (auto& st : r_.steps) called |= st.kind == "act" && st.code.find(sk.name + "(") != std::string::npos;
      if (called) (void)hooks_.skills->record_use(sk.name, ok);
    }
    if (!ok || successful_code_.empty() || !session_ || !session_->alive()) return;
    auto report = run_block(fmt::format("_wand_functions({})", dump_text(Json(successful_code_)))).second;
    if (!report.is_object()) return;
    std::set<std::string> loaded(r_.skills_loaded.begin(), r_.skills_loaded.end());
    for (auto& f : report.value("functions", Json::array())) {
      Skill s;
      s.name = f.value("name", "");
      if (loaded.count(s.name)) continue;  // a loaded skill, not the agent's own
      if (shadows(s.name)) continue;       // would replace a tool or a built-in in later runs
      s.signature = f.value("signature", "");
      s.description = f.value("description", "");
      s.code = f.value("code", "");
      s.tests = f.value("tests", "");
      if (s.description.empty()) s.description = task_.instruction;  // what it was written for
      s.uses = 1;
      s.successes = 1;
      if (hooks_.skills->save(s)) r_.skills_saved.push_back(s.name);
    }
  }
};

}  // namespace

Result<AgentResult> run_agent(llm::Backend& model, sandbox::Sandbox& sandbox, const AgentTask& task,
                              const AgentConfig& config, const RunHooks& hooks) {
  Loop loop(model, sandbox, task, config, hooks);
  return loop.run();
}

}  // namespace wand::agent
