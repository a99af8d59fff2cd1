// `wand mcp`: wand as a Model Context Protocol server, so that any MCP client (desktop
// assistants, IDEs, agent frameworks) gets wand's sandbox, its judge and its solver as tools:
//
//   execute_code  a program (language, code, stdin, args, files, limits) -> the sandbox's result
//                 (the fields of `wand exec --jsonl`, README)
//   evaluate      a completion against a task (a dataset record: HumanEval, MBPP, stdin/stdout,
//                 GSM8K, PAL) -> the verdict (`wand eval`'s per-sample record)
//   solve         a question -> the answer, the program that gave it and the vote (`wand solve`)
//   ...           plus the tools given to Server::add_tool (e.g. `wand mcp --tools FILE`)
//
// Protocol (modelcontextprotocol.io/specification): dual-era. A request whose params._meta
// carries io.modelcontextprotocol/protocolVersion is served statelessly under 2026-07-28
// (server/discover; resultType, serverInfo in every result's _meta; ttlMs and cacheScope on
// tools/list; -32022 UnsupportedProtocolVersion naming the supported ones). `initialize` selects
// the 2025 revisions: the client's version when it is 2025-11-25, 2025-06-18 or 2025-03-26, else
// 2025-11-25 (lifecycle: version negotiation); ping and logging/setLevel are answered. Bad
// arguments to a tool are an isError result naming the argument (the model can correct itself;
// server/tools: error handling); an unknown tool or method is a JSON-RPC error. Progress
// (params._meta.progressToken) and log messages (logging/setLevel, or _meta's logLevel) are sent
// while a call runs; notifications/cancelled drops the answer of a running request.
//
// Transports: stdio (newline-delimited JSON-RPC; requests run concurrently, answers in any
// order) and Streamable HTTP on one endpoint, POST /mcp (JSON, or an SSE stream when a call
// asked for progress or logs; GET and DELETE are 405: no sessions are kept). The HTTP server
// validates Origin and Host (DNS rebinding: a browser page must not reach it): only localhost,
// 127.0.0.1 and [::1] pass, else 403. cpp-httplib is loaded from wand_mcp_server.so.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "llm/llm.h"
#include "tools/tools.h"

namespace wand::mcp {

inline const std::vector<std::string> kServedVersions = {"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"};

struct Options {
  std::string model_spec;  // the model `solve` uses (llm::open_backend's spec); opened on first use
  std::unique_ptr<llm::Backend> model;  // that model already opened (wand mcp checks it at startup): used, not reopened
  std::size_t cells = 0;   // sandbox cells (0: one per core); created on first use
  // The outcome verifier `solve` reads with select "verifier" (reason/verifier.h); opened on first
  // such call. Empty: select verifier is refused, naming the missing option.
  std::string verifier_spec;
};

// A tool as the server offers it. The handler gets the arguments (an object) and a function that
// reports progress (0..1); an Error becomes an isError result whose text is its message.
struct ServedTool {
  std::string name, title, description;
  Json input_schema;
  std::function<Result<Json>(const Json& args, const std::function<void(double)>& progress)> handler;
};

// What one connection (a stdio process, or nothing for stateless HTTP) remembers.
struct Connection {
  std::mutex mu;
  std::string log_level;        // from logging/setLevel; "" sends no log messages
  std::set<std::string> cancelled;  // ids (as JSON text) whose answer is dropped
};

class Server {
 public:
  explicit Server(Options opt);
  ~Server();
  // Adds a tool (after the built-in ones); a name already served is an error naming it.
  VoidResult add_tool(ServedTool tool);
  // Adds every tool of a registry (`wand mcp --tools ... --mcp ...`), run by tools::call (which
  // checks the arguments against the tool's schema first).
  VoidResult add_tools(const tools::Registry& registry);
  // One JSON-RPC message; the response, or null (a notification, a cancelled request). `emit`
  // sends a notification that belongs to this request (progress, log) before the response.
  Json handle(const Json& message, Connection& conn, const std::function<void(const Json&)>& emit);
  // The tools/list entries.
  Json tool_list() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Serves newline-delimited JSON-RPC on `in_fd`/`out_fd` until the input ends and every request
// has been answered.
void serve_stdio(Server& server, int in_fd = 0, int out_fd = 1);

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 0;                            // 0: any free port
  std::function<void(int port)> on_listening;  // called once bound, with the port
};
// Serves Streamable HTTP at http://host:port/mcp until the process ends. Errors: the address
// cannot be bound, the module cannot be loaded.
VoidResult serve_http(Server& server, const HttpOptions& opt);

// --- the boundary to wand_mcp_server.so (internal)
struct HttpPost {
  std::string path;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};
struct HttpAnswer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Set for an SSE answer: called with a writer (false: the client went away); returns when done.
  std::function<void(const std::function<bool(const std::string&)>& write)> stream;
};
// The answer to one POST (the module calls it on its threads). Requests share no state but the
// log level logging/setLevel sets (`shared`): there are no sessions.
HttpAnswer answer_post(Server& server, const HttpPost& post, Connection& shared);

}  // namespace wand::mcp
