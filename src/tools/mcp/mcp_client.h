// An MCP client: wand talks to any Model Context Protocol server, so that the server's tools
// become tools a sandboxed program calls (mcp_tools.h adds them to a tools::Registry).
//
//   auto c = tools::mcp::Client::connect({.target = "npx -y @modelcontextprotocol/server-everything"});
//   auto tools = (*c)->list_tools();                       // every page of tools/list
//   auto r = (*c)->call_tool("get-sum", {{"a", 2}, {"b", 3}});   // r->text() == "The sum of 2 and 3 is 5."
//
// Transports (modelcontextprotocol.io/specification, basic/transports):
//  - stdio: `target` is a command line (run by /bin/sh -c), speaking newline-delimited JSON-RPC
//    2.0 on its stdin/stdout; its stderr is kept (the last 4 KiB) for error messages.
//  - Streamable HTTP: `target` is an http:// or https:// URL; each message is a POST with
//    `Accept: application/json, text/event-stream`; the answer is one JSON object or an SSE stream
//    whose notifications come before the response. Mcp-Session-Id and MCP-Protocol-Version are
//    sent back as the 2025 revisions require. libcurl is loaded from the module wand_mcp_http.so
//    on first use (like wand_openai.so), so the `wand` binary does not link it.
//
// Versions: the client is dual-era (revision 2026-07-28, basic/versioning). It first speaks the
// stateless 2026-07-28 protocol (every request carries `_meta` with io.modelcontextprotocol/
// protocolVersion, clientInfo and clientCapabilities; stdio probes with server/discover, HTTP
// sends the request and reads a 4xx body). Anything but a DiscoverResult or a recognised modern
// error (-32022 UnsupportedProtocolVersion, -32020 HeaderMismatch, -32021) marks a legacy server:
// then the initialize handshake offers 2025-11-25 and accepts what the server picks among
// 2025-11-25, 2025-06-18 and 2025-03-26 (lifecycle: version negotiation); anything else is an
// error naming both sides. The era is decided once per connection.
//
// Failures are errors that name the server and the tool: a call that outlives its timeout (the
// server gets notifications/cancelled); a server that exits or closes its output mid-call; a
// JSON-RPC error. Restart policy (stdio): a server that exited, or that timed out a call and then
// does not answer a ping within 2 s, is killed and started again (with a new handshake) on the next
// request; so one hung or crashed tool does not take the server's other tools with it.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace wand::tools::mcp {

// The protocol revisions this client speaks, newest first. "2026-07-28" is stateless (no
// handshake); the others use initialize.
inline const std::vector<std::string> kModernVersions = {"2026-07-28"};
inline const std::vector<std::string> kLegacyVersions = {"2025-11-25", "2025-06-18", "2025-03-26"};

// JSON-RPC 2.0 error codes (jsonrpc.org/specification) and MCP's own (2026-07-28 schema).
constexpr int kParseError = -32700, kInvalidRequest = -32600, kMethodNotFound = -32601, kInvalidParams = -32602,
              kInternalError = -32603;
constexpr int kHeaderMismatch = -32020, kMissingClientCapability = -32021, kUnsupportedProtocolVersion = -32022;

struct ServerSpec {
  std::string target;          // a command line (stdio) or an http(s):// URL (Streamable HTTP)
  std::string name;            // how errors name it; default: the server's serverInfo.name, else target
  double call_timeout_s = 60;  // per tools/call (CallOptions may shorten it)
  double connect_timeout_s = 30;  // start + handshake (npx may download the package first)
  // stdio: the environment of the server process, added to wand's own. HTTP: extra headers
  // ("Authorization: Bearer ..."), one "Name: value" each.
  std::map<std::string, std::string> env;
  std::vector<std::string> headers;
  bool modern = true;  // try the stateless 2026-07-28 protocol first (off: initialize at once)
};

// One tool of tools/list (server/tools: Tool).
struct ToolInfo {
  std::string name, title, description;
  Json input_schema = Json::object();  // JSON Schema of the arguments
  Json output_schema = nullptr;        // of structuredContent, when the tool declares one
  Json annotations = nullptr;
};

// A tools/call result (server/tools: CallToolResult).
struct CallResult {
  Json content = Json::array();  // content blocks: {type: text|image|audio|resource|resource_link, ...}
  Json structured = nullptr;     // structuredContent, when given
  bool is_error = false;         // the tool ran and failed (isError): its content says why
  // The text blocks joined by newlines; other blocks as a short "[image image/png, 120 bytes]".
  std::string text() const;
  // What a program gets back: structuredContent when present, else the text (one block), else
  // the content blocks.
  Json value() const;
};

// A notification that arrived during a request (progress, log message), as sent.
struct Notice {
  std::string method;  // "notifications/progress", "notifications/message", ...
  Json params;
};

struct CallOptions {
  double timeout_s = 0;  // 0: the server's call_timeout_s
  // Progress and log notifications of this call (called on a reader thread). Setting it asks the
  // server for progress (a progressToken in _meta).
  std::function<void(const Notice&)> on_notice;
};

class Transport;

// One connection to one server. Thread-safe: calls from several threads are multiplexed over
// the connection by JSON-RPC id.
class Client {
 public:
  // Starts (stdio) or reaches (HTTP) the server and agrees on a protocol version. Errors name
  // the target: a command that cannot start or exits, a URL that does not answer, no common version.
  static Result<std::unique_ptr<Client>> connect(ServerSpec spec);
  ~Client();

  const std::string& name() const { return name_; }
  const std::string& target() const { return spec_.target; }
  const std::string& protocol_version() const { return version_; }  // the one agreed on
  bool modern() const;  // speaking the stateless revision
  const Json& server_info() const { return server_info_; }
  const Json& capabilities() const { return capabilities_; }
  const std::string& instructions() const { return instructions_; }

  // Every tool, following nextCursor through all pages (pagination: a cursor seen twice ends
  // the listing with an error rather than looping).
  Result<std::vector<ToolInfo>> list_tools();
  // Calls a tool. A tool that failed (isError) is a CallResult, not an Error: Errors are for the
  // protocol (unknown tool, bad arguments as the server's -32602, timeout, the server gone).
  Result<CallResult> call_tool(const std::string& tool, const Json& arguments, const CallOptions& opt = {});
  // Any request (a method without a dedicated call): the result object, or an Error.
  Result<Json> request(const std::string& method, Json params, double timeout_s = 0,
                       const std::function<void(const Notice&)>& on_notice = {});

 private:
  explicit Client(ServerSpec spec);
  VoidResult open();
  VoidResult handshake();
  Result<Json> send(const std::string& method, Json params, double timeout_s,
                    const std::function<void(const Notice&)>& on_notice, const std::string& what);
  ServerSpec spec_;
  std::string name_, version_, instructions_;
  Json server_info_ = Json::object(), capabilities_ = Json::object();
  std::unique_ptr<Transport> transport_;
  struct State;
  std::unique_ptr<State> state_;
};

// The JSON-RPC message a transport carries (internal to the client and its transports, and to
// src/mcp, wand's own server, which shares the framing).
class Transport {
 public:
  virtual ~Transport() = default;
  // Sends a request (with its "id") and waits for the response with that id, up to timeout_s;
  // notifications that arrive meanwhile go to on_notice. Returns the whole response message
  // ({"result"} or {"error"}); an Error when the transport failed (timeout, closed, HTTP status).
  virtual Result<Json> round_trip(const Json& request, double timeout_s,
                                  const std::function<void(const Notice&)>& on_notice) = 0;
  virtual VoidResult notify(const Json& notification) = 0;
  // Per-protocol state the transport sends along (HTTP: the MCP-Protocol-Version header).
  virtual void set_protocol_version(const std::string& v) = 0;
  // Whether the other end is still there (stdio: the process runs); restart() starts it again.
  virtual bool alive() const = 0;
  virtual VoidResult restart() = 0;
  // Ends the connection (stdio: the process); alive() is then false.
  virtual void close() = 0;
  // The last error output (stdio: the tail of the server's stderr), for messages.
  virtual std::string diagnostics() const { return ""; }
};

// The two transports (exposed for tests).
Result<std::unique_ptr<Transport>> open_stdio(const std::string& command, const std::map<std::string, std::string>& env);
Result<std::unique_ptr<Transport>> open_http(const std::string& url, const std::vector<std::string>& headers);

// --- HTTP, the part that needs libcurl (mcp_http.cpp; in the binary, loaded from wand_mcp_http.so)
struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  double timeout_s = 60;
};
struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // what on_data did not take
};
// POSTs `req`; on_data receives the body as it arrives (for SSE) and returns false to stop
// reading; headers are complete before the first call. Errors name the URL and curl's reason.
Result<HttpResponse> http_post(const HttpRequest& req, const std::function<bool(long status, const HttpResponse&, std::string_view)>& on_data);

}  // namespace wand::tools::mcp
