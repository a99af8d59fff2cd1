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

// Deepest nesting of arrays and objects parse_json accepts. nlohmann::json copies, compares and
// prints values recursively, so a deeper value (a line of 200,000 '[') would overflow the stack.
constexpr int kMaxJsonDepth = 512;

// Parses untrusted `text`: the one guarded path every reader of JSON from outside uses (request
// lines, datasets, samples, request bodies, responses). Invalid JSON, a number beyond double
// range (1e400) and nesting deeper than kMaxJsonDepth are Errors naming `what` ("stdin line 3",
// "config.json"); nothing throws.
Result<Json> parse_json(std::string_view text, std::string_view what);

// Calls fn(line_number, value) for each non-blank line of a JSON-lines file, each parsed with
// parse_json. Stops at the first unreadable or invalid line (the error names the file and line)
// or the first error fn returns.
VoidResult for_each_json_line(const std::string& path, const std::function<VoidResult(int, const Json&)>& fn);

// Reads a whole file; errors name the path and the reason.
Result<std::string> read_file(const std::string& path);

}  // namespace wand
