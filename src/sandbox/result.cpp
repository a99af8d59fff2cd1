// ExecResult and ExecRequest as JSON (the `wand exec --jsonl` schema), and the Python
// traceback parser.
#include <fmt/core.h>

#include <cmath>
#include <cstdint>
#include <regex>
#include <sstream>

#include "common/base64.h"
#include "sandbox/sandbox.h"
#include "sandbox/wire.h"

namespace wand::sandbox {

namespace {
constexpr const char* kStatusNames[] = {"ok",           "runtime_error", "timeout", "memory_limit",
                                        "output_limit", "compile_error", "killed",  "sandbox_error"};

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (n < 0 || i + n >= s.size()) return false;
    for (int k = 1; k <= n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n + 1;
  }
  return true;
}

Json bytes_json(const std::string& data) {
  if (valid_utf8(data)) return {{"text", data}};
  return {{"base64", base64_encode(data)}};
}

// The JSON-lines fields of the count limits, with their ranges (sandbox.h).
struct CountLimit {
  const char* field;
  const NumberRule& range;
};
constexpr CountLimit kMemoryMb{"memory_mb", kMemoryMbRange}, kMaxProcesses{"max_processes", kMaxProcessesRange},
    kMaxFileMb{"max_file_mb", kMaxFileMbRange}, kMaxOpenFiles{"max_open_files", kMaxOpenFilesRange},
    kMaxOutputBytes{"max_output_bytes", kMaxOutputBytesRange};

// describe() words the range as the CLI does; {:g} prints a value such as 1e308 as such, not as
// its 309 digits.
VoidResult check_seconds(std::string_view field, double v) {
  if (std::isfinite(v) && v > kTimeoutRange.lo && v <= kTimeoutRange.hi) return ok_status();
  return Error{fmt::format("field '{}': must be {}, got {:g}", field, describe(kTimeoutRange), v)};
}

VoidResult check_count(const CountLimit& c, long double v) {
  if (v >= c.range.lo && v <= c.range.hi) return ok_status();
  // A whole number as written (1073741825, not 1.07374e+09).
  std::string got = std::fabs(v) < 1e18L && v == std::floor(v) ? fmt::format("{}", static_cast<long long>(v))
                                                                : fmt::format("{:g}", static_cast<double>(v));
  return Error{fmt::format("field '{}': must be {}, got {}", c.field, describe(c.range), got)};
}

const CountLimit* count_limit(std::string_view field) {
  for (const CountLimit* c : {&kMemoryMb, &kMaxProcesses, &kMaxFileMb, &kMaxOpenFiles, &kMaxOutputBytes})
    if (field == c->field) return c;
  return nullptr;
}

// A JSON integer limit, read without wrapping (2^64-1 stays large, -1 stays negative).
Result<std::uint64_t> json_count(const Json& v, const CountLimit& c) {
  if (!v.is_number_integer())
    return Error{fmt::format("field '{}': must be a positive integer, got {}", c.field, v.dump())};
  long double n = v.is_number_unsigned() ? static_cast<long double>(v.get<std::uint64_t>())
                                         : static_cast<long double>(v.get<std::int64_t>());
  if (auto ok = check_count(c, n); !ok) return ok.error();
  return static_cast<std::uint64_t>(n);
}
}  // namespace

VoidResult validate_env(const std::map<std::string, std::string>& env) {
  for (const auto& [name, value] : env) {
    if (name.empty() || name.find_first_of(std::string_view("=\0", 2)) != std::string::npos)
      return Error{fmt::format("field 'env': {} is not an environment variable name (no '=', no NUL, not empty)",
                               Json(name).dump())};
    if (value.find('\0') != std::string::npos)
      return Error{fmt::format("field 'env': the value of {} holds a NUL byte", name)};
  }
  return ok_status();
}

VoidResult validate(const Limits& l, std::string_view timeout_field) {
  for (const VoidResult& r :
       {check_seconds(timeout_field, l.timeout_s), check_count(kMemoryMb, l.memory_mb),
        check_count(kMaxProcesses, l.max_processes), check_count(kMaxFileMb, l.max_file_mb),
        check_count(kMaxOpenFiles, l.max_open_files), check_count(kMaxOutputBytes, l.max_output_bytes)})
    if (!r) return r;
  return ok_status();
}

const char* to_string(Status s) { return kStatusNames[static_cast<int>(s)]; }

std::optional<Status> status_from_string(std::string_view s) {
  for (int i = 0; i < 8; ++i)
    if (s == kStatusNames[i]) return static_cast<Status>(i);
  return std::nullopt;
}

Limits default_compile_limits() {
  Limits l;
  l.timeout_s = 60;
  l.memory_mb = 1024;
  l.max_processes = 64;
  l.max_output_bytes = 64 * 1024;
  return l;
}

Json to_json(const ExecResult& r) {
  Json j = {{"status", to_string(r.status)},
            {"exit_code", r.exit_code},
            {"signal", r.signal},
            {"stdout", r.stdout_data},
            {"stderr", r.stderr_data},
            {"stdout_truncated", r.stdout_truncated},
            {"stderr_truncated", r.stderr_truncated},
            {"wall_time", r.wall_s},
            {"cpu_time", r.cpu_s},
            {"peak_memory_kb", r.peak_memory_kb}};
  j["limit_hit"] = r.limit_hit.empty() ? Json(nullptr) : Json(r.limit_hit);
  if (r.exception)
    j["exception"] = {{"type", r.exception->type}, {"message", r.exception->message}, {"line", r.exception->line}};
  else
    j["exception"] = nullptr;
  if (!r.error.empty()) j["error"] = r.error;
  if (!r.compile_output.empty() || r.compile_s > 0) {
    j["compile_output"] = r.compile_output;
    j["compile_time"] = r.compile_s;
  }
  if (!r.files.empty()) {
    Json files = Json::object();
    for (const auto& [name, f] : r.files) {
      Json e = f.error.empty() ? bytes_json(f.data) : Json{{"error", f.error}};
      if (f.truncated) e["truncated"] = true;
      files[name] = e;
    }
    j["files"] = files;
  }
  if (!r.tool_calls.empty()) j["tool_calls"] = r.tool_calls;
  if (!r.channel_data.empty()) j["channel"] = bytes_json(r.channel_data);
  return j;
}

namespace {

// Text or {"base64": ...} (bytes_json's two forms) as bytes.
std::optional<std::string> json_bytes(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("base64") && v["base64"].is_string() && is_base64(v["base64"].get<std::string>()))
    return base64_decode(v["base64"].get<std::string>());
  if (v.is_object() && v.contains("text") && v["text"].is_string()) return v["text"].get<std::string>();
  return std::nullopt;
}

}  // namespace

Json request_to_json(const ExecRequest& r) {
  Json j = {{"language", r.language},
            {"code", r.code},
            {"timeout", r.limits.timeout_s},
            {"limit_by", r.limits.limit_by == LimitBy::cpu ? "cpu" : "wall"},
            {"memory_mb", r.limits.memory_mb},
            {"max_processes", r.limits.max_processes},
            {"max_file_mb", r.limits.max_file_mb},
            {"max_open_files", r.limits.max_open_files},
            {"max_output_bytes", r.limits.max_output_bytes}};
  if (!r.stdin_data.empty()) j["stdin"] = r.stdin_data;
  if (!r.args.empty()) j["args"] = r.args;
  if (!r.collect.empty()) j["collect"] = r.collect;
  if (!r.env.empty()) j["env"] = r.env;
  if (!r.files.empty()) {
    Json files = Json::object();
    for (const auto& [name, data] : r.files) files[name] = {{"base64", base64_encode(data)}};
    j["files"] = files;
  }
  if (r.compile_limits) j["compile_timeout"] = r.compile_limits->timeout_s;
  if (r.channel) j["channel"] = {{"base64", base64_encode(*r.channel)}};
  return j;
}

Result<ExecResult> result_from_json(const Json& j) {
  if (!j.is_object()) return Error{"a result must be a JSON object"};
  ExecResult r;
  auto status = j.contains("status") && j["status"].is_string() ? status_from_string(j["status"].get<std::string>())
                                                                  : std::nullopt;
  if (!status) return Error{fmt::format("field 'status': not a result status ({})", j.value("status", Json()).dump())};
  r.status = *status;
  try {
    r.exit_code = j.value("exit_code", -1);
    r.signal = j.value("signal", 0);
    r.stdout_data = j.value("stdout", "");
    r.stderr_data = j.value("stderr", "");
    r.stdout_truncated = j.value("stdout_truncated", false);
    r.stderr_truncated = j.value("stderr_truncated", false);
    r.wall_s = j.value("wall_time", 0.0);
    r.cpu_s = j.value("cpu_time", 0.0);
    r.peak_memory_kb = j.value("peak_memory_kb", std::size_t{0});
    if (j.contains("limit_hit") && j["limit_hit"].is_string()) r.limit_hit = j["limit_hit"];
    if (j.contains("exception") && j["exception"].is_object()) {
      const Json& e = j["exception"];
      r.exception = ExceptionInfo{e.value("type", ""), e.value("message", ""), e.value("line", 0)};
    }
    r.error = j.value("error", "");
    r.compile_output = j.value("compile_output", "");
    r.compile_s = j.value("compile_time", 0.0);
    if (j.contains("files") && j["files"].is_object())
      for (const auto& [name, f] : j["files"].items()) {
        CollectedFile c;
        if (f.is_object() && f.contains("error")) c.error = f.value("error", "");
        else if (auto data = json_bytes(f)) c.data = std::move(*data);
        else return Error{fmt::format("field 'files': '{}' is not text, base64 or an error", name)};
        c.truncated = f.is_object() && f.value("truncated", false);
        r.files[name] = std::move(c);
      }
    if (j.contains("tool_calls") && j["tool_calls"].is_array()) r.tool_calls = j["tool_calls"];
    if (j.contains("channel")) {
      auto data = json_bytes(j["channel"]);
      if (!data) return Error{"field 'channel': not text or base64"};
      r.channel_data = std::move(*data);
    }
  } catch (const Json::exception& e) {  // a field of the wrong type
    return Error{fmt::format("a result field has the wrong type: {}", e.what())};
  }
  return r;
}

Result<ExecRequest> request_from_json(const Json& j, const ExecRequest& defaults) {
  if (!j.is_object()) return Error{"a request must be a JSON object"};
  ExecRequest r = defaults;
  auto bad = [](const std::string& field, const std::string& why) {
    return Error{fmt::format("field '{}': {}", field, why)};
  };
  bool has_code = false;
  for (const auto& [key, v] : j.items()) {
    if (key == "id") continue;
    if (key == "code") {
      if (!v.is_string()) return bad(key, "must be a string");
      r.code = v.get<std::string>();
      has_code = true;
    } else if (key == "language") {
      if (!v.is_string() || v.get<std::string>().empty())
        return bad(key, fmt::format("must be one of {}", known_languages()));
      auto lang = choose_language(v.get<std::string>(), "");
      if (!lang) return bad(key, lang.error().message);
      r.language = (*lang)->name;
    } else if (key == "stdin") {
      if (!v.is_string()) return bad(key, "must be a string");
      r.stdin_data = v.get<std::string>();
    } else if (key == "args" || key == "collect") {
      if (!v.is_array()) return bad(key, "must be an array of strings");
      auto& out = key == "args" ? r.args : r.collect;
      out.clear();
      for (const auto& a : v) {
        if (!a.is_string()) return bad(key, "must be an array of strings");
        out.push_back(a.get<std::string>());
      }
    } else if (key == "files") {
      if (!v.is_object()) return bad(key, "must be an object of name -> text or {\"base64\": ...}");
      for (const auto& [name, content] : v.items()) {
        if (name.empty() || name[0] == '/' || name.find("..") != std::string::npos)
          return bad(key, fmt::format("'{}' is not a relative path inside the working directory", name));
        if (content.is_string())
          r.files[name] = content.get<std::string>();
        else if (content.is_object() && content.contains("base64") && content["base64"].is_string()) {
          if (!is_base64(content["base64"].get<std::string>()))
            return bad(key, fmt::format("'{}': its \"base64\" is not base64", name));
          r.files[name] = base64_decode(content["base64"].get<std::string>());
        }
        else
          return bad(key, fmt::format("'{}' must be text or {{\"base64\": ...}}", name));
      }
    } else if (key == "channel") {  // the trusted harness's channel (ExecRequest::channel): text or base64
      auto data = json_bytes(v);
      if (!data) return bad(key, "must be text or {\"base64\": ...} (valid base64)");
      r.channel = std::move(*data);
    } else if (key == "env") {
      if (!v.is_object()) return bad(key, "must be an object of strings");
      for (const auto& [k, val] : v.items()) {
        if (!val.is_string()) return bad(key, "must be an object of strings");
        r.env[k] = val.get<std::string>();
      }
    } else if (key == "timeout" || key == "compile_timeout") {
      if (!v.is_number()) return bad(key, fmt::format("must be a number of seconds, got {}", v.dump()));
      double t = v.get<double>();
      if (auto ok = check_seconds(key, t); !ok) return ok.error();
      if (key == "timeout") {
        r.limits.timeout_s = t;
      } else {
        if (!r.compile_limits) r.compile_limits = default_compile_limits();
        r.compile_limits->timeout_s = t;
      }
    } else if (const CountLimit* c = count_limit(key)) {
      auto n = json_count(v, *c);
      if (!n) return n.error();
      if (c == &kMemoryMb) r.limits.memory_mb = *n;
      if (c == &kMaxProcesses) r.limits.max_processes = static_cast<int>(*n);
      if (c == &kMaxOutputBytes) r.limits.max_output_bytes = *n;
      if (c == &kMaxFileMb) r.limits.max_file_mb = *n;
      if (c == &kMaxOpenFiles) r.limits.max_open_files = static_cast<int>(*n);
    } else if (key == "limit_by") {
      if (v == "wall") r.limits.limit_by = LimitBy::wall;
      else if (v == "cpu") r.limits.limit_by = LimitBy::cpu;
      else return bad(key, "must be \"wall\" or \"cpu\"");
    } else {
      return bad(key, "unknown field");
    }
  }
  if (!has_code) return Error{"field 'code' is required"};
  // The defaults came from the caller (CLI options, a server's settings): checked here too, so
  // every request that leaves this function is one the sandbox can honour.
  if (auto ok = validate(r.limits); !ok) return ok.error();
  if (auto ok = validate_env(r.env); !ok) return ok.error();
  if (r.compile_limits)
    if (auto ok = validate(*r.compile_limits, "compile_timeout"); !ok) return ok.error();
  return r;
}

std::optional<ExceptionInfo> parse_python_traceback(std::string_view text) {
  static const std::regex file_re(R"re(^\s*File "(?:/work/)?main\.py", line (\d+))re");
  static const std::regex exc_re(R"re(^([A-Za-z_][\w.]*)(?::\s?(.*))?$)re");
  std::istringstream in{std::string(text)};
  std::optional<ExceptionInfo> found;
  int line = 0;
  bool in_tb = false;
  for (std::string s; std::getline(in, s);) {
    std::smatch m;
    if (s.rfind("Traceback (most recent call last):", 0) == 0) {
      in_tb = true;
      line = 0;
    } else if (std::regex_search(s, m, file_re)) {
      in_tb = true;
      line = std::stoi(m[1]);
    } else if (in_tb && !s.empty() && s[0] != ' ' && std::regex_match(s, m, exc_re)) {
      found = ExceptionInfo{m[1], m[2], line};
      in_tb = false;
    }
  }
  return found;
}

}  // namespace wand::sandbox
