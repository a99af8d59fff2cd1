// The OpenAI-compatible HTTP face of a Backend (cpp-httplib), following OpenAI's published API
// reference for the fields clients depend on (lm-evaluation-harness's echo/logprobs scoring,
// the openai SDKs). Request validation turns every malformed field into a 400 naming it; a
// request the backend refuses (too long a prompt, a chat a model cannot take) is a 400 too;
// other generation errors become 500 (or an error event when the stream has started); a
// client that goes away stops its generation.
#include "server/server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <mutex>
#include <variant>

#include <fmt/core.h>

#include "common/json.h"
#include "common/log.h"
#include "common/text.h"
#include "server/exec_api.h"
#include "server/openai_requests.h"

namespace wand::server {
namespace {

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
  if (e.code == llm::kInvalidRequest) return {400, e.message, "invalid_request_error", param, ""};
  return {500, e.message, "server_error", "", ""};
}

}  // namespace

struct Server::Impl {
  llm::Backend* backend;  // null: execution endpoints only (wand serve --exec --no-model)
  Options opt;
  httplib::Server http;
  std::atomic<uint64_t> next_id{1};

  static int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t started = now_s();

  Impl(llm::Backend* b, Options o) : backend(b), opt(std::move(o)) {}

  void reply_error(httplib::Response& res, const HttpError& e) {
    res.status = e.status;
    res.set_content(dump_text(error_body(e)), "application/json");
  }

  // OpenAI's model object, plus (an extra field, which its clients ignore) what a wand model is:
  // the prompt format it answers in, so wand's client picks the matching prompts (reason's auto
  // prompt style) instead of chat, which these models do not take; and its context length, so a
  // client that budgets prompts (the agent loop) fits a small model's context as it does locally.
  Json model_json() const {
    Json m = {{"id", opt.model_name}, {"object", "model"}, {"created", started}, {"owned_by", "wand"}};
    if (auto format = backend->prompt_format(); !format.empty()) {
      m["wand"] = {{"prompt_format", format}};
      if (int ctx = backend->context_length(); ctx > 0) m["wand"]["context_length"] = ctx;
    }
    return m;
  }

  // The method a served path takes ("" for a path not served).
  std::string allowed_method(const std::string& path) const {
    if (path == "/health" || path == "/v1/models" || path.starts_with("/v1/models/")) return "GET";
    if (path == "/v1/completions" || path == "/v1/chat/completions") return "POST";
    if (opt.exec && (path == "/run_code" || path == "/v1/exec" || path == "/get_reward")) return "POST";
    return "";
  }

  void routes() {
    // Each connection holds a worker while it is open (an idle or slow client up to the 5-second
    // read timeout), so a few idle sockets must not take every worker from /health and the rest.
    http.new_task_queue = [n = opt.http_threads] { return new httplib::ThreadPool(static_cast<std::size_t>(n)); };
    http.set_payload_max_length(std::max<std::size_t>(16u << 20, opt.exec ? opt.max_exec_body_bytes : 0));
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"status":"ok"})", "application/json");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      Json data = backend ? Json::array({model_json()}) : Json::array();
      res.set_content(dump_text({{"object", "list"}, {"data", data}}), "application/json");
    });
    http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (!backend || req.matches[1] != opt.model_name)
        return reply_error(res, {404, fmt::format("The model '{}' does not exist", req.matches[1].str()),
                                 "invalid_request_error", "model", "model_not_found"});
      res.set_content(dump_text(model_json()), "application/json");
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
        if (!backend)
          return reply_error(res, {404, "this server runs no model (wand serve --no-model): only its execution "
                                        "endpoints (/run_code, /v1/exec, /get_reward) answer",
                                   "invalid_request_error", "model", "model_not_found"});
        generate(body, res, chat);
      };
    };
    http.Post("/v1/completions", post(false));
    http.Post("/v1/chat/completions", post(true));
    if (opt.exec) exec_routes();
    // Before any body is read: a Content-Length that is not a count of bytes, then the bearer
    // token, compared in constant time; /health stays open for load balancers' probes.
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      // RFC 9110 8.6: 1*DIGIT. httplib reads "-5" as a count past any cap and answers 413.
      if (req.has_header("Content-Length")) {
        const std::string& length = req.get_header_value("Content-Length");
        if (length.empty() || length.find_first_not_of("0123456789") != std::string::npos) {
          reply_error(res, {400, fmt::format("Content-Length '{}' is not a count of bytes", printable(length, 40)),
                            "invalid_request_error", "", ""});
          return httplib::Server::HandlerResponse::Handled;
        }
      }
      if (opt.token.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
      // "Bearer TOKEN", the scheme's case aside (RFC 7235); the token compared in constant time.
      const std::string& got = req.get_header_value("Authorization");
      const std::size_t space = got.find(' ');
      const bool bearer = space == 6 && std::equal(got.begin(), got.begin() + 6, "bearer", [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == b;
      });
      const std::string given = bearer ? got.substr(space + 1) : std::string();
      unsigned diff = given.size() != opt.token.size();
      for (std::size_t i = 0; i < opt.token.size(); ++i)
        diff |= static_cast<unsigned>(opt.token[i] ^ (i < given.size() ? given[i] : 0));
      if (bearer && diff == 0) return httplib::Server::HandlerResponse::Unhandled;
      res.set_header("WWW-Authenticate", "Bearer");
      reply_error(res, {401,
                        got.empty() ? "a bearer token is required (Authorization: Bearer ...)"
                        : !bearer   ? "the Authorization header is not a bearer token (Authorization: Bearer ...)"
                                    : "the bearer token is not this server's (wand serve --token)",
                        "invalid_request_error", "", "invalid_api_key"});
      return httplib::Server::HandlerResponse::Handled;
    });
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a handler already wrote the error
      HttpError e{res.status, fmt::format("{} {} is not served here", req.method, req.path), "invalid_request_error",
                  "", ""};
      if (res.status == 413) e.message = "the request body is too large";
      // A path served with another method: 405 and the method it takes (RFC 9110 15.5.6).
      if (res.status == 404)
        if (std::string allow = allowed_method(req.path); !allow.empty()) {
          res.status = e.status = 405;
          res.set_header("Allow", allow);
          e.message = fmt::format("{} takes {}, not {}", req.path, allow, req.method);
        }
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

  // /run_code, /v1/exec, /get_reward: the body read up to the server's cap (413 past it), the
  // rest is ExecApi's.
  void exec_routes() {
    auto route = [this](Reply (ExecApi::*call)(const std::string&)) {
      return [this, call](const httplib::Request&, httplib::Response& res, const httplib::ContentReader& reader) {
        std::string body;
        bool too_large = false;
        bool read = reader([&](const char* data, size_t n) {
          if (body.size() + n > opt.max_exec_body_bytes) return !(too_large = true);
          body.append(data, n);
          return true;
        });
        if (too_large || res.status == 413)
          return reply_error(res, {413, fmt::format("the request body is too large ({} bytes at most)", opt.max_exec_body_bytes),
                                   "invalid_request_error", "", ""});
        if (!read) return reply_error(res, {400, "the request body could not be read", "invalid_request_error", "", ""});
        Reply r = (opt.exec->*call)(body);
        res.status = r.status;
        if (r.retry_after) res.set_header("Retry-After", std::to_string(r.retry_after));
        res.set_content(r.body, "application/json");
      };
    };
    http.Post("/run_code", route(&ExecApi::run_code));
    http.Post("/v1/exec", route(&ExecApi::exec));
    http.Post("/get_reward", route(&ExecApi::reward));
  }

  // The chat, or each prompt in turn; choices are numbered prompt * n + sample.
  Result<std::vector<llm::Completion>> run(const Request& r, llm::GenerateOptions g) {
    if (r.chat) return backend->chat(r.messages, g);
    std::vector<llm::Completion> all;
    auto on_text = std::move(g.on_text);
    for (std::size_t p = 0; p < r.prompts.size(); ++p) {
      int base = static_cast<int>(p) * r.gen.n;
      if (on_text) g.on_text = [&, base](int i, std::string_view text) { return on_text(base + i, text); };
      auto* text = std::get_if<std::string>(&r.prompts[p]);
      auto out = text ? backend->complete(*text, g) : backend->complete_tokens(std::get<1>(r.prompts[p]), g);
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
      return res.set_content(dump_text(body), "application/json");
    }
    std::string chunk_object = chat ? "chat.completion.chunk" : "text_completion";
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, r, id, chunk_object, created, chat](size_t, httplib::DataSink& sink) {
          auto event = [&](const Json& j) {
            std::string s = "data: " + dump_text(j) + "\n\n";
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

Server::Server(llm::Backend& backend, Options opt) : impl_(std::make_unique<Impl>(&backend, std::move(opt))) {
  impl_->routes();
}
Server::Server(Options opt) : impl_(std::make_unique<Impl>(nullptr, std::move(opt))) { impl_->routes(); }
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
