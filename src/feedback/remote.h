// Running sandbox requests on a remote `wand serve --exec` instead of the local sandbox (`wand eval
// --remote URL`): the requests go as JSON arrays to POST URL/v1/exec (the JSON-lines schema,
// sandbox::request_to_json), several arrays in flight, and the results come back in order. A
// request is retried when the service did not answer it — a refused or dropped connection, 429
// (after its Retry-After), 502, 503, 504 — because running a request twice gives the same
// verdict (each run is a fresh cell with no state kept between runs), so no sample is lost when a
// worker behind a load balancer goes away mid-batch.
#pragma once
#include <atomic>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "sandbox/sandbox.h"

namespace wand::feedback {

struct RemoteOptions {
  std::string url;            // http(s)://HOST:PORT[/prefix]; /v1/exec is appended
  std::string token;          // sent as "Authorization: Bearer TOKEN" when not empty
  std::size_t batch = 16;     // requests per POST (a server takes at most 1,024)
  std::size_t parallel = 8;   // POSTs in flight
  int attempts = 6;           // per POST, the first included; waits 0.25 s doubling to 4 s between
  // A server at its --max-concurrent answers 429 with Retry-After: it is busy, not failing. Such
  // answers do not use up `attempts`; a POST waits out 429s for up to this many seconds in all.
  double busy_wait_s = 600;
  double timeout_s = 600;     // per POST
};

// Checks the URL's form (http:// or https://, a host) before any work; the error quotes it.
VoidResult validate(const RemoteOptions& opt);

// Runs `reqs` remotely; results in request order, on_done(i) as each array of them comes back.
// An error names the URL and the last problem seen (after `attempts` tries of one array, or at
// once for a 4xx other than 429, which retrying cannot fix). Once `*stop` is true no further
// array is sent; those not sent get no on_done (their results are empty).
Result<std::vector<sandbox::ExecResult>> run_remote(const RemoteOptions& opt, const std::vector<sandbox::ExecRequest>& reqs,
                                                    const std::function<void(std::size_t)>& on_done = {},
                                                    const std::atomic<bool>* stop = nullptr);

// One POST of a JSON body (libcurl, loaded from wand_feedback_http.so by the `wand` binary):
// the status and the body, or an error for no answer at all (refused, reset, timed out).
struct HttpReply {
  long status = 0;
  std::string body;
  double retry_after_s = 0;  // from a Retry-After header in seconds; 0 if none
};
Result<HttpReply> http_post_json(const std::string& url, const std::string& body, const std::string& token,
                                 double timeout_s);

}  // namespace wand::feedback
