// The OpenAI-compatible HTTP face of a Backend (cpp-httplib). Request validation turns every
// malformed field into a 400 naming it; generation errors become 500 (or an error event when
// the stream has started); a client that goes away stops its generation.
#include "server/server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>

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

// A parsed generation request.
struct Request {
  bool chat = false, stream = false, include_usage = false;
  std::string prompt;
  std::vector<llm::Message> messages;
  llm::GenerateOptions gen;
};

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

std::variant<Request, HttpError> parse_request(const std::string& text, bool chat, const Options& opt) {
  auto parsed = parse_json(text, "the request body");
  if (!parsed) return bad("", parsed.error().message);
  if (!parsed->is_object()) return bad("", "the request body must be a JSON object");
  const Json& body = *parsed;
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
  if (chat) {
    auto m = body.find("messages");
    if (m == body.end() || !m->is_array() || m->empty()) return bad("messages", "'messages' must be a non-empty array");
    for (std::size_t i = 0; i < m->size(); ++i) {
      const Json& msg = (*m)[i];
      std::string where = fmt::format("messages[{}]", i);
      if (!msg.is_object() || !msg.contains("role") || !msg["role"].is_string())
        return bad(where, fmt::format("'{}' must be an object with a string 'role'", where));
      std::string content;
      auto c = msg.find("content");
      if (c == msg.end() || c->is_null()) {
      } else if (c->is_string()) {
        content = *c;
      } else if (c->is_array()) {  // content parts: only text is understood
        for (auto& part : *c) {
          if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") || !part["text"].is_string())
            return bad(where + ".content", "only text content parts are supported");
          content += part["text"].get<std::string>();
        }
      } else {
        return bad(where + ".content", fmt::format("'{}.content' must be a string or an array of parts", where));
      }
      r.messages.push_back({msg["role"], std::move(content)});
    }
  } else {
    auto p = body.find("prompt");
    if (p == body.end()) return bad("prompt", "'prompt' is required");
    if (p->is_string()) {
      r.prompt = *p;
    } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
      r.prompt = (*p)[0];
    } else {
      return bad("prompt", "'prompt' must be a string (or an array holding one string)");
    }
  }
  auto& g = r.gen;
  g.max_tokens = 256;
  for (const char* key : {"max_tokens", "max_completion_tokens"})
    if (auto e = read_number(body, key, g.max_tokens, 1, opt.max_tokens_limit)) return *e;
  if (auto e = read_number(body, "temperature", g.temperature, 0, 2)) return *e;
  if (auto e = read_number(body, "top_p", g.top_p, 0, 1)) return *e;
  if (auto e = read_number(body, "top_k", g.top_k, 0, 1e9)) return *e;
  if (auto e = read_number(body, "min_p", g.min_p, 0, 1)) return *e;
  for (const char* key : {"repetition_penalty", "repeat_penalty"})
    if (auto e = read_number(body, key, g.repeat_penalty, 0.01, 10)) return *e;
  if (auto e = read_number(body, "n", g.n, 1, opt.max_n)) return *e;
  int64_t seed = 0;
  if (auto e = read_number(body, "seed", seed, -9.2e18, 9.2e18)) return *e;
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
  if (auto s = body.find("stream"); s != body.end() && !s->is_null()) {
    if (!s->is_boolean()) return bad("stream", "'stream' must be a boolean");
    r.stream = *s;
  }
  if (auto so = body.find("stream_options"); so != body.end() && so->is_object())
    if (auto iu = so->find("include_usage"); iu != so->end() && iu->is_boolean()) r.include_usage = *iu;
  if (auto lp = body.find("logprobs"); lp != body.end() && !lp->is_null()) {
    if (chat ? !lp->is_boolean() : !(lp->is_number_integer() && *lp >= 0 && *lp <= 5))
      return bad("logprobs", chat ? "'logprobs' must be a boolean" : "'logprobs' must be an integer from 0 to 5");
    g.logprobs = chat ? lp->get<bool>() : true;
  }
  return r;
}

Json logprobs_json(const llm::Completion& c, bool chat) {
  if (chat) {
    Json content = Json::array();
    for (auto& t : c.logprobs) {
      Json bytes = Json::array();
      for (unsigned char b : t.token) bytes.push_back(b);
      content.push_back({{"token", t.token}, {"logprob", t.logprob}, {"bytes", bytes}, {"top_logprobs", Json::array()}});
    }
    return {{"content", content}};
  }
  Json tokens = Json::array(), values = Json::array(), offsets = Json::array();
  int offset = 0;
  for (auto& t : c.logprobs) {
    tokens.push_back(t.token);
    values.push_back(t.logprob);
    offsets.push_back(offset);
    offset += static_cast<int>(t.token.size());
  }
  return {{"tokens", tokens}, {"token_logprobs", values}, {"text_offset", offsets}, {"top_logprobs", nullptr}};
}

Json usage_json(const std::vector<llm::Completion>& out) {
  int prompt = out.empty() ? 0 : out[0].prompt_tokens, gen = 0;
  for (auto& c : out) gen += c.completion_tokens;
  return {{"prompt_tokens", prompt}, {"completion_tokens", gen}, {"total_tokens", prompt + gen}};
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

  Json model_json() const {
    return {{"id", opt.model_name}, {"object", "model"}, {"created", started}, {"owned_by", "wand"}};
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
    http.Post("/v1/completions",
              [this](const httplib::Request& req, httplib::Response& res) { generate(req, res, false); });
    http.Post("/v1/chat/completions",
              [this](const httplib::Request& req, httplib::Response& res) { generate(req, res, true); });
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

  void generate(const httplib::Request& http_req, httplib::Response& res, bool chat) {
    auto parsed = parse_request(http_req.body, chat, opt);
    if (auto* e = std::get_if<HttpError>(&parsed)) return reply_error(res, *e);
    auto r = std::make_shared<Request>(std::get<Request>(std::move(parsed)));
    std::string id = fmt::format("{}-{}", chat ? "chatcmpl" : "cmpl", next_id++);
    std::string object = chat ? "chat.completion" : "text_completion";
    int64_t created = now_s();
    auto run = [this, r](llm::GenerateOptions g) {
      return r->chat ? backend.chat(r->messages, g) : backend.complete(r->prompt, g);
    };
    if (!r->stream) {
      auto out = run(r->gen);
      if (!out) return reply_error(res, {500, out.error().message, "server_error", "", ""});
      Json choices = Json::array();
      for (std::size_t i = 0; i < out->size(); ++i) {
        auto& c = (*out)[i];
        Json choice = {{"index", i}, {"finish_reason", c.finish_reason}};
        if (chat) choice["message"] = {{"role", "assistant"}, {"content", c.text}};
        else choice["text"] = c.text;
        choice["logprobs"] = r->gen.logprobs ? logprobs_json(c, chat) : Json(nullptr);
        choices.push_back(std::move(choice));
      }
      Json body = {{"id", id},           {"object", object},   {"created", created},
                   {"model", opt.model_name}, {"choices", choices}, {"usage", usage_json(*out)}};
      return res.set_content(dump(body), "application/json");
    }
    std::string chunk_object = chat ? "chat.completion.chunk" : "text_completion";
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, r, run, id, chunk_object, created, chat](size_t, httplib::DataSink& sink) {
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
          g.on_text = [&](int index, std::string_view text) {
            Json piece = chat ? Json{{"content", std::string(text)}} : Json(std::string(text));
            return open = open && event(chunk({choice(index, std::move(piece), nullptr)}));
          };
          auto out = run(g);
          if (!open) return false;  // the client went away; generation stopped with it
          if (!out) {
            event({{"error", error_body({500, out.error().message, "server_error", "", ""})["error"]}});
          } else {
            for (std::size_t i = 0; i < out->size(); ++i) {
              Json c = choice(static_cast<int>(i), chat ? Json::object() : Json(""), (*out)[i].finish_reason);
              if (r->gen.logprobs) c["logprobs"] = logprobs_json((*out)[i], chat);
              event(chunk({c}));
            }
            if (r->include_usage) {
              Json u = chunk(Json::array());
              u["usage"] = usage_json(*out);
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
