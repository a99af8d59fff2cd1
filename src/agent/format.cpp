// The compact completion format of agent.h (render_header, render_step, render_plan), parsing a
// step out of a model's output, and clipping long observations.
#include <fmt/core.h>

#include <cstdlib>
#include <filesystem>

#include "agent/agent.h"
#include "common/text.h"
#include "feedback/feedback.h"

namespace wand::agent {
namespace {

void section(std::string& out, const char* title, const std::string& body) {
  if (body.empty()) return;
  out += title;
  out += ":\n";
  out += body;
  if (body.back() != '\n') out += '\n';
}

std::string with_newline(std::string s) {
  if (!s.empty() && s.back() != '\n') s += '\n';
  return s;
}

}  // namespace

std::string render_header(const PromptHead& h) {
  std::string out = "Task: " + trim(h.instruction) + "\n";
  section(out, "Rules", h.rules);
  section(out, "Tools", h.tools);
  section(out, "Skills", h.skills);
  section(out, "State", h.observation);
  return out + "\n";
}

bool lean_prompt(const std::string& prompt_format) { return prompt_format == kOwnPromptFormat; }

std::string one_line_task(const std::string& instruction) {
  std::string t = trim(instruction);
  for (char& c : t)
    if (c == '\n' || c == '\r') c = ' ';
  return t;
}

std::string step_start(const std::string& task) {
  return (task.empty() ? "" : "Task: " + one_line_task(task) + "\n") + kThoughtStart;
}

std::string step_prompt(const std::string& task) {
  std::string p = step_start(task);
  p.pop_back();
  return p;
}

std::string render_step(const StepText& s) {
  return fmt::format("{}{}\nCode:\n{}Observation:\n{}\n", step_start(s.task), one_line_task(s.thought),
                     with_newline(s.code), with_newline(s.observation));
}

std::string render_plan(const std::string& plan) { return "Plan:\n" + with_newline(trim(plan)) + "\n"; }

ParsedStep parse_step(const std::string& output, bool compact) {
  ParsedStep p;
  std::string text = output;
  // A model that goes on past its step (writes the observation itself) is cut there.
  if (auto at = text.find(kStepStop); at != std::string::npos) text.resize(at);
  if (text.rfind("Observation:", 0) == 0) text.clear();
  auto blocks = feedback::code_blocks(text);
  if (!blocks.empty()) {
    p.code = feedback::extract_code(text, "python");
    auto fence = text.find("```");
    if (fence == std::string::npos) fence = text.find("~~~");
    p.thought = trim(text.substr(0, fence == std::string::npos ? 0 : fence));
  } else if (auto at = text.find("Code:\n"); at != std::string::npos) {
    p.thought = trim(text.substr(0, at));
    p.code = text.substr(at + 6);
  } else if (compact) {
    // The compact format without its "Code:" line: the first line is the thought.
    auto nl = text.find('\n');
    p.thought = trim(text.substr(0, nl));
    if (nl != std::string::npos) p.code = text.substr(nl + 1);
  } else {
    p.thought = trim(text);
  }
  if (p.thought.rfind("Thought:", 0) == 0) p.thought = trim(p.thought.substr(8));
  if (trim(p.code).empty()) p.code.clear();
  while (!p.code.empty() && (p.code.back() == '\n' || p.code.back() == ' ')) p.code.pop_back();
  return p;
}

std::string clip_middle(const std::string& text, std::size_t max_chars) {
  if (text.size() <= max_chars) return text;
  std::size_t head = max_chars * 2 / 3, tail = max_chars - head;
  // Whole lines where a line end is near, whole UTF-8 characters always.
  if (auto nl = text.rfind('\n', head); nl != std::string::npos && nl + 80 > head) head = nl + 1;
  std::size_t from = text.size() - tail;
  if (auto nl = text.find('\n', from); nl != std::string::npos && nl < from + 80) from = nl + 1;
  while (head > 0 && (static_cast<unsigned char>(text[head]) & 0xC0) == 0x80) --head;
  while (from < text.size() && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80) ++from;
  return text.substr(0, head) + fmt::format("\n... [{} characters cut] ...\n", from - head) + text.substr(from);
}

Result<std::string> default_agent_model(const std::string& models_dir) {
  if (const char* m = std::getenv("WAND_AGENT_MODEL"); m && *m) return std::string(m);
  std::string shipped = models_dir + "/wand-agent.gguf";
  if (std::filesystem::exists(shipped)) return "local:" + shipped;
  return Error{fmt::format(
      "no agent model: {} is not there and $WAND_AGENT_MODEL is not set; give --model local:PATH.gguf, or "
      "--model openai:http://HOST:PORT/v1/MODEL for an OpenAI-compatible server (vLLM, llama.cpp, Ollama, wand serve)",
      shipped)};
}

}  // namespace wand::agent
