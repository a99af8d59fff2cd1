// The execution API of `wand serve --exec`, as library code the server's routes call (no HTTP
// here: a body in, a status and a body out), for RL trainers that already exist:
//   POST /run_code    SandboxFusion's request and response (its API models: code, language,
//                     compile_timeout, run_timeout, memory_limit_MB, stdin, files (base64),
//                     fetch_files -> status Success/Failed/SandboxError, message, compile_result,
//                     run_result {status Finished/TimeLimitExceeded/Error, execution_time,
//                     return_code, stdout, stderr}, files), so verl's sandbox_fusion reward path
//                     works pointed at wand;
//   POST /v1/exec     wand's JSON-lines schema: one request object (one result back) or an array;
//   POST /get_reward  OpenRLHF's remote reward (--remote_rm_url): {"query", "prompts", "labels"}
//                     -> {"rewards", "scores", "extra_logs"}, scored as wand.rewards scores.
// Bounded: limits above the server's maxima are refused (400 naming the field), batches are
// capped, and past max_concurrent requests in flight the answer is 429 with Retry-After.
#pragma once
#include <atomic>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "feedback/rewards.h"
#include "sandbox/sandbox.h"

namespace wand::server {

struct ExecLimits {
  // The largest limits a request may ask for (30 s and 1024 MiB by default: verl asks for 1024);
  // a request that asks none gets the sandbox's defaults, capped by these.
  sandbox::Limits max = [] {
    sandbox::Limits l;
    l.timeout_s = 30;
    l.memory_mb = 1024;
    return l;
  }();
  double max_compile_timeout_s = 30;
  std::size_t max_batch = 1024;        // requests in one /v1/exec array, samples in one reward call
  int max_concurrent = 0;              // exec requests in flight; 0: twice the sandbox's cells
  // The most output (stdout, stderr, compiler output, fetched files) one response carries, in
  // bytes: past it the answer is 413, before any JSON body is built, so a batch of output floods
  // cannot make the server build a body of batch x max_output_bytes.
  std::size_t max_response_bytes = 64u << 20;
  feedback::RewardOptions rewards;     // how /get_reward scores
};

// The request parsers, apart from running (the routes and the fuzz target share them). Errors
// name the field; an /v1/exec array over max_batch is an error with code "too_large" (413).
sandbox::Limits default_limits(const ExecLimits& limits);  // the sandbox's defaults capped by the maxima
Result<sandbox::ExecRequest> fusion_request(const Json& body, const ExecLimits& limits);  // SandboxFusion's
Result<std::vector<sandbox::ExecRequest>> exec_requests(const Json& body, const ExecLimits& limits);  // object or array
// OpenRLHF's /get_reward body: "query" (prompt + response texts), optional "prompts" (each
// query's prompt, cut off its front), "labels" (ground truths as feedback::reward_task reads
// them), one entry each per sample; over max_batch samples is "too_large".
struct RewardRequest {
  std::vector<feedback::Task> tasks;
  std::vector<std::string> solutions;
};
Result<RewardRequest> reward_request(const Json& body, const ExecLimits& limits);

struct Reply {
  int status = 200;
  std::string body;      // JSON
  int retry_after = 0;   // seconds, with 429
};

class ExecApi {
 public:
  ExecApi(sandbox::Sandbox& sb, ExecLimits limits);
  Reply run_code(const std::string& body);  // SandboxFusion
  Reply exec(const std::string& body);      // wand's schema
  Reply reward(const std::string& body);    // OpenRLHF

 private:
  template <class F>
  Reply bounded(F&& f);
  std::optional<Reply> too_large(std::span<const sandbox::ExecResult> results) const;
  sandbox::Sandbox& sb_;
  ExecLimits limits_;
  std::atomic<int> in_flight_{0};
};

}  // namespace wand::server
