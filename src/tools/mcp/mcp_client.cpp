// The MCP client over a Transport: version negotiation (dual-era), tools/list with pagination,
// tools/call, and the restart policy (mcp_client.h).
#include "tools/mcp/mcp_client.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>

#include <fmt/core.h>

namespace wand::tools::mcp {

namespace {
const Json kClientInfo = {{"name", "wand"}, {"version", "0.1.0"}};
constexpr double kProbeTimeout = 10;  // stdio: a legacy server that ignores server/discover
constexpr double kPingTimeout = 2;

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// The error of a JSON-RPC response as text: "message (code N)".
std::string rpc_error_text(const Json& e) {
  std::string msg = e.is_object() && e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : e.dump();
  if (e.is_object() && e.contains("code")) msg += fmt::format(" (code {})", e["code"].dump());
  return msg;
}
}  // namespace

std::string CallResult::text() const {
  std::string out;
  for (auto& b : content) {
    if (!out.empty()) out += "\n";
    std::string type = b.is_object() ? b.value("type", "") : "";
    if (type == "text" && b.contains("text") && b["text"].is_string()) {
      out += b["text"].get<std::string>();
    } else if (type == "image" || type == "audio") {
      out += fmt::format("[{} {}, {} base64 bytes]", type, b.value("mimeType", "?"), b.value("data", "").size());
    } else if (type == "resource" && b.contains("resource") && b["resource"].is_object()) {
      auto& r = b["resource"];
      out += r.contains("text") && r["text"].is_string() ? r["text"].get<std::string>()
                                                         : fmt::format("[resource {}]", r.value("uri", "?"));
    } else if (type == "resource_link") {
      out += fmt::format("[resource link {}]", b.value("uri", "?"));
    } else {
      out += b.dump();
    }
  }
  return out;
}

Json CallResult::value() const {
  if (!structured.is_null()) return structured;
  if (content.size() == 1 && content[0].is_object() && content[0].value("type", "") == "text") return content[0]["text"];
  return content;
}

struct Client::State {
  std::atomic<long> next_id{1};
  std::mutex mu;  // handshake and restart
  bool modern = false;
  Json meta;      // modern: the _meta every request carries
};

Client::Client(ServerSpec spec) : spec_(std::move(spec)), state_(std::make_unique<State>()) {}
Client::~Client() = default;

bool Client::modern() const { return state_->modern; }

Result<std::unique_ptr<Client>> Client::connect(ServerSpec spec) {
  if (spec.target.find_first_not_of(" \t") == std::string::npos) return Error{"the MCP server (a command or a URL) is empty"};
  if (!(spec.call_timeout_s > 0) || !(spec.connect_timeout_s > 0))
    return Error{fmt::format("MCP server '{}': timeouts must be positive", spec.target)};
  std::unique_ptr<Client> c(new Client(std::move(spec)));
  c->name_ = c->spec_.name.empty() ? c->spec_.target : c->spec_.name;
  if (auto o = c->open(); !o) return o.error();
  if (auto h = c->handshake(); !h) return h.error();
  if (c->spec_.name.empty() && c->server_info_.contains("name") && c->server_info_["name"].is_string())
    c->name_ = c->server_info_["name"];
  return c;
}

VoidResult Client::open() {
  bool http = spec_.target.starts_with("http://") || spec_.target.starts_with("https://");
  auto t = http ? open_http(spec_.target, spec_.headers) : open_stdio(spec_.target, spec_.env);
  if (!t) return Error{fmt::format("MCP server '{}': {}", spec_.target, t.error().message)};
  transport_ = std::move(*t);
  return ok_status();
}

// Decides the era and the version (2026-07-28 basic/versioning: backward compatibility).
VoidResult Client::handshake() {
  auto fail = [&](const std::string& why) -> VoidResult {
    std::string tail = transport_->diagnostics();
    return Error{fmt::format("MCP server '{}': {}{}", name_, why, tail.empty() ? "" : "; its stderr ends: " + tail)};
  };
  state_->modern = false;
  transport_->set_protocol_version("");
  bool http = spec_.target.starts_with("http");
  if (spec_.modern) {
    const std::string v = kModernVersions.front();
    Json meta = {{"io.modelcontextprotocol/protocolVersion", v},
                 {"io.modelcontextprotocol/clientInfo", kClientInfo},
                 {"io.modelcontextprotocol/clientCapabilities", Json::object()}};
    Json probe = {{"jsonrpc", "2.0"}, {"id", state_->next_id++}, {"method", "server/discover"}, {"params", {{"_meta", meta}}}};
    transport_->set_protocol_version(v);
    auto r = transport_->round_trip(probe, http ? spec_.connect_timeout_s : std::min(kProbeTimeout, spec_.connect_timeout_s), {});
    // A server that is gone or unreachable is not a legacy one.
    if (!r && (r.error().code == "closed" || r.error().code == "unreachable")) return fail(r.error().message);
    if (r && r->contains("result") && (*r)["result"].is_object() && (*r)["result"].contains("supportedVersions")) {
      const Json& d = (*r)["result"];
      std::vector<std::string> supported;
      for (auto& s : d["supportedVersions"])
        if (s.is_string()) supported.push_back(s);
      if (contains(supported, v)) {
        state_->modern = true;
        state_->meta = meta;
        version_ = v;
        capabilities_ = d.value("capabilities", Json::object());
        instructions_ = d.value("instructions", "");
        if (d.contains("_meta") && d["_meta"].contains("io.modelcontextprotocol/serverInfo"))
          server_info_ = d["_meta"]["io.modelcontextprotocol/serverInfo"];
        return ok_status();
      }
      // A modern server without our modern version: a dual-era one may still take initialize.
      if (std::none_of(supported.begin(), supported.end(), [](auto& s) { return contains(kLegacyVersions, s); }))
        return fail(fmt::format("it speaks protocol versions {}; wand speaks {}", joined(supported),
                                joined(kModernVersions) + ", " + joined(kLegacyVersions)));
    } else if (r && r->contains("error") && (*r)["error"].value("code", 0) == kUnsupportedProtocolVersion) {
      std::vector<std::string> supported;
      const Json& e = (*r)["error"];
      if (e.contains("data") && e["data"].contains("supported"))
        for (auto& s : e["data"]["supported"])
          if (s.is_string()) supported.push_back(s);
      if (std::none_of(supported.begin(), supported.end(), [](auto& s) { return contains(kLegacyVersions, s); }))
        return fail(fmt::format("it speaks protocol versions {}; wand speaks {}", joined(supported),
                                joined(kModernVersions) + ", " + joined(kLegacyVersions)));
    }
    // Anything else (method not found, a 4xx without a modern error, no answer): a legacy server.
    transport_->set_protocol_version("");
  }
  Json init = {{"jsonrpc", "2.0"},
               {"id", state_->next_id++},
               {"method", "initialize"},
               {"params", {{"protocolVersion", kLegacyVersions.front()}, {"capabilities", Json::object()}, {"clientInfo", kClientInfo}}}};
  auto r = transport_->round_trip(init, spec_.connect_timeout_s, {});
  if (!r) return fail(fmt::format("initialize: {}", r.error().message));
  if (r->contains("error")) return fail(fmt::format("initialize: {}", rpc_error_text((*r)["error"])));
  const Json& res = (*r)["result"];
  if (!res.is_object() || !res.contains("protocolVersion") || !res["protocolVersion"].is_string())
    return fail("initialize: the result has no protocolVersion");
  std::string v = res["protocolVersion"];
  if (!contains(kLegacyVersions, v))
    return fail(fmt::format("it answered initialize with protocol version {}; wand speaks {}", v, joined(kLegacyVersions)));
  version_ = v;
  capabilities_ = res.value("capabilities", Json::object());
  server_info_ = res.value("serverInfo", Json::object());
  instructions_ = res.value("instructions", "");
  transport_->set_protocol_version(v);
  if (auto n = transport_->notify({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}); !n)
    return fail(fmt::format("notifications/initialized: {}", n.error().message));
  return ok_status();
}

Result<Json> Client::send(const std::string& method, Json params, double timeout_s,
                          const std::function<void(const Notice&)>& on_notice, const std::string& what) {
  {
    // Restart policy: a server that is gone (exited, or killed after a hang) starts again.
    std::lock_guard lk(state_->mu);
    if (!transport_->alive()) {
      if (auto r = transport_->restart(); !r) return Error{fmt::format("{}: restarting: {}", what, r.error().message)};
      if (auto h = handshake(); !h) return Error{fmt::format("{}: restarting: {}", what, h.error().message)};
    }
  }
  if (!params.is_object()) params = Json::object();
  long id = state_->next_id++;
  if (state_->modern) {
    for (auto& [k, v] : state_->meta.items()) params["_meta"][k] = v;
    if (on_notice) params["_meta"]["io.modelcontextprotocol/logLevel"] = "info";
  }
  if (on_notice && method == "tools/call") params["_meta"]["progressToken"] = id;
  Json req = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}};
  double timeout = timeout_s > 0 ? timeout_s : spec_.call_timeout_s;
  auto r = transport_->round_trip(req, timeout, on_notice);
  if (!r) {
    std::string tail = transport_->diagnostics();
    std::string msg = fmt::format("{}: {}", what, r.error().message);
    if (r.error().code == "timeout") {
      // Tell the server to stop (basic/utilities/cancellation), then check that it still
      // answers; one that does not is ended, and the next request starts it again.
      (void)transport_->notify({{"jsonrpc", "2.0"},
                                {"method", "notifications/cancelled"},
                                {"params", {{"requestId", id}, {"reason", "timed out"}}}});
      Json ping = {{"jsonrpc", "2.0"}, {"id", state_->next_id++}, {"method", state_->modern ? "server/discover" : "ping"}};
      if (state_->modern) ping["params"] = {{"_meta", state_->meta}};
      auto p = transport_->round_trip(ping, kPingTimeout, {});
      if (!p && !spec_.target.starts_with("http")) {
        std::lock_guard lk(state_->mu);
        transport_->close();
        msg += "; the server stopped answering: it was ended, and the next call starts it again";
      }
      return Error{msg, "timeout"};
    }
    if (!tail.empty() && r.error().code == "closed") msg += "; its stderr ends: " + tail;
    return Error{msg, r.error().code};
  }
  if (r->contains("error")) {
    const Json& e = (*r)["error"];
    return Error{fmt::format("{}: {}", what, rpc_error_text(e)), e.value("code", 0) == kInvalidParams ? "invalid_params" : "rpc"};
  }
  if (!r->contains("result") || !(*r)["result"].is_object()) return Error{fmt::format("{}: the response has no result object", what)};
  Json result = std::move((*r)["result"]);
  // 2026-07-28 multi round-trip requests: the server asks the client for input wand does not give.
  if (result.value("resultType", "complete") == "input_required")
    return Error{fmt::format("{}: the server asks for input (sampling, elicitation or roots), which wand's client does not provide", what)};
  return result;
}

Result<Json> Client::request(const std::string& method, Json params, double timeout_s,
                             const std::function<void(const Notice&)>& on_notice) {
  return send(method, std::move(params), timeout_s, on_notice, fmt::format("MCP server '{}': {}", name_, method));
}

Result<std::vector<ToolInfo>> Client::list_tools() {
  std::vector<ToolInfo> tools;
  std::set<std::string> cursors;
  std::string what = fmt::format("MCP server '{}': tools/list", name_);
  Json params = Json::object();
  for (;;) {
    auto r = send("tools/list", params, spec_.connect_timeout_s, {}, what);
    if (!r) return r.error();
    if (!r->contains("tools") || !(*r)["tools"].is_array()) return Error{fmt::format("{}: the result has no 'tools' array", what)};
    for (auto& t : (*r)["tools"]) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string())
        return Error{fmt::format("{}: a tool without a name: {}", what, t.dump().substr(0, 200))};
      ToolInfo info;
      info.name = t["name"];
      info.title = t.value("title", "");
      info.description = t.contains("description") && t["description"].is_string() ? t["description"].get<std::string>() : "";
      if (t.contains("inputSchema") && t["inputSchema"].is_object()) info.input_schema = t["inputSchema"];
      if (t.contains("outputSchema")) info.output_schema = t["outputSchema"];
      if (t.contains("annotations")) info.annotations = t["annotations"];
      tools.push_back(std::move(info));
    }
    if (!r->contains("nextCursor") || !(*r)["nextCursor"].is_string()) break;
    std::string cursor = (*r)["nextCursor"];
    if (!cursors.insert(cursor).second) return Error{fmt::format("{}: the server sent the cursor '{}' twice", what, cursor)};
    params = {{"cursor", cursor}};
  }
  return tools;
}

Result<CallResult> Client::call_tool(const std::string& tool, const Json& arguments, const CallOptions& opt) {
  std::string what = fmt::format("MCP server '{}': tool '{}'", name_, tool);
  if (!arguments.is_object() && !arguments.is_null()) return Error{fmt::format("{}: the arguments must be a JSON object", what)};
  Json params = {{"name", tool}, {"arguments", arguments.is_null() ? Json::object() : arguments}};
  auto r = send("tools/call", std::move(params), opt.timeout_s, opt.on_notice, what);
  if (!r) return r.error();
  CallResult c;
  if (r->contains("content") && (*r)["content"].is_array()) c.content = (*r)["content"];
  if (r->contains("structuredContent")) c.structured = (*r)["structuredContent"];
  c.is_error = r->value("isError", false);
  return c;
}

}  // namespace wand::tools::mcp
