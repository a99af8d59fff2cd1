// The MCP client against real servers: the official npm servers (server-everything over stdio
// and Streamable HTTP, server-filesystem over stdio; setup.sh installs them from
// tests/mcp/package-lock.json), and a deliberately broken server (fake_server.py) for crashes,
// hangs, pagination and version mismatches. Tool search is tested here too.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tools/mcp/mcp_client.h"
#include "tools/mcp/mcp_tools.h"
#include "tools/mcp/tool_search.h"
#include "sandbox/sandbox.h"

namespace mcp = wand::tools::mcp;
namespace fs = std::filesystem;
using wand::Json;

namespace {

const std::string kModules = std::string(WAND_SOURCE_DIR) + "/tests/mcp/node_modules/@modelcontextprotocol";
const std::string kFake = "python3 " + std::string(WAND_SOURCE_DIR) + "/tests/mcp/fake_server.py";

bool have_npm_servers() { return fs::exists(kModules + "/server-everything/dist/index.js"); }
#define NEED_NPM() \
  if (!have_npm_servers()) GTEST_SKIP() << "npm ci --prefix tests/mcp has not been run (scripts/setup.sh does it)"

std::string everything_stdio() { return "node " + kModules + "/server-everything/dist/index.js stdio"; }

std::unique_ptr<mcp::Client> connect(const std::string& target, double call_timeout = 30) {
  auto c = mcp::Client::connect({.target = target, .call_timeout_s = call_timeout});
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  return c ? std::move(*c) : nullptr;
}

// The error of a call to the fake server's `hang`, given half a second.
wand::Error hang_for_half_a_second(mcp::Client& c) {
  mcp::CallOptions opt;
  opt.timeout_s = 0.5;
  auto hang = c.call_tool("hang", Json::object(), opt);
  EXPECT_FALSE(hang);
  if (hang) return wand::Error{"it answered"};
  EXPECT_EQ(hang.error().code, "timeout");
  return hang.error();
}

int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t n = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &n);
  close(s);
  return ntohs(a.sin_port);
}

const mcp::ToolInfo* find(const std::vector<mcp::ToolInfo>& tools, const std::string& name) {
  for (auto& t : tools)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace

TEST(McpEverything, StdioHandshakeFallsBackToTheLegacyVersionAndListsTools) {
  NEED_NPM();
  auto c = connect(everything_stdio());
  ASSERT_TRUE(c);
  // The SDK's server speaks 2025-11-25: the server/discover probe fails, initialize follows.
  EXPECT_FALSE(c->modern());
  EXPECT_EQ(c->protocol_version(), "2025-11-25");
  EXPECT_EQ(c->name(), "mcp-servers/everything");
  auto tools = c->list_tools();
  ASSERT_TRUE(tools) << tools.error().message;
  for (auto* n : {"echo", "get-sum", "get-structured-content", "trigger-long-running-operation"})
    EXPECT_TRUE(find(*tools, n)) << n;
  auto* sum = find(*tools, "get-sum");
  ASSERT_TRUE(sum);
  EXPECT_EQ(sum->input_schema["properties"]["a"]["type"], "number");
}

TEST(McpEverything, CallsGiveTextStructuredContentAndProgress) {
  NEED_NPM();
  auto c = connect(everything_stdio());
  ASSERT_TRUE(c);
  auto sum = c->call_tool("get-sum", {{"a", 2}, {"b", 3}});
  ASSERT_TRUE(sum) << sum.error().message;
  EXPECT_FALSE(sum->is_error);
  EXPECT_EQ(sum->text(), "The sum of 2 and 3 is 5.");
  auto weather = c->call_tool("get-structured-content", {{"location", "Chicago"}});
  ASSERT_TRUE(weather) << weather.error().message;
  ASSERT_TRUE(weather->structured.is_object());
  EXPECT_TRUE(weather->structured["temperature"].is_number());
  EXPECT_EQ(weather->value(), weather->structured);
  std::vector<double> progress;
  mcp::CallOptions opt;
  opt.on_notice = [&](const mcp::Notice& n) {
    if (n.method == "notifications/progress") progress.push_back(n.params["progress"].get<double>());
  };
  auto longrun = c->call_tool("trigger-long-running-operation", {{"duration", 0.3}, {"steps", 3}}, opt);
  ASSERT_TRUE(longrun) << longrun.error().message;
  EXPECT_EQ(progress, (std::vector<double>{1, 2, 3}));
  // Bad arguments are the server's own error, named with the server and the tool.
  auto bad = c->call_tool("get-sum", {{"a", "two"}});
  ASSERT_TRUE(bad) << bad.error().message;  // the SDK reports validation failures as isError results
  EXPECT_TRUE(bad->is_error);
  EXPECT_NE(bad->text().find("a"), std::string::npos);
}

TEST(McpEverything, StreamableHttp) {
  NEED_NPM();
  int port = free_port();
  pid_t pid = fork();
  if (pid == 0) {
    setenv("PORT", std::to_string(port).c_str(), 1);
    std::string js = kModules + "/server-everything/dist/index.js";
    execlp("node", "node", js.c_str(), "streamableHttp", (char*)nullptr);
    _exit(127);
  }
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/mcp";
  wand::Result<std::unique_ptr<mcp::Client>> c = wand::Error{"not started"};
  for (int i = 0; i < 100 && !c; ++i) {  // until node listens
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    c = mcp::Client::connect({.target = url, .connect_timeout_s = 10});
  }
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ((*c)->protocol_version(), "2025-11-25");
  auto tools = (*c)->list_tools();
  ASSERT_TRUE(tools) << tools.error().message;
  EXPECT_TRUE(find(*tools, "echo"));
  auto echo = (*c)->call_tool("echo", {{"message", "over http"}});
  ASSERT_TRUE(echo) << echo.error().message;
  EXPECT_EQ(echo->text(), "Echo: over http");
  int progress = 0;
  mcp::CallOptions opt;
  opt.on_notice = [&](const mcp::Notice& n) { progress += n.method == "notifications/progress"; };
  auto longrun = (*c)->call_tool("trigger-long-running-operation", {{"duration", 0.2}, {"steps", 2}}, opt);
  ASSERT_TRUE(longrun) << longrun.error().message;
  EXPECT_EQ(progress, 2);  // the notifications came on the request's SSE stream
  c = wand::Error{"closed"};
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
}

TEST(McpFilesystem, ReadsInsideItsFolderAndRefusesOutside) {
  NEED_NPM();
  auto dir = fs::temp_directory_path() / ("wand-mcp-fs-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "notes.txt") << "first line\nsecond line\n";
  auto c = connect("node " + kModules + "/server-filesystem/dist/index.js " + dir.string());
  ASSERT_TRUE(c);
  auto read = c->call_tool("read_text_file", {{"path", (dir / "notes.txt").string()}});
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_FALSE(read->is_error);
  EXPECT_EQ(read->text(), "first line\nsecond line\n");
  auto list = c->call_tool("list_directory", {{"path", dir.string()}});
  ASSERT_TRUE(list) << list.error().message;
  EXPECT_NE(list->text().find("[FILE] notes.txt"), std::string::npos);
  auto outside = c->call_tool("read_text_file", {{"path", "/etc/passwd"}});
  ASSERT_TRUE(outside) << outside.error().message;
  EXPECT_TRUE(outside->is_error);
  EXPECT_NE(outside->text().find("Access denied"), std::string::npos);
  fs::remove_all(dir);
}

TEST(McpFake, PaginationFollowsEveryCursor) {
  auto c = connect(kFake);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name(), "fake");
  auto tools = c->list_tools();
  ASSERT_TRUE(tools) << tools.error().message;
  ASSERT_EQ(tools->size(), 6u);  // three pages of two
  EXPECT_EQ((*tools)[5].name, "log");
}

TEST(McpFake, ACursorSeenTwiceIsAnError) {
  auto c = connect(kFake + " --loop-cursor");
  ASSERT_TRUE(c);
  auto tools = c->list_tools();
  ASSERT_FALSE(tools);
  EXPECT_EQ(tools.error().message, "MCP server 'fake': tools/list: the server sent the cursor '0' twice");
}

TEST(McpFake, AnUnknownVersionIsRefusedNamingBoth) {
  auto c = mcp::Client::connect({.target = kFake + " --version=1999-01-01"});
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("it answered initialize with protocol version 1999-01-01; wand speaks 2025-11-25, "
                                   "2025-06-18, 2025-03-26"),
            std::string::npos)
      << c.error().message;
}

TEST(McpFake, AnOlderVersionTheServerPicksIsAccepted) {
  auto c = connect(kFake + " --version=2025-06-18");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->protocol_version(), "2025-06-18");
}

TEST(McpFake, ACrashMidCallNamesServerAndToolAndTheOtherToolsKeepWorking) {
  auto c = connect(kFake);
  ASSERT_TRUE(c);
  // The crash and the restart come from calls on a thread that then ends (as a sandboxed
  // program's calls do): the new server outlives that thread and answers every later call.
  Json started;
  std::thread([&] {
    auto crash = c->call_tool("crash", Json::object());
    ASSERT_FALSE(crash);
    EXPECT_EQ(crash.error().message,
              "MCP server 'fake': tool 'crash': the server exited with status 3; its stderr ends: fake: crashing on purpose");
    auto echo = c->call_tool("echo", {{"text", "still here"}, {"pid", true}});  // restarted
    ASSERT_TRUE(echo) << echo.error().message;
    EXPECT_EQ(echo->text(), "still here");
    started = echo->structured["pid"];
  }).join();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto again = c->call_tool("echo", {{"text", "and again"}, {"pid", true}});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->structured["pid"], started) << "the server started again was ended with the thread that started it";
}

TEST(McpFake, AHangTimesOutAndTheServerIsRestarted) {
  auto c = connect(kFake);
  ASSERT_TRUE(c);
  EXPECT_EQ(hang_for_half_a_second(*c).message,
            "MCP server 'fake': tool 'hang': no answer within 0.5 s; the server stopped answering: it was ended, "
            "and the next call starts it again");
  auto echo = c->call_tool("echo", {{"text", "after the hang"}});
  ASSERT_TRUE(echo) << echo.error().message;
  EXPECT_EQ(echo->text(), "after the hang");
}

// A server that writes other text to stdout gets a timeout that says so, quoting the line.
TEST(McpFake, ATimeoutNamesALineThatWasNotJsonRpc) {
  auto c = connect(kFake + " --noisy");
  ASSERT_TRUE(c);
  std::string said = hang_for_half_a_second(*c).message;
  EXPECT_NE(said.find("no answer within 0.5 s; the server wrote a line that is not JSON-RPC to its stdout"),
            std::string::npos)
      << said;
  EXPECT_NE(said.find("\"debug: hanging now\""), std::string::npos) << said;
}

TEST(McpFake, ConcurrentCallsShareOneProcess) {
  auto c = connect(kFake);
  ASSERT_TRUE(c);
  std::vector<std::thread> threads;
  std::atomic<int> ok = 0;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      auto r = c->call_tool("echo", {{"text", std::to_string(i)}});
      ok += r && r->text() == std::to_string(i);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 8);
}

TEST(McpFake, ErrorResultsAndLogNotices) {
  auto c = connect(kFake);
  ASSERT_TRUE(c);
  auto fail = c->call_tool("fail", Json::object());
  ASSERT_TRUE(fail) << fail.error().message;
  EXPECT_TRUE(fail->is_error);
  EXPECT_EQ(fail->text(), "it broke");
  std::vector<std::string> logs;
  mcp::CallOptions opt;
  opt.on_notice = [&](const mcp::Notice& n) {
    if (n.method == "notifications/message") logs.push_back(n.params["data"]);
  };
  auto log = c->call_tool("log", Json::object(), opt);
  ASSERT_TRUE(log) << log.error().message;
  EXPECT_EQ(logs, std::vector<std::string>{"hello log"});
  auto unknown = c->call_tool("nope", Json::object());
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message, "MCP server 'fake': tool 'nope': Unknown tool: nope (code -32602)");
}

TEST(McpClient, ACommandThatCannotStartIsNamed) {
  auto c = mcp::Client::connect({.target = "/nonexistent/server --flag", .connect_timeout_s = 5});
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("MCP server '/nonexistent/server --flag': the server exited with status 127"),
            std::string::npos)
      << c.error().message;
  EXPECT_NE(c.error().message.find("not found"), std::string::npos) << c.error().message;
}

TEST(McpClient, AnUnreachableUrlIsNamed) {
  int port = free_port();
  auto c = mcp::Client::connect({.target = "http://127.0.0.1:" + std::to_string(port) + "/mcp", .connect_timeout_s = 5});
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("Couldn't connect to server"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find(std::to_string(port)), std::string::npos) << c.error().message;
}

TEST(ToolSearch, RanksByRelevance) {
  std::vector<std::string> docs = {
      "read_text_file Read the complete contents of a file as text.",
      "list_directory Get a detailed listing of all files and directories in a specified path.",
      "get-sum Returns the sum of two numbers.",
      "get_weather Current weather for a city.",
      "searchFiles Recursively search for files and directories matching a pattern.",
  };
  EXPECT_EQ(wand::tools::rank_documents(docs, "add two numbers together", 3), (std::vector<std::size_t>{2}));
  auto files = wand::tools::rank_documents(docs, "find files matching a pattern", 2);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0], 4u);
  EXPECT_EQ(wand::tools::rank_documents(docs, "weather in Paris", 5), (std::vector<std::size_t>{3}));
  EXPECT_TRUE(wand::tools::rank_documents(docs, "", 5).empty());
  EXPECT_TRUE(wand::tools::rank_documents(docs, "weather", 0).empty());
  EXPECT_EQ(wand::tools::search_words("readFile get-sum fs.list of the files"),
            (std::vector<std::string>{"read", "file", "get", "sum", "fs", "list", "files", "file"}));
}

// --- wand's client against wand's server: both speak the stateless 2026-07-28 revision.

TEST(WandMcp, TheClientSpeaksTheStatelessRevisionWithWandMcpOverStdio) {
  auto c = connect(std::string(WAND_BINARY) + " mcp --cells 1");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->modern());
  EXPECT_EQ(c->protocol_version(), "2026-07-28");
  EXPECT_EQ(c->name(), "wand");
  auto tools = c->list_tools();
  ASSERT_TRUE(tools) << tools.error().message;
  ASSERT_EQ(tools->size(), 3u);
  auto run = c->call_tool("execute_code", {{"code", "print(sum(range(10)))"}});
  ASSERT_TRUE(run) << run.error().message;
  EXPECT_EQ(run->structured["stdout"], "45\n");
  auto bad = c->call_tool("execute_code", {{"code", "1"}, {"language", "cobol"}});
  ASSERT_TRUE(bad) << bad.error().message;
  EXPECT_TRUE(bad->is_error);
  EXPECT_NE(bad->text().find("execute_code: field 'language'"), std::string::npos) << bad->text();
  // solve's default model is `wand solve`'s for pot, the one that reads hand-written questions.
  auto solved = c->call_tool("solve", {{"question", "There were 27 birds on a tree. 9 more birds came, and then 14 flew "
                                                    "away. How many birds are on the tree now?"}});
  ASSERT_TRUE(solved) << solved.error().message;
  EXPECT_EQ(solved->structured["answer"], "22") << solved->text();
  EXPECT_TRUE(solved->structured["model"].get<std::string>().ends_with("/models/wand-pot-delex.gguf")) << solved->text();
  // The most likely of k plausible samples, as `wand solve --select logprob --plausible`.
  auto ranked = c->call_tool("solve", {{"question", "There were 27 birds on a tree. 9 more birds came, and then 14 flew "
                                                    "away. How many birds are on the tree now?"},
                                       {"k", 4}, {"temperature", 1.0}, {"seed", 1}, {"select", "logprob"}, {"plausible", true}});
  ASSERT_TRUE(ranked) << ranked.error().message;
  EXPECT_FALSE(ranked->is_error) << ranked->text();
  EXPECT_EQ(ranked->structured["vote"]["weighting"], "top logprob") << ranked->text();
  // The sample the shipped outcome verifier rates most likely right, as `wand solve --select verifier`.
  auto verified = c->call_tool("solve", {{"question", "There were 27 birds on a tree. 9 more birds came, and then 14 flew "
                                                      "away. How many birds are on the tree now?"},
                                         {"k", 4}, {"temperature", 1.0}, {"seed", 1}, {"select", "verifier"}});
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_FALSE(verified->is_error) << verified->text();
  EXPECT_EQ(verified->structured["vote"]["weighting"], "top verified") << verified->text();
  auto unknown_select = c->call_tool("solve", {{"question", "What is 2 + 3?"}, {"select", "best"}});
  ASSERT_TRUE(unknown_select) << unknown_select.error().message;
  EXPECT_TRUE(unknown_select->is_error);
  EXPECT_NE(unknown_select->text().find("select 'best': expected vote, logprob or verifier"), std::string::npos) << unknown_select->text();
  // solve offers flow; wand's own (default) model cannot write flow programs, and says so.
  auto flow = c->call_tool("solve", {{"question", "What is 2 + 3?"}, {"method", "flow"}});
  ASSERT_TRUE(flow) << flow.error().message;
  EXPECT_TRUE(flow->is_error);
  EXPECT_NE(flow->text().find("method flow needs a model that writes programs calling llm()"), std::string::npos)
      << flow->text();
  auto unknown = c->call_tool("nope", Json::object());
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message,
            "MCP server 'wand': tool 'nope': Unknown tool: 'nope' (tools: execute_code, evaluate, solve) (code -32602)");
  // The legacy handshake still works when the client asks for it.
  auto legacy = mcp::Client::connect({.target = std::string(WAND_BINARY) + " mcp --cells 1", .modern = false});
  ASSERT_TRUE(legacy) << legacy.error().message;
  EXPECT_EQ((*legacy)->protocol_version(), "2025-11-25");
}

TEST(WandMcp, StreamableHttpModernAndLegacyAndTheOriginCheck) {
  int port = free_port();
  pid_t pid = fork();
  if (pid == 0) {
    execl(WAND_BINARY, "wand", "mcp", "--http", std::to_string(port).c_str(), "--cells", "1", (char*)nullptr);
    _exit(127);
  }
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/mcp";
  wand::Result<std::unique_ptr<mcp::Client>> c = wand::Error{"not started"};
  for (int i = 0; i < 100 && !c; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    c = mcp::Client::connect({.target = url, .connect_timeout_s = 10});
  }
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ((*c)->protocol_version(), "2026-07-28");
  std::vector<double> progress;
  mcp::CallOptions opt;
  opt.on_notice = [&](const mcp::Notice& n) {
    if (n.method == "notifications/progress") progress.push_back(n.params["progress"]);
  };
  auto run = (*c)->call_tool("execute_code", {{"code", "print('hi')"}}, opt);
  ASSERT_TRUE(run) << run.error().message;
  EXPECT_EQ(run->structured["stdout"], "hi\n");
  EXPECT_EQ(progress, (std::vector<double>{0, 1}));  // over the call's SSE stream
  auto legacy = mcp::Client::connect({.target = url, .modern = false});
  ASSERT_TRUE(legacy) << legacy.error().message;
  EXPECT_EQ((*legacy)->protocol_version(), "2025-11-25");
  auto echo = (*legacy)->call_tool("execute_code", {{"code", "print(2)"}});
  ASSERT_TRUE(echo) << echo.error().message;
  EXPECT_EQ(echo->structured["stdout"], "2\n");
  // DNS rebinding: another origin, or another host name, is refused.
  auto post = [&](std::vector<std::string> headers, std::string body) {
    headers.push_back("Content-Type: application/json");
    return mcp::http_post({url, headers, body, 10}, [](long, const mcp::HttpResponse&, std::string_view) { return true; });
  };
  std::string ping = R"({"jsonrpc":"2.0","id":1,"method":"ping"})";
  auto evil = post({"Origin: http://evil.example.com"}, ping);
  ASSERT_TRUE(evil) << evil.error().message;
  EXPECT_EQ(evil->status, 403);
  EXPECT_NE(evil->body.find("Origin 'http://evil.example.com' is not a local one"), std::string::npos) << evil->body;
  auto rebound = post({"Host: evil.example.com"}, ping);
  ASSERT_TRUE(rebound);
  EXPECT_EQ(rebound->status, 403);
  auto local = post({"Origin: http://localhost:" + std::to_string(port)}, ping);
  ASSERT_TRUE(local);
  EXPECT_EQ(local->status, 200);
  // 2026-07-28: the header and the body must agree; an unknown version names the supported ones.
  std::string modern_ping =
      R"({"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}})";
  auto mismatch = post({"MCP-Protocol-Version: 2025-11-25", "Mcp-Method: tools/list"}, modern_ping);
  ASSERT_TRUE(mismatch);
  EXPECT_EQ(mismatch->status, 400);
  EXPECT_NE(mismatch->body.find("-32020"), std::string::npos) << mismatch->body;
  std::string future =
      R"({"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}})";
  auto unsupported = post({"MCP-Protocol-Version: 2099-01-01", "Mcp-Method: tools/list"}, future);
  ASSERT_TRUE(unsupported);
  EXPECT_EQ(unsupported->status, 400);
  auto body = Json::parse(unsupported->body);
  EXPECT_EQ(body["error"]["code"], -32022);
  EXPECT_EQ(body["error"]["data"]["supported"], (Json{"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"}));
  auto bad_json = post({}, "{not json");
  ASSERT_TRUE(bad_json);
  EXPECT_EQ(bad_json->status, 400);
  c = wand::Error{"closed"};
  legacy = wand::Error{"closed"};
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
}

// --- MCP tools as registry tools: what a sandboxed program calls.

TEST(McpTools, EveryServerToolBecomesARegistryTool) {
  auto c = mcp::Client::connect({.target = kFake});
  ASSERT_TRUE(c) << c.error().message;
  auto reg = wand::tools::mcp_tools(std::shared_ptr<mcp::Client>(std::move(*c)), "fake");
  ASSERT_TRUE(reg) << reg.error().message;
  ASSERT_EQ(reg->size(), 6u);
  const auto* echo = reg->find("fake.echo");
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->source, "mcp fake");
  auto r = wand::tools::call(*echo, {{"text", "hi"}});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, "hi");
  auto fail = wand::tools::call(*reg->find("fake.fail"), Json::object());
  ASSERT_FALSE(fail);
  EXPECT_NE(fail.error().message.find("MCP server 'fake': tool 'fail': it broke"), std::string::npos) << fail.error().message;
  auto missing = wand::tools::call(*echo, Json::object());  // checked against the schema before the server sees it
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("text"), std::string::npos) << missing.error().message;
  EXPECT_EQ(wand::tools::python_name("get-sum"), "get_sum");
  EXPECT_EQ(wand::tools::python_name("files/read.v2"), "files_read_v2");
  EXPECT_EQ(wand::tools::python_name("3d"), "_3d");
  auto top = wand::tools::relevant_tools(*reg, "the server should exit", 2);
  ASSERT_FALSE(top.empty());
  EXPECT_EQ(top[0]->name, "fake.crash");
}

TEST(McpTools, ASandboxedProgramCallsAnMcpTool) {
  NEED_NPM();
  auto reg = wand::tools::connect_mcp({everything_stdio()});
  ASSERT_TRUE(reg) << reg.error().message;
  ASSERT_TRUE(reg->find("get_sum"));
  auto sb = wand::sandbox::Sandbox::create({.cells = 1});
  ASSERT_TRUE(sb) << sb.error().message;
  auto granted = reg->select({"get_sum", "echo"});
  ASSERT_TRUE(granted) << granted.error().message;
  auto r = wand::tools::run(**sb, {.code = "print(get_sum(a=2, b=40))\nprint(echo(message='hi'))"}, *granted, {});
  EXPECT_EQ(r.stdout_data, "The sum of 2 and 40 is 42.\nEcho: hi\n") << r.stderr_data;
  ASSERT_EQ(r.tool_calls.size(), 2u);
}

// --- the CLI: `--mcp` on wand exec and wand tools, and its errors (exit status 2 names the server).

namespace {
struct Ran {
  int rc;
  std::string out;
};
Ran run_wand(const std::string& args, const std::string& input = "") {
  std::string in = ::testing::TempDir() + "wand_mcp_in" + std::to_string(getpid());
  std::ofstream(in) << input;
  FILE* p = popen((std::string(WAND_BINARY) + " " + args + " < " + in + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int st = pclose(p);
  return {WEXITSTATUS(st), out};
}
}  // namespace

TEST(McpCli, ExecAndToolsTakeMcpServers) {
  std::string fake = "'" + kFake + "'";
  auto list = run_wand("tools list --json --mcp " + fake);
  ASSERT_EQ(list.rc, 0) << list.out;
  auto j = Json::parse(list.out);
  ASSERT_EQ(j.size(), 6u);
  EXPECT_EQ(j[0]["source"], "mcp fake");
  auto top = run_wand("tools list --mcp " + fake + " --relevant 'echo the text back' --top 1");
  EXPECT_EQ(top.rc, 0);
  EXPECT_EQ(top.out.substr(0, 4), "echo") << top.out;
  // The `-` after --mcp is the program (standard input), not a second server.
  auto exec = run_wand("exec --json --mcp " + fake + " -", "print(echo('through the bridge'))");
  ASSERT_EQ(exec.rc, 0) << exec.out;
  auto r = Json::parse(exec.out);
  EXPECT_EQ(r["stdout"], "through the bridge\n");
  EXPECT_EQ(r["tool_calls"][0]["name"], "echo");
  auto call = run_wand("tools call --mcp " + fake + " echo '{\"text\": \"hi\"}'");
  EXPECT_EQ(call.rc, 0);
  EXPECT_EQ(call.out, "\"hi\"\n");
  auto crash = run_wand("tools call --mcp " + fake + " crash");
  EXPECT_EQ(crash.rc, 1);
  EXPECT_NE(crash.out.find("MCP server 'fake': tool 'crash': the server exited with status 3"), std::string::npos) << crash.out;
  auto missing = run_wand("tools list --mcp /no/such/server");
  EXPECT_EQ(missing.rc, 2);
  EXPECT_NE(missing.out.find("--mcp: MCP server '/no/such/server': the server exited with status 127"), std::string::npos)
      << missing.out;
  auto empty = run_wand("tools list --mcp ''");
  EXPECT_EQ(empty.rc, 2);
  EXPECT_NE(empty.out.find("--mcp: the MCP server (a command or a URL) is empty"), std::string::npos) << empty.out;
  auto bad_port = run_wand("mcp --http 70000");
  EXPECT_EQ(bad_port.rc, 2);
  EXPECT_NE(bad_port.out.find("--http"), std::string::npos) << bad_port.out;
  // the solve tool's model, opened on a client's first call, is checked before serving
  auto bad_model = run_wand("mcp --model local:/nonexistent/m.gguf");
  EXPECT_EQ(bad_model.rc, 2);
  EXPECT_NE(bad_model.out.find("wand mcp: --model: "), std::string::npos) << bad_model.out;
  EXPECT_NE(bad_model.out.find("/nonexistent/m.gguf"), std::string::npos) << bad_model.out;
}

TEST(McpCli, WandMcpServesTheToolsItIsGiven) {
  auto c = connect(std::string(WAND_BINARY) + " mcp --cells 1 --mcp '" + kFake + "'");
  ASSERT_TRUE(c);
  auto tools = c->list_tools();
  ASSERT_TRUE(tools) << tools.error().message;
  EXPECT_EQ(tools->size(), 3u + 6u);
  auto echo = c->call_tool("echo", {{"text", "relayed"}});
  ASSERT_TRUE(echo) << echo.error().message;
  EXPECT_EQ(echo->text(), "relayed");
  auto bad = c->call_tool("echo", {{"text", 5}});  // checked by wand against the tool's schema
  ASSERT_TRUE(bad) << bad.error().message;
  EXPECT_TRUE(bad->is_error);
  EXPECT_NE(bad->text().find("parameter 'text'"), std::string::npos) << bad->text();
}

// MCP: request ids are strings or integers, never null: others are an Invalid Request (-32600).
TEST(WandMcp, ARequestIdThatIsNotAStringOrIntegerIsAnInvalidRequest) {
  std::string cmd = "printf '%s\\n' '{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"method\":\"ping\"}' "
                    "'{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}' '{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}' "
                    "'{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}' | " +
                    std::string(WAND_BINARY) + " mcp --cells 1 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_TRUE(p);
  std::vector<Json> replies;
  char buf[4096];
  while (fgets(buf, sizeof buf, p)) replies.push_back(Json::parse(buf));
  pclose(p);
  ASSERT_EQ(replies.size(), 4u);  // in the order they are done, not sent
  int refused = 0, answered = 0;
  for (const Json& r : replies) {
    if (r.contains("error")) {
      EXPECT_EQ(r["error"].value("code", 0), -32600) << r.dump();
      EXPECT_TRUE(r["id"].is_null()) << r.dump();
      ++refused;
    } else {
      EXPECT_EQ(r["id"], 7) << r.dump();
      EXPECT_TRUE(r.contains("result")) << r.dump();
      ++answered;
    }
  }
  EXPECT_EQ(refused, 3);
  EXPECT_EQ(answered, 1);
}

// A port in use is refused (exit 2), for `wand mcp --http` and `wand serve` alike: cpp-httplib's
// default SO_REUSEPORT let a second server share the port silently.
TEST(McpCli, APortInUseIsRefused) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int yes = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &yes, sizeof yes);  // as the old servers bound it
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(s, 1), 0);
  socklen_t n = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &n);
  std::string port = std::to_string(ntohs(a.sin_port));
  auto mcp = run_wand("mcp --http " + port);
  EXPECT_EQ(mcp.rc, 2);
  EXPECT_NE(mcp.out.find("--http: cannot listen on 127.0.0.1:" + port), std::string::npos) << mcp.out;
  auto serve = run_wand("serve --port " + port);
  EXPECT_EQ(serve.rc, 2) << serve.out;  // a port that cannot be taken is bad input, as for wand mcp
  EXPECT_NE(serve.out.find("cannot listen on 127.0.0.1:" + port), std::string::npos) << serve.out;
  close(s);
}
