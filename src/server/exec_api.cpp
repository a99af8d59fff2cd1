#include "server/exec_api.h"

#include <algorithm>

#include <fmt/core.h>

#include "common/base64.h"
#include "common/json.h"

namespace wand::server {
namespace {

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// Errors in the shape of the server's other endpoints (OpenAI's), so one client reads them all.
Reply error(int status, const std::string& message, const std::string& param = "") {
  return {status, dump({{"error", {{"message", message}, {"type", "invalid_request_error"},
                                   {"param", param.empty() ? Json(nullptr) : Json(param)}, {"code", nullptr}}}})};
}

// A limit a request asked for, checked against the server's maximum for it.
VoidResult within(const sandbox::Limits& l, const sandbox::Limits& max, const char* timeout_field,
                  const char* memory_field) {
  auto over = [](const char* field, double got, double most, const char* unit) {
    return Error{fmt::format("field '{}': {}{} is above this server's maximum of {}{}", field, got, unit, most, unit)};
  };
  if (l.timeout_s > max.timeout_s) return over(timeout_field, l.timeout_s, max.timeout_s, " s");
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

Result<Json> parse_body(const std::string& body) {
  auto j = parse_json(body, "the request body");
  if (!j) return j.error();
  return std::move(*j);
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

Json command_result(const char* status, double seconds, std::optional<int> code, const std::string& out,
                    const std::string& err) {
  return {{"status", status}, {"execution_time", seconds}, {"return_code", code ? Json(*code) : Json(nullptr)},
          {"stdout", out}, {"stderr", err}};
}

}  // namespace

ExecApi::ExecApi(sandbox::Sandbox& sb, ExecLimits limits) : sb_(sb), limits_(std::move(limits)) {
  if (limits_.max_concurrent <= 0) limits_.max_concurrent = static_cast<int>(2 * sb_.cells());
}

sandbox::Limits ExecApi::defaults() const {
  sandbox::Limits d;
  const sandbox::Limits& m = limits_.max;
  d.timeout_s = std::min(d.timeout_s, m.timeout_s);
  d.memory_mb = std::min(d.memory_mb, m.memory_mb);
  d.max_processes = std::min(d.max_processes, m.max_processes);
  d.max_file_mb = std::min(d.max_file_mb, m.max_file_mb);
  d.max_open_files = std::min(d.max_open_files, m.max_open_files);
  d.max_output_bytes = std::min(d.max_output_bytes, m.max_output_bytes);
  return d;
}

// Admits the request when fewer than max_concurrent are in flight; else 429, so a trainer backs
// off instead of queueing past its own timeouts.
template <class F>
Reply ExecApi::bounded(F&& f) {
  if (in_flight_.fetch_add(1) >= limits_.max_concurrent) {
    in_flight_.fetch_sub(1);
    Reply r = error(429, fmt::format("busy: {} execution requests are in flight; retry later", limits_.max_concurrent));
    r.retry_after = 1;
    return r;
  }
  struct Leave {
    std::atomic<int>& n;
    ~Leave() { n.fetch_sub(1); }
  } leave{in_flight_};
  return f();
}

Reply ExecApi::run_code(const std::string& body) {
  auto j = parse_body(body);
  if (!j) return error(400, j.error().message);
  if (!j->is_object()) return error(400, "the request body must be a JSON object");
  if (!j->contains("code") || !(*j)["code"].is_string()) return error(400, "field 'code': must be a string", "code");
  sandbox::ExecRequest req;
  req.code = (*j)["code"];
  req.limits = defaults();  // SandboxFusion's run_timeout default is 10 s, as the sandbox's
  auto lang = fusion_language(j->value("language", Json("python")));
  if (!lang) return error(400, lang.error().message, "language");
  req.language = *lang;
  auto run_timeout = fusion_number(*j, "run_timeout");
  auto compile_timeout = fusion_number(*j, "compile_timeout");
  auto memory = fusion_number(*j, "memory_limit_MB");
  for (auto* r : {&run_timeout, &compile_timeout, &memory})
    if (!*r) return error(400, r->error().message);
  if (*run_timeout) req.limits.timeout_s = **run_timeout;
  // SandboxFusion reads -1 (its default) as "no limit of its own": here, the server's maximum.
  if (*memory && **memory < 0) req.limits.memory_mb = limits_.max.memory_mb;
  if (*memory && **memory > 0) {
    if (**memory > static_cast<double>(limits_.max.memory_mb))
      return error(400, fmt::format("field 'memory_limit_MB': {} MiB is above this server's maximum of {} MiB", **memory,
                                    limits_.max.memory_mb),
                   "memory_limit_MB");
    if (**memory != static_cast<double>(static_cast<std::size_t>(**memory)))
      return error(400, "field 'memory_limit_MB': must be a whole number of MiB", "memory_limit_MB");
    req.limits.memory_mb = static_cast<std::size_t>(**memory);
  } else if (*memory && **memory == 0) {
    return error(400, "field 'memory_limit_MB': must be positive, or -1 for the server's maximum", "memory_limit_MB");
  }
  if (auto ok = sandbox::validate(req.limits, "run_timeout"); !ok) return error(400, ok.error().message);
  if (auto ok = within(req.limits, limits_.max, "run_timeout", "memory_limit_MB"); !ok)
    return error(400, ok.error().message);
  if (*compile_timeout) {
    req.compile_limits = sandbox::default_compile_limits();
    req.compile_limits->timeout_s = **compile_timeout;
    if (auto ok = sandbox::validate(*req.compile_limits, "compile_timeout"); !ok) return error(400, ok.error().message);
    if (**compile_timeout > limits_.max_compile_timeout_s)
      return error(400, fmt::format("field 'compile_timeout': {} s is above this server's maximum of {} s",
                                    **compile_timeout, limits_.max_compile_timeout_s),
                   "compile_timeout");
  }
  if (j->contains("stdin") && !(*j)["stdin"].is_null()) {
    if (!(*j)["stdin"].is_string()) return error(400, "field 'stdin': must be a string", "stdin");
    req.stdin_data = (*j)["stdin"];
  }
  if (j->contains("files") && !(*j)["files"].is_null()) {
    if (!(*j)["files"].is_object()) return error(400, "field 'files': must be an object of name -> base64", "files");
    for (auto& [name, content] : (*j)["files"].items()) {
      if (name.empty() || name[0] == '/' || name.find("..") != std::string::npos)
        return error(400, fmt::format("field 'files': '{}' is not a relative path inside the working directory", name),
                     "files");
      if (content.is_null()) continue;  // SandboxFusion's Optional[str]: no content, no file
      if (!content.is_string()) return error(400, fmt::format("field 'files': '{}' must be base64 text", name), "files");
      req.files[name] = base64_decode(content.get<std::string>());
    }
  }
  if (j->contains("fetch_files") && !(*j)["fetch_files"].is_null()) {
    if (!(*j)["fetch_files"].is_array()) return error(400, "field 'fetch_files': must be an array of names", "fetch_files");
    for (auto& f : (*j)["fetch_files"]) {
      if (!f.is_string()) return error(400, "field 'fetch_files': must be an array of names", "fetch_files");
      req.collect.push_back(f);
    }
  }
  return bounded([&] {
    sandbox::ExecResult r = sb_.run(req);
    using S = sandbox::Status;
    Json out = {{"status", "Success"}, {"message", ""}, {"compile_result", nullptr}, {"run_result", nullptr},
                {"executor_pod_name", nullptr}, {"files", Json::object()}};
    if (r.status == S::sandbox_error) {
      out["status"] = "SandboxError";
      out["message"] = r.error;
      return Reply{200, dump(out)};
    }
    bool compiled = !sandbox::find_language(req.language)->compile_argv.empty();
    if (compiled) {
      bool failed = r.status == S::compile_error;
      bool slow = failed && r.limit_hit == "wall";
      out["compile_result"] = command_result(slow ? "TimeLimitExceeded" : failed ? "Error" : "Finished", r.compile_s,
                                             failed ? std::optional<int>{1} : std::optional<int>{0}, "",
                                             r.compile_output);
      if (failed) {
        out["status"] = "Failed";
        return Reply{200, dump(out)};
      }
    }
    bool timed_out = r.status == S::timeout;
    std::optional<int> code;
    if (r.exit_code >= 0) code = r.exit_code;
    const char* run_status = timed_out ? "TimeLimitExceeded" : (r.status == S::ok || r.status == S::runtime_error)
                                                                   ? "Finished"
                                                                   : "Error";
    // A limit that stopped the run says which in stderr's tail, where a client shows it.
    std::string err = r.stderr_data;
    if (r.status != S::ok && r.status != S::runtime_error && r.status != S::timeout)
      err += fmt::format("\n[wand: {}{}]", sandbox::to_string(r.status), r.limit_hit.empty() ? "" : " (" + r.limit_hit + ")");
    out["run_result"] = command_result(run_status, r.wall_s, code, r.stdout_data, err);
    if (r.status != S::ok) out["status"] = "Failed";
    for (auto& [name, f] : r.files)
      if (f.error.empty()) out["files"][name] = base64_encode(f.data);
    return Reply{200, dump(out)};
  });
}

Reply ExecApi::exec(const std::string& body) {
  auto j = parse_body(body);
  if (!j) return error(400, j.error().message);
  bool one = j->is_object();
  if (!one && !j->is_array()) return error(400, "the request body must be a request object or an array of them");
  if (!one && j->size() > limits_.max_batch)
    return error(413, fmt::format("{} requests in one batch; this server takes at most {}", j->size(), limits_.max_batch));
  Json list = one ? Json::array({*j}) : *j;
  sandbox::ExecRequest defaults;
  defaults.limits = this->defaults();
  std::vector<sandbox::ExecRequest> reqs;
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto where = [&](const std::string& m) { return one ? m : fmt::format("request {}: {}", i, m); };
    auto r = sandbox::request_from_json(list[i], defaults);
    if (!r) return error(400, where(r.error().message));
    if (auto ok = within(r->limits, limits_.max, "timeout", "memory_mb"); !ok) return error(400, where(ok.error().message));
    if (r->compile_limits && r->compile_limits->timeout_s > limits_.max_compile_timeout_s)
      return error(400, where(fmt::format("field 'compile_timeout': above this server's maximum of {} s",
                                          limits_.max_compile_timeout_s)));
    reqs.push_back(std::move(*r));
  }
  return bounded([&] {
    auto results = sb_.run_batch(reqs);
    Json out = Json::array();
    for (std::size_t i = 0; i < results.size(); ++i) {
      Json r = sandbox::to_json(results[i]);
      if (list[i].contains("id")) r["id"] = list[i]["id"];
      out.push_back(std::move(r));
    }
    return Reply{200, dump(one ? out[0] : out)};
  });
}

Reply ExecApi::reward(const std::string& body) {
  auto j = parse_body(body);
  if (!j) return error(400, j.error().message);
  if (!j->is_object()) return error(400, "the request body must be a JSON object");
  auto strings = [&](const char* key, bool required) -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    if (!j->contains(key) || (*j)[key].is_null()) {
      if (required) return Error{fmt::format("field '{}': required (an array of strings)", key)};
      return out;
    }
    if (!(*j)[key].is_array()) return Error{fmt::format("field '{}': must be an array of strings", key)};
    for (auto& s : (*j)[key]) {
      if (!s.is_string()) return Error{fmt::format("field '{}': must be an array of strings", key)};
      out.push_back(s);
    }
    return out;
  };
  auto query = strings("query", true);
  auto prompts = strings("prompts", false);
  if (!query) return error(400, query.error().message, "query");
  if (!prompts) return error(400, prompts.error().message, "prompts");
  if (!j->contains("labels") || !(*j)["labels"].is_array())
    return error(400, "field 'labels': required (the ground truths, one per query)", "labels");
  const Json& labels = (*j)["labels"];
  if (labels.size() != query->size() || (!prompts->empty() && prompts->size() != query->size()))
    return error(400, fmt::format("'query' ({}), 'prompts' ({}) and 'labels' ({}) must have one entry per sample",
                                  query->size(), prompts->size(), labels.size()));
  if (query->size() > limits_.max_batch)
    return error(413, fmt::format("{} samples in one call; this server takes at most {}", query->size(), limits_.max_batch));
  std::vector<feedback::Task> tasks;
  std::vector<std::string> solutions;
  for (std::size_t i = 0; i < query->size(); ++i) {
    auto t = feedback::reward_task("openrlhf", labels[i]);
    if (!t) return error(400, fmt::format("labels[{}]: {}", i, t.error().message), "labels");
    tasks.push_back(std::move(*t));
    // OpenRLHF sends the prompt and the response as one text: the response is what follows the prompt.
    std::string& q = (*query)[i];
    solutions.push_back(!prompts->empty() && q.starts_with((*prompts)[i]) ? q.substr((*prompts)[i].size()) : q);
  }
  return bounded([&] {
    auto verdicts = feedback::judge_rewards(sb_, tasks, solutions, limits_.rewards);
    Json rewards = Json::array(), passed = Json::array();
    for (auto& v : verdicts) {
      rewards.push_back(feedback::reward_value(v, limits_.rewards));
      passed.push_back(v.passed);
    }
    return Reply{200, dump({{"rewards", rewards}, {"scores", rewards}, {"extra_logs", {{"passed", passed}}}})};
  });
}

}  // namespace wand::server
