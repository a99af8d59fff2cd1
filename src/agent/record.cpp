// Agent runs into the run store and back out (record.h).
#include "agent/record.h"

#include <fmt/core.h>

#include <cstring>
#include <ostream>

namespace wand::agent {
namespace {

std::string indented(const std::string& text) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = std::min(text.find('\n', pos), text.size());
    out += "  " + text.substr(pos, end - pos) + "\n";
    pos = end + 1;
  }
  return out;
}

Json head_json(const PromptHead& h) {
  return {{"instruction", h.instruction}, {"rules", h.rules}, {"tools", h.tools}, {"skills", h.skills},
          {"observation", h.observation}};
}

PromptHead head_of(const Json& j) {
  PromptHead h;
  if (!j.is_object()) return h;
  h.instruction = j.value("instruction", "");
  h.rules = j.value("rules", "");
  h.tools = j.value("tools", "");
  h.skills = j.value("skills", "");
  h.observation = j.value("observation", "");
  return h;
}

// The compact text of a step, as a trajectory shows it; `reminder`: the task restated before it
// (a lean prompt's), or "".
std::string compact(const Step& s, const std::string& reminder) {
  if (s.kind == "plan") return render_plan(s.output);
  if (s.kind == "replan") return render_replan(s.thought, s.output);
  return render_step({s.thought, s.code, s.observation, reminder});
}

// The prompt text a run's model read, as recorded: its header (a lean prompt's leaves out the
// rules and tools) and the task each step restates ("" unless lean).
struct Shown {
  std::string header, reminder;
};
Shown shown(const Json& extra) {
  PromptHead head = head_of(extra.value("head", Json()));
  if (!extra.value("lean_prompt", false)) return {render_header(head), ""};
  head.rules.clear();
  head.tools.clear();
  return {render_header(head), head.instruction};
}

bool succeeded(const store::ProblemRecord& p) {
  return p.correct ? *p.correct : p.outcome == kEndFinalAnswer;
}

}  // namespace

store::ProblemRecord to_problem(int index, const std::string& task_id, const PromptHead& head, const AgentResult& r) {
  store::ProblemRecord p;
  p.index = index;
  p.problem_id = task_id;
  p.input = head.instruction;
  if (r.final_answer) p.answer = dump_text(*r.final_answer);
  if (r.check) p.correct = r.check->success;
  p.outcome = r.end_reason;
  double model_s = 0, exec_s = 0;
  for (const auto& s : r.steps) model_s += s.model_s, exec_s += s.exec_s;
  p.timings = {{"wall_s", r.wall_s}, {"model_s", model_s}, {"exec_s", exec_s}};
  p.prompt_tokens = r.prompt_tokens;
  p.completion_tokens = r.completion_tokens;
  p.extra = {{"end_detail", r.end_detail},       {"plan", r.plan},
             {"actions", r.actions},             {"tool_calls", r.tool_calls},
             {"skills_loaded", r.skills_loaded}, {"skills_demoted", r.skills_demoted},
             {"skills_saved", r.skills_saved},   {"prompt_format", r.prompt_format},
             {"lean_prompt", r.lean},
             {"success", r.success()},           {"head", head_json(head)}};
  if (r.check) p.extra["check_reason"] = r.check->reason;
  for (const auto& s : r.steps) {
    store::SampleRecord rec;
    rec.index = s.index;
    rec.prompt = s.prompt;
    rec.completion = s.output;
    rec.program = s.code;
    rec.exec_result = s.exec;
    if (s.kind == "act") rec.verdict = {{"passed", s.error.empty()}, {"feedback", s.error}};
    if (s.index == static_cast<int>(r.steps.size()) - 1 && r.final_answer) rec.answer = dump_text(*r.final_answer);
    rec.extra = to_json(s, /*texts=*/false);
    rec.extra.erase("code");  // the sample's program
    p.samples.push_back(std::move(rec));
  }
  return p;
}

Step step_from_sample(const store::SampleRecord& rec) {
  Step s;
  const Json& x = rec.extra.is_object() ? rec.extra : Json::object();
  s.index = rec.index;
  s.kind = x.value("kind", "act");
  s.prompt = rec.prompt;
  s.output = rec.completion;
  s.code = rec.program;
  s.exec = rec.exec_result;
  s.thought = x.value("thought", "");
  s.observation = x.value("observation", "");
  s.error = x.value("error", "");
  s.tool_calls = x.value("tool_calls", Json::array());
  s.prompt_tokens = x.value("prompt_tokens", 0);
  s.completion_tokens = x.value("completion_tokens", 0);
  s.model_s = x.value("model_s", 0.0);
  s.exec_s = x.value("exec_s", 0.0);
  s.condensed = x.value("condensed", false);
  if (x.contains("value")) s.value = x["value"];
  return s;
}

std::string format_step(const Step& s) {
  std::string out = fmt::format("── step {} ({}) · {} prompt + {} completion tokens · model {:.2f} s", s.index + 1,
                                s.kind, s.prompt_tokens, s.completion_tokens, s.model_s);
  if (s.kind == "act") out += fmt::format(" · run {:.2f} s · {} tool calls", s.exec_s, s.tool_calls.size());
  if (s.condensed) out += " · older steps condensed";
  out += "\n";
  if (s.kind != "act") {
    if (!s.thought.empty()) out += "Why: " + s.thought + "\n";
    return out + "Plan:\n" + indented(s.output);
  }
  if (!s.thought.empty()) out += "Thought: " + s.thought + "\n";
  if (!s.code.empty()) out += "Code:\n" + indented(s.code);
  return out + "Observation:\n" + indented(s.observation);
}

Json trajectory(const std::string& run_id, const store::ProblemRecord& p) {
  const Json& x = p.extra.is_object() ? p.extra : Json::object();
  Json steps = Json::array();
  auto [text, reminder] = shown(x);
  for (const auto& rec : p.samples) {
    Step s = step_from_sample(rec);
    text += compact(s, reminder);
    Json j = to_json(s, /*texts=*/false);
    if (s.kind != "act") j["plan"] = s.output;
    steps.push_back(std::move(j));
  }
  Json final_answer = nullptr;
  if (p.answer) final_answer = Json::parse(*p.answer, nullptr, false);
  return {{"run_id", run_id},
          {"task_id", p.problem_id},
          {"instruction", p.input},
          {"success", succeeded(p)},
          {"end_reason", p.outcome},
          {"end_detail", x.value("end_detail", "")},
          {"final_answer", final_answer},
          {"prompt_tokens", p.prompt_tokens},
          {"completion_tokens", p.completion_tokens},
          {"timings", p.timings},
          {"steps", steps},
          {"text", text}};
}

Result<TrajectoryExport> export_trajectories(const store::Run& run, const std::string& format, std::ostream& out) {
  if (run.info.config.kind != "agent")
    return Error{fmt::format("run {} is a {} run; --format {} takes agent runs", run.info.id, run.info.config.kind, format)};
  if (format != "trajectories" && format != "sft")
    return Error{fmt::format("--format {}: agent runs export as trajectories or sft", format)};
  TrajectoryExport stats;
  auto line = [&](const Json& j) {
    out << dump_text(j) << '\n';
    ++stats.rows;
  };
  for (const auto& p : run.problems) {
    ++stats.tasks;
    if (format == "trajectories") {
      line(trajectory(run.info.id, p));
      continue;
    }
    if (!succeeded(p)) {
      ++stats.skipped;
      continue;
    }
    const Json& x = p.extra.is_object() ? p.extra : Json::object();
    auto [prompt, reminder] = shown(x);
    for (const auto& rec : p.samples) {
      Step s = step_from_sample(rec);
      std::string text = compact(s, reminder);
      if (s.kind == "act") {
        // As the loop prompts: up to "Thought:" (step_prompt); the completion is what the model
        // writes after it, to its stop sequence.
        std::size_t start = step_prompt(reminder).size();
        std::size_t stop = text.find(std::string(kStepStop) + "\n");
        line({{"prompt", prompt + text.substr(0, start)},
              {"completion", text.substr(start, stop + std::strlen(kStepStop) - start)},
              {"task_id", p.problem_id},
              {"step", s.index}});
      }
      prompt += text;
    }
  }
  if (!out) return Error{"writing the export failed"};
  return stats;
}

}  // namespace wand::agent
