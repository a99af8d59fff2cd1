// The bridge's speed: a round trip from sandboxed Python to a trivial C++ tool, against an
// in-process Python function call timed the same way in the same program (the baseline).
// Both are timed inside the program with time.perf_counter_ns, one call at a time; calls/s
// is the loop's rate. The tool is measured on the inline path (Tool::inline_call: answered on
// the run's thread) and on the worker path (a thread per call, as blocking tools are served).
// Usage: tools_bench [--quick]
#include <fmt/core.h>

#include <cstring>

#include "sandbox/sandbox.h"
#include "tools/tools.h"

using namespace wand;

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  int n = quick ? 2000 : 20000;
  auto sb = sandbox::Sandbox::create({.cells = 1});
  if (!sb) {
    fmt::print(stderr, "sandbox unavailable: {}\n", sb.error().message);
    return 3;
  }
  tools::Registry reg;
  auto echo = [](const Json& a, const tools::CallContext&) -> Result<Json> { return a["x"]; };
  Json schema = {{"type", "object"}, {"properties", {{"x", {{"type", "integer"}}}}}, {"required", {"x"}}};
  (void)reg.add({.name = "echo", .parameters = schema, .handler = echo, .inline_call = true});
  (void)reg.add({.name = "echo_worker", .parameters = schema, .handler = echo});
  std::string program = fmt::format(R"PY(
import json, time
def f(x):
    return x
def measure(fn, n):
    for i in range(200):
        fn(i)
    t = []
    start = time.perf_counter_ns()
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn(i)
        t.append(time.perf_counter_ns() - t0)
    total = time.perf_counter_ns() - start
    t.sort()
    return {{"p50_us": t[n // 2] / 1000, "p99_us": t[n * 99 // 100] / 1000, "calls_per_s": n / total * 1e9}}
print(json.dumps({{"python": measure(f, {0}), "tool": measure(echo, {0}), "tool_worker": measure(echo_worker, {1})}}))
)PY",
                                    n, n / 4);
  sandbox::ExecRequest req;
  req.code = program;
  req.limits.timeout_s = 300;
  tools::Budget budget;
  budget.max_calls = 1000000;
  sandbox::ExecResult r = tools::run(**sb, req, reg, budget);
  if (r.status != sandbox::Status::ok) {
    fmt::print(stderr, "bench program failed: {} {}\n{}", to_string(r.status), r.error, r.stderr_data);
    return 1;
  }
  Json j = Json::parse(r.stdout_data);
  double base = j["python"]["p50_us"].get<double>();
  fmt::print("{:<34} {:>10} {:>10} {:>12} {:>14}\n", "round trip (one call at a time)", "p50 us", "p99 us", "calls/s",
             "p50 vs python");
  for (auto [key, label] : {std::pair{"python", "in-process Python function"}, std::pair{"tool", "C++ tool, inline path"},
                            std::pair{"tool_worker", "C++ tool, worker-thread path"}}) {
    const Json& m = j[key];
    fmt::print("{:<34} {:>10.2f} {:>10.2f} {:>12.0f} {:>13.0f}x\n", label, m["p50_us"].get<double>(),
               m["p99_us"].get<double>(), m["calls_per_s"].get<double>(), m["p50_us"].get<double>() / base);
  }
  return 0;
}
