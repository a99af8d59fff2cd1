// The model layer's public face: everything in wand that needs a model takes a Backend.
// "local:PATH.gguf" runs the embedded engine in-process; "openai:URL/MODEL" talks to any
// OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama, hosted APIs). The spec string is
// recorded in every run's output. Backends are safe to call from several threads at once.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace wand::llm {

class Grammar;  // llm/grammar.h

struct Message {
  std::string role;  // system, user, assistant
  std::string content;
};

struct GenerateOptions {
  int max_tokens = 256;
  float temperature = 0.f;  // 0 = greedy
  float top_p = 1.f;
  int top_k = 0;
  float min_p = 0.f;
  float repeat_penalty = 1.f;
  uint64_t seed = 0;
  std::vector<std::string> stop;  // generation ends before the first of these; it is not returned
  int n = 1;                      // independent samples (seeds seed, seed+1, ...)
  bool logprobs = false;          // fill Completion::logprobs (remote: when the server offers them)
  // Constrained decoding (embedded engine only; a remote backend refuses it): every sample is a
  // prefix of a sentence of this grammar, and ends (finish "stop") only where the grammar can.
  std::shared_ptr<const Grammar> grammar;  // Grammar::load("pot"), ...; null = unconstrained
  // Streaming: called with each new piece of text of sample `index`; return false to stop it.
  std::function<bool(int index, std::string_view text)> on_text;
};

struct TokenLogprob {
  std::string token;
  float logprob = 0;
};

struct Completion {
  std::string text;
  std::string finish_reason;  // "stop" (end token or stop sequence) or "length"
  int prompt_tokens = 0;
  int completion_tokens = 0;
  double prompt_ms = 0, generate_ms = 0;  // remote: time to the first token, and the rest
  std::vector<TokenLogprob> logprobs;     // one per generated token, when asked for
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Result<std::vector<Completion>> complete(const std::string& prompt, const GenerateOptions& opt) = 0;
  virtual Result<std::vector<Completion>> chat(const std::vector<Message>& messages, const GenerateOptions& opt) = 0;
  virtual std::string id() const = 0;  // the spec it was opened with
};

struct BackendOptions {
  int threads = 0;         // local: 0 = every core
  int context = 0;         // local: 0 = the model's
  double timeout_s = 300;  // remote: one request, end to end
  double connect_timeout_s = 10;
  int retries = 4;             // remote: on 429, 5xx and connection failures
  double retry_base_s = 0.5;   // first back-off; doubles each time, with jitter, capped at 30 s
  int concurrency = 16;        // remote: requests in flight at once on this backend
  std::string api_key;         // remote: default $WAND_API_KEY, then $OPENAI_API_KEY
};

// "local:PATH" (or a path ending in .gguf) or "openai:http(s)://HOST[:PORT]/v1/MODEL"; a spec
// without a model ("openai:http://host:8000/v1") uses the server's first listed model.
// Errors name the spec and what is wrong.
Result<std::unique_ptr<Backend>> open_backend(const std::string& spec, const BackendOptions& opt = {});

// Cuts text at the first stop sequence while streaming: feed() returns the part that can be
// shown now (holding back a tail that could still begin a stop sequence).
class StopMatcher {
 public:
  explicit StopMatcher(const std::vector<std::string>& stops) : stops_(stops) {}
  std::string feed(std::string_view piece);
  std::string flush();  // the held-back tail at the end
  bool stopped() const { return stopped_; }

 private:
  const std::vector<std::string>& stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace wand::llm
