// The OpenAI-compatible HTTP face of a Backend (cpp-httplib), following OpenAI's published API
// reference for the fields clients depend on (lm-evaluation-harness's echo/logprobs scoring,
// the openai SDKs). Request validation turns every malformed field into a 400 naming it; a
// request the backend refuses (too long a prompt, a chat a model cannot take) is a 400 too;
// other generation errors become 500 (or an error event when the stream has started); a
// client that goes away stops its generation.
#include "server/server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <variant>

#include <fmt/core.h>

#include "common/json.h"
#include "common/log.h"

namespace wand::server {
namespace {

struct HttpError {
  int status;
  std::string message, type, param, code;
};

Json error_body(const HttpError& e) {
  return {{"error",
           {{"message", e.message},
            {"type", e.type},
            {"param", e.param.empty() ? Json(nullptr) : Json(e.param)},
            {"code", e.code.empty() ? Json(nullptr) : Json(e.code)}}}};
}

HttpError bad(std::string param, std::string message) {
  return {400, std::move(message), "invalid_request_error", std::move(param), ""};
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// The request body as JSON. The one place a body is parsed, so the parse (and any depth or size
// guard on it) is the same for every endpoint.
std::variant<Json, HttpError> parse_body(const std::string& text) {
  auto parsed = parse_json(text, "the request body");
  if (!parsed) return bad("", parsed.error().message);
  if (!parsed->is_object()) return bad("", "the request body must be a JSON object");
  return std::move(*parsed);
}

// One prompt of /v1/completions: text, or token ids of the model's vocabulary.
using Prompt = std::variant<std::string, std::vector<int32_t>>;

// A parsed generation request.
struct Request {
  bool chat = false, stream = false, include_usage = false;
  std::vector<Prompt> prompts;  // completions: one choice group per prompt
  std::vector<llm::Message> messages;
  llm::GenerateOptions gen;
};

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

Json token_bytes(const std::string& token) {
  Json bytes = Json::array();
  for (unsigned char b : token) bytes.push_back(b);
  return bytes;
}

Json logprob_value(const std::optional<float>& v) { return v ? Json(*v) : Json(nullptr); }

// The choice's logprobs in the API's shape. Completions: parallel lists over the echoed prompt's
// tokens (the first has no logprob) then the generated ones; top_logprobs per position is
// {token: logprob}. Chat: one entry per generated token with its alternatives.
Json logprobs_json(const llm::Completion& c, bool chat) {
  if (chat) {
    Json content = Json::array();
    for (auto& t : c.logprobs) {
      Json top = Json::array();
      for (auto& alt : t.top) top.push_back({{"token", alt.token}, {"logprob", alt.logprob}, {"bytes", token_bytes(alt.token)}});
      content.push_back(
          {{"token", t.token}, {"logprob", logprob_value(t.logprob)}, {"bytes", token_bytes(t.token)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  Json tokens = Json::array(), values = Json::array(), tops = Json::array(), offsets = Json::array();
  int offset = 0;
  for (auto* list : {&c.prompt_logprobs, &c.logprobs})
    for (auto& t : *list) {
      tokens.push_back(t.token);
      values.push_back(logprob_value(t.logprob));
      Json top = Json::object();
      for (auto& alt : t.top) top[alt.token] = alt.logprob;
      tops.push_back(t.logprob ? top : Json(nullptr));
      offsets.push_back(offset);
      offset += static_cast<int>(t.token.size());
    }
  return {{"tokens", tokens}, {"token_logprobs", values}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

// The echoed prompt's text: the prompt as sent, or its tokens' text when it was token ids.
std::string echo_text(const Prompt& p, const llm::Completion& c) {
  if (auto* text = std::get_if<std::string>(&p)) return *text;
  std::string s;
  for (auto& t : c.prompt_logprobs) s += t.token;
  return s;
}

// Prompt tokens count once per prompt (its n samples share it); generated tokens per choice.
Json usage_json(const std::vector<llm::Completion>& out, int n) {
  int prompt = 0, gen = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i % std::max(1, n) == 0) prompt += out[i].prompt_tokens;
    gen += out[i].completion_tokens;
  }
  return {{"prompt_tokens", prompt}, {"completion_tokens", gen}, {"total_tokens", prompt + gen}};
}

// A backend's refusal of the request itself is the client's error (400); anything else is ours.
HttpError backend_error(const Error& e, bool chat) {
  std::string param = chat ? "messages" : "prompt";
  if (e.code == llm::kContextLengthExceeded)
    return {400, e.message, "invalid_request_error", param, std::string(llm::kContextLengthExceeded)};
  if (e.code == llm::kInvalidRequest) return bad(param, e.message);
  return {500, e.message, "server_error", "", ""};
}

}  // namespace

struct Server::Impl {
  llm::Backend& backend;
  Options opt;
  httplib::Server http;
  std::atomic<uint64_t> next_id{1};

  static int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t started = now_s();

  Impl(llm::Backend& b, Options o) : backend(b), opt(std::move(o)) {}

  void reply_error(httplib::Response& res, const HttpError& e) {
    res.status = e.status;
    res.set_content(dump(error_body(e)), "application/json");
  }

  // OpenAI's model object, plus (an extra field, which its clients ignore) what a wand model is:
  // the prompt format it answers in, so wand's client picks the matching prompts (reason's auto
  // prompt style) instead of chat, which these models do not take.
  Json model_json() const {
    Json m = {{"id", opt.model_name}, {"object", "model"}, {"created", started}, {"owned_by", "wand"}};
    if (auto format = backend.prompt_format(); !format.empty()) m["wand"] = {{"prompt_format", format}};
    return m;
  }

  void routes() {
    http.set_payload_max_length(16u << 20);
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"status":"ok"})", "application/json");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(dump({{"object", "list"}, {"data", Json::array({model_json()})}}), "application/json");
    });
    http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (req.matches[1] != opt.model_name)
        return reply_error(res, {404, fmt::format("The model '{}' does not exist", req.matches[1].str()),
                                 "invalid_request_error", "model", "model_not_found"});
      res.set_content(dump(model_json()), "application/json");
    });
    // The body is read here rather than by httplib, which would take a body sent with a form's
    // content type (what `curl -d` sends) as a form and refuse it past 8 KB: it is JSON whatever
    // the content type says, under the same size limit.
    auto post = [this](bool chat) {
      return [this, chat](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        if (req.is_multipart_form_data())
          return reply_error(res, {415, "the request body must be JSON, not multipart form data", "invalid_request_error",
                                   "", ""});
        std::string body;
        if (!reader([&](const char* data, size_t n) {
              body.append(data, n);
              return true;
            }))
          return reply_error(res, {res.status == 413 ? 413 : 400,
                                   res.status == 413 ? "the request body is too large (16 MiB at most)"
                                                     : "the request body could not be read",
                                   "invalid_request_error", "", ""});
        generate(body, res, chat);
      };
    };
    http.Post("/v1/completions", post(false));
    http.Post("/v1/chat/completions", post(true));
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a handler already wrote the error
      HttpError e{res.status, fmt::format("{} {} is not served here", req.method, req.path), "invalid_request_error",
                  "", ""};
      if (res.status == 413) e.message = "the request body is too large";
      reply_error(res, e);
    });
    http.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& ex) {
        what = ex.what();
      } catch (...) {
      }
      reply_error(res, {500, what, "server_error", "", ""});
    });
  }

  // The chat, or each prompt in turn; choices are numbered prompt * n + sample.
  Result<std::vector<llm::Completion>> run(const Request& r, llm::GenerateOptions g) {
    if (r.chat) return backend.chat(r.messages, g);
    std::vector<llm::Completion> all;
    auto on_text = std::move(g.on_text);
    for (std::size_t p = 0; p < r.prompts.size(); ++p) {
      int base = static_cast<int>(p) * r.gen.n;
      if (on_text) g.on_text = [&, base](int i, std::string_view text) { return on_text(base + i, text); };
      auto* text = std::get_if<std::string>(&r.prompts[p]);
      auto out = text ? backend.complete(*text, g) : backend.complete_tokens(std::get<1>(r.prompts[p]), g);
      if (!out) return out.error();
      for (auto& c : *out) all.push_back(std::move(c));
    }
    return all;
  }

  // A choice's text: with echo, the prompt comes first.
  static std::string choice_text(const Request& r, const llm::Completion& c, std::size_t index) {
    return r.gen.echo ? echo_text(r.prompts[index / r.gen.n], c) + c.text : c.text;
  }

  void generate(const std::string& text, httplib::Response& res, bool chat) {
    auto parsed = parse_request(text, chat, opt);
    if (auto* e = std::get_if<HttpError>(&parsed)) return reply_error(res, *e);
    auto r = std::make_shared<Request>(std::get<Request>(std::move(parsed)));
    std::string id = fmt::format("{}-{}", chat ? "chatcmpl" : "cmpl", next_id++);
    std::string object = chat ? "chat.completion" : "text_completion";
    int64_t created = now_s();
    if (!r->stream) {
      auto out = run(*r, r->gen);
      if (!out) return reply_error(res, backend_error(out.error(), chat));
      Json choices = Json::array();
      for (std::size_t i = 0; i < out->size(); ++i) {
        auto& c = (*out)[i];
        Json choice = {{"index", i}, {"finish_reason", c.finish_reason}};
        if (chat) choice["message"] = {{"role", "assistant"}, {"content", c.text}};
        else choice["text"] = choice_text(*r, c, i);
        choice["logprobs"] = r->gen.logprobs ? logprobs_json(c, chat) : Json(nullptr);
        choices.push_back(std::move(choice));
      }
      Json body = {{"id", id},           {"object", object},   {"created", created},
                   {"model", opt.model_name}, {"choices", choices}, {"usage", usage_json(*out, r->gen.n)}};
      return res.set_content(dump(body), "application/json");
    }
    std::string chunk_object = chat ? "chat.completion.chunk" : "text_completion";
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, r, id, chunk_object, created, chat](size_t, httplib::DataSink& sink) {
          auto event = [&](const Json& j) {
            std::string s = "data: " + dump(j) + "\n\n";
            return sink.write(s.data(), s.size());
          };
          auto chunk = [&](Json choices) {
            return Json{{"id", id},         {"object", chunk_object},     {"created", created},
                        {"model", opt.model_name}, {"choices", std::move(choices)}};
          };
          auto choice = [&](int index, Json delta_or_text, Json finish) {
            Json c = {{"index", index}, {"finish_reason", finish}, {"logprobs", nullptr}};
            c[chat ? "delta" : "text"] = std::move(delta_or_text);
            return c;
          };
          bool open = true;
          if (chat)
            for (int i = 0; i < r->gen.n && open; ++i)
              open = event(chunk({choice(i, {{"role", "assistant"}, {"content", ""}}, nullptr)}));
          llm::GenerateOptions g = r->gen;
          // An echoed prompt's text is known once it is scored: such a stream carries each
          // choice whole in its last chunk.
          if (!g.echo)
            g.on_text = [&](int index, std::string_view text) {
              Json piece = chat ? Json{{"content", std::string(text)}} : Json(std::string(text));
              return open = open && event(chunk({choice(index, std::move(piece), nullptr)}));
            };
          auto out = run(*r, g);
          if (!open) return false;  // the client went away; generation stopped with it
          if (!out) {
            event({{"error", error_body(backend_error(out.error(), chat))["error"]}});
          } else {
            for (std::size_t i = 0; i < out->size(); ++i) {
              auto& c = (*out)[i];
              Json last = chat ? Json::object() : Json(r->gen.echo ? choice_text(*r, c, i) : "");
              Json ch = choice(static_cast<int>(i), std::move(last), c.finish_reason);
              if (r->gen.logprobs) ch["logprobs"] = logprobs_json(c, chat);
              event(chunk({ch}));
            }
            if (r->include_usage) {
              Json u = chunk(Json::array());
              u["usage"] = usage_json(*out, r->gen.n);
              event(u);
            }
          }
          std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          sink.done();
          return true;
        });
  }
};

Server::Server(llm::Backend& backend, Options opt) : impl_(std::make_unique<Impl>(backend, std::move(opt))) {
  impl_->routes();
}
Server::~Server() = default;

Result<int> Server::bind() {
  auto& o = impl_->opt;
  // cpp-httplib's default sets SO_REUSEPORT, which lets a second server bind the same port and take
  // part of its connections; SO_REUSEADDR alone still allows a quick restart but refuses a port in use.
  impl_->http.set_socket_options([](socket_t s) {
    int yes = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  if (o.port < 0 || o.port > 65535) return Error{fmt::format("port {} is out of range (0-65535)", o.port)};
  if (o.port == 0) {
    int port = impl_->http.bind_to_any_port(o.host);
    if (port <= 0) return Error{fmt::format("cannot listen on {} (any port)", o.host)};
    return port;
  }
  if (!impl_->http.bind_to_port(o.host, o.port))
    return Error{fmt::format("cannot listen on {}:{} (in use, or not an address of this machine)", o.host, o.port)};
  return o.port;
}

void Server::run() { impl_->http.listen_after_bind(); }
void Server::stop() { impl_->http.stop(); }

}  // namespace wand::server
