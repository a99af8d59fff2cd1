// Tools: host functions that sandboxed programs call as ordinary Python functions.
//
//   tools::Registry reg;
//   reg.add({.name = "add", .description = "Adds two integers.",
//            .parameters = {{"type", "object"}, {"properties", {{"a", {{"type", "integer"}}},
//                                                              {"b", {{"type", "integer"}}}}},
//                           {"required", {"a", "b"}}},
//            .handler = [](const Json& a, const tools::CallContext&) -> Result<Json> {
//              return Json(a["a"].get<long>() + a["b"].get<long>()); }});
//   auto run = tools::run(sandbox, {.code = "print(add(2, 3))"}, reg, {});
//   // run.stdout_data == "5\n"; run.tool_calls[0]["name"] == "add"
//
// A tool is a name, a description, a JSON Schema for its arguments (and optionally its result)
// and a handler. Where tools come from: C++ functions (add()), declared command-line tools
// (load_command_tools), the built-ins (builtins.h) and MCP servers (src/tools/mcp, another
// module that adds to the same Registry). A run is granted a subset (Registry::select); the
// program reaches it over the bridge: a Unix socket the cell inherits (sandbox::Service),
// length-prefixed JSON frames carrying request ids, so several Python threads can call at once.
// The host validates the arguments against the schema (validate_args), runs the handler with
// the tool's timeout, counts the call against the run's Budget and logs it (ToolCall).
#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "sandbox/sandbox.h"

namespace wand::tools {

// Counters a tool charges its own per-run budget to (llm's calls and tokens): fresh for every
// run and every session block. Thread-safe.
class RunUsage {
 public:
  // Adds `n` to `key` unless the total would pass `limit`; false (and nothing added) then.
  bool charge(const std::string& key, double n, double limit);
  double add(const std::string& key, double n);  // adds unconditionally; the new total
  double get(const std::string& key) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, double> totals_;
};

// What a handler knows about the call it serves.
struct CallContext {
  std::string tool;                                  // the tool's name
  std::chrono::steady_clock::time_point deadline;    // when the call times out
  double timeout_s = 0;                              // the tool's timeout, seconds
  std::shared_ptr<RunUsage> usage = std::make_shared<RunUsage>();  // this run's counters
  // Seconds left until `deadline` (0 when past): handlers that block (a process, a query, an
  // HTTP request) give this to what they wait on, so they stop themselves in time.
  double remaining_s() const;
};

// The handler's answer: a JSON value the program receives as a Python value, or an Error whose
// message the program receives as ToolError(message). A handler may be called from several
// threads at once and must not throw (an exception is caught and reported as the tool's error).
using Handler = std::function<Result<Json>(const Json& args, const CallContext& ctx)>;

struct Tool {
  // A Python identifier, or dotted identifiers for a namespace ("fs.read": the program calls
  // fs.read(...)). Names are unique in a registry.
  std::string name;
  std::string description;  // first line: a one-line summary; shown in prompts and `wand tools list`
  // JSON Schema of the arguments: an object schema ({"type": "object", "properties": {...},
  // "required": [...]}); the program's positional arguments bind as parameter_order() says.
  // The keywords validate_args understands: type, properties, required, enum, items, minimum,
  // maximum, minLength, maxLength, minItems, maxItems, additionalProperties, default (used by
  // the rendering and the Python side, not by the check), description, examples.
  Json parameters = Json{{"type", "object"}, {"properties", Json::object()}};
  Json result = nullptr;  // JSON Schema of the result; null: unspecified (documents only)
  double timeout_s = 30;  // per call; past it the program gets ToolError("...timed out...")
  Handler handler;
  // For handlers that return at once and never block (pure computation in memory): the bridge
  // calls them on the run's own thread, without handing the call to a worker (the fast path).
  bool inline_call = false;
  std::string source = "c++";  // where it comes from: "c++", "builtin", "command FILE", "mcp SERVER"
};

// Whether a top-level tool name would hide a Python keyword or built-in (print, open, len, ...)
// in the program's globals. A declared command tool may not take one; an MCP server's gets a
// trailing "_". (An environment's primitives may, on purpose: the kitchen's open('fridge').)
bool hides_python_name(std::string_view name);

// The tools a run may call. Copies share the tools (they are immutable once added).
class Registry {
 public:
  // Errors: a name that is not an identifier or dotted identifiers, a name already present, a
  // missing handler, a parameters schema that is not an object schema.
  VoidResult add(Tool tool);
  const Tool* find(std::string_view name) const;  // null when absent
  std::shared_ptr<const Tool> get(std::string_view name) const;
  std::vector<const Tool*> list() const;  // sorted by name
  std::size_t size() const { return tools_.size(); }
  bool empty() const { return tools_.empty(); }
  // The subset named in `names` (a name "fs" grants every tool of the namespace "fs.*"); an
  // unknown name is an error naming it and listing the known ones.
  Result<Registry> select(const std::vector<std::string>& names) const;
  // Adds every tool of `other`; a duplicate name is an error.
  VoidResult merge(const Registry& other);

 private:
  std::map<std::string, std::shared_ptr<const Tool>, std::less<>> tools_;
};

// Per-run limits of the bridge. A call over a budget gets ToolError naming the budget.
struct Budget {
  std::size_t max_calls = 10000;                // calls per run (or per session block)
  std::size_t max_result_bytes = 64 << 20;      // total bytes of results sent to the program
  double max_wall_s = 0;                        // total seconds spent in tools; 0: no limit but the run's own
  // Largest request frame the program may send: a call carrying a file at fs's 1 MiB cap, its
  // text JSON-escaped (up to 6 bytes a byte), fits.
  std::size_t max_frame_bytes = 8 << 20;
  std::size_t max_in_flight = 64;               // calls served on worker threads at once
};

// One call, as logged in the run's result (ExecResult::tool_calls).
struct ToolCall {
  std::string name;
  Json arguments;               // as the program sent them (after binding positional ones)
  std::size_t result_bytes = 0; // size of the JSON result sent back; 0 on error
  double duration_s = 0;
  std::string error;            // empty when the call succeeded
};
Json to_json(const ToolCall& c);  // {"name", "arguments", "result_bytes", "duration_s", "error"?}

// Checks `args` against the JSON Schema `schema` (the subset listed at Tool::parameters).
// Errors name the parameter by path ("parameter 'k': expected an integer, got a string";
// "parameter 'rows[2].id': ..."; "missing required parameter 'query'"; "unknown parameter 'x'").
VoidResult validate_args(const Json& schema, const Json& args);

// The order positional arguments bind in (and the signature shows): the required parameters
// in the order "required" lists them, then the others by name (JSON objects keep no order).
std::vector<std::string> parameter_order(const Json& parameters);

// Validates `args` and calls the tool's handler (in this thread, without the bridge's timeout
// backstop): what `wand tools call` and in-process users do. Errors name the tool.
Result<Json> call(const Tool& tool, const Json& args);

// The tool as Python the model reads in a prompt: a signature with typed parameters and
// defaults, and a docstring made from the schema (description, each parameter's type and
// description, an example when the schema has one), e.g.
//   def search(query: str, k: int = 5) -> list:
//       """Full-text search over the documents. ...
//       Args:
//           query (str): words to look for
//           k (int): how many hits, 1..50 (default 5)
//       """
// Namespaced tools render as methods of their namespace ("fs.read" -> "def fs.read(path: str) -> str").
std::string python_signature(const Tool& tool);
// Every tool of the registry, one signature after the other, for a prompt.
std::string python_signatures(const Registry& reg);

// One run's side of the bridge: grants `tools` to the request's program under `budget`. Fills
// `req` (Python only): a prelude that defines the tools (the program's line numbers are kept in
// ExecResult::exception; the traceback text counts one line more), and a sandbox::Service that
// serves the calls. Errors: a language other than Python. Made with std::make_shared (attach
// shares it with the request).
class Bridge : public sandbox::Service, public std::enable_shared_from_this<Bridge> {
 public:
  Bridge(Registry tools, Budget budget);
  ~Bridge() override;
  VoidResult attach(sandbox::ExecRequest& req);
  // The Python code that defines the granted tools (what attach() puts before the program).
  std::string prelude() const;
  // The calls served so far (in the order they ended).
  std::vector<ToolCall> calls() const;

  // sandbox::Service
  void on_frame(std::string body, Reply reply) override;
  void on_error(const std::string& why, Reply reply) override;
  void finish(sandbox::ExecResult& r) override;
  std::size_t max_frame() const override;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Runs `req` with `tools` granted (a Bridge attached); the result carries the calls in
// tool_calls. An empty registry runs the request as it is.
sandbox::ExecResult run(sandbox::Sandbox& sb, sandbox::ExecRequest req, const Registry& tools,
                        const Budget& budget = {});

// A persistent session with `tools` granted: the tools' prelude runs as its first block; each
// block's result carries the calls it made (the budget counts per block).
Result<std::unique_ptr<sandbox::Session>> open_session(sandbox::Sandbox& sb, const Registry& tools,
                                                       sandbox::Limits per_block = {}, const Budget& budget = {});

// The Python source of the program side of the bridge (embedded from bridge.py).
std::string_view python_module();

}  // namespace wand::tools
