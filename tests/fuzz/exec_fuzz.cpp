// libFuzzer target for the request parsers of `wand serve --exec` (server/exec_api.h): bytes as a
// request body, read as SandboxFusion's /run_code request and as /v1/exec's JSON-lines request
// or array. Any input must give a request or an error naming the problem: never a crash, a
// sanitizer report or an exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/json.h"
#include "server/exec_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto body = wand::parse_json(std::string(reinterpret_cast<const char*>(data), size), "the request body");
  if (!body) return 0;
  static const wand::server::ExecLimits limits;
  auto fusion = wand::server::fusion_request(*body, limits);
  if (!fusion && fusion.error().message.empty()) __builtin_trap();
  auto batch = wand::server::exec_requests(*body, limits);
  if (!batch && batch.error().message.empty()) __builtin_trap();
  return 0;
}
