// JSON is nlohmann::json throughout; this header adds helpers that turn parse failures
// into Results naming the input.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
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
// or the first error fn returns. A folder is an error, not an empty file.
VoidResult for_each_json_line(const std::string& path, const std::function<VoidResult(int, const Json&)>& fn);

// `value` as JSON text on one line (indent -1) or indented: bytes that are not UTF-8 (a model's
// output, a program's, a file's) become U+FFFD instead of the exception nlohmann::json::dump
// throws. Every writer of JSON that may hold such bytes uses it.
std::string dump_text(const Json& value, int indent = -1);

// Reads a whole file; errors name the path and the reason (a folder is one).
Result<std::string> read_file(const std::string& path);

// A recorded option's value as a user types it: a string as it is, a number recorded from a float
// option (--temperature 0.7) as the float's shortest form rather than 0.699999988079071, anything
// else as JSON. For messages naming what a run was made with.
std::string option_text(const Json& value);

// Resuming what was recorded with its options (`wand improve`'s run, `wand study mixture`'s folder):
// the first key of `given` whose value differs from `recorded`'s, named as its option ("--eval-limit"
// for eval_limit) with both values as option_text shows them; nullopt when they agree. Keys
// `recorded` lacks (an older record) are not compared.
struct OptionConflict {
  std::string option, given, recorded;
};
std::optional<OptionConflict> first_option_conflict(const Json& recorded, const Json& given);

}  // namespace wand
