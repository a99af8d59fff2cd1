// `wand serve --exec` over real HTTP on 127.0.0.1, started by the test as a user starts it: the
// SandboxFusion-shaped /run_code (requests as verl's sandbox_fusion client sends them), wand's
// /v1/exec, OpenRLHF's /get_reward, and the bounds (413, 429 with Retry-After, 401, limits above
// the server's maxima), with hostile programs contained.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <string>
#include <thread>

#include "common/base64.h"
#include "common/json.h"

namespace {

using wand::Json;

const std::string kToken = "s3cret-token";

// `wand serve --exec` in a child process; the port is read from what it prints when it listens.
class ServeProcess {
 public:
  explicit ServeProcess(std::vector<std::string> extra) {
    std::vector<std::string> args = {WAND_BINARY, "serve", "--exec", "-p", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    int err[2];
    if (pipe(err) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(err[1], 2);
      close(err[0]);
      close(err[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(err[1]);
    std::string seen;
    char buf[512];
    std::smatch m;
    static const std::regex at(R"(http://127\.0\.0\.1:(\d+))");
    while (!std::regex_search(seen, m, at)) {
      ssize_t n = read(err[0], buf, sizeof buf);
      if (n <= 0) break;
      seen.append(buf, n);
    }
    close(err[0]);
    if (std::regex_search(seen, m, at)) port_ = std::stoi(m[1]);
    else log_ = seen;
    seen_ = seen;
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  int port() const { return port_; }
  const std::string& log() const { return log_; }
  const std::string& banner() const { return seen_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_, seen_;
};

class ExecApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServeProcess({"--threads", "1", "--exec-cells", "2", "--max-timeout", "5", "--max-memory-mb", "1024",
                                "--max-concurrent", "1", "--max-body-mb", "1", "--token", kToken});
    ASSERT_GT(server_->port(), 0) << server_->log();
  }
  static void TearDownTestSuite() { delete server_; }

  static httplib::Client client(bool with_token = true) {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(60);
    if (with_token) c.set_bearer_token_auth(kToken);
    return c;
  }
  // POSTs a JSON body; the status and the parsed answer.
  static std::pair<int, Json> post(const std::string& path, const Json& body) {
    auto c = client();
    auto res = c.Post(path, body.dump(), "application/json");
    if (!res) return {0, nullptr};
    auto j = wand::parse_json(res->body, "reply");
    return {res->status, j ? *j : Json(res->body)};
  }
  // A /run_code request exactly as verl's sandbox_fusion client builds one.
  static Json verl_request(const std::string& code, const std::string& stdin_text = "", const char* language = "python") {
    return {{"code", code},          {"stdin", stdin_text}, {"compile_timeout", 5}, {"run_timeout", 5},
            {"memory_limit_MB", 1024}, {"language", language}, {"files", Json::object()}, {"fetch_files", Json::array()}};
  }
  static ServeProcess* server_;
};
ServeProcess* ExecApi::server_ = nullptr;

TEST_F(ExecApi, RunCodeAsVerlSendsIt) {
  auto [status, r] = post("/run_code", verl_request("print(input()[::-1])", "abc\n"));
  ASSERT_EQ(status, 200) << r.dump();
  EXPECT_EQ(r["status"], "Success");
  EXPECT_EQ(r["compile_result"], nullptr);
  EXPECT_EQ(r["run_result"]["status"], "Finished");
  EXPECT_EQ(r["run_result"]["return_code"], 0);
  EXPECT_EQ(r["run_result"]["stdout"], "cba\n");
  EXPECT_TRUE(r["run_result"]["execution_time"].is_number());
  EXPECT_EQ(r["files"], Json::object());
}

TEST_F(ExecApi, RunCodeFailuresInSandboxFusionsTerms) {
  auto [s1, crash] = post("/run_code", verl_request("raise ValueError('boom')"));
  ASSERT_EQ(s1, 200);
  EXPECT_EQ(crash["status"], "Failed");
  EXPECT_EQ(crash["run_result"]["status"], "Finished");
  EXPECT_EQ(crash["run_result"]["return_code"], 1);
  EXPECT_NE(crash["run_result"]["stderr"].get<std::string>().find("ValueError: boom"), std::string::npos);

  Json slow = verl_request("while True: pass");
  slow["run_timeout"] = 0.5;
  auto [s2, timeout] = post("/run_code", slow);
  EXPECT_EQ(timeout["status"], "Failed");
  EXPECT_EQ(timeout["run_result"]["status"], "TimeLimitExceeded");
  EXPECT_EQ(timeout["run_result"]["return_code"], nullptr);

  auto [s3, bad_cpp] = post("/run_code", verl_request("int main() { return x; }", "", "cpp"));
  EXPECT_EQ(bad_cpp["status"], "Failed");
  EXPECT_EQ(bad_cpp["compile_result"]["status"], "Error");
  EXPECT_EQ(bad_cpp["run_result"], nullptr);
  auto [s4, cpp] = post("/run_code", verl_request("#include <cstdio>\nint main() { std::printf(\"%d\\n\", 6*7); }", "", "cpp"));
  EXPECT_EQ(cpp["status"], "Success") << cpp.dump();
  EXPECT_EQ(cpp["compile_result"]["status"], "Finished");
  EXPECT_EQ(cpp["run_result"]["stdout"], "42\n");
}

TEST_F(ExecApi, RunCodeFilesInAndOutAsBase64) {
  Json req = verl_request("open('out.txt','w').write(open('in.bin','rb').read().hex())");
  req["files"] = {{"in.bin", wand::base64_encode(std::string("\x01\xff", 2))}};
  req["fetch_files"] = {"out.txt"};
  auto [status, r] = post("/run_code", req);
  ASSERT_EQ(status, 200) << r.dump();
  EXPECT_EQ(r["status"], "Success");
  EXPECT_EQ(wand::base64_decode(r["files"]["out.txt"].get<std::string>()), "01ff");

  // A file over the 1 MiB cap, or one that is not there, is left out and named: never cut short.
  req = verl_request("open('big.bin','wb').write(b'a' * (3 << 20)); open('ok.txt','w').write('k')");
  req["fetch_files"] = {"big.bin", "missing.txt", "ok.txt"};
  auto [s2, r2] = post("/run_code", req);
  ASSERT_EQ(s2, 200) << r2.dump();
  EXPECT_EQ(r2["status"], "Success");
  EXPECT_FALSE(r2["files"].contains("big.bin")) << "a truncated file was returned as the file";
  EXPECT_FALSE(r2["files"].contains("missing.txt"));
  EXPECT_EQ(wand::base64_decode(r2["files"]["ok.txt"].get<std::string>()), "k");
  std::string message = r2["message"];
  EXPECT_NE(message.find("'big.bin': over the 1 MiB"), std::string::npos) << message;
  EXPECT_NE(message.find("'missing.txt': No such file"), std::string::npos) << message;
}

TEST_F(ExecApi, RequestsAboveTheServersMaximaOrMalformedAre400s) {
  Json req = verl_request("print(1)");
  req["run_timeout"] = 60;
  auto [s1, r1] = post("/run_code", req);
  EXPECT_EQ(s1, 400);
  EXPECT_NE(r1.dump().find("run_timeout"), std::string::npos) << r1.dump();
  req = verl_request("print(1)");
  req["memory_limit_MB"] = 4096;
  auto [s2, r2] = post("/run_code", req);
  EXPECT_EQ(s2, 400);
  EXPECT_NE(r2.dump().find("memory_limit_MB"), std::string::npos) << r2.dump();
  req = verl_request("print(1)");
  req["run_timeout"] = 0;
  auto [sz, rz] = post("/run_code", req);
  EXPECT_EQ(sz, 400) << rz.dump();
  EXPECT_NE(rz.dump().find("at most this server's maximum of 5 s"), std::string::npos) << rz.dump();
  auto [st, rt] = post("/v1/exec", Json{{"code", "print(1)"}, {"tools", {"fs"}}});
  EXPECT_EQ(st, 400) << rt.dump();
  EXPECT_NE(rt.dump().find("field 'tools': this server grants no tools"), std::string::npos) << rt.dump();
  // A CPU-time limit may hold a cell for 2x + 1 s of wall time, which must fit the wall maximum.
  auto [sc, rc] = post("/v1/exec", Json{{"code", "print(1)"}, {"timeout", 3}, {"limit_by", "cpu"}});  // the maximum is 5 s
  EXPECT_EQ(sc, 400) << rc.dump();
  EXPECT_NE(rc.dump().find("with limit_by cpu ask for at most"), std::string::npos) << rc.dump();
  auto [sc2, rc2] = post("/v1/exec", Json{{"code", "print(1)"}, {"timeout", 2}, {"limit_by", "cpu"}});
  EXPECT_EQ(sc2, 200) << rc2.dump();
  auto [s3, r3] = post("/run_code", verl_request("x", "", "go"));
  EXPECT_EQ(s3, 400);
  EXPECT_NE(r3.dump().find("'go'"), std::string::npos) << r3.dump();
  auto [s4, r4] = post("/run_code", Json{{"language", "python"}});
  EXPECT_EQ(s4, 400);
  EXPECT_NE(r4.dump().find("field 'code' is required"), std::string::npos) << r4.dump();
  req = verl_request("print(1)");
  req["memory_limit_MB"] = -2;  // only -1 means the server's maximum
  auto [s7, r7] = post("/run_code", req);
  EXPECT_EQ(s7, 400);
  EXPECT_NE(r7.dump().find("memory_limit_MB"), std::string::npos) << r7.dump();
  req = verl_request("print(open('a.txt').read())");
  req["files"] = {{"a.txt", "!!!notb64"}};
  auto [s8, r8] = post("/run_code", req);
  EXPECT_EQ(s8, 400);
  EXPECT_NE(r8.dump().find("field 'files': 'a.txt' must be base64"), std::string::npos) << r8.dump();
  auto c = client();
  auto res = c.Post("/run_code", "{not json", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  auto [s5, r5] = post("/v1/exec", Json::array({{{"code", "1"}}, {{"code", "1"}, {"timeout", 99}}}));
  EXPECT_EQ(s5, 400);
  EXPECT_NE(r5.dump().find("request 1: field 'timeout'"), std::string::npos) << r5.dump();
  auto [s6, r6] = post("/v1/exec", Json{{"code", "1"}, {"max_output_bytes", 1 << 30}});
  EXPECT_EQ(s6, 400);
  EXPECT_NE(r6.dump().find("max_output_bytes"), std::string::npos) << r6.dump();
}

// A served path asked with another method is 405 with the method it takes (RFC 9110), not 404.
TEST_F(ExecApi, AWrongMethodIs405WithAllow) {
  auto c = client();
  auto get = c.Get("/run_code");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 405) << get->body;
  EXPECT_EQ(get->get_header_value("Allow"), "POST");
  EXPECT_NE(get->body.find("/run_code takes POST, not GET"), std::string::npos) << get->body;
  auto health = c.Post("/health", "{}", "application/json");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 405) << health->body;
  EXPECT_EQ(health->get_header_value("Allow"), "GET");
  auto none = c.Get("/nowhere");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 404) << none->body;
}

TEST_F(ExecApi, ExecTakesTheJsonLinesSchema) {
  auto [s1, one] = post("/v1/exec", Json{{"code", "print(6*7)"}, {"id", "a"}});
  ASSERT_EQ(s1, 200) << one.dump();
  EXPECT_EQ(one["status"], "ok");
  EXPECT_EQ(one["stdout"], "42\n");
  EXPECT_EQ(one["id"], "a");
  auto [s2, many] = post("/v1/exec", Json::array({{{"code", "print(1)"}, {"id", 1}},
                                                 {{"code", "echo hi"}, {"language", "bash"}, {"id", 2}},
                                                 {{"code", "import time; time.sleep(9)"}, {"timeout", 0.3}}}));
  ASSERT_EQ(s2, 200) << many.dump();
  ASSERT_EQ(many.size(), 3u);
  EXPECT_EQ(many[0]["stdout"], "1\n");
  EXPECT_EQ(many[1]["stdout"], "hi\n");
  EXPECT_EQ(many[1]["id"], 2);
  EXPECT_EQ(many[2]["status"], "timeout");
}

TEST_F(ExecApi, OpenRlhfRemoteReward) {
  Json body = {{"query", {"Q: 2+2? A: The answer is 4.", "Q: 2+3? A: The answer is 6.",
                          "Q: add\n```python\ndef add(a, b):\n    return a + b\n```"}},
               {"prompts", {"Q: 2+2? A:", "Q: 2+3? A:", "Q: add\n"}},
               {"labels", {"4", "5", Json{{"test_list", {"assert add(1, 2) == 3"}}}.dump()}}};
  auto [status, r] = post("/get_reward", body);
  ASSERT_EQ(status, 200) << r.dump();
  EXPECT_EQ(r["rewards"], Json::array({1.0, 0.0, 1.0}));
  EXPECT_EQ(r["scores"], r["rewards"]);
  body["labels"] = {"4"};
  auto [s2, r2] = post("/get_reward", body);
  EXPECT_EQ(s2, 400);
  EXPECT_EQ(r2["error"]["param"], "labels");
  // Call-based cases without their outputs (found by exec_fuzz): a 400 naming them, and the
  // server still answers.
  Json partial = {{"query", {"def f(x): return x"}},
                  {"labels", {Json{{"fn_name", "f"}, {"inputs", Json::array({Json::array({0})})}}}}};
  auto [s3, r3] = post("/get_reward", partial);
  EXPECT_EQ(s3, 400);
  EXPECT_NE(r3.dump().find("'outputs'"), std::string::npos) << r3.dump();
  EXPECT_EQ(r3["error"]["param"], "labels");
  partial["labels"][0]["outputs"] = Json::array({0});
  auto [s4, r4] = post("/get_reward", partial);
  ASSERT_EQ(s4, 200) << r4.dump();
  EXPECT_EQ(r4["rewards"], Json::array({1.0}));
}

TEST_F(ExecApi, BodyOverTheCapIs413) {
  auto c = client();
  std::string code = "# " + std::string(2u << 20, 'x');
  auto res = c.Post("/run_code", Json{{"code", code}}.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_NE(res->body.find("too large"), std::string::npos);
}

// A raw TCP connection to 127.0.0.1:port, for what httplib's client will not send; -1 if refused.
int connect_loopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
  close(fd);
  return -1;
}

// What the server answers to bytes written on a raw connection: its status line, or "" when it
// closed without one.
std::string raw_status_line(int port, const std::string& request) {
  int fd = connect_loopback(port);
  std::string got;
  if (fd >= 0 && write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[512];
    for (ssize_t n; got.find("\r\n") == std::string::npos && (n = read(fd, buf, sizeof buf)) > 0;) got.append(buf, n);
  }
  if (fd >= 0) close(fd);
  return got.substr(0, got.find("\r\n"));
}

// A Content-Length that is not a count of bytes is a malformed request (400), not one too large
// (httplib alone reads "-5" as a huge count and answers 413).
TEST_F(ExecApi, AContentLengthThatIsNotACountIs400) {
  for (std::string length : {"-5", "12abc", "0x10", " "}) {
    std::string request = "POST /run_code HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kToken +
                          "\r\nContent-Type: application/json\r\nContent-Length: " + length + "\r\n\r\n{}";
    EXPECT_EQ(raw_status_line(server_->port(), request), "HTTP/1.1 400 Bad Request") << "Content-Length: " << length;
  }
  const std::string body = R"J({"code": "print(1)", "language": "python"})J";
  std::string fine = "POST /run_code HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kToken +
                     "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\n\r\n" + body;
  EXPECT_EQ(raw_status_line(server_->port(), fine), "HTTP/1.1 200 OK");
  EXPECT_EQ(raw_status_line(server_->port(), "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.1 200 OK");
}

TEST_F(ExecApi, TokenRequiredExceptForHealth) {
  auto c = client(false);
  auto res = c.Post("/v1/exec", R"j({"code": "print(1)"})j", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(res->get_header_value("WWW-Authenticate"), "Bearer");
  EXPECT_NE(res->body.find("a bearer token is required"), std::string::npos) << res->body;
  c.set_bearer_token_auth("wrong");
  res = c.Post("/v1/exec", R"j({"code": "print(1)"})j", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_NE(res->body.find("the bearer token is not this server's"), std::string::npos) << res->body;
  httplib::Headers basic = {{"Authorization", "Basic " + kToken}};
  res = client(false).Post("/v1/exec", basic, R"j({"code": "print(1)"})j", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_NE(res->body.find("not a bearer token"), std::string::npos) << res->body;
  // The scheme's name is case-insensitive (RFC 7235); the token is not.
  httplib::Headers lower = {{"Authorization", "bearer " + kToken}};
  res = client(false).Post("/v1/exec", lower, R"j({"code": "print(1)"})j", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  auto health = client(false).Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(ExecApi, BusyServerAnswers429WithRetryAfter) {
  // --max-concurrent 1: a second request while one runs is refused, not queued.
  auto slow = std::async(std::launch::async, [] { return post("/v1/exec", Json{{"code", "import time; time.sleep(2)"}}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  auto c = client();
  auto res = c.Post("/v1/exec", R"j({"code": "print(1)"})j", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429);
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  EXPECT_EQ(slow.get().first, 200);
  auto [status, after] = post("/v1/exec", Json{{"code", "print(1)"}});
  EXPECT_EQ(status, 200);
}

TEST_F(ExecApi, HostileProgramsAreContained) {
  auto [s1, bomb] = post("/run_code", verl_request("import os\nwhile True:\n    os.fork()"));
  ASSERT_EQ(s1, 200);
  EXPECT_EQ(bomb["status"], "Failed");
  auto [s2, net] = post("/run_code", verl_request("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)"));
  EXPECT_EQ(net["status"], "Failed");
  EXPECT_NE(net["run_result"]["stderr"].get<std::string>().find("Error"), std::string::npos);
  auto [s3, flood] = post("/run_code", verl_request("while True: print('x' * 100000)"));
  ASSERT_EQ(s3, 200);
  EXPECT_EQ(flood["status"], "Failed");
  EXPECT_NE(flood["run_result"]["stderr"].get<std::string>().find("output_limit"), std::string::npos);
  EXPECT_LE(flood["run_result"]["stdout"].get<std::string>().size(), (1u << 20) + 100000);
  auto [s4, fine] = post("/run_code", verl_request("print('still serving')"));
  EXPECT_EQ(fine["run_result"]["stdout"], "still serving\n");
}

// `wand ARGS` with stderr joined to stdout: the exit status and the output.
std::pair<int, std::string> run_wand(const std::string& args) {
  std::string cmd = std::string(WAND_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[256];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  int status = p ? pclose(p) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Options checked before anything starts: exit status 2 and the option named.
TEST(ExecApiOptions, BadOrOrphanOptionsExit2) {
  auto run = [](const std::string& args) { return run_wand("serve " + args); };
  auto [c1, o1] = run("--max-timeout 5");  // an execution limit without --exec would be ignored
  EXPECT_EQ(c1, 2) << o1;
  EXPECT_NE(o1.find("--exec"), std::string::npos) << o1;
  auto [c2, o2] = run("--exec --max-timeout nan");
  EXPECT_EQ(c2, 2) << o2;
  EXPECT_NE(o2.find("--max-timeout"), std::string::npos) << o2;
  auto [c3, o3] = run("--exec --max-memory-mb 0");
  EXPECT_EQ(c3, 2) << o3;
  EXPECT_NE(o3.find("--max-memory-mb"), std::string::npos) << o3;
  // An empty token (`--token "$TOKEN"` with TOKEN unset) would serve without one, silently.
  auto [c4, o4] = run("--exec --no-model --token ''");
  EXPECT_EQ(c4, 2) << o4;
  EXPECT_NE(o4.find("--token: empty"), std::string::npos) << o4;
  setenv("WAND_SERVE_TOKEN", "", 1);
  auto [c5, o5] = run("--exec --no-model");
  unsetenv("WAND_SERVE_TOKEN");
  EXPECT_EQ(c5, 2) << o5;
  EXPECT_NE(o5.find("WAND_SERVE_TOKEN: empty"), std::string::npos) << o5;
  auto [c6, o6] = run("--exec --no-model --token '  '");  // blank is as good as none
  EXPECT_EQ(c6, 2) << o6;
  EXPECT_NE(o6.find("--token: empty or blank"), std::string::npos) << o6;
  auto [c7, o7] = run("--exec --no-model --host ''");
  EXPECT_EQ(c7, 2) << o7;
  EXPECT_NE(o7.find("--host: empty"), std::string::npos) << o7;
}

// Idle clients (connections that send half a request and wait) must not take every worker:
// /health still answers at once with more of them open than a small pool has threads.
TEST(ExecApiIdleClients, HealthAnswersWhileConnectionsIdle) {
  ServeProcess server({"--no-model", "--exec-cells", "1"});
  ASSERT_GT(server.port(), 0) << server.log();
  std::vector<int> idle;
  for (int i = 0; i < 24; ++i) {
    int fd = connect_loopback(server.port());
    ASSERT_GE(fd, 0);
    const char half[] = "POST /v1/exec HTTP/1.1\r\nHost: x\r\n";
    ASSERT_EQ(write(fd, half, sizeof half - 1), static_cast<ssize_t>(sizeof half - 1));
    idle.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  httplib::Client c("127.0.0.1", server.port());
  c.set_connection_timeout(1);
  c.set_read_timeout(1);
  auto t0 = std::chrono::steady_clock::now();
  auto health = c.Get("/health");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(health) << "no answer within a second with 24 idle connections open";
  EXPECT_EQ(health->status, 200);
  EXPECT_LT(s, 1.0);
  for (int fd : idle) close(fd);
}

// Execution workers without a model: /v1/exec answers, the OpenAI endpoints say there is no
// model (404), /v1/models lists none; --no-model without --exec, or with a model option, is a
// usage error.
TEST(ExecApiNoModel, ServesExecutionOnly) {
  ServeProcess server({"--no-model", "--exec-cells", "1"});
  ASSERT_GT(server.port(), 0) << server.log();
  EXPECT_NE(server.banner().find("no model"), std::string::npos) << server.banner();
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(60);
  auto ran = c.Post("/v1/exec", R"j({"code": "print(6 * 7)"})j", "application/json");
  ASSERT_TRUE(ran);
  EXPECT_EQ(ran->status, 200);
  EXPECT_EQ(Json::parse(ran->body)["stdout"], "42\n");
  for (const char* path : {"/v1/completions", "/v1/chat/completions"}) {
    auto gen = c.Post(path, R"({"prompt": "x", "messages": [{"role": "user", "content": "x"}]})", "application/json");
    ASSERT_TRUE(gen);
    EXPECT_EQ(gen->status, 404) << path;
    EXPECT_NE(gen->body.find("no model"), std::string::npos) << gen->body;
  }
  auto models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(Json::parse(models->body)["data"], Json::array());
  EXPECT_EQ(c.Get("/health")->status, 200);

  auto [c1, o1] = run_wand("serve --no-model");
  EXPECT_EQ(c1, 2) << o1;
  EXPECT_NE(o1.find("--exec"), std::string::npos) << o1;
  auto [c2, o2] = run_wand("serve --exec --no-model --model local:x.gguf");
  EXPECT_EQ(c2, 2) << o2;
  EXPECT_NE(o2.find("--model"), std::string::npos) << o2;
}

// The output a response carries is capped (--max-response-mb): a batch of floods gets a 413 that
// says so rather than a body of batch x max_output_bytes; so does one /run_code.
TEST(ExecApiResponseCap, OutputPastTheCapIs413) {
  ServeProcess server({"--no-model", "--exec-cells", "2", "--max-response-mb", "1"});
  ASSERT_GT(server.port(), 0) << server.log();
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(60);
  Json flood = {{"code", "import sys; sys.stdout.write('x' * 600000)"}};
  auto res = c.Post("/v1/exec", Json::array({flood, flood}).dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_NE(res->body.find("--max-response-mb"), std::string::npos) << res->body;
  auto one = c.Post("/v1/exec", Json::array({flood}).dump(), "application/json");  // 600 kB: under the cap
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(Json::parse(one->body)[0]["stdout"].get<std::string>().size(), 600000u);
  Json both = {{"code", "import sys; sys.stdout.write('x' * 600000); sys.stderr.write('y' * 600000)"}};
  auto fusion = c.Post("/run_code", both.dump(), "application/json");
  ASSERT_TRUE(fusion);
  EXPECT_EQ(fusion->status, 413);
  EXPECT_NE(fusion->body.find("bytes of output"), std::string::npos) << fusion->body;
  auto [code, out] = run_wand("serve --exec --no-model --max-response-mb 0");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--max-response-mb"), std::string::npos) << out;
}

// A server at its --max-concurrent answers 429 (busy): `wand eval --remote`'s eight POSTs in flight
// wait their turn instead of failing the run after six tries each.
TEST(EvalRemote, ABusyServerIsWaitedFor) {
  ServeProcess server({"--no-model", "--exec-cells", "1", "--max-concurrent", "1"});
  ASSERT_GT(server.port(), 0) << server.log();
  std::string dir = ::testing::TempDir() + "eval_busy_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tasks.jsonl") << Json{{"task_id", 1}, {"text", "add"}, {"code", "def add(a, b): return a + b"},
                                             {"test_list", {"assert add(1, 2) == 3"}}}.dump() << "\n";
  {
    std::ofstream samples(dir + "/samples.jsonl");
    for (int i = 0; i < 128; ++i)  // 8 POSTs of 16, 0.1 s a sample on one cell: each waits for the others
      samples << Json{{"task_id", 1}, {"completion", "import time\ntime.sleep(0.1)\ndef add(a, b): return a + b"}}.dump()
              << "\n";
  }
  auto [rc, out] = run_wand("eval --dataset " + dir + "/tasks.jsonl --samples " + dir + "/samples.jsonl --k 1 --json --remote "
                            "http://127.0.0.1:" + std::to_string(server.port()));
  ASSERT_EQ(rc, 0) << out;
  auto brace = out.find("{\n");  // the summary, after anything said on stderr
  ASSERT_NE(brace, std::string::npos) << out;
  auto j = Json::parse(out.substr(brace));
  EXPECT_EQ(j["samples"], 128);
  EXPECT_DOUBLE_EQ(j["pass_at_k"]["pass@1"].get<double>(), 1.0) << out;
  std::filesystem::remove_all(dir);
}

// `wand eval --remote`: the samples run on a `wand serve --exec` and are judged as a local run
// judges them: asserts (through the harness's channel), answers and stdin/stdout cases alike.
TEST(EvalRemote, SameVerdictsAsALocalRun) {
  ServeProcess server({"--no-model", "--exec-cells", "2"});
  ASSERT_GT(server.port(), 0) << server.log();
  std::string dir = ::testing::TempDir() + "eval_remote_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::vector<Json>& lines) {
    std::ofstream f(dir + "/" + name);
    for (auto& l : lines) f << l.dump() << "\n";
    return dir + "/" + name;
  };
  std::string tasks = write("tasks.jsonl", {
      {{"task_id", 1}, {"text", "add"}, {"code", "def add(a, b): return a + b"},
       {"test_list", {"assert add(1, 2) == 3", "assert add(2, 2) == 4"}}},
      {{"task_id", 2}, {"text", "sub"}, {"code", "def sub(a, b): return a - b"}, {"test_list", {"assert sub(3, 1) == 2"}}}});
  std::string samples = write("samples.jsonl", {
      {{"task_id", 1}, {"completion", "def add(a, b): return a + b"}},
      {{"task_id", 1}, {"completion", "def add(a, b): return a * b"}},
      {{"task_id", 2}, {"completion", "def sub(a, b): raise ValueError('no')"}},
      {{"task_id", 2}, {"completion", "import os\nos._exit(0)"}}});
  std::string common = "eval --dataset " + tasks + " --samples " + samples + " --k 1 --json --out ";
  auto [lc, lo] = run_wand(common + dir + "/local.jsonl");
  ASSERT_EQ(lc, 0) << lo;
  auto [rc, ro] = run_wand(common + dir + "/remote.jsonl --remote http://127.0.0.1:" + std::to_string(server.port()));
  ASSERT_EQ(rc, 0) << ro;
  auto read = [](const std::string& path) {
    std::vector<std::tuple<std::string, bool, std::string>> v;
    std::ifstream f(path);
    for (std::string line; std::getline(f, line);) {
      Json j = Json::parse(line);
      v.emplace_back(j["task_id"].dump(), j["passed"].get<bool>(), j.value("error", Json()).dump());
    }
    return v;
  };
  auto local = read(dir + "/local.jsonl"), remote = read(dir + "/remote.jsonl");
  ASSERT_EQ(local.size(), 4u);
  EXPECT_EQ(remote, local);
  EXPECT_TRUE(std::get<1>(local[0]));
  EXPECT_FALSE(std::get<1>(local[1]));
  EXPECT_FALSE(std::get<1>(local[3]));  // an early exit is not a pass, remotely either
  // A limit above the server's maximum is the caller's option, refused by the server: exit 2.
  auto [hc, ho] = run_wand(common + dir + "/x.jsonl --timeout 60 --remote http://127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(hc, 2) << ho;
  EXPECT_NE(ho.find("above this server's maximum"), std::string::npos) << ho;

  // A URL that is not one is a usage error; a service that does not answer fails the run (3),
  // naming it, rather than counting its samples as failed.
  auto [bc, bo] = run_wand(common + dir + "/x.jsonl --remote ftp://host");
  EXPECT_EQ(bc, 2) << bo;
  EXPECT_NE(bo.find("--remote"), std::string::npos) << bo;
  // A port bound and released, never listened on: connections to it are refused.
  int closed = 0;
  {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
      closed = ntohs(addr.sin_port);
    close(fd);
  }
  ASSERT_GT(closed, 0);
  auto [dc, dout] = run_wand(common + dir + "/x.jsonl --remote http://127.0.0.1:" + std::to_string(closed));
  EXPECT_EQ(dc, 3) << dout;
  EXPECT_NE(dout.find("no answer"), std::string::npos) << dout;

  // A service that takes the connection but never answers (a socket that listens and never
  // accepts): each POST gives up after --remote-timeout, and the run fails instead of hanging.
  int silent = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(silent, 16), 0);
  ASSERT_EQ(getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  auto t0 = std::chrono::steady_clock::now();
  auto [sc, sout] = run_wand(common + dir + "/x.jsonl --remote-timeout 0.5 --remote http://127.0.0.1:" +
                             std::to_string(ntohs(addr.sin_port)));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  close(silent);
  EXPECT_EQ(sc, 3) << sout;
  EXPECT_NE(sout.find("no answer"), std::string::npos) << sout;
  EXPECT_LT(took, 60) << "6 tries of 0.5 s and their pauses, not the default 600 s per POST";
  auto [tc, tout] = run_wand(common + dir + "/x.jsonl --remote-timeout 0 --remote http://127.0.0.1:1");
  EXPECT_EQ(tc, 2) << tout;
  EXPECT_NE(tout.find("--remote-timeout"), std::string::npos) << tout;
  std::filesystem::remove_all(dir);
}

}  // namespace
