// libFuzzer target for the OpenAI-compatible request parser of `wand serve`
// (server/openai_requests.h): bytes as the body of /v1/completions and of /v1/chat/completions.
// Any input must give a request within the server's limits or an HttpError (4xx) naming the
// problem: never a crash, a sanitizer report or an exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/seed_corpus.h"
#include "server/openai_requests.h"

// Requests without a seed draw one; the engine that defines it is not linked here.
uint64_t wand::llm::random_seed() { return 42; }

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  seed_corpus(*argc, *argv,
              {R"j({"model": "m", "prompt": "Question: 2+3?\nProgram:\n", "max_tokens": 40, "temperature": 0.7,
                   "top_p": 0.9, "n": 2, "stop": ["\n\n"], "seed": 1, "logprobs": 5, "echo": true})j",
               R"j({"prompt": [[1, 2, 3], [4]], "max_tokens": 0, "logprobs": 0, "stream": true,
                   "stream_options": {"include_usage": true}})j",
               R"j({"model": "m", "messages": [{"role": "system", "content": "be brief"},
                   {"role": "user", "content": [{"type": "text", "text": "hi"}]}], "logprobs": true,
                   "top_logprobs": 3, "max_completion_tokens": 16, "response_format": {"type": "text"},
                   "presence_penalty": 0, "repetition_penalty": 1.1, "top_k": 40, "min_p": 0.05})j"});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  static const wand::server::Options opt = [] {
    wand::server::Options o;
    o.model_name = "m";
    return o;
  }();
  for (bool chat : {false, true}) {
    auto r = wand::server::parse_request(body, chat, opt);
    if (auto* e = std::get_if<wand::server::HttpError>(&r)) {
      if (e->message.empty() || e->status < 400 || e->status >= 500) __builtin_trap();
      continue;
    }
    auto& req = std::get<wand::server::Request>(r);
    // What the parser let through is what the server can serve: within its limits.
    if (req.gen.n < 1 || req.gen.n > opt.max_n || req.gen.max_tokens < 0 || req.gen.max_tokens > opt.max_tokens_limit)
      __builtin_trap();
    if (chat ? req.messages.empty() : req.prompts.empty()) __builtin_trap();
  }
  return 0;
}
