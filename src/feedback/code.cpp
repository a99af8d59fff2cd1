// Code in model completions: taking the program out of fenced blocks and prose, the way chat
// models write it, so it can be judged (wand eval --extract-code) or run (reason, codegen).
#include <algorithm>
#include <cctype>

#include "feedback/feedback.h"

namespace wand::feedback {
namespace {

std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> lines;
  for (std::size_t pos = 0; pos <= s.size();) {
    std::size_t nl = s.find('\n', pos);
    if (nl == std::string_view::npos) {
      if (pos < s.size()) lines.push_back(s.substr(pos));
      break;
    }
    lines.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

// A fence line: indentation, then three or more ` or ~ (a backtick fence's info string holds no
// backtick, so "```x```" inside a line of prose is not one).
struct Fence {
  std::size_t indent = 0, length = 0;
  char mark = 0;
  std::string_view info;
};
std::optional<Fence> fence_of(std::string_view line) {
  Fence f;
  while (f.indent < line.size() && (line[f.indent] == ' ' || line[f.indent] == '\t')) ++f.indent;
  if (f.indent == line.size() || (line[f.indent] != '`' && line[f.indent] != '~')) return std::nullopt;
  f.mark = line[f.indent];
  while (f.indent + f.length < line.size() && line[f.indent + f.length] == f.mark) ++f.length;
  if (f.length < 3) return std::nullopt;
  f.info = line.substr(f.indent + f.length);
  if (f.mark == '`' && f.info.find('`') != std::string_view::npos) return std::nullopt;
  return f;
}

std::vector<CodeBlock> fenced_blocks(const std::string& text) {
  std::vector<CodeBlock> blocks;
  auto lines = split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    auto open = fence_of(lines[i]);
    if (!open) continue;
    CodeBlock b;
    std::size_t t = open->info.find_first_not_of(" \t{.");
    if (t != std::string_view::npos) {
      auto word = open->info.substr(t, open->info.find_first_of(" \t}", t) - t);
      std::transform(word.begin(), word.end(), std::back_inserter(b.tag),
                     [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
    }
    // Up to the closing fence: the same mark, at least as long, nothing after it. A block cut
    // off by max_tokens has none and runs to the end.
    for (++i; i < lines.size(); ++i) {
      auto close = fence_of(lines[i]);
      if (close && close->mark == open->mark && close->length >= open->length &&
          close->info.find_first_not_of(" \t") == std::string_view::npos)
        break;
      std::string_view l = lines[i];
      for (std::size_t k = 0; k < open->indent && !l.empty() && (l[0] == ' ' || l[0] == '\t'); ++k) l.remove_prefix(1);
      b.code.append(l).append("\n");
    }
    blocks.push_back(std::move(b));
  }
  return blocks;
}

}  // namespace

bool tag_is(const std::string& tag, std::string_view language) {
  static const std::vector<std::pair<std::string_view, std::vector<std::string_view>>> aliases = {
      {"python", {"python", "py", "python3", "py3"}},
      {"c", {"c"}},
      {"cpp", {"cpp", "c++", "cxx", "cc"}},
      {"js", {"js", "javascript", "node", "nodejs"}},
      {"bash", {"bash", "sh", "shell", "zsh"}}};
  for (auto& [name, names] : aliases)
    if (name == language) return std::find(names.begin(), names.end(), tag) != names.end();
  return tag == language;
}

namespace {

// Names a task's tests call ("assert remove_Occ(...)" -> remove_Occ): the function a sample
// must define.
std::vector<std::string> called_names(const std::string& test) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < test.size(); ++i) {
    if (test[i] != '(' || i == 0) continue;
    std::size_t b = i;
    while (b > 0 && (std::isalnum(static_cast<unsigned char>(test[b - 1])) || test[b - 1] == '_')) --b;
    if (b < i) names.emplace_back(test.substr(b, i - b));
  }
  return names;
}

// A top-level `def name(` (or `async def`) in code.
bool defines_function(std::string_view code, std::string_view name) {
  auto skip_spaces = [](std::string_view& s) { s.remove_prefix(std::min(s.find_first_not_of(' '), s.size())); };
  for (auto line : split_lines(code)) {
    if (line.starts_with("async ")) line.remove_prefix(6);
    if (!line.starts_with("def ")) continue;
    line.remove_prefix(4);
    skip_spaces(line);
    if (!line.starts_with(name)) continue;
    line.remove_prefix(name.size());
    skip_spaces(line);
    if (line.starts_with("(")) return true;
  }
  return false;
}

}  // namespace

std::vector<CodeBlock> code_blocks(std::string_view completion) {
  std::string text(completion);
  std::erase(text, '\r');
  return fenced_blocks(text);
}

std::string extract_code(std::string_view completion, std::string_view language, std::span<const std::string> defines) {
  std::string text(completion);
  std::erase(text, '\r');
  auto blocks = fenced_blocks(text);
  if (blocks.empty()) return text;
  std::vector<const CodeBlock*> candidates;
  for (auto& b : blocks)
    if (b.tag.empty() || tag_is(b.tag, language)) candidates.push_back(&b);
  if (candidates.empty())
    for (auto& b : blocks) candidates.push_back(&b);
  for (auto* b : candidates)
    for (auto& name : defines)
      if (defines_function(b->code, name)) return b->code;
  return candidates.front()->code;
}

std::string code_from_completion(const Task& task, std::string_view completion) {
  std::vector<std::string> names;
  if (!task.entry_point.empty()) names.push_back(task.entry_point);
  for (auto& t : task.test_list)
    for (auto& n : called_names(t)) names.push_back(n);
  std::string code = extract_code(completion, "python", names);
  if (task.format != "humaneval" || !defines_function(code, task.entry_point)) return code;
  // The whole function: the program is the prompt (its imports and helpers), then the block,
  // whose definition replaces the prompt's stub. A stub without a docstring gets a body first.
  std::string_view p = task.prompt;
  while (!p.empty() && std::isspace(static_cast<unsigned char>(p.back()))) p.remove_suffix(1);
  std::string head = p.ends_with(":") ? "    pass\n" : "";
  if (!task.prompt.ends_with("\n")) head = "\n" + head;
  return head + "\n" + code;
}

}  // namespace wand::feedback
