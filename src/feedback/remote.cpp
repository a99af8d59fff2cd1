#include "feedback/remote.h"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "common/json.h"
#include "common/thread_pool.h"
#include "sandbox/wire.h"

namespace wand::feedback {

VoidResult validate(const RemoteOptions& opt) {
  const std::string& u = opt.url;
  std::size_t scheme = u.starts_with("http://") ? 7 : u.starts_with("https://") ? 8 : 0;
  if (scheme == 0 || u.size() == scheme || u[scheme] == '/')
    return Error{fmt::format("'{}' is not the URL of a `wand serve --exec`: expected http://HOST:PORT", u)};
  if (opt.batch == 0 || opt.parallel == 0 || opt.attempts < 1) return Error{"remote batch, parallel and attempts must be >= 1"};
  return ok_status();
}

namespace {

// One array of requests, posted until answered: the results, or why not.
Result<std::vector<sandbox::ExecResult>> post_batch(const RemoteOptions& opt, const std::string& url,
                                                    const std::string& body, std::size_t count) {
  std::string last;
  double wait = 0.25, busy = 0;
  for (int attempt = 1; attempt <= opt.attempts; ++attempt) {
    auto reply = http_post_json(url, body, opt.token, opt.timeout_s);
    if (reply && reply->status == 200) {
      auto j = parse_json(reply->body, fmt::format("the reply of {}", url));
      if (!j) return j.error();
      if (!j->is_array() || j->size() != count)
        return Error{fmt::format("{}: the reply is not an array of {} results", url, count)};
      std::vector<sandbox::ExecResult> out;
      for (std::size_t i = 0; i < count; ++i) {
        auto r = sandbox::result_from_json((*j)[i]);
        if (!r) return Error{fmt::format("{}: result {}: {}", url, i, r.error().message)};
        out.push_back(std::move(*r));
      }
      return out;
    }
    double pause = wait;
    if (!reply) {
      last = reply.error().message;
    } else {
      // The server's own words: its error body says what it refused.
      std::string said = reply->body.substr(0, 300);
      if (auto j = parse_json(reply->body, "reply"); j && j->is_object() && j->contains("error") &&
                                                     (*j)["error"].is_object())
        said = (*j)["error"].value("message", said);
      last = fmt::format("HTTP {}: {}", reply->status, said);
      bool again = reply->status == 429 || reply->status == 502 || reply->status == 503 || reply->status == 504;
      // 400 and 413: the requests themselves are what the server refuses (a limit above its
      // maximum), which the caller's options decide; kOptionConflict lets it say so (exit 2).
      if (!again)
        return Error{fmt::format("{}: {}", url, last), reply->status == 400 || reply->status == 413 ? kOptionConflict : ""};
      pause = std::max(pause, reply->retry_after_s);
      if (reply->status == 429 && busy + pause <= opt.busy_wait_s) {  // busy: waited out, no attempt used
        busy += pause;
        --attempt;
      }
    }
    if (attempt < opt.attempts) std::this_thread::sleep_for(std::chrono::duration<double>(pause));
    wait = std::min(4.0, wait * 2);
  }
  return Error{fmt::format("{}: no answer after {} tries; last: {}", url, opt.attempts, last)};
}

}  // namespace

Result<std::vector<sandbox::ExecResult>> run_remote(const RemoteOptions& opt, const std::vector<sandbox::ExecRequest>& reqs,
                                                    const std::function<void(std::size_t)>& on_done,
                                                    const std::atomic<bool>* cancel) {
  if (auto ok = validate(opt); !ok) return ok.error();
  std::string url = opt.url;
  while (url.ends_with('/')) url.pop_back();
  url += "/v1/exec";
  std::vector<sandbox::ExecResult> out(reqs.size());
  std::size_t batches = (reqs.size() + opt.batch - 1) / opt.batch;
  std::mutex mu;
  std::optional<Error> failed;
  std::atomic<bool> stop = false;
  parallel_for(batches, std::min(opt.parallel, std::max<std::size_t>(batches, 1)), [&](std::size_t, std::size_t b) {
    if (stop || (cancel && *cancel)) return;
    std::size_t lo = b * opt.batch, hi = std::min(reqs.size(), lo + opt.batch);
    Json body = Json::array();
    for (std::size_t i = lo; i < hi; ++i) body.push_back(sandbox::request_to_json(reqs[i]));
    auto results = post_batch(opt, url, dump_text(body), hi - lo);
    if (!results) {
      std::lock_guard lk(mu);
      if (!failed) failed = results.error();
      stop = true;
      return;
    }
    for (std::size_t i = lo; i < hi; ++i) {
      out[i] = std::move((*results)[i - lo]);
      if (on_done) on_done(i);
    }
  });
  if (failed) return *failed;
  return out;
}

}  // namespace wand::feedback
