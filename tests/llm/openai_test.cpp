// The OpenAI-compatible client and `wand serve`, over real HTTP on 127.0.0.1:
//  - the client against wand's own server running the real embedded engine and shipped model
//    (results must equal the engine called directly);
//  - the client against scripted servers that misbehave the ways real servers do (429 with
//    Retry-After, 5xx, n > 1 rejected or ignored, errors mid-stream, empty chunks, usage only
//    at the end or never, non-JSON bodies, refused connections);
//  - the server against malformed requests.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/json.h"
#include "llm/backends.h"
#include "llm/llm.h"
#include "llm/sse.h"
#include "server/server.h"

using namespace wand;
using namespace wand::llm;

namespace {

const std::string kModel = std::string(WAND_MODELS_DIR) + "/wand-pot.gguf";
const std::string kPrompt = "Question: Ann has 5 pens and buys 7 more. How many pens does she have?\nProgram:\n";

// wand's server on a free port, in a thread, for the test's lifetime.
class LiveServer {
 public:
  explicit LiveServer(Backend& backend, std::string name = "wand-pot") {
    server::Options o;
    o.port = 0;
    o.model_name = std::move(name);
    srv_ = std::make_unique<server::Server>(backend, o);
    auto port = srv_->bind();
    if (!port) throw std::runtime_error(port.error().message);
    port_ = *port;
    thread_ = std::thread([this] { srv_->run(); });
  }
  ~LiveServer() {
    srv_->stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

 private:
  std::unique_ptr<server::Server> srv_;
  int port_ = 0;
  std::thread thread_;
};

// A scripted server: the test installs handlers on `http`.
class FakeServer {
 public:
  FakeServer() = default;
  void start() {
    port_ = http.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { http.listen_after_bind(); });
  }
  ~FakeServer() {
    http.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string spec(const std::string& model = "m") const {
    return "openai:http://127.0.0.1:" + std::to_string(port_) + "/v1/" + model;
  }
  httplib::Server http;
  std::atomic<int> requests{0};

 private:
  int port_ = 0;
  std::thread thread_;
};

BackendOptions fast_retries() {
  BackendOptions o;
  o.retries = 2;
  o.retry_base_s = 0.01;
  o.timeout_s = 20;
  return o;
}

std::unique_ptr<Backend> must_open(const std::string& spec, const BackendOptions& o = {}) {
  auto b = open_backend(spec, o);
  if (!b) throw std::runtime_error(b.error().message);
  return std::move(*b);
}

// A port nothing listens on: bound (so the kernel picks a free one), then closed.
int unused_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

std::string sse(const Json& j) { return "data: " + j.dump() + "\n\n"; }

Json text_chunk(const std::string& text, int index = 0, Json finish = nullptr) {
  return {{"object", "text_completion"}, {"choices", {{{"index", index}, {"text", text}, {"finish_reason", finish}}}}};
}

void stream_reply(httplib::Response& res, std::string body) {
  res.set_chunked_content_provider("text/event-stream", [body](size_t, httplib::DataSink& sink) {
    // Odd-sized pieces, so events straddle reads.
    for (std::size_t i = 0; i < body.size(); i += 7) sink.write(body.data() + i, std::min<std::size_t>(7, body.size() - i));
    sink.done();
    return true;
  });
}

}  // namespace

// ---- SSE framing ----

TEST(Sse, EventsSurviveAnySplitCrlfAndMultilineData) {
  std::string stream = ": comment\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata: line1\ndata: line2\n\ndata:[DONE]\n\n";
  for (std::size_t piece : {1, 2, 5, 1000}) {
    std::vector<std::string> got;
    SseParser p([&](std::string_view d) {
      got.emplace_back(d);
      return true;
    });
    for (std::size_t i = 0; i < stream.size(); i += piece) ASSERT_TRUE(p.feed(std::string_view(stream).substr(i, piece)));
    ASSERT_TRUE(p.finish());
    ASSERT_EQ(got.size(), 3u) << "piece " << piece;
    EXPECT_EQ(got[0], "{\"a\":1}");
    EXPECT_EQ(got[1], "line1\nline2");
    EXPECT_EQ(got[2], "[DONE]");
  }
  std::vector<std::string> got;
  SseParser p([&](std::string_view d) {
    got.emplace_back(d);
    return got.size() < 1;
  });
  EXPECT_FALSE(p.feed("data: 1\n\ndata: 2\n\n"));  // the handler's stop is reported
  EXPECT_EQ(got.size(), 1u);
  SseParser q([&](std::string_view d) {
    got.emplace_back(d);
    return true;
  });
  q.feed("data: unterminated");
  q.finish();
  EXPECT_EQ(got.back(), "unterminated");
}

// ---- specs ----

TEST(Spec, ParsesBaseAndModelAndRejectsBadUrls) {
  auto e = parse_openai_spec("openai:http://host:8000/v1/meta-llama/Llama-3-8B");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->base, "http://host:8000/v1");
  EXPECT_EQ(e->model, "meta-llama/Llama-3-8B");
  e = parse_openai_spec("openai:https://api.example.com/v1");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->base, "https://api.example.com/v1");
  EXPECT_EQ(e->model, "");
  e = parse_openai_spec("openai:http://localhost:11434/api/llama3");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->base, "http://localhost:11434/api");
  EXPECT_EQ(e->model, "llama3");
  for (std::string bad : {"openai:ftp://host/v1/m", "openai:http://", "openai:host:8000/v1/m", "openai:http:///v1/m"}) {
    auto r = open_backend(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
  auto r = open_backend("mystery:thing");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("expected local:PATH.gguf or openai:"), std::string::npos);
}

// ---- the client against wand's own server and the real engine ----

class Live : public ::testing::Test {
 protected:
  void SetUp() override {
    local_ = must_open("local:" + kModel, {.threads = 2});
    served_ = must_open("local:" + kModel, {.threads = 2});
    server_ = std::make_unique<LiveServer>(*served_);
    remote_ = must_open("openai:" + server_->url() + "/wand-pot", fast_retries());
  }
  std::unique_ptr<Backend> local_, served_, remote_;
  std::unique_ptr<LiveServer> server_;
};

TEST_F(Live, CompletionsEqualTheEngineCalledDirectly) {
  GenerateOptions o;
  o.max_tokens = 48;
  o.stop = {"\n\n"};
  auto want = local_->complete(kPrompt, o);
  auto got = remote_->complete(kPrompt, o);
  ASSERT_TRUE(want) << want.error().message;
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].text, (*want)[0].text);
  EXPECT_NE((*got)[0].text.find("answer ="), std::string::npos) << (*got)[0].text;
  EXPECT_EQ((*got)[0].finish_reason, (*want)[0].finish_reason);
  EXPECT_EQ((*got)[0].prompt_tokens, (*want)[0].prompt_tokens);
  EXPECT_EQ((*got)[0].completion_tokens, (*want)[0].completion_tokens);
  EXPECT_EQ(remote_->id(), "openai:" + server_->url() + "/wand-pot");
}

TEST_F(Live, StreamingDeliversTheSameTextInPiecesWithUsage) {
  GenerateOptions o;
  o.max_tokens = 40;
  auto whole = remote_->complete(kPrompt, o);
  ASSERT_TRUE(whole) << whole.error().message;
  std::string streamed;
  int pieces = 0;
  o.on_text = [&](int i, std::string_view t) {
    EXPECT_EQ(i, 0);
    EXPECT_FALSE(t.empty());
    streamed += t;
    ++pieces;
    return true;
  };
  auto got = remote_->complete(kPrompt, o);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(streamed, (*whole)[0].text);
  EXPECT_EQ((*got)[0].text, streamed);
  EXPECT_GT(pieces, 5);
  EXPECT_EQ((*got)[0].completion_tokens, (*whole)[0].completion_tokens);  // from the usage chunk
  EXPECT_EQ((*got)[0].finish_reason, (*whole)[0].finish_reason);
}

TEST_F(Live, ChatSamplesStopsAndLogprobsMatchTheEngine) {
  std::vector<Message> msgs = {{"system", "Write programs."}, {"user", "Ann has 5 pens."}};
  GenerateOptions o;
  o.max_tokens = 24;
  o.temperature = 1.0f;
  o.seed = 7;
  o.n = 3;
  o.logprobs = true;
  auto want = local_->chat(msgs, o);
  auto got = remote_->chat(msgs, o);
  ASSERT_TRUE(want) << want.error().message;
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ((*got)[i].text, (*want)[i].text) << "sample " << i;
    ASSERT_EQ((*got)[i].logprobs.size(), (*want)[i].logprobs.size());
    for (std::size_t k = 0; k < (*got)[i].logprobs.size(); ++k) {
      EXPECT_EQ((*got)[i].logprobs[k].token, (*want)[i].logprobs[k].token);
      EXPECT_NEAR((*got)[i].logprobs[k].logprob, (*want)[i].logprobs[k].logprob, 1e-4);
      EXPECT_LE((*got)[i].logprobs[k].logprob, 0.f);
    }
  }
  EXPECT_FALSE((*got)[0].text == (*got)[1].text && (*got)[1].text == (*got)[2].text);
  // Stop sequences are applied on the server; the stop text is not returned.
  GenerateOptions s;
  s.max_tokens = 60;
  s.stop = {"answer"};
  auto stopped = remote_->complete(kPrompt, s);
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_EQ((*stopped)[0].finish_reason, "stop");
  EXPECT_EQ((*stopped)[0].text.find("answer"), std::string::npos);
  EXPECT_FALSE((*stopped)[0].text.empty());
}

TEST_F(Live, CallerCanStopAStreamAndTheServerStaysUsable) {
  GenerateOptions o;
  o.max_tokens = 200;
  int pieces = 0;
  o.on_text = [&](int, std::string_view) { return ++pieces < 3; };
  auto got = remote_->complete(kPrompt, o);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(pieces, 3);
  EXPECT_EQ((*got)[0].finish_reason, "stop");
  GenerateOptions again;
  again.max_tokens = 5;
  auto next = remote_->complete(kPrompt, again);
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ((*next)[0].completion_tokens, 5);
}

TEST_F(Live, ModelIsFoundByListingOrReportedMissing) {
  auto any = open_backend("openai:" + server_->url());
  ASSERT_TRUE(any) << any.error().message;
  EXPECT_EQ((*any)->id(), "openai:" + server_->url() + "/wand-pot");
  auto wrong = must_open("openai:" + server_->url() + "/no-such-model", fast_retries());
  auto r = wrong->complete("x", {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("HTTP 404"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("'no-such-model' does not exist"), std::string::npos) << r.error().message;
}

TEST_F(Live, ServerAnswersMalformedRequestsWith4xxNamingTheField) {
  httplib::Client c("127.0.0.1", server_->port());
  struct Case {
    std::string path, body, param;
    int status;
  };
  std::vector<Case> cases = {
      {"/v1/completions", "{not json", "", 400},
      {"/v1/completions", "[1,2]", "", 400},
      {"/v1/completions", R"({"model":"wand-pot"})", "prompt", 400},
      {"/v1/completions", R"({"prompt":7})", "prompt", 400},
      {"/v1/completions", R"({"prompt":"a","max_tokens":"many"})", "max_tokens", 400},
      {"/v1/completions", R"({"prompt":"a","max_tokens":100000000})", "max_tokens", 400},
      {"/v1/completions", R"({"prompt":"a","temperature":-1})", "temperature", 400},
      {"/v1/completions", R"({"prompt":"a","n":1000})", "n", 400},
      {"/v1/completions", R"({"prompt":"a","stop":[1]})", "stop", 400},
      {"/v1/completions", R"({"prompt":"a","stream":"yes"})", "stream", 400},
      {"/v1/completions", R"({"prompt":"a","model":"gpt-4"})", "model", 404},
      {"/v1/chat/completions", R"({"messages":[]})", "messages", 400},
      {"/v1/chat/completions", R"({"messages":[{"content":"no role"}]})", "messages[0]", 400},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
       "messages[0].content", 400},
  };
  for (auto& k : cases) {
    auto res = c.Post(k.path, k.body, "application/json");
    ASSERT_TRUE(res) << k.body;
    EXPECT_EQ(res->status, k.status) << k.body;
    auto j = Json::parse(res->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << res->body;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
    if (!k.param.empty()) {
      EXPECT_EQ(j["error"]["param"], k.param) << k.body;
    }
  }
  // Hostile JSON: a number beyond double range, 200,000 levels of nesting (which crashed on a
  // copy) get a 400 saying what is wrong, and the server goes on.
  for (auto& [body, says] : std::vector<std::pair<std::string, std::string>>{
           {R"({"prompt":"a","temperature":1e400})", "number overflow"},
           {std::string(200000, '[') + std::string(200000, ']'), "nested deeper than 512 levels"},
           {R"({"prompt":"a","stop":)" + std::string(200000, '[') + std::string(200000, ']') + "}",
            "nested deeper than 512 levels"}}) {
    auto res = c.Post("/v1/completions", body, "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400);
    EXPECT_NE(res->body.find(says), std::string::npos) << res->body.substr(0, 300);
  }
  auto missing = c.Get("/v1/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(Json::parse(missing->body, nullptr, false).contains("error"));
  // Still serving after all of that.
  auto ok = c.Post("/v1/completions", R"({"prompt":"Question: 1\nProgram:\n","max_tokens":3})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(Json::parse(ok->body)["usage"]["completion_tokens"], 3);
}

// ---- the client against servers that misbehave ----

TEST(Client, RetriesOn429And5xxHonouringRetryAfter) {
  FakeServer f;
  f.http.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    int k = ++f.requests;
    if (k == 1) {
      res.status = 429;
      res.set_header("Retry-After", "1");
      res.set_content(R"({"error":{"message":"slow down"}})", "application/json");
    } else if (k == 2) {
      res.status = 503;
      res.set_content("overloaded", "text/plain");
    } else {
      res.set_content(R"({"choices":[{"index":0,"text":"ok","finish_reason":"stop"}],
                          "usage":{"prompt_tokens":3,"completion_tokens":1}})",
                      "application/json");
    }
  });
  f.start();
  auto b = must_open(f.spec(), fast_retries());
  auto t0 = std::chrono::steady_clock::now();
  auto r = b->complete("p", {});
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ((*r)[0].text, "ok");
  EXPECT_EQ((*r)[0].prompt_tokens, 3);
  EXPECT_EQ(f.requests, 3);
  EXPECT_GE(waited, 1.0);  // Retry-After: 1 overrides the 10 ms back-off
}

// A server's hostile JSON (200,000 levels in an error body or an event, 1e400, fields of the
// wrong type) is an error or ignored, never a crash.
TEST(Client, HostileJsonFromAServerIsAnErrorNotACrash) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  FakeServer f;
  f.http.Post("/v1/chat/completions", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 400;
    res.set_content(R"({"error":)" + deep + "}", "application/json");
  });
  f.http.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.body.find("\"stream\":true") != std::string::npos) {
      stream_reply(res, "data: {\"choices\":[{\"index\":\"zero\",\"text\":\"a\"}],\"usage\":{\"prompt_tokens\":\"x\"}}\n\n"
                        "data: {\"choices\":[7]}\n\ndata: " + deep + "\n\n");
      return;
    }
    res.set_content(R"({"choices":[{"text":"a"}],"usage":{"prompt_tokens":1e400}})", "application/json");
  });
  f.start();
  auto b = must_open(f.spec(), fast_retries());
  auto chat = b->chat({{"user", "hi"}}, {});
  ASSERT_FALSE(chat);
  EXPECT_NE(chat.error().message.find("HTTP 400"), std::string::npos) << chat.error().message.substr(0, 300);
  EXPECT_LT(chat.error().message.size(), 1000u);
  auto plain = b->complete("p", {});
  ASSERT_FALSE(plain);
  EXPECT_NE(plain.error().message.find("number overflow"), std::string::npos) << plain.error().message;
  GenerateOptions o;
  o.on_text = [](int, std::string_view) { return true; };
  auto streamed = b->complete("p", o);
  ASSERT_FALSE(streamed);
  EXPECT_NE(streamed.error().message.find("nested deeper than 512 levels"), std::string::npos)
      << streamed.error().message.substr(0, 300);
}

TEST(Client, GivesUpAfterTheRetriesWithTheServersMessage) {
  FakeServer f;
  f.http.Post("/v1/chat/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++f.requests;
    res.status = 502;
    res.set_content(R"({"error":"upstream is down"})", "application/json");
  });
  f.http.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++f.requests;
    res.status = 400;
    res.set_content(R"({"detail":"max_tokens is too large"})", "application/json");
  });
  f.start();
  auto b = must_open(f.spec(), fast_retries());
  auto r = b->chat({{"user", "hi"}}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(f.requests, 3);  // 1 + 2 retries
  EXPECT_NE(r.error().message.find("HTTP 502"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("upstream is down"), std::string::npos);
  EXPECT_NE(r.error().message.find("after 2 retries"), std::string::npos);
  f.requests = 0;
  auto q = b->complete("p", {});  // 4xx: not retried
  ASSERT_FALSE(q);
  EXPECT_EQ(f.requests, 1);
  EXPECT_NE(q.error().message.find("max_tokens is too large"), std::string::npos) << q.error().message;
}

TEST(Client, FallsBackToParallelSingleRequestsWhenNIsRejectedOrIgnored) {
  for (bool reject : {true, false}) {
    FakeServer f;
    std::atomic<int> with_n{0};
    f.http.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
      ++f.requests;
      auto body = Json::parse(req.body);
      if (body.contains("n") && body["n"].get<int>() > 1) {
        ++with_n;
        if (reject) {
          res.status = 400;
          res.set_content(R"({"error":{"message":"n must be 1"}})", "application/json");
          return;
        }
      }
      // One choice whatever n is; the text tells which seed made it.
      res.set_content(Json{{"choices", {{{"index", 0}, {"text", "seed " + std::to_string(body["seed"].get<int>())},
                                         {"finish_reason", "stop"}}}}}
                          .dump(),
                      "application/json");
    });
    f.start();
    auto b = must_open(f.spec(), fast_retries());
    GenerateOptions o;
    o.n = 3;
    o.seed = 10;
    auto r = b->complete("p", o);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ((*r)[i].text, "seed " + std::to_string(10 + i)) << "reject=" << reject;
    EXPECT_EQ(f.requests, reject ? 4 : 3);
    // The backend remembers: the next n > 1 call goes straight to single requests.
    f.requests = 0;
    ASSERT_TRUE(b->complete("p", o));
    EXPECT_EQ(f.requests, 3);
    EXPECT_EQ(with_n, 1);
  }
}

TEST(Client, StreamsThroughEmptyChunksAndUsageInTheLastChunkOrNone) {
  FakeServer f;
  f.http.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    bool usage = Json::parse(req.body)["prompt"] == "with usage";
    std::string body = sse(text_chunk("")) + ": keep-alive\n\n" + sse(text_chunk("Hel")) + sse(text_chunk("")) +
                       sse(text_chunk("lo")) + sse(text_chunk("", 0, "length"));
    if (usage) body += sse({{"choices", Json::array()}, {"usage", {{"prompt_tokens", 4}, {"completion_tokens", 9}}}});
    stream_reply(res, body + "data: [DONE]\n\n");
  });
  f.start();
  auto b = must_open(f.spec(), fast_retries());
  for (bool usage : {true, false}) {
    GenerateOptions o;
    std::vector<std::string> pieces;
    o.on_text = [&](int, std::string_view t) {
      pieces.emplace_back(t);
      return true;
    };
    auto r = b->complete(usage ? "with usage" : "without", o);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ((*r)[0].text, "Hello");
    EXPECT_EQ(pieces, (std::vector<std::string>{"Hel", "lo"}));
    EXPECT_EQ((*r)[0].finish_reason, "length");
    EXPECT_EQ((*r)[0].completion_tokens, usage ? 9 : 2);  // else one token per streamed chunk
    EXPECT_EQ((*r)[0].prompt_tokens, usage ? 4 : 0);
  }
}

TEST(Client, AnErrorEventMidStreamIsAnErrorAfterTheTextSoFar) {
  FakeServer f;
  f.http.Post("/v1/chat/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++f.requests;
    Json delta = {{"choices", {{{"index", 0}, {"delta", {{"content", "partial"}}}}}}};
    stream_reply(res, sse(delta) + sse({{"error", {{"message", "CUDA out of memory"}, {"type", "server_error"}}}}) +
                          "data: [DONE]\n\n");
  });
  f.start();
  auto b = must_open(f.spec(), fast_retries());
  GenerateOptions o;
  std::string seen;
  o.on_text = [&](int, std::string_view t) {
    seen += t;
    return true;
  };
  auto r = b->chat({{"user", "hi"}}, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("mid-stream: CUDA out of memory"), std::string::npos) << r.error().message;
  EXPECT_EQ(seen, "partial");
  EXPECT_EQ(f.requests, 1);  // text had reached the caller: not retried
}

TEST(Client, NonJsonBodiesRefusedConnectionsAndAuthAreReportedClearly) {
  FakeServer f;
  std::string auth;
  f.http.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    auth = req.get_header_value("Authorization");
    res.set_content("<html>proxy login</html>", "text/html");
  });
  f.start();
  BackendOptions o = fast_retries();
  o.api_key = "sk-test";
  auto b = must_open(f.spec(), o);
  auto r = b->complete("p", {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("did not send JSON"), std::string::npos) << r.error().message;
  EXPECT_EQ(auth, "Bearer sk-test");

  int dead_port = unused_port();
  auto dead = must_open("openai:http://127.0.0.1:" + std::to_string(dead_port) + "/v1/m", fast_retries());
  auto d = dead->complete("p", {});
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("connection refused"), std::string::npos) << d.error().message;
  EXPECT_NE(d.error().message.find("after 2 retries"), std::string::npos);
  // Without a model in the spec, the client must list the server's models: that fails clearly too.
  auto listing = open_backend("openai:http://127.0.0.1:" + std::to_string(dead_port) + "/v1", fast_retries());
  ASSERT_FALSE(listing);
  EXPECT_NE(listing.error().message.find("connection refused"), std::string::npos) << listing.error().message;
}

TEST(Client, KeepsAtMostConcurrencyRequestsInFlight) {
  FakeServer f;
  std::atomic<int> in_flight{0}, most{0};
  f.http.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    int now = ++in_flight;
    for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    --in_flight;
    res.set_content(R"({"choices":[{"index":0,"text":"x","finish_reason":"stop"}]})", "application/json");
  });
  f.start();
  BackendOptions o = fast_retries();
  o.concurrency = 2;
  auto b = must_open(f.spec(), o);
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i)
    callers.emplace_back([&] {
      if (b->complete("p", {})) ++ok;
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(ok, 6);
  EXPECT_EQ(most, 2);
}
