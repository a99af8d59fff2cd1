#include "common/json.h"

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace wand {

Result<Json> parse_json(std::string_view text, std::string_view what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    return Error{fmt::format("{}: invalid JSON: {}", what, e.what())};
  }
}

VoidResult for_each_json_line(const std::string& path, const std::function<VoidResult(int, const Json&)>& fn) {
  std::ifstream in(path);
  if (!in) return Error{fmt::format("{}: cannot open: {}", path, std::strerror(errno))};
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = parse_json(line, fmt::format("{} line {}", path, n));
    if (!j) return j.error();
    if (auto r = fn(n, j.value()); !r) return r;
  }
  return ok_status();
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("{}: cannot open: {}", path, std::strerror(errno))};
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Error{fmt::format("{}: read error", path)};
  return ss.str();
}

}  // namespace wand
