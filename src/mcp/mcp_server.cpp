// The protocol and the built-in tools of `wand mcp` (mcp_server.h). The tools call the same
// library functions as `wand exec`, `wand eval` and `wand solve`.
#include "mcp/mcp_server.h"

#include <algorithm>
#include <map>

#include <fmt/core.h>

#include "feedback/evaluate.h"
#include "feedback/feedback.h"
#include "llm/llm.h"
#include "reason/reason.h"
#include "sandbox/sandbox.h"

namespace wand::mcp {
namespace {

const Json kServerInfo = {{"name", "wand"}, {"title", "wand: code execution, evaluation and solving"}, {"version", "0.1.0"}};
const char* kInstructions =
    "execute_code runs untrusted code in an isolated sandbox (no network) and returns its status, output, time and "
    "memory; evaluate judges a completion against a task's tests; solve answers a word problem by writing and "
    "running a program.";
constexpr int kMethodNotFound = -32601, kInvalidParams = -32602, kInvalidRequest = -32600;
constexpr int kUnsupportedProtocolVersion = -32022;

// RFC 5424 severities, as MCP's logging levels name them.
int level_rank(const std::string& l) {
  static const std::vector<std::string> order = {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"};
  auto it = std::find(order.begin(), order.end(), l);
  return it == order.end() ? -1 : static_cast<int>(it - order.begin());
}

Json schema(Json properties, std::vector<std::string> required) {
  return {{"type", "object"}, {"properties", std::move(properties)}, {"required", std::move(required)}};
}

Json text_result(const Json& value, bool is_error) {
  std::string text = value.is_string() ? value.get<std::string>() : dump_text(value, 2);
  Json block = {{"type", "text"}, {"text", text}};
  Json r = {{"content", Json::array({block})}, {"isError", is_error}};
  if (!is_error && value.is_object()) r["structuredContent"] = value;
  return r;
}

// A field of the arguments with the type asked for; errors name it.
template <class T>
Result<T> arg(const Json& a, const char* name, const char* type, T fallback, bool required = false) {
  if (!a.contains(name) || a[name].is_null()) {
    if (required) return Error{fmt::format("missing required argument '{}'", name)};
    return fallback;
  }
  const Json& v = a[name];
  bool ok = std::string_view(type) == "string" ? v.is_string()
            : std::string_view(type) == "boolean" ? v.is_boolean()
            : std::string_view(type) == "integer" ? v.is_number_integer()
            : std::string_view(type) == "number" ? v.is_number()
                                                  : v.is_object();
  if (!ok) return Error{fmt::format("argument '{}': expected {} {}, got {}", name, std::string_view(type) == "integer" ? "an" : "a", type, v.type_name())};
  return v.get<T>();
}

VoidResult only(const Json& a, std::initializer_list<const char*> known) {
  for (auto& [k, v] : a.items())
    if (std::none_of(known.begin(), known.end(), [&](const char* n) { return k == n; })) {
      std::string names;
      for (auto* n : known) names += (names.empty() ? "" : ", ") + std::string(n);
      return Error{fmt::format("unknown argument '{}' (known: {})", k, names)};
    }
  return ok_status();
}

}  // namespace

struct Server::Impl {
  Options opt;
  std::vector<ServedTool> tools;
  std::mutex open_mu, model_mu;
  std::unique_ptr<sandbox::Sandbox> sb;
  std::unique_ptr<llm::Backend> model;
  std::shared_ptr<llm::Backend> verifier;  // select verifier; opened on first use, under model_mu

  Result<sandbox::Sandbox*> sandbox() {
    std::lock_guard lk(open_mu);
    if (!sb) {
      sandbox::Options o;
      o.cells = opt.cells;
      o.preload = feedback::kEvalPreload;
      auto s = sandbox::Sandbox::create(o);
      if (!s) return Error{fmt::format("the sandbox cannot run on this host: {}", s.error().message)};
      sb = std::move(*s);
    }
    return sb.get();
  }

  Result<Json> execute_code(const Json& args, const std::function<void(double)>&) {
    // The JSON-lines request schema (README, `wand exec --jsonl`): its checks name the field.
    auto req = sandbox::request_from_json(args);
    if (!req) return req.error();
    auto s = sandbox();
    if (!s) return s.error();
    return sandbox::to_json((*s)->run(*req));
  }

  Result<Json> evaluate(const Json& args, const std::function<void(double)>& progress) {
    if (auto k = only(args, {"task", "completion", "extract_code", "strict", "timeout"}); !k) return k.error();
    auto record = arg<Json>(args, "task", "object", Json(), true);
    if (!record) return record.error();
    auto completion = arg<std::string>(args, "completion", "string", "", true);
    if (!completion) return completion.error();
    auto extract = arg<bool>(args, "extract_code", "boolean", false);
    if (!extract) return extract.error();
    auto strict = arg<bool>(args, "strict", "boolean", false);
    if (!strict) return strict.error();
    auto timeout = arg<double>(args, "timeout", "number", 10);
    if (!timeout) return timeout.error();
    if (auto p = number_problem(args.value("timeout", Json(10)).dump(), sandbox::kTimeoutRange); !p.empty())
      return Error{fmt::format("argument 'timeout': {}", p)};
    auto task = feedback::task_from_json(*record, "argument 'task'");
    if (!task) return task.error();
    feedback::JudgeOptions jo;
    jo.timeout_s = *timeout;
    jo.strict = *strict;
    if (auto unused = feedback::unused_option(jo, task->kind))
      return Error{fmt::format("argument '{}': the task is a {} task; {} is for {}", unused->name, task->format, unused->name,
                               unused->used_by)};
    auto s = sandbox();
    if (!s) return s.error();
    auto sub = feedback::prepare(*task, *extract ? feedback::code_from_completion(*task, *completion) : *completion, jo);
    progress(0.1);
    auto results = (*s)->run_batch(sub.requests);
    Json v = feedback::judge(*task, sub, results, jo).to_json();
    v["task_id"] = task->task_id;
    return v;
  }

  Result<Json> solve(const Json& args, const std::function<void(double)>& progress) {
    if (auto k = only(args, {"question", "method", "k", "temperature", "seed", "select", "plausible"}); !k) return k.error();
    auto question = arg<std::string>(args, "question", "string", "", true);
    if (!question) return question.error();
    reason::SolveConfig c;
    auto method = arg<std::string>(args, "method", "string", "pot");
    if (!method) return method.error();
    auto k = arg<int>(args, "k", "integer", 1);
    if (!k) return k.error();
    auto temperature = arg<double>(args, "temperature", "number", *k > 1 ? 0.7 : 0.0);
    if (!temperature) return temperature.error();
    auto seed = arg<uint64_t>(args, "seed", "integer", 0);
    if (!seed) return seed.error();
    auto select = arg<std::string>(args, "select", "string", "vote");
    if (!select) return select.error();
    auto plausible = arg<bool>(args, "plausible", "boolean", false);
    if (!plausible) return plausible.error();
    c.method = *method, c.k = *k, c.temperature = static_cast<float>(*temperature);
    c.select = *select, c.plausible = *plausible;
    if (c.select == "verifier") {
      if (opt.verifier_spec.empty()) return Error{"argument select: 'verifier' needs a verifier model, and this server has none"};
      c.verifier_spec = opt.verifier_spec;
    }
    c.seed = args.contains("seed") ? *seed : llm::random_seed();
    std::lock_guard lk(model_mu);  // one model, one caller at a time
    if (!model) {
      auto m = llm::open_backend(opt.model_spec);
      if (!m) return m.error();
      model = std::move(*m);
    }
    if (c.select == "verifier") {
      if (!verifier) {
        auto v = llm::open_backend(opt.verifier_spec);
        if (!v) return Error{"the verifier: " + v.error().message};
        verifier = std::move(*v);
      }
      c.verifier = verifier;
    }
    auto family = reason::prompt_family(*model);  // a remote wand serve says what it is
    if (!family) return family.error();
    c.family = *family;
    if (auto v = reason::validate(c); !v) return Error{fmt::format("argument {}", v.error().message)};
    sandbox::Sandbox* box = nullptr;
    if (c.method != "cot") {
      auto s = sandbox();
      if (!s) return s.error();
      box = *s;
    }
    progress(0.1);
    auto r = reason::solve(*model, box, *question, c);
    if (!r) return r.error();
    Json out = {{"answer", r->answer ? Json(*r->answer) : Json(nullptr)},
                {"answered_by", r->answered_by},
                {"program", r->winner >= 0 ? Json(r->samples[r->winner].program) : Json(nullptr)},
                {"vote", reason::to_json(*r)["vote"]},
                {"seed", c.seed},
                {"model", model->id()}};
    return out;
  }
};

Server::Server(Options opt) : impl_(std::make_unique<Impl>()) {
  impl_->model = std::move(opt.model);
  impl_->opt = std::move(opt);
  auto* self = impl_.get();
  auto limits = Json{{"timeout", {{"type", "number"}, {"description", "seconds, 0 < t <= 86400 (default 10)"}}},
                     {"memory_mb", {{"type", "integer"}, {"description", "MiB (default 512)"}}},
                     {"max_output_bytes", {{"type", "integer"}, {"description", "per stream (default 1 MiB)"}}}};
  Json exec_props = {{"language", {{"type", "string"}, {"enum", {"python", "c", "cpp", "js", "bash"}}, {"default", "python"}}},
                     {"code", {{"type", "string"}, {"description", "the program"}}},
                     {"stdin", {{"type", "string"}, {"description", "standard input"}}},
                     {"args", {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "command-line arguments"}}},
                     {"files", {{"type", "object"}, {"description", "files placed in the working directory: {name: text}"}}},
                     {"collect", {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "files brought back after the run"}}}};
  exec_props.update(limits);
  impl_->tools.push_back({"execute_code", "Execute code in a sandbox",
                          "Run a program in wand's sandbox: an isolated cell with no network, limits on time, memory, "
                          "processes and output. Returns status (ok, runtime_error, timeout, memory_limit, "
                          "output_limit, compile_error, ...), exit_code, stdout, stderr, wall_time, peak_memory_kb, and "
                          "for Python the exception with its line.",
                          schema(exec_props, {"code"}),
                          [self](const Json& a, const auto& p) { return self->execute_code(a, p); }});
  impl_->tools.push_back(
      {"evaluate", "Judge a completion against a task's tests",
       "Run a model's completion against the tests of a task given as a dataset record (HumanEval: task_id, prompt, "
       "canonical_solution, test, entry_point; MBPP: text, code, test_list; stdin/stdout: inputs, outputs; GSM8K: "
       "question, answer with '#### N'; PAL: input, target). Returns the verdict: passed, error_class, feedback "
       "(the failing test or the error with its line), reward and per-test results.",
       schema({{"task", {{"type", "object"}, {"description", "the task, as a dataset record"}}},
               {"completion", {{"type", "string"}, {"description", "the code (HumanEval: the body after the prompt)"}}},
               {"extract_code", {{"type", "boolean"}, {"description", "take the code out of prose and Markdown fences"}, {"default", false}}},
               {"strict", {{"type", "boolean"}, {"description", "run the tests in a process the sample cannot reach"}, {"default", false}}},
               {"timeout", {{"type", "number"}, {"description", "seconds per run (default 10)"}}}},
              {"task", "completion"}),
       [self](const Json& a, const auto& p) { return self->evaluate(a, p); }});
  impl_->tools.push_back(
      {"solve", "Solve a word problem with code",
       "Answer a question by having wand's model write a program (program-of-thought), running it in the sandbox and "
       "voting over the executed answers of k samples. Returns the answer, the program that gave it and the vote.",
       schema({{"question", {{"type", "string"}}},
               {"method", {{"type", "string"}, {"enum", {"pot", "pal", "cot", "flow"}}, {"default", "pot"},
                           {"description", "flow: a program whose sub-questions call the model (chat/completion models only); cot: "
                                           "prose, from a model that writes it (wand's own pot models write programs only)"}}},
               {"k", {{"type", "integer"}, {"minimum", 1}, {"maximum", 64}, {"default", 1}, {"description", "samples that vote"}}},
               {"temperature", {{"type", "number"}, {"minimum", 0}, {"maximum", 2}}},
               {"seed", {{"type", "integer"}, {"minimum", 0}}},
               {"select", {{"type", "string"}, {"enum", {"vote", "logprob", "verifier"}}, {"default", "vote"},
                           {"description", "vote: the most frequent executed answer; logprob: the answer of the most likely "
                                           "sample; verifier: the answer of the sample the outcome verifier rates most likely right"}}},
               {"plausible", {{"type", "boolean"}, {"default", false},
                              {"description", "set aside negative answers, and fractions from a question of whole numbers"}}}},
              {"question"}),
       [self](const Json& a, const auto& p) { return self->solve(a, p); }});
}

Server::~Server() = default;

VoidResult Server::add_tool(ServedTool tool) {
  for (auto& t : impl_->tools)
    if (t.name == tool.name) return Error{fmt::format("tool '{}' is already served", tool.name)};
  impl_->tools.push_back(std::move(tool));
  return ok_status();
}

VoidResult Server::add_tools(const tools::Registry& registry) {
  for (const tools::Tool* t : registry.list()) {
    auto tool = registry.get(t->name);  // shared: the handler keeps the tool alive
    auto added = add_tool({t->name, "", t->description, t->parameters,
                           [tool](const Json& args, const auto&) { return tools::call(*tool, args); }});
    if (!added) return added;
  }
  return ok_status();
}

Json Server::tool_list() const {
  Json list = Json::array();
  for (auto& t : impl_->tools) {
    Json j = {{"name", t.name}, {"description", t.description}, {"inputSchema", t.input_schema}};
    if (!t.title.empty()) j["title"] = t.title;
    list.push_back(std::move(j));
  }
  return list;
}

Json Server::handle(const Json& msg, Connection& conn, const std::function<void(const Json&)>& emit) {
  auto error = [&](const Json& id, int code, const std::string& message, Json data = nullptr) {
    Json e = {{"code", code}, {"message", message}};
    if (!data.is_null()) e["data"] = std::move(data);
    return Json{{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(e)}};
  };
  if (!msg.is_object() || msg.value("jsonrpc", "") != "2.0" || !msg.contains("method") || !msg["method"].is_string())
    return error(msg.is_object() && msg.contains("id") ? msg["id"] : Json(nullptr), kInvalidRequest,
                 "not a JSON-RPC 2.0 request: it needs \"jsonrpc\": \"2.0\" and a string \"method\"");
  const std::string method = msg["method"];
  const Json params = msg.contains("params") && msg["params"].is_object() ? msg["params"] : Json::object();
  if (!msg.contains("id")) {  // a notification
    if (method == "notifications/cancelled" && params.contains("requestId")) {
      std::lock_guard lk(conn.mu);
      conn.cancelled.insert(params["requestId"].dump());
    }
    return nullptr;
  }
  const Json id = msg["id"];
  // MCP: "Request IDs MUST be a string or integer" and "MUST NOT be null".
  if (!id.is_string() && !id.is_number_integer())
    return error(nullptr, kInvalidRequest, fmt::format("the request id must be a string or an integer, not {}", id.dump()));
  const Json meta = params.value("_meta", Json::object());
  std::string modern_version;
  if (meta.is_object() && meta.contains("io.modelcontextprotocol/protocolVersion")) {
    const Json& v = meta["io.modelcontextprotocol/protocolVersion"];
    modern_version = v.is_string() ? v.get<std::string>() : v.dump();
    if (modern_version != kServedVersions.front())
      return error(id, kUnsupportedProtocolVersion, "Unsupported protocol version",
                   {{"supported", kServedVersions}, {"requested", modern_version}});
  }
  bool modern = !modern_version.empty();
  auto reply = [&](Json result) {
    if (modern) {
      result["resultType"] = "complete";
      result["_meta"]["io.modelcontextprotocol/serverInfo"] = kServerInfo;
    }
    std::lock_guard lk(conn.mu);
    if (conn.cancelled.erase(id.dump())) return Json(nullptr);  // cancelled: no answer
    return Json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
  };
  Json capabilities = {{"tools", {{"listChanged", false}}}, {"logging", Json::object()}};

  if (method == "initialize") {
    std::string asked = params.value("protocolVersion", "");
    bool known = std::find(kServedVersions.begin() + 1, kServedVersions.end(), asked) != kServedVersions.end();
    return reply({{"protocolVersion", known ? asked : kServedVersions[1]},
                  {"capabilities", capabilities},
                  {"serverInfo", kServerInfo},
                  {"instructions", kInstructions}});
  }
  if (method == "server/discover")
    return reply({{"supportedVersions", kServedVersions},
                  {"capabilities", capabilities},
                  {"instructions", kInstructions},
                  {"ttlMs", 3600000},
                  {"cacheScope", "public"}});
  if (method == "ping") return reply(Json::object());
  if (method == "logging/setLevel") {
    std::string level = params.value("level", "");
    if (level_rank(level) < 0) return error(id, kInvalidParams, fmt::format("logging/setLevel: unknown level '{}'", level));
    {
      std::lock_guard lk(conn.mu);
      conn.log_level = level;
    }
    return reply(Json::object());
  }
  if (method == "tools/list") {
    Json r = {{"tools", tool_list()}};
    if (modern) r["ttlMs"] = 3600000, r["cacheScope"] = "public";
    return reply(std::move(r));
  }
  if (method == "tools/call") {
    if (!params.contains("name") || !params["name"].is_string())
      return error(id, kInvalidParams, "tools/call: 'name' must be a string");
    std::string name = params["name"];
    auto it = std::find_if(impl_->tools.begin(), impl_->tools.end(), [&](auto& t) { return t.name == name; });
    if (it == impl_->tools.end()) {
      std::string names;
      for (auto& t : impl_->tools) names += (names.empty() ? "" : ", ") + t.name;
      return error(id, kInvalidParams, fmt::format("Unknown tool: '{}' (tools: {})", name, names));
    }
    Json args = params.contains("arguments") ? params["arguments"] : Json::object();
    if (args.is_null()) args = Json::object();
    if (!args.is_object()) return reply(text_result(fmt::format("{}: the arguments must be a JSON object", name), true));
    // Log messages: the connection's level (2025), or this request's own (2026-07-28).
    std::string level = modern ? meta.value("io.modelcontextprotocol/logLevel", "") : [&] {
      std::lock_guard lk(conn.mu);
      return conn.log_level;
    }();
    auto log = [&](const std::string& lvl, const std::string& text) {
      if (!level.empty() && level_rank(lvl) >= level_rank(level))
        emit({{"jsonrpc", "2.0"}, {"method", "notifications/message"}, {"params", {{"level", lvl}, {"logger", "wand"}, {"data", text}}}});
    };
    Json token = meta.is_object() && meta.contains("progressToken") ? meta["progressToken"] : Json(nullptr);
    auto progress = [&](double p) {
      if (!token.is_null())
        emit({{"jsonrpc", "2.0"}, {"method", "notifications/progress"}, {"params", {{"progressToken", token}, {"progress", p}, {"total", 1.0}}}});
    };
    log("info", fmt::format("{} started", name));
    progress(0);
    Result<Json> r = Error{"not run"};
    try {
      r = it->handler(args, progress);
    } catch (const std::exception& e) {
      r = Error{fmt::format("internal error: {}", e.what())};
    }
    progress(1);
    log(r ? "info" : "error", r ? fmt::format("{} finished", name) : fmt::format("{}: {}", name, r.error().message));
    return reply(r ? text_result(*r, false) : text_result(fmt::format("{}: {}", name, r.error().message), true));
  }
  return error(id, kMethodNotFound, fmt::format("Method not found: '{}'", method));
}

}  // namespace wand::mcp
