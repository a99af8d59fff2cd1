#include "common/json.h"

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/text.h"

namespace wand {

namespace {
struct TooDeep {};
}  // namespace

Result<Json> parse_json(std::string_view text, std::string_view what) {
  // The parser itself is iterative; the callback stops it before a value deeper than the limit
  // exists, so nothing later recurses through one.
  Json::parser_callback_t depth_limit = [](int depth, Json::parse_event_t event, Json&) {
    if (depth >= kMaxJsonDepth && (event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start))
      throw TooDeep{};
    return true;
  };
  try {
    return Json::parse(text, depth_limit);
  } catch (const TooDeep&) {
    return Error{fmt::format("{}: invalid JSON: nested deeper than {} levels", what, kMaxJsonDepth)};
  } catch (const Json::exception& e) {  // parse_error, and out_of_range for numbers like 1e400
    // The message without the library's tag ("[json.exception.parse_error.101] "): users read it.
    std::string_view m = e.what();
    if (auto tag = m.find("] "); m.starts_with("[json.exception.") && tag != m.npos) m.remove_prefix(tag + 2);
    return Error{fmt::format("{}: invalid JSON: {}", what, printable(m, 300))};
  }
}

std::string dump_text(const Json& value, int indent) {
  return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

namespace {
// A folder opens and reads as empty: it would pass for an empty file.
VoidResult not_a_folder(const std::string& path) {
  if (std::error_code ec; std::filesystem::is_directory(path, ec)) return Error{fmt::format("{}: a folder, not a file", path)};
  return ok_status();
}
}  // namespace

VoidResult for_each_json_line(const std::string& path, const std::function<VoidResult(int, const Json&)>& fn) {
  if (auto file = not_a_folder(path); !file) return file;
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
  if (auto file = not_a_folder(path); !file) return file.error();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("{}: cannot open: {}", path, std::strerror(errno))};
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Error{fmt::format("{}: read error", path)};
  return ss.str();
}

std::string option_text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float() && static_cast<double>(static_cast<float>(v.get<double>())) == v.get<double>())
    return fmt::format("{}", static_cast<float>(v.get<double>()));
  return v.dump();
}

std::optional<OptionConflict> first_option_conflict(const Json& recorded, const Json& given) {
  if (!recorded.is_object()) return std::nullopt;
  for (auto& [key, value] : given.items())
    if (recorded.contains(key) && recorded[key] != value) {
      std::string option = "--" + key;
      std::replace(option.begin(), option.end(), '_', '-');
      return OptionConflict{option, option_text(value), option_text(recorded[key])};
    }
  return std::nullopt;
}

}  // namespace wand
