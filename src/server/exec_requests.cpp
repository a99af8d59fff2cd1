// The execution API's request bodies as sandbox requests (exec_api.h), apart from running them:
// the server's routes and the fuzz target share these.
#include <algorithm>

#include <fmt/core.h>

#include "common/base64.h"
#include "server/exec_api.h"

namespace wand::server {
namespace {

// A limit a request asked for, checked against the server's maximum for it.
VoidResult within(const sandbox::Limits& l, const sandbox::Limits& max, const char* timeout_field,
                  const char* memory_field) {
  auto over = [](const char* field, double got, double most, const char* unit) {
    return Error{fmt::format("field '{}': {}{} is above this server's maximum of {}{}", field, got, unit, most, unit)};
  };
  if (l.timeout_s > max.timeout_s) return over(timeout_field, l.timeout_s, max.timeout_s, " s");
  // The maximum bounds how long a run holds a cell: a CPU-time limit lets it run 2x + 1 s of wall time.
  if (l.limit_by == sandbox::LimitBy::cpu && 2 * l.timeout_s + 1 > max.timeout_s)
    return Error{fmt::format("field '{}': {} s of CPU time lets a run take {} s of wall time (2x + 1 s), above this "
                             "server's maximum of {} s; with limit_by cpu ask for at most {} s",
                             timeout_field, l.timeout_s, 2 * l.timeout_s + 1, max.timeout_s, (max.timeout_s - 1) / 2)};
  if (l.memory_mb > max.memory_mb)
    return over(memory_field, static_cast<double>(l.memory_mb), static_cast<double>(max.memory_mb), " MiB");
  if (l.max_processes > max.max_processes) return over("max_processes", l.max_processes, max.max_processes, "");
  if (l.max_file_mb > max.max_file_mb)
    return over("max_file_mb", static_cast<double>(l.max_file_mb), static_cast<double>(max.max_file_mb), " MiB");
  if (l.max_open_files > max.max_open_files) return over("max_open_files", l.max_open_files, max.max_open_files, "");
  if (l.max_output_bytes > max.max_output_bytes)
    return over("max_output_bytes", static_cast<double>(l.max_output_bytes),
                static_cast<double>(max.max_output_bytes), " bytes");
  return ok_status();
}

// SandboxFusion's languages by its names; those wand has no runtime for are refused by name.
Result<std::string> fusion_language(const Json& v) {
  if (!v.is_string()) return Error{"field 'language': must be a string"};
  std::string name = v;
  if (name == "python3") name = "python";
  if (name == "nodejs") name = "js";
  auto lang = sandbox::find_language(name);
  if (!lang)
    return Error{fmt::format("field 'language': '{}' is not run here; supported: python, cpp, c, nodejs, bash",
                             v.get<std::string>())};
  return lang->name;
}

// A number field of SandboxFusion's request (null or absent: its default).
Result<std::optional<double>> fusion_number(const Json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::optional<double>{};
  if (!j[key].is_number()) return Error{fmt::format("field '{}': must be a number", key)};
  return std::optional<double>{j[key].get<double>()};
}

}  // namespace

sandbox::Limits default_limits(const ExecLimits& limits) {
  sandbox::Limits d;
  const sandbox::Limits& m = limits.max;
  d.timeout_s = std::min(d.timeout_s, m.timeout_s);
  d.memory_mb = std::min(d.memory_mb, m.memory_mb);
  d.max_processes = std::min(d.max_processes, m.max_processes);
  d.max_file_mb = std::min(d.max_file_mb, m.max_file_mb);
  d.max_open_files = std::min(d.max_open_files, m.max_open_files);
  d.max_output_bytes = std::min(d.max_output_bytes, m.max_output_bytes);
  return d;
}

Result<sandbox::ExecRequest> fusion_request(const Json& j, const ExecLimits& limits) {
  if (!j.is_object()) return Error{"the request body must be a JSON object"};
  if (!j.contains("code")) return Error{"field 'code' is required"};
  if (!j["code"].is_string()) return Error{"field 'code': must be a string"};
  sandbox::ExecRequest req;
  req.code = j["code"];
  req.limits = default_limits(limits);  // SandboxFusion's run_timeout default is 10 s, as the sandbox's
  auto lang = fusion_language(j.value("language", Json("python")));
  if (!lang) return lang.error();
  req.language = *lang;
  auto run_timeout = fusion_number(j, "run_timeout");
  auto compile_timeout = fusion_number(j, "compile_timeout");
  auto memory = fusion_number(j, "memory_limit_MB");
  for (auto* r : {&run_timeout, &compile_timeout, &memory})
    if (!*r) return r->error();
  if (*run_timeout) {
    if (!(**run_timeout > 0))  // said with this server's bound, not the sandbox's own range
      return Error{fmt::format("field 'run_timeout': must be a positive number of seconds, at most this server's "
                               "maximum of {} s",
                               limits.max.timeout_s)};
    req.limits.timeout_s = **run_timeout;
  }
  // SandboxFusion reads -1 (its default) as "no limit of its own": here, the server's maximum.
  if (*memory && **memory == -1) {
    req.limits.memory_mb = limits.max.memory_mb;
  } else if (*memory) {
    if (!(**memory > 0)) return Error{"field 'memory_limit_MB': must be positive, or -1 for the server's maximum"};
    if (**memory > static_cast<double>(limits.max.memory_mb))
      return Error{fmt::format("field 'memory_limit_MB': {} MiB is above this server's maximum of {} MiB", **memory,
                                    limits.max.memory_mb)};
    if (**memory != static_cast<double>(static_cast<std::size_t>(**memory)))
      return Error{"field 'memory_limit_MB': must be a whole number of MiB"};
    req.limits.memory_mb = static_cast<std::size_t>(**memory);
  }
  if (auto ok = sandbox::validate(req.limits, "run_timeout"); !ok) return ok.error();
  if (auto ok = within(req.limits, limits.max, "run_timeout", "memory_limit_MB"); !ok)
    return ok.error();
  if (*compile_timeout) {
    req.compile_limits = sandbox::default_compile_limits();
    req.compile_limits->timeout_s = **compile_timeout;
    if (auto ok = sandbox::validate(*req.compile_limits, "compile_timeout"); !ok) return ok.error();
    if (**compile_timeout > limits.max_compile_timeout_s)
      return Error{fmt::format("field 'compile_timeout': {} s is above this server's maximum of {} s",
                                    **compile_timeout, limits.max_compile_timeout_s)};
  }
  if (j.contains("stdin") && !j["stdin"].is_null()) {
    if (!j["stdin"].is_string()) return Error{"field 'stdin': must be a string"};
    req.stdin_data = j["stdin"];
  }
  if (j.contains("files") && !j["files"].is_null()) {
    if (!j["files"].is_object()) return Error{"field 'files': must be an object of name -> base64"};
    for (auto& [name, content] : j["files"].items()) {
      if (name.empty() || name[0] == '/' || name.find("..") != std::string::npos)
        return Error{fmt::format("field 'files': '{}' is not a relative path inside the working directory", name)};
      if (content.is_null()) continue;  // SandboxFusion's Optional[str]: no content, no file
      if (!content.is_string() || !is_base64(content.get<std::string>()))
        return Error{fmt::format("field 'files': '{}' must be base64 text", name)};
      req.files[name] = base64_decode(content.get<std::string>());
    }
  }
  if (j.contains("fetch_files") && !j["fetch_files"].is_null()) {
    if (!j["fetch_files"].is_array()) return Error{"field 'fetch_files': must be an array of names"};
    for (auto& f : j["fetch_files"]) {
      if (!f.is_string()) return Error{"field 'fetch_files': must be an array of names"};
      req.collect.push_back(f);
    }
  }
  return req;
}

Result<std::vector<sandbox::ExecRequest>> exec_requests(const Json& j, const ExecLimits& limits) {
  bool one = j.is_object();
  if (!one && !j.is_array()) return Error{"the request body must be a request object or an array of them"};
  if (!one && j.size() > limits.max_batch)
    return Error{fmt::format("{} requests in one batch; this server takes at most {}", j.size(), limits.max_batch), "too_large"};
  Json list = one ? Json::array({j}) : j;
  sandbox::ExecRequest defaults;
  defaults.limits = default_limits(limits);
  std::vector<sandbox::ExecRequest> reqs;
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto where = [&](const std::string& m) { return one ? m : fmt::format("request {}: {}", i, m); };
    // The JSON-lines schema's `tools` are granted by the one who runs `wand exec --jsonl`; a
    // request cannot grant itself tools here.
    if (list[i].is_object() && list[i].contains("tools"))
      return Error{where("field 'tools': this server grants no tools (wand exec --jsonl --tools ... does)")};
    auto r = sandbox::request_from_json(list[i], defaults);
    if (!r) return Error{where(r.error().message)};
    if (auto ok = within(r->limits, limits.max, "timeout", "memory_mb"); !ok) return Error{where(ok.error().message)};
    if (r->compile_limits && r->compile_limits->timeout_s > limits.max_compile_timeout_s)
      return Error{where(fmt::format("field 'compile_timeout': above this server's maximum of {} s",
                                          limits.max_compile_timeout_s))};
    reqs.push_back(std::move(*r));
  }
  return reqs;
}

Result<RewardRequest> reward_request(const Json& j, const ExecLimits& limits) {
  if (!j.is_object()) return Error{"the request body must be a JSON object"};
  auto strings = [&](const char* key, bool required) -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    if (!j.contains(key) || j[key].is_null()) {
      if (required) return Error{fmt::format("field '{}': required (an array of strings)", key)};
      return out;
    }
    if (!j[key].is_array()) return Error{fmt::format("field '{}': must be an array of strings", key)};
    for (auto& s : j[key]) {
      if (!s.is_string()) return Error{fmt::format("field '{}': must be an array of strings", key)};
      out.push_back(s);
    }
    return out;
  };
  auto query = strings("query", true);
  if (!query) return query.error();
  auto prompts = strings("prompts", false);
  if (!prompts) return prompts.error();
  if (!j.contains("labels") || !j["labels"].is_array())
    return Error{"field 'labels': required (the ground truths, one per query)"};
  const Json& labels = j["labels"];
  if (labels.size() != query->size() || (!prompts->empty() && prompts->size() != query->size()))
    return Error{fmt::format("field 'labels': 'query' ({}), 'prompts' ({}) and 'labels' ({}) must have one entry per sample",
                             query->size(), prompts->size(), labels.size())};
  if (query->size() > limits.max_batch)
    return Error{fmt::format("{} samples in one call; this server takes at most {}", query->size(), limits.max_batch),
                 "too_large"};
  RewardRequest out;
  for (std::size_t i = 0; i < query->size(); ++i) {
    auto t = feedback::reward_task("openrlhf", labels[i]);
    if (!t) return Error{fmt::format("field 'labels': labels[{}]: {}", i, t.error().message)};
    out.tasks.push_back(std::move(*t));
    // OpenRLHF sends the prompt and the response as one text: the response is what follows the prompt.
    std::string& q = (*query)[i];
    out.solutions.push_back(!prompts->empty() && q.starts_with((*prompts)[i]) ? q.substr((*prompts)[i].size()) : q);
  }
  return out;
}

}  // namespace wand::server
