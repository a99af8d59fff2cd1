// `wand mcp --http`: Streamable HTTP (basic/transports). The checks and the JSON-RPC live here;
// the socket work is cpp-httplib's, in wand_mcp_server.so (http_module.cpp), loaded on first use.
#include <fmt/core.h>

#include "common/base64.h"
#include "common/module.h"
#include "mcp/mcp_server.h"

namespace wand::mcp {
namespace {

constexpr int kHeaderMismatch = -32020;

HttpAnswer json_answer(int status, const Json& body) {
  return {status, "application/json", dump_text(body), {}};
}
HttpAnswer error_answer(int status, const Json& id, int code, const std::string& message) {
  return json_answer(status, {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
}

// DNS rebinding (basic/security_best_practices): a web page's request carries its own Origin and
// the attacker's host name in Host. Only loopback names pass: localhost, 127.0.0.1, [::1].
bool local_host(std::string host) {
  if (host.starts_with("[")) {
    auto end = host.find(']');
    host = end == std::string::npos ? host : host.substr(0, end + 1);
  } else if (auto colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  return host == "localhost" || host == "127.0.0.1" || host == "[::1]";
}
bool local_origin(const std::string& origin) {
  for (const char* scheme : {"http://", "https://"})
    if (origin.starts_with(scheme)) return local_host(origin.substr(std::string_view(scheme).size()));
  return false;
}

std::string header(const HttpPost& p, const std::string& name) {
  auto it = p.headers.find(name);
  return it == p.headers.end() ? "" : it->second;
}

// The spec's base64 sentinel for header values that are not plain ASCII.
std::string decoded(const std::string& v) {
  if (v.starts_with("=?base64?") && v.ends_with("?=") && v.size() >= 11) return base64_decode(v.substr(9, v.size() - 11));
  return v;
}

}  // namespace

HttpAnswer answer_post(Server& server, const HttpPost& post, Connection& shared) {
  std::string origin = header(post, "origin"), host = header(post, "host");
  if (!origin.empty() && !local_origin(origin))
    return error_answer(403, nullptr, kHeaderMismatch, fmt::format("Forbidden: Origin '{}' is not a local one", origin));
  if (!host.empty() && !local_host(host))
    return error_answer(403, nullptr, kHeaderMismatch, fmt::format("Forbidden: Host '{}' is not a local one", host));
  auto msg = parse_json(post.body, "request body");
  if (!msg) return error_answer(400, nullptr, -32700, msg.error().message);
  if (!msg->is_object()) return error_answer(400, nullptr, -32600, "the body must be one JSON-RPC message (batches are not part of MCP since 2025-06-18)");
  const Json& m = *msg;
  Json id = m.contains("id") ? m["id"] : Json(nullptr);
  std::string method = m.contains("method") && m["method"].is_string() ? m["method"].get<std::string>() : "";
  // The version in the header and in the body must agree (2026-07-28: server validation); a
  // 2025 client sends only the header, which must name a version served.
  std::string hv = header(post, "mcp-protocol-version");
  Json meta = m.contains("params") && m["params"].is_object() ? m["params"].value("_meta", Json::object()) : Json::object();
  std::string bv = meta.is_object() ? meta.value("io.modelcontextprotocol/protocolVersion", "") : "";
  if (!bv.empty()) {
    if (hv != bv)
      return error_answer(400, id, kHeaderMismatch,
                          fmt::format("Header mismatch: MCP-Protocol-Version '{}' does not match the body's '{}'", hv, bv));
    if (header(post, "mcp-method") != method)
      return error_answer(400, id, kHeaderMismatch,
                          fmt::format("Header mismatch: Mcp-Method '{}' does not match the body's '{}'", header(post, "mcp-method"), method));
    if (method == "tools/call") {
      std::string name = m["params"].value("name", "");
      if (decoded(header(post, "mcp-name")) != name)
        return error_answer(400, id, kHeaderMismatch,
                            fmt::format("Header mismatch: Mcp-Name '{}' does not match the body's '{}'", header(post, "mcp-name"), name));
    }
  } else if (!hv.empty() && m.contains("id") &&  // (notifications carry no _meta to compare with)
             std::find(kServedVersions.begin() + 1, kServedVersions.end(), hv) == kServedVersions.end()) {
    return error_answer(400, id, -32600,
                        fmt::format("Unsupported MCP-Protocol-Version '{}' (supported: 2025-11-25, 2025-06-18, 2025-03-26, "
                                    "or 2026-07-28 with _meta in the body)", hv));
  }
  auto run = [&server, &shared, m = *msg, method](const std::function<void(const Json&)>& emit) {
    Connection conn;
    {
      std::lock_guard lk(shared.mu);
      conn.log_level = shared.log_level;
    }
    Json r = server.handle(m, conn, emit);
    if (method == "logging/setLevel" && r.contains("result")) {
      std::lock_guard lk(shared.mu);
      shared.log_level = conn.log_level;
    }
    return r;
  };
  if (!m.contains("id")) {  // a notification or a response: accepted, nothing to answer
    run([](const Json&) {});
    return {202, "", "", {}};
  }
  // A call that will send notifications gets an event stream; everything else one JSON object.
  bool wants_notices = method == "tools/call" &&
                       (meta.contains("progressToken") || meta.contains("io.modelcontextprotocol/logLevel") || [&] {
                         std::lock_guard lk(shared.mu);
                         return !shared.log_level.empty();
                       }());
  if (wants_notices && header(post, "accept").find("text/event-stream") != std::string::npos) {
    HttpAnswer a{200, "text/event-stream", "", {}};
    a.stream = [run](const std::function<bool(const std::string&)>& write) {
      auto event = [&](const Json& j) { return write("event: message\ndata: " + dump_text(j) + "\n\n"); };
      Json r = run(event);
      if (!r.is_null()) event(r);
    };
    return a;
  }
  Json r = run([](const Json&) {});
  if (r.is_null()) return {202, "", "", {}};
  int status = 200;
  if (!bv.empty() && r.contains("error")) {
    int code = r["error"].value("code", 0);
    status = code == -32601 ? 404 : code == -32022 ? 400 : 200;
  }
  return json_answer(status, r);
}

VoidResult serve_http(Server& server, const HttpOptions& opt) {
  using Serve = void (*)(const std::string&, int, const std::function<HttpAnswer(const HttpPost&)>&,
                         const std::function<void(int)>&, VoidResult&);
  auto entry = module_symbol("wand_mcp_server.so", "wand_mcp_serve_http");
  if (!entry) return entry.error();
  Connection shared;
  VoidResult out = Error{"not started"};
  reinterpret_cast<Serve>(*entry)(opt.host, opt.port, [&](const HttpPost& p) { return answer_post(server, p, shared); },
                                  opt.on_listening, out);
  return out;
}

}  // namespace wand::mcp
