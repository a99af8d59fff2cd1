// MCP's Streamable HTTP transport (basic/transports): each message is its own POST; the answer
// is application/json, or text/event-stream whose events carry the request's notifications and
// then its response. The session id a 2025 server assigns (Mcp-Session-Id) and the agreed
// protocol version (MCP-Protocol-Version) go back with every later request.
#include <algorithm>
#include <mutex>

#include <fmt/core.h>

#include "common/base64.h"
#include "llm/sse.h"
#include "tools/mcp/mcp_client.h"

namespace wand::tools::mcp {
namespace {

class HttpTransport final : public Transport {
 public:
  HttpTransport(std::string url, std::vector<std::string> headers) : url_(std::move(url)), extra_(std::move(headers)) {}

  Result<Json> round_trip(const Json& request, double timeout_s,
                          const std::function<void(const Notice&)>& on_notice) override {
    HttpRequest req{url_, headers_for(request), dump_text(request), timeout_s};
    std::optional<Json> response;
    std::string stream_error;
    auto on_message = [&](std::string_view payload) {
      auto m = parse_json(payload, "server event");
      if (!m || !m->is_object()) {
        stream_error = "the server sent an event that is not a JSON-RPC message";
        return true;
      }
      if (m->contains("method") && !m->contains("id")) {
        if (on_notice) on_notice(Notice{(*m)["method"].get<std::string>(), m->value("params", Json::object())});
        return true;
      }
      if (m->contains("id") && (*m)["id"] == request["id"] && !m->contains("method")) {
        response = std::move(*m);
        return false;  // the response ends the stream (the spec's SHOULD); stop reading
      }
      return true;  // a server request on the stream (sampling, roots): not offered; the server's call times out
    };
    llm::SseParser sse(on_message);
    bool is_sse = false;
    auto on_data = [&](long status, const HttpResponse& head, std::string_view bytes) {
      auto ct = head.headers.find("content-type");
      is_sse = status < 300 && ct != head.headers.end() && ct->second.find("text/event-stream") != std::string::npos;
      if (!is_sse) return true;  // kept in the body
      return sse.feed(bytes);
    };
    auto r = http_post(req, on_data);
    if (!r) return r.error();
    if (auto s = r->headers.find("mcp-session-id"); s != r->headers.end()) {
      std::lock_guard lk(mu_);
      session_ = s->second;
    }
    if (is_sse) {
      if (!response) sse.finish();
      if (response) return std::move(*response);
      return Error{stream_error.empty() ? "the server's event stream ended without the response" : stream_error, "closed"};
    }
    // A JSON body: the response, or (on 4xx) a JSON-RPC error whose code tells a modern server
    // from a legacy one (transports: backward compatibility).
    auto body = parse_json(r->body, "response body");
    if (body && body->is_object() && (body->contains("result") || body->contains("error"))) {
      (*body)["http_status"] = r->status;
      return std::move(*body);
    }
    std::string text = r->body.substr(0, 300);
    return Error{fmt::format("HTTP {}{}{}", r->status, text.empty() ? "" : ": ", text), "http"};
  }

  VoidResult notify(const Json& n) override {
    HttpRequest req{url_, headers_for(n), n.dump(), 30};
    auto r = http_post(req, [](long, const HttpResponse&, std::string_view) { return true; });
    if (!r) return r.error();
    if (r->status >= 300) return Error{fmt::format("HTTP {} for {}", r->status, n.value("method", ""))};
    return ok_status();
  }

  void set_protocol_version(const std::string& v) override {
    std::lock_guard lk(mu_);
    version_ = v;
  }
  bool alive() const override { return true; }
  void close() override {}
  VoidResult restart() override {
    std::lock_guard lk(mu_);
    session_.clear();
    return ok_status();
  }

 private:
  std::vector<std::string> headers_for(const Json& msg) {
    std::vector<std::string> h = {"Content-Type: application/json", "Accept: application/json, text/event-stream"};
    {
      std::lock_guard lk(mu_);
      if (!version_.empty()) h.push_back("MCP-Protocol-Version: " + version_);
      if (!session_.empty()) h.push_back("Mcp-Session-Id: " + session_);
    }
    // 2026-07-28 mirrors the method and the tool's name into headers (Mcp-Method, Mcp-Name); a
    // name that is not plain ASCII goes as the spec's base64 sentinel.
    if (msg.contains("method")) h.push_back("Mcp-Method: " + msg["method"].get<std::string>());
    if (msg.contains("params") && msg["params"].is_object() && msg["params"].contains("name") &&
        msg["params"]["name"].is_string()) {
      std::string name = msg["params"]["name"];
      bool plain = !name.empty() && name.front() != ' ' && name.back() != ' ' &&
                   std::all_of(name.begin(), name.end(), [](unsigned char c) { return c >= 0x20 && c < 0x7f; }) &&
                   !(name.starts_with("=?base64?") && name.ends_with("?="));
      h.push_back("Mcp-Name: " + (plain ? name : "=?base64?" + base64_encode(name) + "?="));
    }
    for (auto& e : extra_) h.push_back(e);
    return h;
  }

  std::string url_;
  std::vector<std::string> extra_;
  std::mutex mu_;
  std::string version_, session_;
};

}  // namespace

Result<std::unique_ptr<Transport>> open_http(const std::string& url, const std::vector<std::string>& headers) {
  for (auto& h : headers)
    if (h.find(':') == std::string::npos || h.find_first_of("\r\n") != std::string::npos)
      return Error{fmt::format("MCP header '{}' is not 'Name: value'", h)};
  return std::unique_ptr<Transport>(std::make_unique<HttpTransport>(url, headers));
}

}  // namespace wand::tools::mcp
