#include "common/text.h"

#include <fmt/core.h>

namespace wand {

std::string printable(std::string_view s, std::size_t max_bytes) {
  std::string out;
  std::string_view shown = s.substr(0, max_bytes);
  out.reserve(shown.size());
  for (unsigned char c : shown) {
    // The backslash is escaped too, so "\x41" in a name cannot pass for an escaped byte.
    if (c < 0x20 || c >= 0x7f || c == '\\')
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  if (s.size() > shown.size()) out += fmt::format("… ({} more bytes)", s.size() - shown.size());
  return out;
}

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

namespace {
constexpr std::string_view kBlanks = " \t\r\n";
}

bool is_blank(std::string_view s) { return s.find_first_not_of(kBlanks) == std::string_view::npos; }

std::string trim(std::string_view s) {
  std::size_t b = s.find_first_not_of(kBlanks);
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(kBlanks) - b + 1));
}

bool is_python_identifier(std::string_view s) {
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (s.empty() || !letter(s.front())) return false;
  for (char c : s)
    if (!letter(c) && !(c >= '0' && c <= '9')) return false;
  return true;
}

}  // namespace wand
