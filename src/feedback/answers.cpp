// Answer checks (program-of-thought) and stdin/stdout comparison.
#include <cctype>
#include <cmath>
#include <sstream>

#include "feedback/feedback.h"

namespace wand::feedback {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
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
    if (std::isspace(static_cast<unsigned char>(c))) {
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
    while (!l.empty() && std::isspace(static_cast<unsigned char>(l.back()))) l.pop_back();  // also \r
    lines.push_back(l);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

}  // namespace

std::optional<double> parse_number(std::string_view s) {
  s = trim(s);
  while (!s.empty() && (s.back() == '.' || s.back() == '%')) s.remove_suffix(1);  // "18." "45%"
  if (!s.empty() && s.front() == '$') s.remove_prefix(1);
  if (s.size() > 1 && s.front() == '-' && s[1] == '$') return parse_number("-" + std::string(s.substr(2)));
  auto digit = [&](std::size_t k) { return k < s.size() && std::isdigit(static_cast<unsigned char>(s[k])); };
  std::string t;
  for (std::size_t i = 0; i < s.size(); ++i) {
    // A thousands separator: a comma after a digit and before exactly three digits.
    if (s[i] == ',' && i > 0 && digit(i - 1) && digit(i + 1) && digit(i + 2) && digit(i + 3) && !digit(i + 4))
      continue;
    t += s[i];
  }
  if (auto slash = t.find('/'); slash != std::string::npos) {
    auto num = parse_plain(t.substr(0, slash)), den = parse_plain(t.substr(slash + 1));
    if (!num || !den || *den == 0) return std::nullopt;
    return *num / *den;
  }
  return parse_plain(t);
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
