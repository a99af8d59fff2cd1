// Answers: reading numbers as answers write them, finding the final answer in a text (a
// program's printed output, a chain-of-thought rationale), comparing answers, and comparing
// stdin/stdout outputs.
#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

#include "feedback/feedback.h"

namespace wand::feedback {
namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)); }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)); }
bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::optional<double> parse_plain(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::string t(s);
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size() || std::isnan(v)) return std::nullopt;
  return v;
}

std::string normalize_text(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : trim(s)) {
    if (is_space(c)) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::vector<std::string> normalized_lines(std::string_view s) {
  std::vector<std::string> lines;
  std::istringstream in{std::string(s)};
  for (std::string l; std::getline(in, l);) {
    while (!l.empty() && is_space(l.back())) l.pop_back();  // also \r
    lines.push_back(l);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// --- numbers in text: the one grammar parse_number and extract_answer share

struct NumberToken {
  double value;
  std::size_t end;  // where it ends in the scanned text
};

// The byte length of a prefix of s at i among `options`, or 0.
std::size_t prefix_at(std::string_view s, std::size_t i, std::initializer_list<std::string_view> options) {
  for (auto o : options)
    if (s.substr(i).starts_with(o)) return o.size();
  return 0;
}
constexpr std::string_view kMinus = "\xE2\x88\x92";  // U+2212, as typeset text writes a minus
std::size_t sign_at(std::string_view s, std::size_t i) { return prefix_at(s, i, {"-", "+", kMinus}); }
std::size_t currency_at(std::string_view s, std::size_t i) { return prefix_at(s, i, {"$", "\xE2\x82\xAC", "\xC2\xA3"}); }  // $ € £

// A number starting exactly at i: [sign][currency][sign] digits with thousands separators
// ("1,234,567": a comma before exactly three digits), [.digits] [e±digits] [/digits] [%].
// A trailing "." or "," is punctuation, not part of it ("18." and "72," read 18 and 72).
std::optional<NumberToken> scan_number(std::string_view s, std::size_t i) {
  auto digit = [&](std::size_t k) { return k < s.size() && is_digit(s[k]); };
  std::size_t j = i;
  bool negative = false, has_sign = false;
  auto read_sign = [&] {
    if (std::size_t n = sign_at(s, j); n && !has_sign) has_sign = true, negative = s[j] != '+', j += n;
  };
  read_sign();
  j += currency_at(s, j);
  read_sign();  // "$-3.50"
  if (!digit(j) && !(j < s.size() && s[j] == '.' && digit(j + 1))) return std::nullopt;
  std::string t = negative ? "-" : "";
  std::size_t first_group = 0;
  for (; digit(j); ++j, ++first_group) t += s[j];
  if (first_group >= 1 && first_group <= 3)
    while (j < s.size() && s[j] == ',' && digit(j + 1) && digit(j + 2) && digit(j + 3) && !digit(j + 4)) {
      t.append(s.substr(j + 1, 3));
      j += 4;
    }
  bool plain_integer = true;
  if (j < s.size() && s[j] == '.' && digit(j + 1)) {
    plain_integer = false;
    for (t += s[j++]; digit(j); ++j) t += s[j];
  }
  if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
    std::size_t k = j + 1 + ((digit(j + 2) && (s[j + 1] == '-' || s[j + 1] == '+')) ? 1 : 0);
    if (digit(k)) {
      plain_integer = false;
      t.append(s.substr(j, k - j));
      for (j = k; digit(j); ++j) t += s[j];
    }
  }
  auto value = parse_plain(t);
  if (!value || !std::isfinite(*value)) return std::nullopt;
  if (plain_integer && j < s.size() && s[j] == '/' && digit(j + 1)) {  // "3/4"
    std::size_t k = j + 1;
    double den = 0;
    for (; digit(k); ++k) den = den * 10 + (s[k] - '0');
    if (den == 0) return std::nullopt;  // "1/0" is no number
    *value /= den;
    j = k;
  }
  if (j < s.size() && s[j] == '%') ++j;  // "45%" reads 45: see the header
  if (*value == 0) *value = 0;            // no "-0"
  return NumberToken{*value, j};
}

// Every number in s, left to right. A number does not start inside a word ("x2", "mp3") or
// right after a decimal point ("1.2.3" is 1.2); a "-" is a sign only where it starts the number
// ("5-3" is 5 and 3; "-3" and "(-3)" are -3).
std::vector<NumberToken> numbers_in(std::string_view s) {
  std::vector<NumberToken> out;
  for (std::size_t i = 0; i < s.size();) {
    bool can_start = i == 0 || !(is_word(s[i - 1]) || s[i - 1] == '.');
    if (can_start)
      if (auto n = scan_number(s, i)) {
        out.push_back(*n);
        i = n->end;
        continue;
      }
    ++i;
  }
  return out;
}

std::string number_text(double v) { return fmt::format("{}", v); }

// A text answer: words, without the sentence's trailing punctuation or markdown emphasis.
std::string text_answer(std::string_view s) {
  auto strip = [](char c) { return is_space(c) || c == '*' || c == '`' || c == '"' || c == '.' || c == '!' ||
                                   c == '?' || c == ',' || c == ';' || c == ':'; };
  while (!s.empty() && strip(s.back())) s.remove_suffix(1);
  while (!s.empty() && strip(s.front())) s.remove_prefix(1);
  return std::string(s);
}

// What follows a marker: a number right after it (spaces, "=", ":", "*" skipped: "The answer
// is: **18**"), else (when `words` allows) the words up to the end of the sentence ("The answer
// is yes, because…").
std::string value_after(std::string_view s, bool words) {
  std::size_t i = 0;
  while (i < s.size() && (is_space(s[i]) || s[i] == ':' || s[i] == '=' || s[i] == '*')) ++i;
  if (auto n = scan_number(s, i)) return number_text(n->value);
  if (!words) return "";
  s.remove_prefix(i);
  std::size_t end = s.find('\n');
  for (std::size_t k = 0; k < std::min(end, s.size()); ++k)
    if (std::string_view(".,;!?").find(s[k]) != std::string_view::npos && (k + 1 == s.size() || is_space(s[k + 1]))) {
      end = k;
      break;
    }
  return text_answer(s.substr(0, end));
}

// The content of \boxed{...} (nested braces kept), with the LaTeX a boxed number uses made
// plain: \frac{3}{4} -> 3/4, 1{,}000 -> 1,000, \$ and \% -> $ and %, thin spaces dropped.
std::string boxed_content(std::string_view s) {
  int depth = 1;
  std::size_t k = 0;
  for (; k < s.size() && depth; ++k) depth += s[k] == '{' ? 1 : s[k] == '}' ? -1 : 0;
  std::string c(s.substr(0, depth ? k : k - 1));
  auto replace_all = [&](std::string_view from, std::string_view to) {
    for (std::size_t p = 0; (p = c.find(from, p)) != std::string::npos; p += to.size()) c.replace(p, from.size(), to);
  };
  for (auto frac : {"\\dfrac{", "\\tfrac{", "\\frac{"})
    for (std::size_t p; (p = c.find(frac)) != std::string::npos;) {
      std::size_t mid = c.find("}{", p), close = mid == std::string::npos ? mid : c.find('}', mid + 2);
      if (close == std::string::npos) break;
      std::size_t open = p + std::string_view(frac).size();
      c = c.substr(0, p) + c.substr(open, mid - open) + "/" + c.substr(mid + 2, close - mid - 2) + c.substr(close + 1);
    }
  replace_all("{,}", ",");
  replace_all("\\$", "$");
  replace_all("\\%", "%");
  replace_all("\\,", "");
  replace_all("\\!", "");
  for (auto wrap : {"\\text{", "\\textbf{", "\\mathrm{", "\\mbox{"})  // words set in math mode
    for (std::size_t p; (p = c.find(wrap)) != std::string::npos;) {
      std::size_t open = p + std::string_view(wrap).size(), close = c.find('}', open);
      if (close == std::string::npos) break;
      c = c.substr(0, p) + c.substr(open, close - open) + c.substr(close + 1);
    }
  return c;
}

// What a boxed answer's normalized content reads as: a number, or the math as text.
std::string boxed_value(std::string_view c) {
  c = trim(c);
  if (c.find_first_of("\\^_{}") == std::string_view::npos) return value_after(c, true);  // "18 apples": 18
  if (auto n = parse_number(c)) return number_text(*n);
  return text_answer(c);
}

std::string lower(std::string_view s) {
  std::string o(s);
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

// The value of the last marker in s that has one, or nullopt when s has none.
std::optional<std::string> last_marker_value(std::string_view s) {
  const std::string l = lower(s);
  struct Marker {
    std::size_t at, value_at;
    std::string_view what;
  };
  std::vector<Marker> found;
  auto each = [&](std::string_view what, auto&& accept) {
    for (std::size_t p = l.find(what); p != std::string::npos; p = l.find(what, p + 1))
      if (accept(p)) found.push_back({p, p + what.size(), what});
  };
  // "answer is" as words: "The answer is", "the final answer is", "So my answer is".
  each("answer is", [&](std::size_t p) { return (p == 0 || !is_word(l[p - 1])) && (p + 9 == l.size() || !is_word(l[p + 9])); });
  // "answer:" only as a label that starts its line ("Answer: 5", "**Final answer:** 5"), not
  // "to answer: first...".
  each("answer:", [&](std::size_t p) {
    std::size_t line = l.rfind('\n', p);
    line = line == std::string::npos ? 0 : line + 1;
    std::string before;  // the line before the label, less markdown
    for (char c : std::string_view(l).substr(line, p - line))
      if (!is_space(c) && c != '*' && c != '#' && c != '>' && c != '-') before += c;
    return before.empty() || before == "final" || before == "thefinal";
  });
  each("####", [](std::size_t) { return true; });
  each("\\boxed{", [](std::size_t) { return true; });
  std::sort(found.begin(), found.end(), [](auto& a, auto& b) { return a.at > b.at; });
  for (auto& m : found) {
    // "####" is GSM8K's label for a number; followed by words it is a Markdown heading.
    std::string v = m.what == "\\boxed{" ? boxed_value(boxed_content(s.substr(m.value_at)))
                                         : value_after(s.substr(m.value_at), m.what != "####");
    if (!v.empty()) return v;
  }
  return std::nullopt;
}

}  // namespace

std::optional<double> parse_number(std::string_view s) {
  s = trim(s);
  while (!s.empty() && std::string_view(".,;:!?").find(s.back()) != std::string_view::npos) s.remove_suffix(1);
  auto n = scan_number(s, 0);
  if (!n || n->end != s.size()) return std::nullopt;
  return n->value;
}

std::string boxed_answer(std::string_view content) { return boxed_value(boxed_content(std::string(content) + "}")); }

std::string extract_answer(std::string_view text) {
  std::string t(text);
  std::erase(t, '\r');
  if (auto v = last_marker_value(t)) return *v;
  std::string last = last_printed_line(t);
  auto numbers = numbers_in(last);
  if (!numbers.empty()) return number_text(numbers.back().value);
  return text_answer(last);
}

bool answers_match(std::string_view got, std::string_view expected, double abs_tol, double rel_tol) {
  auto g = parse_number(got), e = parse_number(expected);
  if (g && e) return std::fabs(*g - *e) <= std::max(abs_tol, rel_tol * std::fabs(*e));
  return normalize_text(got) == normalize_text(expected);
}

std::string last_printed_line(std::string_view out) {
  auto lines = normalized_lines(out);
  for (auto it = lines.rbegin(); it != lines.rend(); ++it)
    if (!trim(*it).empty()) return std::string(trim(*it));
  return {};
}

bool outputs_match(std::string_view got, std::string_view expected, std::optional<double> float_tol) {
  auto g = normalized_lines(got), e = normalized_lines(expected);
  if (g.size() != e.size()) return false;
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (g[i] == e[i]) continue;
    if (!float_tol) return false;
    std::istringstream gs(g[i]), es(e[i]);
    std::string a, b;
    while (true) {
      bool more_a = static_cast<bool>(gs >> a), more_b = static_cast<bool>(es >> b);
      if (more_a != more_b) return false;
      if (!more_a) break;
      if (a == b) continue;
      auto x = parse_plain(a), y = parse_plain(b);
      if (!x || !y || std::fabs(*x - *y) > *float_tol * std::max(1.0, std::fabs(*y))) return false;
    }
  }
  return true;
}

}  // namespace wand::feedback
