// The OpenAI-compatible client: /v1/completions and /v1/chat/completions over libcurl, streamed
// (server-sent events) when the caller streams, plain JSON otherwise. It follows the published
// API shapes and tolerates the known differences between real servers: n > 1 rejected (falls
// back to parallel single requests), usage only in a final chunk or missing, errors arriving as
// `data: {"error": ...}` events mid-stream, and empty text chunks.
#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <random>
#include <semaphore>
#include <thread>

#include <fmt/core.h>

#include "common/json.h"
#include "common/log.h"
#include "common/text.h"
#include "llm/llm.h"
#include "llm/backends.h"
#include "llm/sse.h"

namespace wand::llm {
namespace {

using Clock = std::chrono::steady_clock;
// Seconds GET /models may take (the prompt format and context length it lists are optional).
constexpr double kListingTimeoutS = 10;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// The text of an error body in any of the shapes servers use: {"error": {"message"}},
// {"error": "..."}, {"detail": ...} (FastAPI), {"message": "..."}; else the body's start.
std::string error_text(const std::string& body) {
  auto parsed = parse_json(body, "the error body");
  if (parsed && parsed->is_object()) {
    const Json& j = *parsed;
    if (auto e = j.find("error"); e != j.end()) {
      if (e->is_string()) return e->get<std::string>();
      if (e->is_object() && e->contains("message") && (*e)["message"].is_string())
        return (*e)["message"].get<std::string>();
      return e->dump();
    }
    for (const char* k : {"detail", "message"})
      if (auto d = j.find(k); d != j.end()) return d->is_string() ? d->get<std::string>() : d->dump();
  }
  std::string s = body.substr(0, 200);
  return s.empty() ? "(empty body)" : s;
}

// One HTTP exchange: status, headers we act on, body (unless streamed to a sink).
struct Exchange {
  CURLcode code = CURLE_OK;
  std::string curl_error;
  long status = 0;
  std::string body;
  double retry_after_s = -1;
  bool sink_stopped = false;  // the streaming sink asked to stop (caller or error event)
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  std::string_view line(data, size * n);
  constexpr std::string_view key = "retry-after:";
  if (line.size() > key.size() && std::equal(key.begin(), key.end(), line.begin(),
                                             [](char a, char b) { return a == std::tolower(b); })) {
    std::string value(line.substr(key.size()));
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r\n") + 1);
    char* end = nullptr;
    double s = std::strtod(value.c_str(), &end);
    if (end != value.c_str() && *end == '\0') {
      ex->retry_after_s = s;
    } else if (time_t t = curl_getdate(value.c_str(), nullptr); t > 0) {  // an HTTP date
      ex->retry_after_s = std::max<double>(0, static_cast<double>(t - time(nullptr)));
    }
  }
  return size * n;
}

struct Sink {
  Exchange* ex;
  CURL* curl;
  SseParser* sse;  // null: collect the body
};

// libcurl's progress callback, at least once a second: non-zero aborts the transfer.
int on_progress(void* opt, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return cancelled(*static_cast<const GenerateOptions*>(opt)) ? 1 : 0;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  std::string_view bytes(data, size * n);
  long status = 0;
  curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
  // Error responses are collected whole even on a streaming request.
  if (!s->sse || status < 200 || status >= 300) {
    if (s->ex->body.size() < (8u << 20)) s->ex->body.append(bytes);
    return size * n;
  }
  if (!s->sse->feed(bytes)) {
    s->ex->sink_stopped = true;
    return 0;  // aborts the transfer
  }
  return size * n;
}

bool retryable(const Exchange& ex) {
  switch (ex.code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return true;
    case CURLE_OK:
      return ex.status == 408 || ex.status == 429 || ex.status == 500 || ex.status == 502 || ex.status == 503 ||
             ex.status == 504;
    default:
      return false;
  }
}

}  // namespace

Result<OpenAIEndpoint> parse_openai_spec(const std::string& spec) {
  std::string url = spec.rfind("openai:", 0) == 0 ? spec.substr(7) : spec;
  auto bad = [&](std::string_view why) {
    return Error{fmt::format("model '{}': {} (expected openai:http://HOST:PORT/v1/MODEL)", spec, why)};
  };
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) return bad("the URL must start with http:// or https://");
  std::size_t host_start = url.find("://") + 3;
  if (host_start >= url.size() || url[host_start] == '/') return bad("the URL has no host");
  OpenAIEndpoint e;
  // The model is whatever follows "/v1/" (model names may contain '/'); without "/v1" in the
  // URL, the last path segment is the model and the rest the base.
  if (std::size_t v1 = url.find("/v1", host_start);
      v1 != std::string::npos && (v1 + 3 == url.size() || url[v1 + 3] == '/')) {
    e.base = url.substr(0, v1 + 3);
    e.model = v1 + 3 < url.size() ? url.substr(v1 + 4) : "";
  } else if (std::size_t slash = url.find('/', host_start); slash != std::string::npos) {
    std::size_t last = url.rfind('/');
    e.base = url.substr(0, last);
    e.model = url.substr(last + 1);
    if (last == slash) e.base = url.substr(0, slash);
  } else {
    e.base = url;
  }
  while (!e.model.empty() && e.model.back() == '/') e.model.pop_back();
  return e;
}

namespace {

class OpenAIBackend final : public Backend {
 public:
  OpenAIBackend(OpenAIEndpoint ep, const BackendOptions& opt)
      : ep_(std::move(ep)), opt_(opt), slots_(std::max(1, opt.concurrency)) {
    if (opt_.api_key.empty())
      for (const char* var : {"WAND_API_KEY", "OPENAI_API_KEY"})
        if (const char* k = std::getenv(var); k && *k) {
          opt_.api_key = k;
          break;
        }
  }

  std::string id() const override { return "openai:" + ep_.base + "/" + ep_.model; }

  // Without a model in the spec, the server's first listed model.
  VoidResult resolve_model() {
    if (!ep_.model.empty()) return ok_status();
    Exchange ex = send("GET", "/models", "", nullptr);
    if (auto e = check(ex, "/models"); !e) return e.error();
    auto j = parse_json(ex.body, ep_.base + "/models");
    if (!j) return j.error();
    if (!j->contains("data") || !(*j)["data"].is_array() || (*j)["data"].empty() || !(*j)["data"][0].contains("id"))
      return Error{fmt::format("{}/models lists no models; name one: openai:{}/MODEL", ep_.base, ep_.base)};
    if (!(*j)["data"][0]["id"].is_string()) return Error{fmt::format("{}/models: the first model's id is not a string", ep_.base)};
    ep_.model = (*j)["data"][0]["id"].get<std::string>();
    return ok_status();
  }

  std::string prompt_format() override { return listed().prompt_format; }
  int context_length() const override { return listed().context_length; }

  Result<std::vector<Completion>> complete(const std::string& prompt, const GenerateOptions& opt) override {
    return generate("/completions", completion_body(prompt, opt), opt);
  }

  Result<std::vector<Completion>> complete_tokens(const std::vector<int32_t>& prompt, const GenerateOptions& opt) override {
    return generate("/completions", completion_body(prompt, opt), opt);
  }

  Result<std::vector<Completion>> chat(const std::vector<Message>& messages, const GenerateOptions& opt) override {
    Json msgs = Json::array();
    for (auto& m : messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
    Json body = {{"messages", std::move(msgs)}};
    if (opt.logprobs) {
      body["logprobs"] = true;
      if (opt.top_logprobs > 0) body["top_logprobs"] = opt.top_logprobs;
    }
    return generate("/chat/completions", std::move(body), opt);
  }

 private:
  bool is_chat(std::string_view path) const { return path == "/chat/completions"; }

  // What the model's entry in GET /models says in its "wand" object (wand serve's extra field):
  // the prompt format and the context length; "" and 0 for a server that lists nothing of the
  // kind or cannot be asked (the generic defaults then). Asked once.
  struct Listing {
    std::string prompt_format;
    int context_length = 0;
  };
  const Listing& listed() const {
    std::call_once(listing_once_, [this] { listing_ = ask_listing(); });
    return listing_;
  }
  Listing ask_listing() const {
    Listing out;
    // A cache filled once behind a const accessor (context_length() is const in Backend). Asked
    // with a short deadline of its own: it is asked from inside a caller's time budget (the
    // agent's first prompt), and a server that cannot list its models in that time gets the
    // generic defaults rather than holding the caller for the whole request timeout.
    GenerateOptions bounded;
    bounded.deadline = Clock::now() +
                       std::chrono::milliseconds(static_cast<long>(1000 * std::min(opt_.timeout_s, kListingTimeoutS)));
    Exchange ex = const_cast<OpenAIBackend*>(this)->send("GET", "/models", "", nullptr, &bounded);
    if (!check(ex, "/models")) return out;
    auto j = parse_json(ex.body, ep_.base + "/models");
    if (!j || !j->is_object()) return out;
    auto data = j->find("data");
    if (data == j->end() || !data->is_array()) return out;
    for (const auto& m : *data) {
      if (!m.is_object() || m.value("id", Json()) != Json(ep_.model)) continue;
      auto w = m.find("wand");
      if (w == m.end() || !w->is_object()) return out;
      if (auto f = w->find("prompt_format"); f != w->end() && f->is_string()) out.prompt_format = f->get<std::string>();
      if (auto c = w->find("context_length"); c != w->end() && c->is_number_integer() && c->get<long long>() > 0 &&
                                              c->get<long long>() < (1LL << 31))
        out.context_length = static_cast<int>(c->get<long long>());
      return out;
    }
    return out;
  }

  // The legacy API's logprobs is the number of alternatives per position (tokens and their
  // logprobs come with any value); echo puts the prompt's tokens first.
  static Json completion_body(Json prompt, const GenerateOptions& opt) {
    Json body = {{"prompt", std::move(prompt)}};
    // Echo asks for logprobs too: their token count tells where the prompt ends.
    if (opt.logprobs || opt.echo) body["logprobs"] = opt.top_logprobs;
    if (opt.echo) body["echo"] = true;
    return body;
  }

  Result<std::vector<Completion>> generate(const std::string& path, Json body, const GenerateOptions& opt) {
    // Servers spell grammars differently (llama.cpp's `grammar`, vLLM's `guided_grammar`, none
    // in OpenAI's API): refused rather than silently dropped.
    if (opt.grammar)
      return Error{fmt::format("{}: a decoding grammar needs the embedded engine (local:PATH.gguf)", id()),
                   std::string(kInvalidRequest)};
    int n = std::max(1, opt.n);
    std::vector<Completion> out(n);
    std::vector<int> missing;
    std::string fallback_note;  // said, and remembered, only once single requests have worked:
                                // a request refused for another reason must not blame n
    if (n == 1 || !n_rejected_.load()) {
      auto r = request(path, body, opt, n);
      if (!r && !r.error().message.starts_with(kRejectedN)) return r.error();
      if (r) out = std::move(*r);
      // A choice that got nothing at all (finish_reason unset): the server ignored n.
      for (int i = 0; i < n; ++i)
        if (out[i].finish_reason.empty()) missing.push_back(i);
      if (n > 1 && !missing.empty())
        fallback_note = fmt::format("the server {} n={}; sent {} parallel single requests instead",
                                    r ? fmt::format("returned {} of the choices for", n - missing.size())
                                      : "rejected (" + r.error().message.substr(kRejectedN.size()) + ")",
                                    n, missing.size());
    } else {
      for (int i = 0; i < n; ++i) missing.push_back(i);
    }
    if (n == 1 || missing.empty()) {
      if (out[0].finish_reason.empty()) out[0].finish_reason = "stop";
      return out;
    }
    // Parallel single requests with the seeds the local engine uses for its samples; streamed
    // pieces keep their sample index, and the caller's callback never runs on two threads at once.
    std::vector<Result<std::vector<Completion>>> parts(missing.size(), Error{""});
    std::mutex callback_mu;
    std::vector<std::thread> threads;
    for (std::size_t k = 0; k < missing.size(); ++k)
      threads.emplace_back([&, k] {
        int i = missing[k];
        GenerateOptions one = opt;
        one.n = 1;
        one.seed = sample_seed(opt.seed, i);
        if (opt.on_text)
          one.on_text = [&, i](int, std::string_view text) {
            std::lock_guard lock(callback_mu);
            return opt.on_text(i, text);
          };
        parts[k] = request(path, body, one, 1);
      });
    for (auto& t : threads) t.join();
    for (std::size_t k = 0; k < missing.size(); ++k) {
      if (!parts[k]) return parts[k].error();
      out[missing[k]] = std::move(parts[k]->front());
      if (out[missing[k]].finish_reason.empty()) out[missing[k]].finish_reason = "stop";
    }
    if (!fallback_note.empty()) {
      n_rejected_ = true;
      log::warn("{}: {}", id(), fallback_note);
    }
    return out;
  }

  static constexpr std::string_view kRejectedN = "n rejected: ";

  Result<std::vector<Completion>> request(const std::string& path, Json body, const GenerateOptions& opt, int n) {
    body["model"] = ep_.model;
    body["max_tokens"] = opt.max_tokens;
    body["temperature"] = opt.temperature;
    if (opt.top_p < 1.f) body["top_p"] = opt.top_p;
    if (n > 1) body["n"] = n;
    body["seed"] = opt.seed;
    if (!opt.stop.empty()) body["stop"] = opt.stop;
    // Not in OpenAI's published API; sent only when asked for (vLLM, SGLang, llama.cpp accept them).
    if (opt.top_k > 0) body["top_k"] = opt.top_k;
    if (opt.min_p > 0) body["min_p"] = opt.min_p;
    if (opt.repeat_penalty != 1.f) body["repetition_penalty"] = opt.repeat_penalty;
    // With echo the prompt's text would stream first: such requests are read whole and the
    // generated text is handed to the caller in one piece.
    bool stream = opt.on_text && !opt.echo;
    if (stream) {
      body["stream"] = true;
      body["stream_options"] = {{"include_usage", true}};
    }
    std::string payload = dump_text(body);

    std::mt19937_64 jitter(std::random_device{}());
    for (int attempt = 0;; ++attempt) {
      StreamState st(n, is_chat(path), opt);
      SseParser sse([&](std::string_view data) { return st.on_event(data); });
      const bool ended = cancelled(opt);  // before this attempt (a retry's wait may end it)
      Exchange ex;
      if (!ended) ex = send("POST", path, payload, stream ? &sse : nullptr, &opt);
      if (ended || ex.code == CURLE_ABORTED_BY_CALLBACK)
        return Error{fmt::format("{}: the request was ended by its caller", id()), std::string(kCancelled)};
      if (stream && ex.code == CURLE_OK && ex.status / 100 == 2 && !ex.sink_stopped) sse.finish();
      if (!st.error.empty()) return Error{fmt::format("{}: the server sent an error mid-stream: {}", id(), st.error)};
      if (st.caller_stopped) return st.finish();
      if (ex.code == CURLE_OK && ex.status / 100 == 2) {
        if (stream) return st.finish();
        auto out = parse_response(ex.body, path, n);
        if (!out) return out;
        for (std::size_t i = 0; i < out->size(); ++i) {
          auto& c = (*out)[i];
          c.generate_ms = ms_between(st.t0, Clock::now());
          if (opt.echo) split_echo(c);
          if (!opt.logprobs) c.logprobs.clear();
          if (opt.on_text && !c.text.empty()) opt.on_text(static_cast<int>(i), c.text);
        }
        return out;
      }
      if (n > 1 && ex.code == CURLE_OK && (ex.status == 400 || ex.status == 422))
        return Error{std::string(kRejectedN) + error_text(ex.body)};
      // Retry only while nothing has reached the caller.
      if (attempt < opt_.retries && retryable(ex) && !st.emitted) {
        double wait = opt_.retry_base_s * std::pow(2.0, attempt) *
                      std::uniform_real_distribution<double>(0.5, 1.0)(jitter);
        if (ex.retry_after_s >= 0) wait = std::max(wait, ex.retry_after_s);
        wait = std::min(wait, 60.0);
        log::info("{}: {} — retrying in {:.2f} s ({}/{})", id(), describe(ex, path), wait, attempt + 1, opt_.retries);
        for (auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait));
             Clock::now() < until && !cancelled(opt);)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      auto e = check(ex, path);
      if (!e) {
        Error err = e.error();
        if (attempt > 0) err.message += fmt::format(" (after {} retries)", attempt);
        return err;
      }
      return Error{"the connection ended early"};
    }
  }

  // Accumulates streamed chunks per choice.
  struct StreamState {
    StreamState(int n, bool chat, const GenerateOptions& opt) : out(n), chat(chat), opt(opt), t0(Clock::now()) {
      first.assign(n, Clock::time_point{});
      chunks.assign(n, 0);
    }
    std::vector<Completion> out;
    bool chat;
    const GenerateOptions& opt;
    Clock::time_point t0;
    std::vector<Clock::time_point> first;
    std::vector<int> chunks;
    bool usage = false, emitted = false, caller_stopped = false;
    std::string error;

    bool on_event(std::string_view data) {
      if (data == "[DONE]") return true;
      auto parsed = parse_json(data, "an event");
      if (!parsed || !parsed->is_object()) {
        error = parsed ? fmt::format("an event is not a JSON object: {}", printable(data, 200)) : parsed.error().message;
        return false;
      }
      const Json& j = *parsed;
      if (j.contains("error")) {
        error = error_text(std::string(data));
        return false;
      }
      if (auto u = j.find("usage"); u != j.end() && u->is_object()) read_usage(*u, out), usage = true;
      if (!j.contains("choices") || !j["choices"].is_array()) return true;
      for (auto& c : j["choices"]) {
        if (!c.is_object()) continue;
        int i = c.contains("index") && c["index"].is_number_integer() ? c["index"].get<int>() : 0;
        if (i < 0 || i >= static_cast<int>(out.size())) continue;
        std::string text = chat ? (c.contains("delta") && c["delta"].is_object() ? string_of(c["delta"], "content") : "")
                                : string_of(c, "text");
        if (auto fr = c.find("finish_reason"); fr != c.end() && fr->is_string()) out[i].finish_reason = *fr;
        read_logprobs(c, chat, out[i]);
        if (text.empty()) continue;  // role-only and empty chunks
        if (!chunks[i]++) first[i] = Clock::now();
        out[i].text += text;
        emitted = true;
        if (opt.on_text && !opt.on_text(i, text)) {
          caller_stopped = true;
          out[i].finish_reason = "stop";
          return false;
        }
      }
      return true;
    }

    Result<std::vector<Completion>> finish() {
      auto now = Clock::now();
      for (std::size_t i = 0; i < out.size(); ++i) {
        auto& c = out[i];
        if (c.finish_reason.empty() && chunks[i]) c.finish_reason = "stop";  // else: nothing came
        // Servers that report no usage: each streamed chunk is (usually) one token.
        if (!usage) c.completion_tokens = chunks[i];
        c.prompt_ms = chunks[i] ? ms_between(t0, first[i]) : ms_between(t0, now);
        c.generate_ms = chunks[i] ? ms_between(first[i], now) : 0;
      }
      return std::move(out);
    }
  };

  // A server's counts as ints; anything else (a string, a float, a number beyond int) counts 0.
  static int int_of(const Json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) return 0;
    auto v = it->get<int64_t>();
    return v < 0 || v > std::numeric_limits<int>::max() ? 0 : static_cast<int>(v);
  }

  static std::string string_of(const Json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
  }

  // Usage covers all choices: prompt tokens are shared, generated tokens are split evenly
  // unless there is one choice (servers report no per-choice split).
  static void read_usage(const Json& u, std::vector<Completion>& out) {
    int prompt = int_of(u, "prompt_tokens"), gen = int_of(u, "completion_tokens");
    for (auto& c : out) {
      c.prompt_tokens = prompt;
      c.completion_tokens = gen / static_cast<int>(out.size());
    }
  }

  static std::optional<float> number_or_none(const Json& j) {
    return j.is_number() ? std::optional<float>(j.get<float>()) : std::nullopt;
  }

  static void read_logprobs(const Json& choice, bool chat, Completion& c) {
    auto lp = choice.find("logprobs");
    if (lp == choice.end() || !lp->is_object()) return;
    if (chat) {
      auto content = lp->find("content");
      if (content == lp->end() || !content->is_array()) return;
      for (auto& t : *content) {
        if (!t.is_object()) continue;
        TokenLogprob tl{string_of(t, "token"), number_or_none(t.value("logprob", Json())), {}};
        if (auto top = t.find("top_logprobs"); top != t.end() && top->is_array())
          for (auto& alt : *top)
            if (alt.is_object() && alt.contains("logprob") && alt["logprob"].is_number())
              tl.top.push_back({string_of(alt, "token"), alt["logprob"].get<float>()});
        c.logprobs.push_back(std::move(tl));
      }
      return;
    }
    auto toks = lp->find("tokens"), vals = lp->find("token_logprobs"), tops = lp->find("top_logprobs");
    if (toks == lp->end() || vals == lp->end() || !toks->is_array() || !vals->is_array()) return;
    for (std::size_t k = 0; k < toks->size() && k < vals->size(); ++k) {
      TokenLogprob tl{(*toks)[k].is_string() ? (*toks)[k].get<std::string>() : "", number_or_none((*vals)[k]), {}};
      // {token: logprob} per position; a JSON object has no order, so most likely first is restored.
      if (tops != lp->end() && tops->is_array() && k < tops->size() && (*tops)[k].is_object())
        for (auto& [token, value] : (*tops)[k].items())
          if (value.is_number()) tl.top.push_back({token, value.get<float>()});
      std::stable_sort(tl.top.begin(), tl.top.end(), [](auto& a, auto& b) { return a.logprob > b.logprob; });
      c.logprobs.push_back(std::move(tl));
    }
  }

  // An echoed choice starts with the prompt: its first prompt_tokens logprobs are the prompt's,
  // and its text begins with their text. What remains is the generation, as the local engine
  // returns it.
  static void split_echo(Completion& c) {
    std::size_t k = std::min<std::size_t>(std::max(0, c.prompt_tokens), c.logprobs.size());
    c.prompt_logprobs.assign(std::make_move_iterator(c.logprobs.begin()), std::make_move_iterator(c.logprobs.begin() + k));
    c.logprobs.erase(c.logprobs.begin(), c.logprobs.begin() + k);
    std::string prompt;
    for (auto& t : c.prompt_logprobs) prompt += t.token;
    if (c.text.starts_with(prompt)) c.text.erase(0, prompt.size());
  }

  Result<std::vector<Completion>> parse_response(const std::string& body, const std::string& path, int n) {
    auto j = parse_json(body, fmt::format("the response of {}{}", ep_.base, path));
    if (!j) return Error{j.error().message + " (the server did not send JSON)"};
    if (j->contains("error")) return Error{fmt::format("{}: {}", id(), error_text(body))};
    if (!j->contains("choices") || !(*j)["choices"].is_array() || (*j)["choices"].empty())
      return Error{fmt::format("the response of {}{} has no choices: {}", ep_.base, path, body.substr(0, 200))};
    bool chat = is_chat(path);
    std::vector<Completion> out(n);
    int k = 0;
    for (auto& c : (*j)["choices"]) {
      int i = c.is_object() && c.contains("index") && c["index"].is_number_integer() ? c["index"].get<int>() : k;
      ++k;
      if (i < 0 || i >= n || !c.is_object()) continue;
      out[i].text = chat ? (c.contains("message") && c["message"].is_object() ? string_of(c["message"], "content") : "")
                         : string_of(c, "text");
      out[i].finish_reason = c.contains("finish_reason") && c["finish_reason"].is_string()
                                 ? c["finish_reason"].get<std::string>()
                                 : "stop";
      read_logprobs(c, chat, out[i]);
    }
    if (auto u = j->find("usage"); u != j->end() && u->is_object()) read_usage(*u, out);
    return out;
  }

  std::string describe(const Exchange& ex, const std::string& path) const {
    std::string url = ep_.base + path;
    switch (ex.code) {
      case CURLE_OK:
        return fmt::format("HTTP {} from {}: {}", ex.status, url, error_text(ex.body));
      case CURLE_COULDNT_CONNECT:
        return fmt::format("cannot connect to {} (connection refused: is the server running?)", url);
      case CURLE_COULDNT_RESOLVE_HOST:
        return fmt::format("cannot resolve the host of {}", url);
      case CURLE_OPERATION_TIMEDOUT:
        return fmt::format("{} did not answer within {} s", url, opt_.timeout_s);
      case CURLE_URL_MALFORMAT:
        return fmt::format("'{}' is not a valid URL", url);
      default:
        return fmt::format("{}: {}", url, ex.curl_error.empty() ? curl_easy_strerror(ex.code) : ex.curl_error);
    }
  }

  VoidResult check(const Exchange& ex, const std::string& path) const {
    if (ex.code == CURLE_OK && ex.status / 100 == 2) return ok_status();
    std::string msg = describe(ex, path);
    if (ex.code == CURLE_OK && ex.status == 404)
      msg += fmt::format(" (is the model '{}' served there, and does the URL end in /v1?)", ep_.model);
    if (ex.code == CURLE_OK && (ex.status == 401 || ex.status == 403))
      msg += " (set the API key in WAND_API_KEY or OPENAI_API_KEY)";
    // The server refused the request itself: callers report it as bad input, not a failure.
    std::string code;
    if (ex.code == CURLE_OK && (ex.status == 400 || ex.status == 413 || ex.status == 422)) {
      bool too_long = ex.body.find("context_length_exceeded") != std::string::npos;
      code = std::string(too_long ? kContextLengthExceeded : kInvalidRequest);
    }
    return Error{msg, code};
  }

  // `opt`: a generation request's options, whose cancel and deadline end the transfer.
  Exchange send(const char* method, const std::string& path, const std::string& payload, SseParser* sse,
                const GenerateOptions* opt = nullptr) {
    curl_init_once();
    slots_.acquire();
    Exchange ex;
    CURL* curl = curl_easy_init();
    std::string url = ep_.base + path;
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, sse ? "Accept: text/event-stream" : "Accept: application/json");
    if (!opt_.api_key.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + opt_.api_key).c_str());
    char errbuf[CURL_ERROR_SIZE] = {0};
    Sink sink{&ex, curl, sse};
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(opt_.timeout_s * 1000));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opt_.connect_timeout_s * 1000));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &ex);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "wand/0.1");
    if (opt && (opt->cancel || opt->deadline != Clock::time_point{})) {
      curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
      curl_easy_setopt(curl, CURLOPT_XFERINFODATA, opt);
      curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    }
    if (std::string_view(method) == "POST") {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload.c_str());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    }
    ex.code = curl_easy_perform(curl);
    if (ex.sink_stopped && ex.code == CURLE_WRITE_ERROR) ex.code = CURLE_OK;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &ex.status);
    ex.curl_error = errbuf;
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    slots_.release();
    return ex;
  }

  OpenAIEndpoint ep_;
  BackendOptions opt_;
  std::counting_semaphore<> slots_;
  std::atomic<bool> n_rejected_{false};
  mutable std::once_flag listing_once_;
  mutable Listing listing_;
};

}  // namespace

Result<std::unique_ptr<Backend>> open_openai_backend(const std::string& spec, const BackendOptions& opt) {
  auto ep = parse_openai_spec(spec);
  if (!ep) return ep.error();
  // The embedded engine's settings are refused rather than silently not applied.
  if (opt.kv_cache != BackendOptions{}.kv_cache)
    return Error{fmt::format("model '{}': the KV cache type ({}) is the embedded engine's setting; a served model "
                             "keeps its server's",
                             spec, opt.kv_cache)};
  if (opt.threads != BackendOptions{}.threads)
    return Error{fmt::format("model '{}': engine threads ({}) are the embedded engine's setting; a served model runs "
                             "on its server's",
                             spec, opt.threads)};
  auto backend = std::make_unique<OpenAIBackend>(*ep, opt);
  if (auto r = backend->resolve_model(); !r) return Error{fmt::format("model '{}': {}", spec, r.error().message)};
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace wand::llm
