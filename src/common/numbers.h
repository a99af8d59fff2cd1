// Numbers given as text (command-line options): one rule type and one message form for every
// numeric option of every command. Header-only and standard-library-only, because wand-train
// (which depends on libtorch alone) uses it too.
//
//   number_problem("nan", {.lo = 0, .hi = 86400, .lo_open = true, .unit = "seconds"})
//     == "must be a positive number of seconds up to 86400, got 'nan'"
#pragma once
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace wand {

struct NumberRule {
  double lo = 0, hi = 0;      // accepted range, inclusive (finite; keep hi short to print)
  bool integer = false;       // whole numbers only, written without a point or exponent
  bool lo_open = false;       // lo itself is excluded ("a positive number" when lo is 0)
  std::string_view unit = {};  // "seconds", "MiB", ... ("" for none)
};

namespace detail {
inline std::string short_number(double v) {  // %g: never hundreds of digits
  if (v == 1.8446744073709552e19) return "18446744073709551615";  // 2^64 - 1, seeds
  char buf[32];
  std::snprintf(buf, sizeof buf, v == std::floor(v) && std::fabs(v) < 1e15 ? "%.0f" : "%.6g", v);
  return buf;
}
// The text as given, quoted for a message: clipped, and anything unprintable as '?'.
inline std::string quoted(std::string_view text) {
  std::string s;
  for (char c : text.substr(0, 40)) s += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > 40) s += "...";
  return "'" + s + "'";
}
}  // namespace detail

// What values the rule accepts, in words: "a positive number of seconds up to 86400",
// "an integer from 1 to 4096".
inline std::string describe(const NumberRule& r) {
  std::string kind = r.integer ? (r.unit.empty() ? "integer" : "whole number") : "number";
  std::string unit = r.unit.empty() ? "" : " of " + std::string(r.unit);
  if (r.lo_open && r.lo == 0) return "a positive " + kind + unit + " up to " + detail::short_number(r.hi);
  std::string article = kind[0] == 'i' ? "an " : "a ";
  return article + kind + unit + (r.lo_open ? " above " : " from ") + detail::short_number(r.lo) + " to " +
         detail::short_number(r.hi);
}

// "" when `text` is a finite number the rule accepts; else "must be <describe(r)>, got '<text>'".
// NaN, infinities, values beyond double range (1e400), trailing junk and, for integers, points
// and exponents are all refused.
inline std::string number_problem(std::string_view text, const NumberRule& r) {
  std::string problem = "must be " + describe(r) + ", got " + detail::quoted(text);
  std::string s(text);
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return problem;
  double v = 0;
  if (r.integer) {
    const char* end = s.data() + s.size();
    if (s[0] == '-') {
      int64_t i = 0;
      auto [p, ec] = std::from_chars(s.data(), end, i);
      if (ec != std::errc() || p != end) return problem;
      v = static_cast<double>(i);
    } else {
      uint64_t u = 0;
      auto [p, ec] = std::from_chars(s.data(), end, u);
      if (ec != std::errc() || p != end) return problem;
      v = static_cast<double>(u);
    }
  } else {
    char* end = nullptr;
    v = std::strtod(s.c_str(), &end);  // overflow (1e400) gives an infinity; underflow a finite 0
    if (end != s.c_str() + s.size() || !std::isfinite(v)) return problem;
  }
  if (v < r.lo || v > r.hi || (r.lo_open && v == r.lo)) return problem;
  return "";
}

}  // namespace wand
