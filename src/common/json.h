// JSON is nlohmann::json throughout; this header adds helpers that turn parse failures
// into Results naming the input.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace wand {

using Json = nlohmann::json;

// Parses `text`; `what` names the input in the error ("stdin line 3", "config.json").
Result<Json> parse_json(std::string_view text, std::string_view what);

// Calls fn(line_number, value) for each non-blank line of a JSON-lines file. Stops at the first
// unreadable or invalid line (the error names the file and line) or the first error fn returns.
VoidResult for_each_json_line(const std::string& path, const std::function<VoidResult(int, const Json&)>& fn);

// Reads a whole file; errors name the path and the reason.
Result<std::string> read_file(const std::string& path);

}  // namespace wand
