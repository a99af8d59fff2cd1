// Hostile programs against the tool door (src/tools): the bridge's framing and budgets, tools
// not granted, and the built-ins' confinement (fs paths, read-only SQL, http hosts, command
// arguments). Each attack gets its precise error.
#include <httplib.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <fmt/core.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "support.h"
#include "tools/builtins.h"

namespace wand::test {
namespace {
namespace fs = std::filesystem;
using sandbox::ExecRequest;
using sandbox::ExecResult;
using sandbox::Status;

tools::Registry adder() {
  tools::Registry reg;
  EXPECT_TRUE(reg.add({.name = "add",
                       .parameters = {{"type", "object"},
                                      {"properties", {{"a", {{"type", "integer"}}}, {"b", {{"type", "integer"}}}}},
                                      {"required", {"a", "b"}}},
                       .handler = [](const Json& a, const tools::CallContext&) -> Result<Json> {
                         return Json(a["a"].get<long>() + a["b"].get<long>());
                       },
                       .inline_call = true}));
  return reg;
}

ExecResult run(const std::string& code, const tools::Registry& reg, tools::Budget budget = {}) {
  ExecRequest req;
  req.code = code;
  req.limits.timeout_s = 10;
  ExecResult r = tools::run(shared_sandbox(), req, reg, budget);
  EXPECT_NE(r.status, Status::sandbox_error) << r.error;
  return r;
}

// A program that speaks the wire itself: one raw frame out, the answer printed.
const char* kRaw =
    "import os, socket, struct, json\n"
    "s = socket.socket(fileno=int(os.environ['WAND_SERVICE_FD']))\n"
    "def send(body, n=None):\n"
    "    s.sendall(struct.pack('<I', len(body) if n is None else n) + body)\n"
    "def answer():\n"
    "    head = s.recv(4)\n"
    "    if len(head) < 4: return None\n"
    "    n = struct.unpack('<I', head)[0]\n"
    "    b = b''\n"
    "    while len(b) < n: b += s.recv(n - len(b))\n"
    "    return json.loads(b)\n";

TEST(ToolAttacks, GarbageFramesGetAnErrorAndTheChannelStaysUsable) {
  ExecResult r = run(std::string(kRaw) +
                         "send(b'\\xff\\xfenot json')\nprint(answer())\n"
                         "send(b'[1, 2]')\nprint(answer())\n"
                         "send(json.dumps({'id': 7, 'tool': 'add', 'args': {'a': 1, 'b': 2}}).encode())\nprint(answer())\n",
                     adder());
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  std::istringstream lines(r.stdout_data);
  std::string first, second, third;
  std::getline(lines, first), std::getline(lines, second), std::getline(lines, third);
  EXPECT_EQ(first,
            "{'error': \"tool request frame: invalid JSON: parse error at line 1, column 1: syntax error while parsing "
            "value - invalid literal; last read: '\\\\xff'\", 'id': None}");
  EXPECT_EQ(second,
            "{'error': 'tool request frame: expected {\"id\": integer, \"tool\": string, \"args\": object}', 'id': None}");
  EXPECT_EQ(third, "{'id': 7, 'result': 3}");
  ASSERT_EQ(r.tool_calls.size(), 3u);
  EXPECT_EQ(r.tool_calls[1]["error"], "tool request frame: expected {\"id\": integer, \"tool\": string, \"args\": object}");
}

TEST(ToolAttacks, OversizeFrameClosesTheChannel) {
  ExecResult r = run(std::string(kRaw) +
                         "send(b'x' * 10, n=1 << 31)\nprint(answer())\nprint(answer())\n"
                         "try:\n    add(1, 2)\nexcept ToolError as e:\n    print('ToolError:', e)\n",
                     adder());
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data,
            "{'error': 'the tool channel is closed: a request frame of 2147483648 bytes is over the cap of "
            "8388608 bytes', 'fatal': True, 'id': None}\n"
            "None\n"
            "ToolError: the tool channel is closed: [Errno 32] Broken pipe\n");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0]["error"], "a request frame of 2147483648 bytes is over the cap of 8388608 bytes");
}

TEST(ToolAttacks, FloodOfCallsStopsAtTheBudget) {
  ExecResult r = run(
      "ok = errors = 0\nmsg = ''\n"
      "for i in range(2000):\n"
      "    try:\n        add(i, 1); ok += 1\n"
      "    except ToolError as e:\n        errors += 1; msg = str(e)\n"
      "print(ok, errors, msg)\n",
      adder(), {.max_calls = 100});
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "100 1900 budget: this program may make at most 100 tool calls\n");
  // The log keeps the calls and the first refusal, not the whole flood.
  ASSERT_EQ(r.tool_calls.size(), 101u);
  EXPECT_EQ(r.tool_calls[100]["error"], "budget: this program may make at most 100 tool calls");
}

TEST(ToolAttacks, WritingWithoutReadingBlocksOnlyTheProgram) {
  // The host stops reading requests while 4 MiB of answers wait unread: the program's own
  // writes block, and the host's memory stays bounded.
  ExecResult r = run(std::string(kRaw) +
                         "s.settimeout(2)\nframe = json.dumps({'id': 1, 'tool': 'nope', 'args': {}}).encode()\n"
                         "sent = 0\ntry:\n    while sent < 10**7:\n        send(frame); sent += 1\n"
                         "except (socket.timeout, TimeoutError):\n    print('blocked', sent > 1000)\n",
                     adder(), {.max_calls = 100});
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "blocked True\n");
}

TEST(ToolAttacks, CallsInFlightAreCapped) {
  tools::Registry reg;
  ASSERT_TRUE(reg.add({.name = "wait",
                       .timeout_s = 5,
                       .handler = [](const Json&, const tools::CallContext&) -> Result<Json> {
                         std::this_thread::sleep_for(std::chrono::milliseconds(1500));
                         return Json(true);
                       }}));
  ExecResult r = run(
      "import threading\nout = []\n"
      "def go():\n    try:\n        out.append(wait())\n    except ToolError as e:\n        out.append(str(e))\n"
      "ts = [threading.Thread(target=go) for _ in range(8)]\n[t.start() for t in ts]\n[t.join() for t in ts]\n"
      "print(sorted(map(str, out)))\n",
      reg, {.max_in_flight = 4});
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  const std::string refused = "'budget: at most 4 tool calls may be in flight at once'";
  EXPECT_EQ(r.stdout_data, "['True', 'True', 'True', 'True', " + refused + ", " + refused + ", " + refused + ", " +
                               refused + "]\n");
}

TEST(ToolAttacks, ResultBytesBudget) {
  ExecResult r = run("for i in range(3):\n    try:\n        print(add(1, 2))\n    except ToolError as e:\n        print(e)\n",
                     adder(), {.max_result_bytes = 50});
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "3\n3\nbudget: the results of this program's tool calls would exceed 50 bytes\n");
}

TEST(ToolAttacks, UngrantedToolsAreRefused) {
  ExecResult r = run(
      "import wand_tools\n"
      "for name in ('secret', 'os.system', '__import__'):\n"
      "    try:\n        wand_tools.call(name, {})\n    except ToolError as e:\n        print(e)\n",
      adder());
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data,
            "tool 'secret' is not granted to this run (granted: add)\n"
            "tool 'os.system' is not granted to this run (granted: add)\n"
            "tool '__import__' is not granted to this run (granted: add)\n");
}

// ------------------------------------------------------------------ fs

class FsAttacks : public ::testing::Test {
 protected:
  void SetUp() override {
    root = fs::path(::testing::TempDir()) / ("wand_fs_" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root / "ws" / "sub");
    std::ofstream(root / "ws" / "notes.txt") << "hello";
    std::ofstream(root / "secret.txt") << "outside";
    fs::create_symlink(root / "secret.txt", root / "ws" / "evil");
    fs::create_directory_symlink(root, root / "ws" / "up");
  }
  void TearDown() override { fs::remove_all(root); }
  tools::Registry grant(bool writable) {
    auto reg = tools::builtin_tools({"fs"}, {.writable = writable, .workspace = (root / "ws").string()});
    EXPECT_TRUE(reg) << reg.error().message;
    return std::move(reg.value());
  }
  fs::path root;
};

TEST_F(FsAttacks, TraversalAbsolutePathsAndSymlinksAreRefused) {
  ExecResult r = run(
      "for p in ('../secret.txt', 'sub/../../secret.txt', '/etc/passwd', 'evil', 'up/secret.txt', 'nope'):\n"
      "    try:\n        print(fs.read(p))\n    except ToolError as e:\n        print(e)\n"
      "print(fs.read('notes.txt'), [e['name'] for e in fs.list()])\n",
      grant(false));
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data,
            "tool 'fs.read': path '../secret.txt' leaves the workspace ('..' is refused)\n"
            "tool 'fs.read': path 'sub/../../secret.txt' leaves the workspace ('..' is refused)\n"
            "tool 'fs.read': path '/etc/passwd' is absolute; give a path relative to the workspace\n"
            "tool 'fs.read': path 'evil' goes through a symlink; symlinks are refused in the workspace\n"
            "tool 'fs.read': path 'up/secret.txt' goes through a symlink; symlinks are refused in the workspace\n"
            "tool 'fs.read': no such file or folder 'nope' in the workspace\n"
            "hello ['evil', 'notes.txt', 'sub', 'up']\n");
}

TEST_F(FsAttacks, WritesStayInsideAndNeedWritable) {
  ExecResult ro = run("try:\n    fs.write('x.txt', 'data')\nexcept ToolError as e:\n    print(e)\n", grant(false));
  EXPECT_EQ(ro.stdout_data, "tool 'fs.write': the workspace is read-only (start wand with --writable to allow fs.write)\n");
  ExecResult rw = run(
      "for p in ('evil', 'up/secret.txt', '../x.txt'):\n"
      "    try:\n        fs.write(p, 'pwned')\n    except ToolError as e:\n        print(e)\n"
      "print(fs.write('sub/new.txt', 'data'))\n",
      grant(true));
  ASSERT_EQ(rw.status, Status::ok) << rw.stderr_data;
  EXPECT_EQ(rw.stdout_data,
            "tool 'fs.write': path 'evil' goes through a symlink; symlinks are refused in the workspace\n"
            "tool 'fs.write': path 'up/secret.txt' goes through a symlink; symlinks are refused in the workspace\n"
            "tool 'fs.write': path '../x.txt' leaves the workspace ('..' is refused)\n"
            "4\n");
  EXPECT_EQ(slurp((root / "secret.txt").string()), "outside");
  EXPECT_EQ(slurp((root / "ws" / "sub" / "new.txt").string()), "data");
}

// A FIFO in the workspace would block a write until the tool's timeout (and the run's output
// with it): refused at once, as fs.read refuses it. Writing over a file replaces its contents.
TEST_F(FsAttacks, WritingToAFifoIsRefusedAtOnce) {
  ASSERT_EQ(::mkfifo((root / "ws" / "fifo").c_str(), 0644), 0);
  std::ofstream(root / "ws" / "long.txt") << "a much longer old text";
  ExecResult r = run(
      "try:\n    fs.write('fifo', 'x')\nexcept ToolError as e:\n    print(e)\n"
      "print(fs.write('long.txt', 'new'), fs.read('long.txt'))\n",
      grant(true));
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "tool 'fs.write': path 'fifo' is not a regular file\n3 new\n");
  EXPECT_LT(r.wall_s, 5.0);
}

// ------------------------------------------------------------------ sql

class SqlAttacks : public ::testing::Test {
 protected:
  void SetUp() override {
    db = ::testing::TempDir() + "wand_sql_" + std::to_string(::getpid()) + ".db";
    std::remove(db.c_str());
    sqlite3* h;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    sqlite3_exec(h, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO t(name) VALUES ('a'), ('b');",
                 nullptr, nullptr, nullptr);
    sqlite3_close(h);
  }
  void TearDown() override { std::remove(db.c_str()); }
  std::string db;
};

TEST_F(SqlAttacks, ReadOnlyRefusesWritesAttachAndExtensions) {
  auto reg = tools::builtin_tools({"sql"}, {.db = db});
  ASSERT_TRUE(reg) << reg.error().message;
  ExecResult r = run(
      "for q in ('INSERT INTO t(name) VALUES (\\'x\\')', 'DROP TABLE t', 'CREATE TABLE u(x)',\n"
      "          \"ATTACH DATABASE '/tmp/x.db' AS x\", \"SELECT load_extension('/tmp/x.so')\",\n"
      "          'PRAGMA writable_schema = 1', 'SELECT 1; DELETE FROM t'):\n"
      "    try:\n        print(sql(q))\n    except ToolError as e:\n        print(e)\n"
      "print(sql('SELECT name FROM t WHERE id = ?', [2]))\n",
      *reg);
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  const std::string ro =
      "tool 'sql': the database is read-only: only queries that read are allowed (--writable allows writes)\n";
  EXPECT_EQ(r.stdout_data,
            ro + ro + ro +
                "tool 'sql': ATTACH and DETACH are refused: a query may use only the database wand was given\n"
                "tool 'sql': load_extension is refused\n"
                "tool 'sql': PRAGMA writable_schema = ... is refused: the database is read-only (--writable allows writes)\n"
                "tool 'sql': parameter 'query': one statement per call (the text goes on after the first ';')\n"
                "[{'name': 'b'}]\n");
}

// fts3_tokenizer() leaks a host pointer (one argument) and makes FTS call through any address
// (two): refused read-only and writable, with an FTS table in the database or one made for it.
// A query cannot make the host build a huge string either.
TEST_F(SqlAttacks, Fts3TokenizerAndHugeStringsAreRefused) {
  sqlite3* h;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "CREATE VIRTUAL TABLE docs USING fts4(body); INSERT INTO docs VALUES ('hello');", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(h);
  for (bool writable : {false, true}) {
    auto reg = tools::builtin_tools({"sql"}, {.db = db, .writable = writable});
    ASSERT_TRUE(reg) << reg.error().message;
    ExecResult r = run(
        "for q in (\"SELECT fts3_tokenizer('simple')\", \"SELECT fts3_tokenizer('simple', x'4141414141414141')\",\n"
        "          \"SELECT length(randomblob(200000000))\"):\n"
        "    try:\n        print(sql(q))\n    except ToolError as e:\n        print(e)\n"
        "print(sql('SELECT count(*) AS n FROM t'))\n",
        *reg);
    ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
    EXPECT_EQ(r.stdout_data,
              "tool 'sql': fts3_tokenizer is refused\n"
              "tool 'sql': fts3_tokenizer is refused\n"
              "tool 'sql': SQL error: string or blob too big\n"
              "[{'n': 2}]\n")
        << (writable ? "writable" : "read-only");
  }
}

TEST_F(SqlAttacks, WritableStillRefusesAttachAndRunawayQueriesStop) {
  auto reg = tools::builtin_tools({"sql"}, {.db = db, .writable = true, .sql_max_rows = 10, .sql_timeout_s = 0.3});
  ASSERT_TRUE(reg) << reg.error().message;
  ExecResult r = run(
      "print(sql('INSERT INTO t(name) VALUES (?)', ['c']))\n"
      "for q in (\"ATTACH DATABASE '/tmp/x.db' AS x\", 'SELECT * FROM t, t AS u, t AS v',\n"
      "          'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c'):\n"
      "    try:\n        print(sql(q))\n    except ToolError as e:\n        print(e)\n",
      *reg);
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data,
            "{'changes': 1}\n"
            "tool 'sql': ATTACH and DETACH are refused: a query may use only the database wand was given\n"
            "tool 'sql': the query returns more than 10 rows (the row cap); narrow it or add LIMIT\n"
            "tool 'sql': the query ran past its time limit of 0.3 s\n");
}

// ------------------------------------------------------------------ http_get

class HttpAttacks : public ::testing::Test {
 protected:
  void SetUp() override {
    server.Get("/hello", [](const httplib::Request&, httplib::Response& res) { res.set_content("hi there", "text/plain"); });
    server.Get("/here", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/hello"); });
    server.Get("/away", [this](const httplib::Request&, httplib::Response& res) {
      res.set_redirect(fmt::format("http://localhost:{}/hello", port));
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
    while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void TearDown() override {
    server.stop();
    thread.join();
  }
  std::string url(const std::string& host, const std::string& path) { return fmt::format("http://{}:{}{}", host, port, path); }
  httplib::Server server;
  std::thread thread;
  int port = 0;
};

TEST_F(HttpAttacks, OnlyAllowedHostsAndNoRedirectsAway) {
  tools::BuiltinOptions opt{.allow_hosts = {"127.0.0.1"}};
  auto ok = tools::http_get(url("127.0.0.1", "/here"), opt, 5);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ((*ok)["status"], 200);
  EXPECT_EQ((*ok)["body"], "hi there");
  EXPECT_EQ((*ok)["url"], url("127.0.0.1", "/hello"));
  EXPECT_EQ(tools::http_get(url("127.0.0.1", "/away"), opt, 5).error().message,
            fmt::format("redirect to 'http://localhost:{}/hello' refused: host 'localhost' is not allowed (allowed: 127.0.0.1)", port));
  EXPECT_EQ(tools::http_get("http://example.com/", opt, 5).error().message,
            "host 'example.com' is not allowed (allowed: 127.0.0.1)");
  EXPECT_EQ(tools::http_get("file:///etc/passwd", opt, 5).error().message,
            "'file:///etc/passwd': only http and https URLs are fetched");
  // Loopback when it is not listed, by address or by a name that resolves there.
  tools::BuiltinOptions other{.allow_hosts = {"example.com"}};
  EXPECT_EQ(tools::http_get(url("127.0.0.1", "/hello"), other, 5).error().message,
            "host '127.0.0.1' is not allowed (allowed: example.com)");
  tools::BuiltinOptions by_name{.allow_hosts = {"localhost"}};
  auto named = tools::http_get(url("localhost", "/hello"), by_name, 5);
  ASSERT_FALSE(named);
  EXPECT_EQ(named.error().message.rfind("host 'localhost' resolves to ", 0), 0u) << named.error().message;
  EXPECT_NE(named.error().message.find("a loopback address; only an address listed itself with --allow-host may be reached"),
            std::string::npos);
  EXPECT_EQ(tools::http_get(url("127.0.0.1", "/hello"), {}, 5).error().message,
            "http_get is off: no host is allowed (--allow-host HOST)");
}

TEST_F(HttpAttacks, FromTheSandboxedProgram) {
  auto reg = tools::builtin_tools({"http_get"}, {.allow_hosts = {"127.0.0.1:" + std::to_string(port)}});
  ASSERT_TRUE(reg) << reg.error().message;
  ExecResult r = run(fmt::format("print(http_get('{}')['body'])\n"
                                 "for u in ('{}', 'http://127.0.0.1:1/hello'):\n"
                                 "    try:\n        http_get(u)\n    except ToolError as e:\n        print(e)\n",
                                 url("127.0.0.1", "/hello"), url("127.0.0.1", "/away")),
                     *reg);
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, fmt::format("hi there\ntool 'http_get': redirect to 'http://localhost:{0}/hello' refused: host "
                                       "'localhost' is not allowed (allowed: 127.0.0.1:{0})\n"
                                       "tool 'http_get': port 1 of host '127.0.0.1' is not allowed (allowed: 127.0.0.1:{0})\n",
                                       port));
}

// ------------------------------------------------------------------ command tools

TEST(CommandAttacks, ArgumentsAreArgvNotShellAndOptionsAreRefused) {
  std::string dir = ::testing::TempDir() + "wand_cmd_" + std::to_string(::getpid());
  fs::create_directories(dir);
  std::ofstream(dir + "/tools.json") << R"J({"tools": [{"name": "echo", "command": ["echo", "{text}"],
      "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}]})J";
  auto reg = tools::load_command_tools(dir + "/tools.json");
  ASSERT_TRUE(reg) << reg.error().message;
  ExecResult r = run(
      "print(repr(echo('$(id); rm -rf / `x` | cat')))\n"
      "try:\n    echo('--help')\nexcept ToolError as e:\n    print(e)\n",
      *reg);
  ASSERT_EQ(r.status, Status::ok) << r.stderr_data;
  EXPECT_EQ(r.stdout_data,
            "'$(id); rm -rf / `x` | cat\\n'\n"
            "tool 'echo': parameter 'text': '--help' starts with '-' and would be read as an option\n");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace wand::test
