// OpenAI's request bodies as generation requests (openai_requests.h).
#include "server/openai_requests.h"

#include <algorithm>

#include <fmt/core.h>

namespace wand::server {
namespace {

HttpError bad(std::string param, std::string message) {
  return {400, std::move(message), "invalid_request_error", std::move(param), ""};
}

// The request body as JSON. The one place a body is parsed, so the parse (and any depth or size
// guard on it) is the same for every endpoint.
std::variant<Json, HttpError> parse_body(const std::string& text) {
  auto parsed = parse_json(text, "the request body");
  if (!parsed) return bad("", parsed.error().message);
  if (!parsed->is_object()) return bad("", "the request body must be a JSON object");
  return std::move(*parsed);
}

// The API's limits on alternatives per position (OpenAI's published maxima).
constexpr int kMaxCompletionLogprobs = 5, kMaxChatTopLogprobs = 20;
// Prompts in one completions request (lm-evaluation-harness batches them).
constexpr std::size_t kMaxPrompts = 256;

template <class T>
std::optional<HttpError> read_number(const Json& body, const char* key, T& out, double lo, double hi) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  bool integral = std::is_integral_v<T>;
  if (!it->is_number() || (integral && !it->is_number_integer()))
    return bad(key, fmt::format("'{}' must be {}", key, integral ? "an integer" : "a number"));
  double v = it->get<double>();
  if (v < lo || v > hi) return bad(key, fmt::format("'{}' must be between {} and {}; got {}", key, lo, hi, it->dump()));
  out = it->get<T>();
  return std::nullopt;
}

std::optional<HttpError> read_bool(const Json& body, const char* key, bool& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return bad(key, fmt::format("'{}' must be a boolean", key));
  out = *it;
  return std::nullopt;
}

std::optional<std::vector<int32_t>> token_ids(const Json& j) {
  if (!j.is_array() || j.empty()) return std::nullopt;
  std::vector<int32_t> ids;
  for (auto& x : j) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > INT32_MAX) return std::nullopt;
    ids.push_back(x.get<int32_t>());
  }
  return ids;
}

// prompt: a string, an array of strings, an array of token ids, or an array of such arrays.
std::optional<HttpError> read_prompts(const Json& body, std::vector<Prompt>& out) {
  auto p = body.find("prompt");
  if (p == body.end()) return bad("prompt", "'prompt' is required");
  if (p->is_string()) {
    out.emplace_back(std::in_place_type<std::string>, p->get<std::string>());
  } else if (auto ids = token_ids(*p)) {
    out.emplace_back(std::in_place_type<std::vector<int32_t>>, std::move(*ids));
  } else if (p->is_array() && !p->empty()) {
    for (auto& x : *p) {
      if (x.is_string()) {
        out.emplace_back(std::in_place_type<std::string>, x.get<std::string>());
      } else if (auto one = token_ids(x)) {
        out.emplace_back(std::in_place_type<std::vector<int32_t>>, std::move(*one));
      } else {
        out.clear();
        break;
      }
    }
  }
  if (out.empty())
    return bad("prompt", "'prompt' must be a string, an array of strings, an array of token ids (non-negative "
                         "integers) or an array of such arrays");
  if (out.size() > kMaxPrompts) return bad("prompt", fmt::format("'prompt' holds {} prompts; at most {}", out.size(), kMaxPrompts));
  return std::nullopt;
}

// messages: [{role, content}], content a string or text parts. Roles are those a chat template
// knows; tool calls are not supported, so every message needs its content.
std::optional<HttpError> read_messages(const Json& body, std::vector<llm::Message>& out) {
  auto m = body.find("messages");
  if (m == body.end() || !m->is_array() || m->empty()) return bad("messages", "'messages' must be a non-empty array");
  for (std::size_t i = 0; i < m->size(); ++i) {
    const Json& msg = (*m)[i];
    std::string where = fmt::format("messages[{}]", i);
    if (!msg.is_object()) return bad(where, fmt::format("'{}' must be an object with 'role' and 'content'", where));
    auto role = msg.find("role");
    if (role == msg.end() || !role->is_string())
      return bad(where + ".role", fmt::format("'{}.role' is required: system, developer, user or assistant", where));
    static const std::vector<std::string> kRoles = {"system", "developer", "user", "assistant"};
    if (std::find(kRoles.begin(), kRoles.end(), role->get<std::string>()) == kRoles.end())
      return bad(where + ".role", fmt::format("'{}.role' is '{}'; expected system, developer, user or assistant",
                                              where, role->get<std::string>()));
    std::string content;
    auto c = msg.find("content");
    if (c == msg.end() || c->is_null()) {
      return bad(where + ".content", fmt::format("'{}.content' is required", where));
    } else if (c->is_string()) {
      content = *c;
    } else if (c->is_array()) {  // content parts: only text is understood
      for (auto& part : *c) {
        if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
            !part["text"].is_string())
          return bad(where + ".content", fmt::format("'{}.content': only text content parts are supported", where));
        content += part["text"].get<std::string>();
      }
    } else {
      return bad(where + ".content", fmt::format("'{}.content' must be a string or an array of parts", where));
    }
    out.push_back({role->get<std::string>(), std::move(content)});
  }
  return std::nullopt;
}

// Completions: logprobs: N asks for the tokens' logprobs and the N (0-5) most likely tokens per
// position; echo returns the prompt scored. Chat: logprobs is a boolean; top_logprobs (0-20)
// needs it. The maxima are the published API's.
std::optional<HttpError> read_logprobs(const Json& body, bool chat, llm::GenerateOptions& g) {
  if (!chat) {
    if (auto e = read_number(body, "logprobs", g.top_logprobs, 0, kMaxCompletionLogprobs)) return e;
    g.logprobs = body.contains("logprobs") && !body["logprobs"].is_null();
    return read_bool(body, "echo", g.echo);
  }
  if (auto e = read_bool(body, "logprobs", g.logprobs)) return e;
  if (auto e = read_number(body, "top_logprobs", g.top_logprobs, 0, kMaxChatTopLogprobs)) return e;
  if (g.top_logprobs > 0 && !g.logprobs) return bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  return std::nullopt;
}

// Fields of the API this server does not implement: a request that sets one to anything but
// its neutral value is refused by name rather than answered as if it had not been asked.
std::optional<HttpError> refuse_unsupported(const Json& body) {
  auto set = [&](const char* key) { return body.contains(key) && !body[key].is_null(); };
  auto refuse = [](const char* key) { return bad(key, fmt::format("'{}' is not supported by this server", key)); };
  for (const char* key : {"presence_penalty", "frequency_penalty"})
    if (set(key) && !(body[key].is_number() && body[key] == 0)) return refuse(key);
  for (const char* key : {"logit_bias", "tools", "functions"})
    if (set(key) && !body[key].empty()) return refuse(key);
  if (set("suffix") && body["suffix"] != "") return refuse("suffix");
  if (set("best_of") && body["best_of"] != 1 && body["best_of"] != body.value("n", Json(1))) return refuse("best_of");
  if (set("response_format")) {
    const Json& rf = body["response_format"];
    if (!(rf.is_object() && rf.contains("type") && rf["type"] == "text")) return refuse("response_format");
  }
  return std::nullopt;
}

}  // namespace

Json error_body(const HttpError& e) {
  return {{"error",
           {{"message", e.message},
            {"type", e.type},
            {"param", e.param.empty() ? Json(nullptr) : Json(e.param)},
            {"code", e.code.empty() ? Json(nullptr) : Json(e.code)}}}};
}

std::variant<Request, HttpError> parse_request(const std::string& text, bool chat, const Options& opt) {
  auto parsed = parse_body(text);
  if (auto* e = std::get_if<HttpError>(&parsed)) return *e;
  const Json& body = std::get<Json>(parsed);
  Request r;
  r.chat = chat;
  if (auto m = body.find("model"); m != body.end()) {
    if (!m->is_string()) return bad("model", "'model' must be a string");
    if (!m->get<std::string>().empty() && *m != opt.model_name)
      return HttpError{404,
                       fmt::format("The model '{}' does not exist; this server has '{}'", m->get<std::string>(),
                                   opt.model_name),
                       "invalid_request_error", "model", "model_not_found"};
  }
  if (auto e = refuse_unsupported(body)) return *e;
  if (auto e = chat ? read_messages(body, r.messages) : read_prompts(body, r.prompts)) return *e;
  auto& g = r.gen;
  g.max_tokens = 256;
  // max_tokens 0 generates nothing: with echo, the prompt is only scored (lm-evaluation-harness).
  for (const char* key : {"max_tokens", "max_completion_tokens"})
    if (auto e = read_number(body, key, g.max_tokens, 0, opt.max_tokens_limit)) return *e;
  g.temperature = 1.f;  // OpenAI's default: a request that names none samples
  if (auto e = read_number(body, "temperature", g.temperature, llm::kTemperatureRange.lo, llm::kTemperatureRange.hi)) return *e;
  if (auto e = read_number(body, "top_p", g.top_p, 0, 1)) return *e;
  if (auto e = read_number(body, "top_k", g.top_k, 0, 1e9)) return *e;
  if (auto e = read_number(body, "min_p", g.min_p, 0, 1)) return *e;
  for (const char* key : {"repetition_penalty", "repeat_penalty"})
    if (auto e = read_number(body, key, g.repeat_penalty, 0.01, 10)) return *e;
  if (auto e = read_number(body, "n", g.n, 1, opt.max_n)) return *e;
  // Without a seed, sampling differs from request to request, as OpenAI's API does.
  int64_t seed = 0;
  if (!body.contains("seed") || body["seed"].is_null()) seed = static_cast<int64_t>(llm::random_seed());
  else if (auto e = read_number(body, "seed", seed, -9.2e18, 9.2e18)) return *e;
  g.seed = static_cast<uint64_t>(seed);
  if (auto s = body.find("stop"); s != body.end() && !s->is_null()) {
    if (s->is_string()) {
      g.stop.push_back(*s);
    } else if (s->is_array() && s->size() <= 16 && std::all_of(s->begin(), s->end(), [](auto& x) { return x.is_string(); })) {
      for (auto& x : *s) g.stop.push_back(x);
    } else {
      return bad("stop", "'stop' must be a string or an array of at most 16 strings");
    }
  }
  if (auto e = read_bool(body, "stream", r.stream)) return *e;
  if (auto so = body.find("stream_options"); so != body.end() && so->is_object())
    if (auto iu = so->find("include_usage"); iu != so->end() && iu->is_boolean()) r.include_usage = *iu;
  if (auto e = read_logprobs(body, chat, g)) return *e;
  return r;
}

}  // namespace wand::server
