// The entry point of wand_mcp_server.so: cpp-httplib serving POST /mcp with answer_post's answers
// (http.cpp, in the binary); GET and DELETE are 405, as a server without sessions answers them.
#include <httplib.h>

#include <algorithm>
#include <cctype>

#include <fmt/core.h>

#include "mcp/mcp_server.h"

using Handler = std::function<wand::mcp::HttpAnswer(const wand::mcp::HttpPost&)>;

extern "C" __attribute__((visibility("default"))) void wand_mcp_serve_http(
    const std::string& host, int port, const Handler& handler, const std::function<void(int)>& on_listening,
    wand::VoidResult& out) {
  httplib::Server svr;
  svr.set_payload_max_length(16 << 20);
  // Not httplib's default SO_REUSEPORT, with which a second server shares the port (server.cpp).
  svr.set_socket_options([](socket_t s) {
    int yes = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  svr.Post("/mcp", [&](const httplib::Request& req, httplib::Response& res) {
    wand::mcp::HttpPost p;
    p.path = req.path;
    p.body = req.body;
    for (auto& [k, v] : req.headers) {
      std::string name = k;
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      p.headers[name] = v;
    }
    auto a = handler(p);
    res.status = a.status;
    if (a.stream) {
      res.set_header("Cache-Control", "no-cache");
      res.set_header("X-Accel-Buffering", "no");
      auto stream = a.stream;
      res.set_chunked_content_provider("text/event-stream", [stream](size_t, httplib::DataSink& sink) {
        stream([&](const std::string& s) { return sink.write(s.data(), s.size()); });
        sink.done();
        return true;
      });
    } else if (!a.body.empty()) {
      res.set_content(a.body, a.content_type);
    }
  });
  auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "POST");
  };
  svr.Get("/mcp", not_allowed);
  svr.Delete("/mcp", not_allowed);
  int bound = port == 0 ? svr.bind_to_any_port(host) : (svr.bind_to_port(host, port) ? port : -1);
  if (bound < 0) {
    out = wand::Error{fmt::format("--http: cannot listen on {}:{} (in use, or not an address of this host)", host, port)};
    return;
  }
  if (on_listening) on_listening(bound);
  if (!svr.listen_after_bind()) {
    out = wand::Error{fmt::format("--http: the server on {}:{} stopped", host, bound)};
    return;
  }
  out = wand::ok_status();
}
