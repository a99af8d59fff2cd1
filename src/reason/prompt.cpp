#include "reason/prompt.h"

#include "common/json.h"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/core.h>

extern const std::string_view wand_embedded_prompt_cot_wand, wand_embedded_prompt_cot_completion,
    wand_embedded_prompt_cot_chat, wand_embedded_prompt_pot_wand, wand_embedded_prompt_pot_completion,
    wand_embedded_prompt_pot_chat, wand_embedded_prompt_pal_wand, wand_embedded_prompt_pal_completion,
    wand_embedded_prompt_pal_chat, wand_embedded_prompt_repair_wand, wand_embedded_prompt_repair_completion,
    wand_embedded_prompt_repair_chat, wand_embedded_prompt_flow_completion, wand_embedded_prompt_flow_chat;

namespace wand::reason {

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

namespace {

// Checks the placeholders on one line: each "{{name}}" must be allowed ("end" always is).
VoidResult check_placeholders(std::string_view line, const std::string& where, const std::vector<std::string>& allowed,
                              std::vector<std::string>& used) {
  for (std::size_t p = line.find("{{"); p != std::string_view::npos; p = line.find("{{", p + 2)) {
    std::size_t e = line.find("}}", p + 2);
    if (e == std::string_view::npos) continue;  // a program's own "{{" (an escaped brace in an f-string)
    std::string name(line.substr(p + 2, e - p - 2));
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum((unsigned char)c) || c == '_'; }))
      continue;  // not a placeholder's shape: the text's own braces
    if (name == "end") {
      if (e + 2 != line.size()) return Error{fmt::format("{}: '{{{{end}}}}' must end its line", where)};
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string names;
      for (auto& a : allowed) names += (names.empty() ? "{{" : ", {{") + a + "}}";
      return Error{fmt::format("{}: unknown placeholder '{{{{{}}}}}' (this template may use {})", where, name, names)};
    }
    used.push_back(name);
  }
  return ok_status();
}

std::string unescape_stop(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == 'n') {
      out += '\n';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string trim_blank_lines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && s[b] == '\n') ++b;
  return s.substr(b);
}

}  // namespace

Result<Template> parse_template(const std::string& text, const std::string& name, const std::vector<std::string>& allowed,
                                const std::vector<std::string>& required) {
  Template t;
  t.name = name;
  t.hash = sha256_hex(text);
  std::string section;  // current section's name; "" before the first
  int section_line = 0;
  std::string body;
  bool ended = false;  // {{end}} seen in the current prompt section
  std::vector<std::string> used, last_used;  // placeholders: everywhere, and in the current section
  bool has_prompt = false;

  auto close_section = [&]() -> VoidResult {
    std::string where = fmt::format("{} line {}", name, section_line);
    if (section == "prompt") {
      t.prompt = body;
    } else if (section == "system" || section == "user" || section == "assistant") {
      std::string content = trim_blank_lines(body);
      if (content.empty()) return Error{fmt::format("{}: the '{}' turn is empty", where, section)};
      t.messages.push_back({section, content});
    }
    return ok_status();
  };

  std::istringstream in(text);
  int lineno = 0;
  for (std::string line; std::getline(in, line);) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string where = fmt::format("{} line {}", name, lineno);
    if (line.starts_with("@@")) {
      if (auto r = close_section(); !r) return r.error();
      std::string s = line.substr(2);
      s.erase(0, s.find_first_not_of(" \t"));
      s.erase(s.find_last_not_of(" \t") + 1);
      static const std::vector<std::string> known = {"prompt", "system", "user", "assistant", "stop"};
      if (std::find(known.begin(), known.end(), s) == known.end())
        return Error{fmt::format("{}: unknown section '@@ {}' (expected prompt, system, user, assistant or stop)", where, s)};
      if (s == "prompt" && has_prompt) return Error{fmt::format("{}: a second '@@ prompt' section", where)};
      if (s == "system" && !t.messages.empty())
        return Error{fmt::format("{}: '@@ system' must be the first turn", where)};
      has_prompt |= s == "prompt";
      section = s, section_line = lineno, body.clear(), ended = false;
      continue;
    }
    if (section.empty()) {
      if (line.find_first_not_of(" \t") == std::string::npos || line.starts_with("#")) continue;
      return Error{fmt::format("{}: text before the first section (a template starts with '@@ prompt' or '@@ system'/'@@ user')", where)};
    }
    if (section == "stop") {
      if (!line.empty()) t.stop.push_back(unescape_stop(line));
      continue;
    }
    if (ended) return Error{fmt::format("{}: text after '{{{{end}}}}'", where)};
    std::vector<std::string> here;
    if (auto r = check_placeholders(line, where, allowed, here); !r) return r.error();
    used.insert(used.end(), here.begin(), here.end());
    if (line.ends_with("{{end}}")) {
      if (section != "prompt") return Error{fmt::format("{}: '{{{{end}}}}' belongs in a '@@ prompt' section", where)};
      body += line.substr(0, line.size() - 7);
      ended = true;
      continue;
    }
    body += line + "\n";
  }
  if (auto r = close_section(); !r) return r.error();
  if (has_prompt && !t.messages.empty())
    return Error{fmt::format("{}: has both '@@ prompt' and chat turns; a template is one or the other", name)};
  if (!has_prompt && t.messages.empty())
    return Error{fmt::format("{}: no '@@ prompt' section and no chat turns", name)};
  if (!t.messages.empty() && t.messages.back().role != "user")
    return Error{fmt::format("{}: the last turn must be '@@ user' (the model answers it)", name)};
  for (auto& r : required)
    if (std::find(used.begin(), used.end(), r) == used.end())
      return Error{fmt::format("{}: the template never uses '{{{{{}}}}}'", name, r)};
  return t;
}

Result<Template> load_template(const std::string& path, const std::vector<std::string>& allowed,
                               const std::vector<std::string>& required) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("{}: cannot read the prompt template", path)};
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_template(ss.str(), path, allowed, required);
}

Result<Template> builtin_template(const std::string& method, const std::string& family) {
  static const std::map<std::string, std::string_view> files = {
      {"cot.wand", wand_embedded_prompt_cot_wand},
      {"cot.completion", wand_embedded_prompt_cot_completion},
      {"cot.chat", wand_embedded_prompt_cot_chat},
      {"pot.wand", wand_embedded_prompt_pot_wand},
      {"pot.completion", wand_embedded_prompt_pot_completion},
      {"pot.chat", wand_embedded_prompt_pot_chat},
      {"pal.wand", wand_embedded_prompt_pal_wand},
      {"pal.completion", wand_embedded_prompt_pal_completion},
      {"pal.chat", wand_embedded_prompt_pal_chat},
      {"flow.completion", wand_embedded_prompt_flow_completion},
      {"flow.chat", wand_embedded_prompt_flow_chat},
      {"repair.wand", wand_embedded_prompt_repair_wand},
      {"repair.completion", wand_embedded_prompt_repair_completion},
      {"repair.chat", wand_embedded_prompt_repair_chat}};
  auto it = files.find(method + "." + family);
  if (it == files.end()) return Error{fmt::format("no built-in prompt for method '{}' and family '{}'", method, family)};
  bool repair = method == "repair";
  std::vector<std::string> allowed = repair ? std::vector<std::string>{"question", "program", "feedback"}
                                            : std::vector<std::string>{"question"};
  // The repair round for wand's models asks the question again; a completion model's continues
  // its prompt and failed completion (the program is already there); a chat model's shows it.
  std::vector<std::string> required = !repair || family == "wand" ? std::vector<std::string>{"question"}
                                      : family == "completion"    ? std::vector<std::string>{"feedback"}
                                                                  : std::vector<std::string>{"program", "feedback"};
  return parse_template(std::string(it->second), "prompts/" + it->first + ".txt", allowed, required);
}

std::string prompt_text(const Rendered& r) {
  if (r.messages.empty()) return r.prompt;
  Json j = Json::array();
  for (auto& m : r.messages) j.push_back({{"role", m.role}, {"content", m.content}});
  return dump_text(j);
}

Rendered render(const Template& t, const std::map<std::string, std::string>& values) {
  auto fill = [&](const std::string& text) {
    std::string out;
    std::size_t p = 0;
    while (p < text.size()) {
      std::size_t b = text.find("{{", p);
      if (b == std::string::npos) break;
      std::size_t e = text.find("}}", b + 2);
      if (e == std::string::npos) break;
      auto it = values.find(text.substr(b + 2, e - b - 2));
      if (it == values.end()) {  // not a placeholder: the text's own braces
        out.append(text, p, b + 2 - p);
        p = b + 2;
        continue;
      }
      out.append(text, p, b - p).append(it->second);
      p = e + 2;
    }
    return out.append(text, p);
  };
  Rendered r;
  r.prompt = fill(t.prompt);
  for (auto& m : t.messages) r.messages.push_back({m.role, fill(m.content)});
  return r;
}

}  // namespace wand::reason
