#include "reason/extract.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <vector>

#include "common/text.h"
#include "feedback/feedback.h"

namespace wand::reason {
namespace {

std::vector<std::string> lines_of(std::string_view s) {
  auto views = split_lines(s);
  return {views.begin(), views.end()};
}

std::string strip(std::string_view s) {
  std::size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string_view::npos ? "" : std::string(s.substr(b, e - b + 1));
}

// What the method reads from the program: pal `def solution(`, pot `answer = ...` at top level.
// std::regex (libstdc++) recurses once per character matched: a line of a few hundred thousand
// characters (a model repeating a digit) would overflow the stack. Patterns here look at a line's
// first kRegexChars only; what they decide depends on a line's start.
constexpr std::size_t kRegexChars = 256;

bool holds_answer(std::string_view code, std::string_view method) {
  static const std::regex pal(R"(^(async\s+)?def\s+solution\s*\()"), pot(R"(^answer\s*(:[^=]*)?=[^=])");
  for (auto& l : lines_of(code))
    if (std::regex_search(l.substr(0, kRegexChars), method == "pal" ? pal : pot)) return true;
  return false;
}

// The first candidate holding the answer, else the first.
const std::string* choose(const std::vector<std::string>& codes, std::string_view method) {
  for (auto& c : codes)
    if (holds_answer(c, method)) return &c;
  return codes.empty() ? nullptr : &codes.front();
}

std::string decode_entities(std::string s) {
  static const std::vector<std::pair<std::string, std::string>> entities = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}};
  for (auto& [from, to] : entities)
    for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  return out;
}

// <code>...</code> and <pre>...</pre> elements (attributes allowed; <pre><code> counts once); one
// left open by max_tokens runs to the end. Tags match in any case.
std::vector<std::string> tagged_blocks(const std::string& text) {
  std::vector<std::string> out;
  const std::string low = lower(text);
  // The end of an opening tag <NAME> or <NAME attrs> at `at`, or npos.
  auto open_end = [&](std::size_t at, std::string_view name) -> std::size_t {
    std::size_t p = at + 1 + name.size();
    if (low.compare(at + 1, name.size(), name) != 0 || p >= low.size()) return std::string::npos;
    if (low[p] != '>' && low[p] != ' ' && low[p] != '\t' && low[p] != '\n') return std::string::npos;
    std::size_t gt = low.find('>', p);
    return gt == std::string::npos ? gt : gt + 1;
  };
  for (std::size_t at = low.find('<'); at != std::string::npos; at = low.find('<', at + 1)) {
    std::string name = "code";
    std::size_t body = open_end(at, name);
    if (body == std::string::npos) body = open_end(at, name = "pre");
    if (body == std::string::npos) continue;
    std::size_t close = low.find("</" + name + ">", body);
    std::size_t stop = close == std::string::npos ? low.size() : close;
    if (name == "pre") {  // <pre><code>...</code></pre>: the inner element's text
      std::size_t inner = low.find("<code", body);
      if (inner < stop) {
        if (std::size_t e = open_end(inner, "code"); e != std::string::npos && e <= stop) body = e;
        stop = std::min(stop, low.find("</code>", body));
      }
    }
    std::string code = text.substr(body, stop - body);
    while (!code.empty() && code.front() == '\n') code.erase(0, 1);
    out.push_back(decode_entities(code));
    if (close == std::string::npos) break;
    at = close;
  }
  return out;
}

// A line that reads as Python on its own (top level or indented).
bool looks_like_code(const std::string& raw) {
  static const std::regex code(
      R"(^(#.*|(async\s+)?def\s+\w+\s*\(.*|class\s+\w+.*:|(return|import|from|for|while|if|elif|with|try|except|finally|raise|assert|del|global|nonlocal|pass|break|continue|lambda|yield)\b.*|else\s*:.*|[A-Za-z_][\w.]*(\[[^\]]*\])?(\s*,\s*[A-Za-z_][\w.]*)*\s*(:\s*\w+\s*)?(\+|-|\*|/|//|%|\*\*)?=[^=].*|[A-Za-z_][\w.]*\(.*\)\s*(#.*)?|@\w+.*)$)");
  std::string s = strip(raw);
  if (s.empty()) return false;
  // A long line is judged by its start: a statement or an assignment (a long call is not code).
  if (!std::regex_match(s.size() > kRegexChars ? s.substr(0, kRegexChars) : s, code)) return false;
  // Prose that happens to start like a statement: "For each friend, we divide the bill." or
  // "If she saves $15 a week, ..." — a compound statement ends with ':', prose with '.'.
  static const std::regex compound(R"(^(for|while|if|elif|with|try|except|finally|class|def|async)\b.*)");
  if (std::regex_match(s.substr(0, kRegexChars), compound) && s.find(':') == std::string::npos) return false;
  if (s.back() == '.' && s.find('=') == std::string::npos && s.find('(') == std::string::npos) return false;
  return true;
}

// Runs of code lines: a prose line ends a run (a completion model that ran on into the next
// few-shot question starts a second run, which loses to the first).
std::vector<std::string> bare_runs(const std::vector<std::string>& lines) {
  std::vector<std::string> runs;
  std::string run, blanks;
  int depth = 0;          // brackets left open by the previous code line
  bool in_block = false;  // the previous code line opened or was inside an indented block
  auto end_run = [&] {
    if (!run.empty()) runs.push_back(run);
    run.clear(), blanks.clear(), depth = 0, in_block = false;
  };
  for (auto& line : lines) {
    std::string s = strip(line);
    if (s.empty()) {
      if (!run.empty()) blanks += "\n";  // kept only when code follows
      continue;
    }
    bool indented = line[0] == ' ' || line[0] == '\t';
    if (!(depth > 0 || looks_like_code(line) || (in_block && indented))) {
      end_run();
      continue;
    }
    run += blanks + line + "\n";
    blanks.clear();
    depth = std::max(0, depth + bracket_balance(line));
    in_block = s.back() == ':' || indented;
  }
  end_run();
  return runs;
}

// A program written as a REPL session (">>> x = 1"): its input lines, without the output.
std::string from_session(const std::string& code) {
  auto lines = lines_of(code);
  bool session = std::any_of(lines.begin(), lines.end(), [](auto& l) { return strip(l).starts_with(">>>"); });
  if (!session) return code;
  std::string out;
  for (auto& l : lines) {
    std::string s = strip(l);
    if (s.starts_with(">>> ") || s == ">>>") out += s.substr(std::min<std::size_t>(4, s.size())) + "\n";
    else if (s.starts_with("... ") || s == "...") out += s.substr(std::min<std::size_t>(4, s.size())) + "\n";
  }
  return out;
}

std::string normalize_indentation(const std::string& code) {
  std::string out;
  for (auto& l : lines_of(code)) {
    std::size_t i = 0;
    std::string lead;
    for (; i < l.size() && (l[i] == ' ' || l[i] == '\t'); ++i) lead += l[i] == '\t' ? "    " : " ";
    out += lead + l.substr(i) + "\n";
  }
  return out;
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\n") == std::string::npos; }

}  // namespace

int bracket_balance(std::string_view line) {
  int depth = 0;
  char quote = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote) {
      if (c == '\\') ++i;  // an escaped character, a quote among them
      else if (c == quote) quote = 0;
      continue;
    }
    if (c == '#') break;
    if (c == '"' || c == '\'') quote = c;
    else if (c == '(' || c == '[' || c == '{') ++depth;
    else if (c == ')' || c == ']' || c == '}') --depth;
  }
  return depth;
}

Extracted extract_program(std::string_view completion, std::string_view method) {
  std::string text(completion);
  if (text.starts_with("\xEF\xBB\xBF")) text.erase(0, 3);
  for (std::size_t p = text.find('\r'); p != std::string::npos; p = text.find('\r', p))
    if (p + 1 < text.size() && text[p + 1] == '\n') text.erase(p, 1);
    else text[p] = '\n';
  Extracted e;
  std::vector<std::string> codes;
  auto blocks = feedback::code_blocks(text);
  for (auto& b : blocks)
    if (b.tag.empty() || feedback::tag_is(b.tag, "python")) codes.push_back(b.code);
  if (codes.empty())
    for (auto& b : blocks) codes.push_back(b.code);
  std::erase_if(codes, blank);
  if (!codes.empty()) {
    e.source = "fence";
  } else {
    codes = tagged_blocks(text);
    std::erase_if(codes, blank);
    if (!codes.empty()) e.source = "code_tag";
  }
  std::string code;
  if (codes.empty()) {
    codes = bare_runs(lines_of(from_session(text)));
    if (!codes.empty()) e.source = "bare";
  }
  if (const std::string* c = choose(codes, method)) code = *c;
  code = from_session(code);
  if (blank(code)) return {};
  e.program = normalize_indentation(code);
  return e;
}

}  // namespace wand::reason
