// Tools through the real sandbox: the bridge, the schema check, the Python rendering.
#include <atomic>
#include <thread>

#include <httplib.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fmt/core.h>

#include "llm/llm.h"
#include "support.h"
#include "tools/builtins.h"

namespace wand::test {
namespace {
using sandbox::ExecRequest;
using sandbox::ExecResult;
using sandbox::Status;

Json object_schema(Json props, Json required = Json::array()) {
  return {{"type", "object"}, {"properties", std::move(props)}, {"required", std::move(required)}};
}

tools::Registry sample_tools() {
  tools::Registry reg;
  EXPECT_TRUE(reg.add({.name = "add",
                       .description = "Adds two integers.",
                       .parameters = object_schema({{"a", {{"type", "integer"}}}, {"b", {{"type", "integer"}, {"default", 1}}}},
                                                   {"a"}),
                       .handler = [](const Json& a, const tools::CallContext&) -> Result<Json> {
                         return Json(a["a"].get<long>() + a.value("b", 1L));
                       },
                       .inline_call = true}));
  EXPECT_TRUE(reg.add({.name = "math.fail",
                       .description = "Always fails.",
                       .handler = [](const Json&, const tools::CallContext&) -> Result<Json> {
                         return Error{"it failed on purpose"};
                       }}));
  EXPECT_TRUE(reg.add({.name = "slow",
                       .description = "Sleeps.",
                       .parameters = object_schema({{"s", {{"type", "number"}}}}, {"s"}),
                       .timeout_s = 0.3,
                       .handler = [](const Json& a, const tools::CallContext&) -> Result<Json> {
                         std::this_thread::sleep_for(std::chrono::duration<double>(a["s"].get<double>()));
                         return Json("slept");
                       }}));
  return reg;
}

ExecResult run_py(const std::string& code, const tools::Registry& reg, tools::Budget budget = {}) {
  ExecRequest req;
  req.code = code;
  return tools::run(shared_sandbox(), req, reg, budget);
}

TEST(Tools, ProgramCallsCppToolsAndGetsPythonValues) {
  ExecResult r = run_py("print(add(2, 3), add(a=4), add(1, b=10))\n", sample_tools());
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data << r.error;
  EXPECT_EQ(r.stdout_data, "5 5 11\n");
  ASSERT_EQ(r.tool_calls.size(), 3u);
  EXPECT_EQ(r.tool_calls[0]["name"], "add");
  EXPECT_EQ(r.tool_calls[0]["arguments"], (Json{{"a", 2}, {"b", 3}}));
  EXPECT_GT(r.tool_calls[0]["result_bytes"].get<int>(), 0);
  EXPECT_FALSE(r.tool_calls[0].contains("error"));
}

TEST(Tools, ErrorsReachTheProgramAsToolError) {
  ExecResult r = run_py(
      "for f in (lambda: add('x'), lambda: math.fail(), lambda: add(), lambda: slow(2)):\n"
      "    try:\n        f()\n    except ToolError as e:\n        print(e)\n",
      sample_tools());
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data << r.error;
  EXPECT_EQ(r.stdout_data,
            "tool 'add': parameter 'a': expected an integer, got a string\n"
            "tool 'math.fail': it failed on purpose\n"
            "tool 'add': missing required parameter 'a'\n"
            "tool 'slow': timed out after 0.3 s\n");
  ASSERT_EQ(r.tool_calls.size(), 4u);
  EXPECT_EQ(r.tool_calls[3]["error"], "tool 'slow': timed out after 0.3 s");
}

TEST(Tools, SeveralThreadsCallAtOnce) {
  // Four threads each sleep 0.2 s in the tool: served at once, they take well under 0.8 s.
  ExecResult r = run_py(
      "import threading, time\nout = []\nt0 = time.time()\n"
      "ts = [threading.Thread(target=lambda i=i: out.append((i, slow(0.2), add(i, i)))) for i in range(4)]\n"
      "[t.start() for t in ts]\n[t.join() for t in ts]\n"
      "print(sorted(out))\nprint(time.time() - t0 < 0.7)\n",
      sample_tools());
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data << r.error;
  EXPECT_EQ(r.stdout_data,
            "[(0, 'slept', 0), (1, 'slept', 2), (2, 'slept', 4), (3, 'slept', 6)]\nTrue\n");
  EXPECT_EQ(r.tool_calls.size(), 8u);
}

TEST(Tools, ExceptionLineIsTheProgramsOwn) {
  ExecResult r = run_py("x = 1\nraise ValueError('boom')\n", sample_tools());
  ASSERT_TRUE(r.exception);
  EXPECT_EQ(r.exception->line, 2);
  // An uncaught ToolError is reported like a built-in exception, at the line that called.
  ExecResult t = run_py("x = 1\nmath.fail()\n", sample_tools());
  ASSERT_TRUE(t.exception);
  EXPECT_EQ(t.exception->type, "ToolError");
  EXPECT_EQ(t.exception->message, "tool 'math.fail': it failed on purpose");
  EXPECT_EQ(t.exception->line, 2);
}

TEST(Tools, FutureImportsStayFirst) {
  ExecResult r = run_py("\"\"\"Doc.\"\"\"\nfrom __future__ import annotations\ndef f(x: Undefined) -> int:\n"
                        "    return add(x)\nprint(f(41))\nraise KeyError('k')\n",
                        sample_tools());
  EXPECT_EQ(r.stdout_data, "42\n") << r.stderr_data;
  ASSERT_TRUE(r.exception);
  EXPECT_EQ(r.exception->line, 6);
}

TEST(Tools, ChannelAndServiceTogether) {
  // The evaluation channel keeps fd 3; the tools take the next descriptor.
  ExecRequest req;
  req.code = "import os\nprint(os.read(3, 100).decode(), add(1, 2), os.environ['WAND_SERVICE_FD'])\nos.write(3, b'report')\n";
  req.channel = "from host";
  ExecResult r = tools::run(shared_sandbox(), req, sample_tools());
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data << r.error;
  EXPECT_EQ(r.stdout_data, "from host 3 4\n");
  EXPECT_EQ(r.channel_data, "report");
}

TEST(Tools, ResultInToJson) {
  ExecResult r = run_py("add(1)\n", sample_tools());
  Json j = sandbox::to_json(r);
  ASSERT_TRUE(j.contains("tool_calls"));
  EXPECT_EQ(j["tool_calls"][0]["name"], "add");
  ExecResult plain = shared_sandbox().run({.code = "print(1)"});
  EXPECT_FALSE(sandbox::to_json(plain).contains("tool_calls"));
}

TEST(Tools, SessionsKeepToolsAcrossBlocks) {
  auto s = tools::open_session(shared_sandbox(), sample_tools());
  ASSERT_TRUE(s) << s.error().message;
  ExecResult a = (*s)->run("x = add(20, 1)\n");
  ASSERT_EQ(a.status, Status::ok) << a.stderr_data;
  EXPECT_EQ(a.tool_calls.size(), 1u);
  ExecResult b = (*s)->run("print(add(x, x))\n");
  ASSERT_EQ(b.status, Status::ok) << b.stderr_data;
  EXPECT_EQ(b.stdout_data, "42\n");
  ASSERT_EQ(b.tool_calls.size(), 1u);
  EXPECT_EQ(b.tool_calls[0]["arguments"], (Json{{"a", 21}, {"b", 21}}));
}

TEST(Tools, OnlyPython) {
  ExecRequest req{.language = "bash", .code = "echo hi"};
  ExecResult r = tools::run(shared_sandbox(), req, sample_tools());
  EXPECT_EQ(r.status, Status::sandbox_error);
  EXPECT_EQ(r.error, "tools are offered to Python programs; this one is bash");
}

TEST(ToolsSchema, ErrorsNameTheParameter) {
  Json s = object_schema({{"q", {{"type", "string"}, {"maxLength", 3}}},
                          {"k", {{"type", "integer"}, {"minimum", 1}, {"maximum", 50}}},
                          {"mode", {{"enum", {"a", "b"}}}},
                          {"rows", {{"type", "array"}, {"items", object_schema({{"id", {{"type", "integer"}}}}, {"id"})}}}},
                         {"q"});
  s["additionalProperties"] = false;
  auto msg = [&](const Json& args) {
    auto r = tools::validate_args(s, args);
    return r ? std::string("ok") : r.error().message;
  };
  EXPECT_EQ(msg({{"q", "abc"}, {"k", 5}}), "ok");
  EXPECT_EQ(msg({{"k", 5}}), "missing required parameter 'q'");
  EXPECT_EQ(msg({{"q", "abcd"}}), "parameter 'q': must be at most 3 characters long, got 4");
  EXPECT_EQ(msg({{"q", "a"}, {"k", 0}}), "parameter 'k': must be at least 1, got 0");
  EXPECT_EQ(msg({{"q", "a"}, {"k", 2.5}}), "parameter 'k': expected an integer, got a number");
  EXPECT_EQ(msg({{"q", "a"}, {"mode", "c"}}), "parameter 'mode': must be one of \"a\", \"b\", got \"c\"");
  EXPECT_EQ(msg({{"q", "a"}, {"rows", {{{"id", 1}}, {{"id", "x"}}}}}),
            "parameter 'rows[1].id': expected an integer, got a string");
  EXPECT_EQ(msg({{"q", "a"}, {"x", 1}}), "unknown parameter 'x' (parameters: k, mode, q, rows)");
  EXPECT_EQ(msg(Json::array()), "arguments must be a JSON object, got an array");
}

// Arguments the host cannot take are a ToolError at once, and the channel stays open: a lone
// surrogate (what os.fsdecode gives for undecodable bytes) and a call over the frame cap.
TEST(Tools, ArgumentsTheChannelCannotCarryAreAToolErrorAndTheChannelStaysOpen) {
  tools::Budget small;
  small.max_frame_bytes = 4096;
  ExecResult r = run_py(
      "for f in (lambda: add('a\\udcff'), lambda: add('x' * 5000)):\n"
      "    try:\n        f()\n    except ToolError as e:\n        print(e)\n"
      "print(add(2, 3))\n",
      sample_tools(), small);
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data << r.error;
  EXPECT_EQ(r.stdout_data,
            "tool 'add': the arguments are not valid Unicode: surrogates not allowed ('\\udcff')\n"
            "tool 'add': the call is 5043 bytes, over the tool channel's cap of 4096 bytes\n"
            "5\n");
  EXPECT_LT(r.wall_s, 5.0);
}

TEST(ToolsRegistry, NamesSelectionAndSignatures) {
  tools::Registry reg = sample_tools();
  EXPECT_EQ(reg.add({.name = "add", .handler = [](const Json&, const tools::CallContext&) -> Result<Json> { return Json(); }})
                .error()
                .message,
            "tool 'add' is registered twice");
  EXPECT_EQ(reg.add({.name = "1x", .handler = [](const Json&, const tools::CallContext&) -> Result<Json> { return Json(); }})
                .error()
                .message,
            "tool name '1x' is not a Python identifier or dotted identifiers");
  // Names that would hide a Python keyword or built-in (a declared command tool may not take one).
  for (const char* hiding : {"print", "open", "pass", "len.x", "ToolError"}) EXPECT_TRUE(tools::hides_python_name(hiding)) << hiding;
  for (const char* fine : {"text.print", "printer", "lookup"}) EXPECT_FALSE(tools::hides_python_name(fine)) << fine;
  auto sub = reg.select({"math", "add"});
  ASSERT_TRUE(sub);
  EXPECT_EQ(sub->size(), 2u);
  EXPECT_EQ(reg.select({"nope"}).error().message, "unknown tool 'nope' (known: add, math.fail, slow)");
  EXPECT_EQ(tools::python_signature(*reg.find("add")),
            "def add(a: int, b: int = 1) -> Any:\n"
            "    \"\"\"Adds two integers.\n"
            "\n    Args:\n"
            "        a (int)\n"
            "        b (int): default 1\n"
            "    \"\"\"\n");
}

// ------------------------------------------------------------------ built-ins and command tools

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::path(::testing::TempDir()) / (name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

TEST(Builtins, SqlReturnsRowsAsDicts) {
  fs::path dir = temp_dir("wand_tools_sql");
  std::string db = (dir / "shop.db").string();
  sqlite3* h;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  sqlite3_exec(h, "CREATE TABLE items(id INTEGER, name TEXT, price REAL); "
                  "INSERT INTO items VALUES (1, 'pen', 1.5), (2, 'book', 12.0), (3, 'bag', NULL);",
               nullptr, nullptr, nullptr);
  sqlite3_close(h);
  auto reg = tools::builtin_tools({"sql"}, {.db = db});
  ASSERT_TRUE(reg) << reg.error().message;
  ExecResult r = run_py(
      "rows = sql('SELECT name, price FROM items WHERE id >= :lo ORDER BY id', {'lo': 2})\n"
      "print(rows)\nprint(sum(r['price'] or 0 for r in sql('SELECT price FROM items')))\n",
      *reg);
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "[{'name': 'book', 'price': 12.0}, {'name': 'bag', 'price': None}]\n13.5\n");
  EXPECT_EQ(tools::builtin_tools({"sql"}, {}).error().message, "tool 'sql' needs a database: give --db FILE");
  std::ofstream(dir / "not.db") << "plain text, not a database";
  EXPECT_EQ(tools::builtin_tools({"sql"}, {.db = (dir / "not.db").string()}).error().message,
            "--db " + (dir / "not.db").string() + ": file is not a database");
  fs::remove_all(dir);
}

TEST(Builtins, SearchRanksAndRefreshesOnChange) {
  fs::path dir = temp_dir("wand_tools_docs");
  std::ofstream(dir / "a.md") << "The refund policy: refunds within 30 days of purchase.";
  std::ofstream(dir / "b.md") << "Shipping takes five days.";
  fs::create_directories(dir / "sub");
  std::ofstream(dir / "sub" / "c.txt") << "Gift cards have no refund.";
  auto reg = tools::builtin_tools({"search"}, {.docs = dir.string()});
  ASSERT_TRUE(reg) << reg.error().message;
  const tools::Tool* search = reg->find("search");
  auto hits = tools::call(*search, {{"query", "refund"}, {"k", 5}});
  ASSERT_TRUE(hits) << hits.error().message;
  ASSERT_EQ(hits->size(), 2u);
  EXPECT_EQ((*hits)[0]["path"], "a.md");  // two mentions beat one
  EXPECT_EQ((*hits)[1]["path"], "sub/c.txt");
  EXPECT_NE((*hits)[0]["snippet"].get<std::string>().find("[refund]"), std::string::npos);
  // Changed, added and removed files are seen by the next call.
  fs::remove(dir / "a.md");
  std::ofstream(dir / "b.md") << "Shipping takes five days; no refund on shipping.";
  auto again = tools::call(*search, {{"query", "refund"}});
  ASSERT_TRUE(again);
  ASSERT_EQ(again->size(), 2u);
  std::set<std::string> paths = {(*again)[0]["path"], (*again)[1]["path"]};
  EXPECT_EQ(paths, (std::set<std::string>{"b.md", "sub/c.txt"}));
  // Punctuation and FTS5 operators in the query are words, not syntax.
  auto odd = tools::call(*search, {{"query", "\"refund\" OR NEAR( * )"}});
  EXPECT_TRUE(odd) << odd.error().message;
  EXPECT_EQ(tools::call(*search, {{"query", "refund"}, {"k", 0}}).error().message,
            "tool 'search': parameter 'k': must be at least 1, got 0");
  fs::remove_all(dir);
}

TEST(Builtins, UnknownAndUnavailableNames) {
  EXPECT_EQ(tools::load_tools({"sql,nope"}, {.db = "/nonexistent.db"}).error().message.substr(0, 14), "--db /nonexist");
  EXPECT_EQ(tools::load_tools({"nope"}, {}).error().message,
            "unknown built-in tool 'nope' (built-ins: fs, http_get, llm, search, sql; files of command tools end in .json)");
  EXPECT_EQ(tools::load_tools({"fs.delete"}, {.workspace = "/tmp"}).error().message,
            "unknown built-in tool 'fs.delete' (fs offers fs.read, fs.list, fs.write)");
  auto one = tools::load_tools({"fs.read"}, {.workspace = "/tmp"});
  ASSERT_TRUE(one);
  EXPECT_EQ(one->size(), 1u);
  EXPECT_EQ(tools::load_tools({"llm"}, {}).error().message, "tool 'llm' needs a model: give --tools-model SPEC");
}

// A backend that answers from a script: what the llm tool sends, and its budget.
struct ScriptedBackend : llm::Backend {
  std::atomic<int> calls = 0;
  Result<std::vector<llm::Completion>> complete(const std::string& p, const llm::GenerateOptions& o) override {
    return chat({{"user", p}}, o);
  }
  Result<std::vector<llm::Completion>> chat(const std::vector<llm::Message>& m, const llm::GenerateOptions& o) override {
    ++calls;
    llm::Completion c;
    c.text = fmt::format("answer to '{}' in {} tokens", m.back().content, o.max_tokens);
    c.completion_tokens = o.max_tokens;
    return std::vector<llm::Completion>{c};
  }
  std::string id() const override { return "scripted"; }
};

TEST(Builtins, LlmIsCallableWithABudgetPerRun) {
  ScriptedBackend model;
  auto reg = tools::builtin_tools({"llm"}, {.llm = &model, .llm_max_calls = 3, .llm_max_tokens = 100});
  ASSERT_TRUE(reg) << reg.error().message;
  const std::string program =
      "for q in ('a', 'b', 'c', 'd'):\n"
      "    try:\n        print(llm(q, max_tokens=40))\n    except ToolError as e:\n        print(e)\n";
  const std::string expected =
      "answer to 'a' in 40 tokens\nanswer to 'b' in 40 tokens\nanswer to 'c' in 20 tokens\n"
      "tool 'llm': budget: this program may call llm at most 3 times\n";
  ExecResult r = run_py(program, *reg);
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, expected);
  // The budget is the run's: the next run has its own.
  ExecResult again = run_py(program, *reg);
  EXPECT_EQ(again.stdout_data, expected);
  EXPECT_EQ(model.calls, 6);
}

TEST(Builtins, LlmWithTheEmbeddedModel) {
  auto model = llm::open_backend(std::string("local:") + WAND_SOURCE_DIR + "/models/wand-pot.gguf");
  ASSERT_TRUE(model) << model.error().message;
  auto reg = tools::builtin_tools({"llm"}, {.llm = model->get()});
  ASSERT_TRUE(reg);
  ExecResult r = run_py("t = llm('Tom has 3 apples and buys 4 more. How many apples does he have?', max_tokens=24)\n"
                        "print(type(t).__name__, len(t) > 0)\n",
                        *reg);
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "str True\n");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_FALSE(r.tool_calls[0].contains("error")) << r.tool_calls[0].dump();
}

TEST(CommandTools, TemplatesTimeoutsExitCodesAndJson) {
  fs::path dir = temp_dir("wand_tools_cmd");
  std::ofstream(dir / "in.txt") << "one two three\n";
  std::ofstream(dir / "tools.json") << R"J({"tools": [
    {"name": "text.words", "description": "Counts words.", "command": ["wc", "-w", "--", "{path}"],
     "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}},
    {"name": "text.join", "command": ["printf", "%s|", "{items}", "tail-{suffix}"],
     "parameters": {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "string"}},
                                                     "suffix": {"type": "string"}}}},
    {"name": "nap", "command": ["sleep", "{s}"], "timeout": 0.3,
     "parameters": {"type": "object", "properties": {"s": {"type": "number"}}, "required": ["s"]}},
    {"name": "fails", "command": ["sh", "-c", "echo broken >&2; exit 3"]},
    {"name": "info", "command": ["python3", "-c", "import json, os; print(json.dumps({'cwd': os.getcwd()}))"],
     "output": "json"}]})J";
  auto reg = tools::load_command_tools((dir / "tools.json").string());
  ASSERT_TRUE(reg) << reg.error().message;
  ExecResult r = run_py(
      "print(text.words('in.txt').split()[0])\n"
      "print(text.join(['a', 'b'], suffix='x'), text.join(['c']))\n"
      "for f in (lambda: nap(5), lambda: fails()):\n"
      "    try:\n        f()\n    except ToolError as e:\n        print(e)\n"
      "print(info()['cwd'] == " + Json(dir.string()).dump() + ")\n",
      *reg);
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data,
            "3\na|b|tail-x| c|\n"
            "tool 'nap': timed out after 0.3 s\n"
            "tool 'fails': the command exited with status 3: broken\n"
            "True\n");
  fs::remove_all(dir);
}

TEST(CommandTools, FileErrorsNameTheToolAndField) {
  fs::path dir = temp_dir("wand_tools_cmdbad");
  auto load = [&](const std::string& text) {
    std::ofstream(dir / "t.json") << text;
    auto r = tools::load_command_tools((dir / "t.json").string());
    return r ? std::string("ok") : r.error().message.substr((dir / "t.json").string().size());
  };
  EXPECT_EQ(load(R"J({"tools": [{"name": "x", "command": "ls -l"}]})J"),
            ": tools[0] ('x'): field 'command' must be a non-empty array of strings (argv; no shell)");
  EXPECT_EQ(load(R"J({"tools": [{"name": "x", "command": ["ls"], "timeout": -1}]})J"),
            ": tools[0] ('x'): field 'timeout' must be a positive number of seconds up to 86400");
  EXPECT_EQ(load(R"J({"tools": [{"name": "x", "command": ["ls"], "shell": true}]})J"), ": tools[0] ('x'): unknown field 'shell'");
  EXPECT_EQ(load(R"J({"tools": [{"name": "x y", "command": ["ls"]}]})J"),
            ": tools[0] ('x y'): tool name 'x y' is not a Python identifier or dotted identifiers");
  EXPECT_EQ(load(R"J({"tools": [{"name": "print", "command": ["echo"]}]})J"),
            ": tools[0] ('print'): tool name 'print' would hide Python's 'print' in every program given it; name it otherwise");
  EXPECT_EQ(load(R"J([])J"), ": expected {\"tools\": [...]}");
  // a placeholder of no parameter once reached the command as written ("hi {typo}")
  EXPECT_EQ(load(R"J({"tools": [{"name": "x", "command": ["echo", "{a}", "{typo}"],
                                 "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}]})J"),
            ": tools[0] ('x'): field 'command': placeholder '{typo}' names no parameter (declared: a)");
  EXPECT_EQ(load(R"J({"tools": [{"name": "x", "command": ["echo", "--to={who}"]}]})J"),
            ": tools[0] ('x'): field 'command': placeholder '{who}' names no parameter (declared: none)");
  EXPECT_EQ(load(R"J({"tools": [{"name": "x", "command": ["awk", "{print $1}", "{ }"]}]})J"), "ok");  // not names: literal
  fs::remove_all(dir);
}

// ------------------------------------------------------------------ the CLI

struct CliRun {
  int rc;
  std::string out, err;
};

CliRun wand(const std::string& args, const std::string& input = "") {
  std::string tag = std::to_string(::getpid());
  std::string in_path = ::testing::TempDir() + "wand_tools_in" + tag, err_path = ::testing::TempDir() + "wand_tools_err" + tag;
  std::ofstream(in_path) << input;
  FILE* p = ::popen((std::string(WAND_BINARY) + " " + args + " < " + in_path + " 2> " + err_path).c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int st = ::pclose(p);
  return {WEXITSTATUS(st), out, slurp(err_path)};
}

TEST(ToolsCli, ExecWithToolsListAndCall) {
  fs::path dir = temp_dir("wand_tools_cli");
  fs::create_directories(dir / "ws");
  std::ofstream(dir / "ws" / "n.txt") << "forty-two";
  std::string ws = " --workspace " + (dir / "ws").string();
  CliRun r = wand("exec --json --tools fs" + ws + " -", "print(fs.read('n.txt'))");
  ASSERT_EQ(r.rc, 0) << r.err;
  Json j = Json::parse(r.out);
  EXPECT_EQ(j["stdout"], "forty-two\n");
  EXPECT_EQ(j["tool_calls"][0]["name"], "fs.read");
  EXPECT_EQ(j["tool_calls"][0]["arguments"], (Json{{"path", "n.txt"}}));

  CliRun bad = wand("exec --tools nope -", "print(1)");
  EXPECT_EQ(bad.rc, 2);
  EXPECT_EQ(bad.err,
            "wand exec: --tools: unknown built-in tool 'nope' (built-ins: fs, http_get, llm, search, sql; files of "
            "command tools end in .json)\n");
  CliRun bash = wand("exec --lang bash --tools fs" + ws + " -", "echo hi");
  EXPECT_EQ(bash.rc, 2);
  EXPECT_EQ(bash.err, "wand exec: --tools: tools are offered to Python programs; this one is bash\n");
  // an option of a built-in that no --tools grants is refused, not left unread
  CliRun unread = wand("exec --tools fs" + ws + " --tools-model bogus -", "print(1)");
  EXPECT_EQ(unread.rc, 2);
  EXPECT_EQ(unread.err, "wand exec: --tools-model: an option of llm, which no --tools grants\n");
  CliRun no_tools = wand("exec" + ws + " -", "print(1)");
  EXPECT_EQ(no_tools.rc, 2);
  EXPECT_EQ(no_tools.err, "wand exec: --workspace: an option of fs.read or fs.list or fs.write, which no --tools grants\n");

  CliRun call = wand("tools call fs.list '{}'" + ws);
  ASSERT_EQ(call.rc, 0) << call.err;
  EXPECT_EQ(Json::parse(call.out)[0]["name"], "n.txt");
  CliRun badarg = wand("tools call fs.read '{\"path\": 3}'" + ws);
  EXPECT_EQ(badarg.rc, 2);
  EXPECT_EQ(badarg.err, "wand tools call: tool 'fs.read': parameter 'path': expected a string, got an integer\n");
  CliRun refused = wand("tools call fs.read '{\"path\": \"../x\"}'" + ws);
  EXPECT_EQ(refused.rc, 1);
  EXPECT_EQ(refused.err, "wand tools call: tool 'fs.read': path '../x' leaves the workspace ('..' is refused)\n");
  CliRun notjson = wand("tools call fs.read '{'" + ws);
  EXPECT_EQ(notjson.rc, 2);

  CliRun list = wand("tools list --python --tools fs.read" + ws);
  ASSERT_EQ(list.rc, 0) << list.err;
  EXPECT_EQ(list.out.rfind("def fs.read(path: str) -> str:\n", 0), 0u) << list.out;
  CliRun listj = wand("tools list --json");
  ASSERT_EQ(listj.rc, 0);
  std::map<std::string, Json> listed;
  for (const Json& t : Json::parse(listj.out)) listed[t["name"]] = t;
  ASSERT_TRUE(listed.contains("fs") && listed.contains("llm")) << listj.out;
  // fs is unavailable without --workspace, and says so; llm has a default model (it once said not)
  EXPECT_EQ(listed["fs"]["unavailable"], "tools 'fs.*' need a workspace folder: give --workspace DIR");
  EXPECT_FALSE(listed["llm"].contains("unavailable")) << listed["llm"];
  fs::remove_all(dir);
}

TEST(ToolsCli, HttpGetThroughTheBinarysModule) {
  // The binary loads http_get's fetch (libcurl) from wand_tools_http.so on first use.
  httplib::Server server;
  server.Get("/data", [](const httplib::Request&, httplib::Response& res) { res.set_content("{\"n\": 7}", "application/json"); });
  int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::string url = fmt::format("http://127.0.0.1:{}/data", port);
  CliRun r = wand("exec --tools http_get --allow-host 127.0.0.1 -",
                  "import json\nprint(json.loads(http_get('" + url + "')['body'])['n'] * 6)");
  EXPECT_EQ(r.rc, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("--- stdout ---\n42\n"), std::string::npos) << r.out;
  CliRun off = wand("tools call http_get '{\"url\": \"" + url + "\"}' --allow-host example.com");
  EXPECT_EQ(off.rc, 1);
  EXPECT_EQ(off.err, "wand tools call: tool 'http_get': host '127.0.0.1' is not allowed (allowed: example.com)\n");
  server.stop();
  t.join();
}

TEST(ToolsCli, LlmOpensTheShippedModelWhenGranted) {
  CliRun r = wand("exec --json --tools llm --tools-model local:" + std::string(WAND_SOURCE_DIR) + "/models/wand-pot.gguf -",
                  "print(type(llm('Sam has 2 pens and buys 3 more. How many pens?', max_tokens=8)).__name__)");
  ASSERT_EQ(r.rc, 0) << r.err << r.out;
  Json j = Json::parse(r.out);
  EXPECT_EQ(j["stdout"], "str\n");
  EXPECT_EQ(j["tool_calls"][0]["name"], "llm");
  CliRun bad = wand("exec --tools llm --tools-model local:/nonexistent.gguf -", "print(1)");
  EXPECT_EQ(bad.rc, 2);
  EXPECT_EQ(bad.err.rfind("wand exec: --tools: --tools-model: ", 0), 0u) << bad.err;
}

// `wand solve --method flow` against a chat server on 127.0.0.1: the top-level request (the flow
// prompt's system message) gets a program that asks two sub-questions; each sub-question (one
// user turn) gets a number. --show-program shows the calls; the run store records them.
TEST(ToolsCli, SolveFlowShowsAndRecordsTheModelCalls) {
  httplib::Server server;
  std::atomic<int> sub_calls{0};
  server.Post("/v1/chat/completions", [&](const httplib::Request& req, httplib::Response& res) {
    Json body = Json::parse(req.body);
    bool top = body["messages"][0]["role"] == "system";
    std::string text = top ? "```python\nwidth = float(llm('How wide is it?'))\n"
                             "answer = width * float(llm('How long is it?'))\n```"
                           : (++sub_calls, body["messages"][0]["content"] == "How wide is it?" ? "6" : "7");
    Json reply = {{"id", "x"}, {"object", "chat.completion"}, {"model", "m"},
                  {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", text}}}, {"finish_reason", "stop"}}}},
                  {"usage", {{"prompt_tokens", 10}, {"completion_tokens", 3}, {"total_tokens", 13}}}};
    res.set_content(reply.dump(), "application/json");
  });
  server.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"object": "list", "data": [{"id": "m", "object": "model"}]})", "application/json");
  });
  int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  fs::path dir = temp_dir("wand_solve_flow");
  std::string store = (dir / "runs.db").string();
  CliRun r = wand(fmt::format("solve --method flow -m openai:http://127.0.0.1:{}/v1/m --prompt-style chat --flow-calls 4 "
                              "--show-program --store {} \"What is the area of the rug?\"",
                              port, store));
  EXPECT_EQ(r.rc, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("--- llm call 1 ---\nHow wide is it?\n=> 6\n--- llm call 2 ---\nHow long is it?\n=> 7\n"),
            std::string::npos)
      << r.out;
  EXPECT_TRUE(r.out.ends_with("--- answer ---\n42\n")) << r.out;
  EXPECT_EQ(sub_calls, 2);
  // --json and the run store carry the calls with the sample.
  CliRun js = wand(fmt::format("solve --method flow -m openai:http://127.0.0.1:{}/v1/m --prompt-style chat --json --store {} "
                               "\"What is the area of the rug?\"",
                               port, store));
  ASSERT_EQ(js.rc, 0) << js.err << js.out;
  Json j = Json::parse(js.out);
  EXPECT_EQ(j["samples"][0]["tool_calls"][1]["completion"], "7");
  CliRun shown = wand("runs show --json --store " + store + " " + j["run_id"].get<std::string>());
  ASSERT_EQ(shown.rc, 0) << shown.err;
  EXPECT_NE(shown.out.find("How long is it?"), std::string::npos) << shown.out.substr(0, 3000);
  server.stop();
  t.join();
  fs::remove_all(dir);
}

TEST(ToolsCli, JsonlLinesNameTheirTools) {
  fs::path dir = temp_dir("wand_tools_jsonl");
  std::ofstream(dir / "n.txt") << "x";
  CliRun r = wand("exec --jsonl --cells 2 --tools fs --workspace " + dir.string(),
                  "{\"id\": 1, \"code\": \"print(fs.read('n.txt'))\", \"tools\": [\"fs.read\"]}\n"
                  "{\"id\": 2, \"code\": \"print(fs.list())\", \"tools\": [\"fs.read\"]}\n"
                  "{\"id\": 3, \"code\": \"print(1)\", \"tools\": [\"sql\"]}\n"
                  "{\"id\": 4, \"code\": \"print(len(fs.list()))\"}\n");
  EXPECT_EQ(r.rc, 2);  // line 3 names a tool not loaded
  std::vector<Json> out;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);) out.push_back(Json::parse(l));
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0]["stdout"], "x\n");
  EXPECT_EQ(out[1]["status"], "runtime_error");  // fs.list was not granted to line 2
  EXPECT_EQ(out[1]["exception"]["type"], "AttributeError");
  EXPECT_EQ(out[1]["exception"]["message"], "tool 'fs.list' is not granted to this run");
  EXPECT_EQ(out[2]["status"], "invalid_request");
  EXPECT_EQ(out[2]["error"], "stdin line 3: field 'tools': unknown tool 'sql' (known: fs.list, fs.read, fs.write)");
  EXPECT_EQ(out[3]["stdout"], "1\n");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace wand::test
