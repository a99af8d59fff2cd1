#include "server/exec_api.h"

#include <fmt/core.h>

#include "common/base64.h"
#include "common/json.h"

namespace wand::server {
namespace {

// Errors in the shape of the server's other endpoints (OpenAI's), so one client reads them all.
Reply error(int status, const std::string& message, const std::string& param = "") {
  return {status, dump_text({{"error", {{"message", message}, {"type", "invalid_request_error"},
                                   {"param", param.empty() ? Json(nullptr) : Json(param)}, {"code", nullptr}}}})};
}

// A parser's error as a 4xx: 413 for "too_large", else 400, with the field its message names
// ("field 'labels': ...") as OpenAI's `param`.
Reply refused(const Error& e) {
  std::string param;
  if (e.message.starts_with("field '")) param = e.message.substr(7, e.message.find('\'', 7) - 7);
  return error(e.code == "too_large" ? 413 : 400, e.message, param);
}

Result<Json> parse_body(const std::string& body) {
  auto j = parse_json(body, "the request body");
  if (!j) return j.error();
  return std::move(*j);
}

Json command_result(const char* status, double seconds, std::optional<int> code, const std::string& out,
                    const std::string& err) {
  return {{"status", status}, {"execution_time", seconds}, {"return_code", code ? Json(*code) : Json(nullptr)},
          {"stdout", out}, {"stderr", err}};
}

// The bytes of output a result brings back: what a response body grows with.
std::size_t output_bytes(const sandbox::ExecResult& r) {
  std::size_t n = r.stdout_data.size() + r.stderr_data.size() + r.compile_output.size();
  for (auto& [name, f] : r.files) n += name.size() + f.data.size();
  return n;
}

}  // namespace

// 413 when the results' output passes the response cap: said before a body is built.
std::optional<Reply> ExecApi::too_large(std::span<const sandbox::ExecResult> results) const {
  std::size_t total = 0;
  for (auto& r : results) total += output_bytes(r);
  if (total <= limits_.max_response_bytes) return std::nullopt;
  return error(413, fmt::format("the response would carry {} bytes of output, above this server's cap of {} bytes "
                                "(--max-response-mb): ask for less output (max_output_bytes) or fewer requests per call",
                                total, limits_.max_response_bytes));
}

ExecApi::ExecApi(sandbox::Sandbox& sb, ExecLimits limits) : sb_(sb), limits_(std::move(limits)) {
  if (limits_.max_concurrent <= 0) limits_.max_concurrent = static_cast<int>(2 * sb_.cells());
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
  auto parsed = fusion_request(*j, limits_);
  if (!parsed) return refused(parsed.error());
  const sandbox::ExecRequest& req = *parsed;
  return bounded([&] {
    sandbox::ExecResult r = sb_.run(req);
    if (auto big = too_large({&r, 1})) return *big;
    using S = sandbox::Status;
    Json out = {{"status", "Success"}, {"message", ""}, {"compile_result", nullptr}, {"run_result", nullptr},
                {"executor_pod_name", nullptr}, {"files", Json::object()}};
    if (r.status == S::sandbox_error) {
      out["status"] = "SandboxError";
      out["message"] = r.error;
      return Reply{200, dump_text(out)};
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
        return Reply{200, dump_text(out)};
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
    // A file that could not be brought back whole is left out and named in `message`: a client
    // must not take its first MiB for the file.
    std::string problems;
    for (auto& [name, f] : r.files) {
      std::string why = !f.error.empty() ? f.error : f.truncated ? "over the 1 MiB a fetched file may hold" : "";
      if (why.empty())
        out["files"][name] = base64_encode(f.data);
      else
        problems += fmt::format("{}'{}': {}", problems.empty() ? "fetch_files: not returned: " : "; ", name, why);
    }
    if (!problems.empty()) out["message"] = problems;
    return Reply{200, dump_text(out)};
  });
}

Reply ExecApi::exec(const std::string& body) {
  auto j = parse_body(body);
  if (!j) return error(400, j.error().message);
  auto reqs = exec_requests(*j, limits_);
  if (!reqs) return refused(reqs.error());
  bool one = j->is_object();
  const Json& list = *j;
  return bounded([&] {
    auto results = sb_.run_batch(*reqs);
    if (auto big = too_large(results)) return *big;
    Json out = Json::array();
    for (std::size_t i = 0; i < results.size(); ++i) {
      Json r = sandbox::to_json(results[i]);
      const Json& asked = one ? list : list[i];
      if (asked.contains("id")) r["id"] = asked["id"];
      out.push_back(std::move(r));
    }
    return Reply{200, dump_text(one ? out[0] : out)};
  });
}

Reply ExecApi::reward(const std::string& body) {
  auto j = parse_body(body);
  if (!j) return error(400, j.error().message);
  auto req = reward_request(*j, limits_);
  if (!req) return refused(req.error());
  auto& tasks = req->tasks;
  auto& solutions = req->solutions;
  return bounded([&] {
    auto verdicts = feedback::judge_rewards(sb_, tasks, solutions, limits_.rewards);
    Json rewards = Json::array(), passed = Json::array();
    for (auto& v : verdicts) {
      rewards.push_back(feedback::reward_value(v, limits_.rewards));
      passed.push_back(v.passed);
    }
    return Reply{200, dump_text({{"rewards", rewards}, {"scores", rewards}, {"extra_logs", {{"passed", passed}}}})};
  });
}

}  // namespace wand::server
