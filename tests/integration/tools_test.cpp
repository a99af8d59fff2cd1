// Tools through the real sandbox: the bridge, the schema check, the Python rendering.
#include <atomic>
#include <thread>

#include "support.h"
#include "tools/tools.h"

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
            "tool 'slow' timed out after 0.3 s\n");
  ASSERT_EQ(r.tool_calls.size(), 4u);
  EXPECT_EQ(r.tool_calls[3]["error"], "tool 'slow' timed out after 0.3 s");
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

}  // namespace
}  // namespace wand::test
