// libFuzzer target for the request parsers of `wand serve --exec` (server/exec_api.h) and of the
// JSON-lines batch (`wand exec --jsonl`): bytes as a request body, read as SandboxFusion's
// /run_code request, as /v1/exec's request or array, as OpenRLHF's /get_reward body (its labels
// read as reward ground truths), and line by line as JSON-lines requests. Any input must give a
// request or an error naming the problem: never a crash, a sanitizer report or an exception.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/json.h"
#include "fuzz/seed_corpus.h"
#include "server/exec_api.h"

// The parsers never run code, but the feedback library they share with the judge refers to the
// sandbox's batch runner: a stub the fuzzer would stop on if a parser ever called it.
std::vector<wand::sandbox::ExecResult> wand::sandbox::Sandbox::run_batch(const std::vector<ExecRequest>&,
                                                                         const std::function<void(std::size_t)>&,
                                                                         const std::atomic<bool>*) {
  __builtin_trap();
}

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  seed_corpus(*argc, *argv,
              {R"j({"code": "print(input())", "stdin": "hi", "language": "python", "compile_timeout": 5, "run_timeout": 5,
                   "memory_limit_MB": 1024, "files": {"a.txt": "aGk="}, "fetch_files": ["a.txt"]})j",
               R"j([{"id": 1, "code": "print(1)", "timeout": 2, "memory_mb": 256, "files": {"x": {"base64": "AA=="}}},
                   {"code": "int main(){}", "language": "c", "compile_timeout": 3, "limit_by": "cpu"}])j",
               R"j({"query": ["Q: 1+1?\nA: 2", "x = input()"], "prompts": ["Q: 1+1?\nA: ", ""],
                   "labels": ["2", "{\"inputs\": [\"1\\n\"], \"outputs\": [\"1\\n\"]}"]})j",
               R"j({"query": ["def f(x): return x"], "labels": [{"fn_name": "f", "inputs": [[1]], "outputs": [1]}]})j",
               "{\"code\": \"print(1)\", \"env\": {\"A\": \"b\"}, \"args\": [\"-x\"]}\n{\"code\": 1}\nnot json\n"});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  static const wand::server::ExecLimits limits;
  if (auto body = wand::parse_json(text, "the request body")) {
    auto fusion = wand::server::fusion_request(*body, limits);
    if (!fusion && fusion.error().message.empty()) __builtin_trap();
    auto batch = wand::server::exec_requests(*body, limits);
    if (!batch && batch.error().message.empty()) __builtin_trap();
    auto reward = wand::server::reward_request(*body, limits);
    if (!reward && reward.error().message.empty()) __builtin_trap();
    if (reward && reward->tasks.size() != reward->solutions.size()) __builtin_trap();
  }
  // The JSON-lines batch: each line on its own, as `wand exec --jsonl` reads stdin.
  std::string_view rest = text;
  while (!rest.empty()) {
    std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    auto j = wand::parse_json(line, "stdin line 1");
    if (!j) continue;
    auto req = wand::sandbox::request_from_json(*j);
    if (!req && req.error().message.empty()) __builtin_trap();
  }
  return 0;
}
