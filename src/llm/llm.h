// The model layer's public face: everything in wand that needs a model takes a Backend.
// "local:PATH.gguf" runs the embedded engine in-process; "openai:URL/MODEL" talks to any
// OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama, hosted APIs). The spec string is
// recorded in every run's output. Backends are safe to call from several threads at once.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/numbers.h"
#include "common/status.h"

namespace wand::llm {

class Grammar;  // llm/grammar.h

struct Message {
  std::string role;  // system, user, assistant
  std::string content;
};

// Sampling temperature: OpenAI's API range, which every face accepts (wand generate and solve,
// wand serve's requests, reason::SolveConfig), so a value that works locally also works remotely.
inline constexpr NumberRule kTemperatureRange{.lo = 0, .hi = 2};

struct GenerateOptions {
  int max_tokens = 256;     // 0: no generation (with echo: only score the prompt)
  float temperature = 0.f;  // 0 = greedy
  float top_p = 1.f;
  int top_k = 0;
  float min_p = 0.f;
  float repeat_penalty = 1.f;
  uint64_t seed = 0;
  std::vector<std::string> stop;  // generation ends before the first of these; it is not returned
  int n = 1;                      // independent samples; sample i draws from sample_seed(seed, i)
  bool logprobs = false;          // fill Completion::logprobs (remote: when the server offers them)
  int top_logprobs = 0;           // with logprobs: also the N most likely tokens at each position
  bool echo = false;              // also score the prompt: fill Completion::prompt_logprobs
  // Constrained decoding (embedded engine only; a remote backend refuses it): every sample is a
  // prefix of a sentence of this grammar, and ends (finish "stop") only where the grammar can.
  std::shared_ptr<const Grammar> grammar;  // Grammar::load("pot"), ...; null = unconstrained
  // Streaming: called with each new piece of text of sample `index`; return false to stop it.
  std::function<bool(int index, std::string_view text)> on_text;
  // Ends the request early, failing it with code kCancelled: once *cancel is true (a caller's
  // signal handler set it) or at `deadline` (a caller's time budget). Checked before each token
  // of the embedded engine and at least once a second while a remote request waits.
  const std::atomic<bool>* cancel = nullptr;
  std::chrono::steady_clock::time_point deadline{};  // {}: none
};

// Whether `opt`'s request is to end now (GenerateOptions::cancel or ::deadline).
inline bool cancelled(const GenerateOptions& opt) {
  return (opt.cancel && opt.cancel->load()) ||
         (opt.deadline != std::chrono::steady_clock::time_point{} && std::chrono::steady_clock::now() >= opt.deadline);
}

struct TopLogprob {
  std::string token;
  float logprob = 0;
};

// One position's token and its log-probability (natural log) under the model's distribution
// before temperature and filtering, as OpenAI's API reports them.
struct TokenLogprob {
  std::string token;
  std::optional<float> logprob;  // none for a prompt's first token: nothing came before to predict it
  std::vector<TopLogprob> top;   // the top_logprobs most likely tokens there, most likely first
};

struct Completion {
  std::string text;
  std::string finish_reason;  // "stop" (end token or stop sequence) or "length"
  int prompt_tokens = 0;
  int completion_tokens = 0;
  double prompt_ms = 0, generate_ms = 0;    // remote: time to the first token, and the rest
  std::vector<TokenLogprob> logprobs;       // one per generated token, when asked for; the tokens
                                            // joined equal `text` (a token cut by a stop sequence
                                            // keeps only its part before the stop)
  std::vector<TokenLogprob> prompt_logprobs;  // with echo: one per prompt token; joined, the prompt
};

// Error codes of the model layer (Error::code): the request itself is wrong.
inline constexpr std::string_view kInvalidRequest = "invalid_request";
inline constexpr std::string_view kContextLengthExceeded = "context_length_exceeded";
// ... or the caller ended it (GenerateOptions::cancel, ::deadline).
inline constexpr std::string_view kCancelled = "cancelled";

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Result<std::vector<Completion>> complete(const std::string& prompt, const GenerateOptions& opt) = 0;
  virtual Result<std::vector<Completion>> chat(const std::vector<Message>& messages, const GenerateOptions& opt) = 0;
  // A prompt given as token ids of the model's vocabulary, used as they are (no BOS is added), as
  // lm-evaluation-harness sends them. Backends that cannot take ids answer kInvalidRequest.
  virtual Result<std::vector<Completion>> complete_tokens(const std::vector<int32_t>& prompt,
                                                          const GenerateOptions& opt);
  virtual std::string id() const = 0;  // the spec it was opened with
  // The prompt format of a model trained by wand ("pot", "cot", "func": format_question below), "" for
  // any other model. Local: the GGUF's wand.prompt_format. Remote: the "wand": {"prompt_format"}
  // object of the model's entry in the server's GET /models (`wand serve` says it there; OpenAI's
  // model object allows extra fields), asked once; "" when the server says nothing or cannot be
  // asked (the completion requests then report what is wrong with the server).
  virtual std::string prompt_format() { return ""; }
  // Whether GenerateOptions::grammar is honoured (the embedded engine); others refuse it.
  virtual bool can_constrain() const { return false; }
  // Tokens the model's context holds (prompt and completion together); 0 when unknown. Remote:
  // the "wand": {"context_length"} of the model's GET /models entry (`wand serve` of a wand model
  // says it), asked with the prompt format; other servers do not say. Callers that budget a
  // prompt (the agent loop) stay under it.
  virtual int context_length() const { return 0; }
};

struct BackendOptions {
  int threads = 0;         // local: 0 = every core (remote: another value is an error)
  int context = 0;         // local: 0 = the model's
  std::string kv_cache = "f32";  // local: the KV cache's element type, f32, f16 (llama.cpp's default) or q8
                                 // (remote: another value is an error)
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

// The seed of sample `index` of a request seeded `seed`: the seed itself for sample 0 (so one
// sample equals what an OpenAI server gives for that seed), else splitmix64 (Steele et al. 2014)
// of both (below 2^53, so it survives JSON), so runs with different seeds never share a sample
// stream (with seed + i, seed 1's second sample was seed 2's first). Every backend path that
// splits n samples uses this.
uint64_t sample_seed(uint64_t seed, int index);

// A seed from the system's random source (below 2^53), for runs not given one: print or record
// it, so the run can be repeated.
uint64_t random_seed();

// The prompt formats wand's own models are trained on, by the name their GGUF records in
// wand.prompt_format: "pot" (Question: ...\nProgram:\n), "pot-numbers" (the same, of a question
// whose numbers are names n0, n1, ...: reason/numbers.h maps them), "cot" (Question: ...\nAnswer: ) and
// "func", the code model's (Task: ...\nTests:\n; it writes asserts, then Code: and the function).
// An unknown format is an error naming it.
Result<std::string> format_question(std::string_view format, std::string_view question);

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
