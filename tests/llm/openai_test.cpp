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
#include <set>
#include <thread>
#include <tuple>

#include "common/json.h"
#include "llm/backends.h"
#include "llm/llm.h"
#include "llm/model.h"
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
  std::vector<Message> msgs = {{"user", "Ann has 5 pens."}};
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
      ASSERT_TRUE((*got)[i].logprobs[k].logprob && (*want)[i].logprobs[k].logprob);
      EXPECT_NEAR(*(*got)[i].logprobs[k].logprob, *(*want)[i].logprobs[k].logprob, 1e-4);
      EXPECT_LE(*(*got)[i].logprobs[k].logprob, 0.f);
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

// wand serve's model entry says what the model is (an extra field OpenAI's model object allows),
// and the client reads it back: that is how `wand solve` knows to use wand's own prompts.
TEST_F(Live, ModelEntrySaysItIsAWandModelWithItsPromptFormat) {
  httplib::Client c("127.0.0.1", server_->port());
  auto list = c.Get("/v1/models");
  ASSERT_TRUE(list);
  Json entry = Json::parse(list->body)["data"][0];
  EXPECT_EQ(entry["id"], "wand-pot");
  EXPECT_EQ(entry["object"], "model");
  EXPECT_EQ(entry["owned_by"], "wand");
  EXPECT_EQ(entry["wand"], Json({{"prompt_format", "pot"}, {"context_length", local_->context_length()}}));
  auto one = c.Get("/v1/models/wand-pot");
  ASSERT_TRUE(one);
  EXPECT_EQ(Json::parse(one->body), entry);
  EXPECT_EQ(local_->prompt_format(), "pot");
  EXPECT_EQ(remote_->prompt_format(), "pot");
  EXPECT_EQ(remote_->prompt_format(), "pot");  // asked once, remembered
  // The context too, so the agent loop fits a small model's context over HTTP as it does locally.
  EXPECT_GT(local_->context_length(), 0);
  EXPECT_EQ(remote_->context_length(), local_->context_length());
  EXPECT_TRUE(local_->can_constrain());
  EXPECT_FALSE(remote_->can_constrain());
}

// Servers that say nothing of the kind, or cannot be asked, leave the format empty (the
// generic chat default) without failing anything.
TEST(Client, PromptFormatIsEmptyUnlessTheServerSaysIt) {
  FakeServer f;
  std::atomic<int> listings{0};
  f.http.Get("/v1/models", [&](const httplib::Request&, httplib::Response& res) {
    ++listings;
    res.set_content(R"({"object":"list","data":[{"id":"m","object":"model","owned_by":"vllm"},
                       {"id":"w","object":"model","wand":{"prompt_format":"cot","context_length":512}},
                       {"id":"odd","wand":{"prompt_format":7,"context_length":-3}},{"id":"odder","wand":"pot"}]})",
                    "application/json");
  });
  f.start();
  EXPECT_EQ(must_open(f.spec("m"))->prompt_format(), "");
  EXPECT_EQ(must_open(f.spec("w"))->prompt_format(), "cot");
  EXPECT_EQ(must_open(f.spec("w"))->context_length(), 512);
  EXPECT_EQ(must_open(f.spec("m"))->context_length(), 0);
  EXPECT_EQ(must_open(f.spec("odd"))->prompt_format(), "");
  EXPECT_EQ(must_open(f.spec("odd"))->context_length(), 0);
  EXPECT_EQ(must_open(f.spec("odder"))->prompt_format(), "");
  EXPECT_EQ(must_open(f.spec("unlisted"))->prompt_format(), "");
  EXPECT_EQ(listings.load(), 8);
  FakeServer broken;
  broken.http.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
    res.status = 500;
    res.set_content("oops", "text/plain");
  });
  broken.start();
  EXPECT_EQ(must_open(broken.spec("m"))->prompt_format(), "");
  EXPECT_EQ(must_open("openai:http://127.0.0.1:" + std::to_string(unused_port()) + "/v1/m")->prompt_format(), "");
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
      {"/v1/completions", R"({"prompt":"a","temperature":2.5})", "temperature", 400},
      {"/v1/completions", R"({"prompt":"a","n":1000})", "n", 400},
      {"/v1/completions", R"({"prompt":"a","stop":[1]})", "stop", 400},
      {"/v1/completions", R"({"prompt":"a","stream":"yes"})", "stream", 400},
      {"/v1/completions", R"({"prompt":"a","model":"gpt-4"})", "model", 404},
      {"/v1/chat/completions", R"({"messages":[]})", "messages", 400},
      {"/v1/chat/completions", R"({"messages":[{"content":"no role"}]})", "messages[0].role", 400},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
       "messages[0].content", 400},
      {"/v1/chat/completions", R"({"messages":[{"role":"user"}]})", "messages[0].content", 400},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":null}]})", "messages[0].content", 400},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"a"},{"role":"robot","content":"b"}]})",
       "messages[1].role", 400},
      {"/v1/chat/completions", R"({"messages":[{"role":"tool","content":"42"}]})", "messages[0].role", 400},
      {"/v1/completions", R"({"prompt":"a","logprobs":6})", "logprobs", 400},
      {"/v1/completions", R"({"prompt":"a","logprobs":-1})", "logprobs", 400},
      {"/v1/completions", R"({"prompt":"a","echo":"yes"})", "echo", 400},
      {"/v1/completions", R"({"prompt":[]})", "prompt", 400},
      {"/v1/completions", R"({"prompt":[[1,2],[-3]]})", "prompt", 400},
      {"/v1/completions", R"({"prompt":[1,2],"max_tokens":-1})", "max_tokens", 400},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"a"}],"logprobs":true,"top_logprobs":21})",
       "top_logprobs", 400},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"a"}],"top_logprobs":2})", "top_logprobs", 400},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"a"}],"logprobs":3})", "logprobs", 400},
      // Parts of the API the server does not implement are refused by name, not ignored.
      {"/v1/completions", R"({"prompt":"a","suffix":"b"})", "suffix", 400},
      {"/v1/completions", R"({"prompt":"a","best_of":3})", "best_of", 400},
      {"/v1/completions", R"({"prompt":"a","logit_bias":{"50256":-100}})", "logit_bias", 400},
      {"/v1/completions", R"({"prompt":"a","presence_penalty":0.5})", "presence_penalty", 400},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"a"}],"frequency_penalty":1})",
       "frequency_penalty", 400},
      {"/v1/chat/completions",
       R"({"messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"f"}}]})", "tools",
       400},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"a"}],"response_format":{"type":"json_object"}})",
       "response_format", 400},
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
      // The message names the field too (clients show the message, not the param).
      EXPECT_NE(j["error"]["message"].get<std::string>().find(k.param), std::string::npos) << res->body;
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
  // Unsupported fields at their neutral values, as SDKs may send them, are fine.
  auto neutral = c.Post("/v1/completions",
                        R"({"prompt":"Question: 1\nProgram:\n","max_tokens":2,"presence_penalty":0,"frequency_penalty":0,)"
                        R"("logit_bias":{},"best_of":1,"suffix":null,"user":"u"})",
                        "application/json");
  ASSERT_TRUE(neutral);
  EXPECT_EQ(neutral->status, 200) << neutral->body;
  // Still serving after all of that.
  auto ok = c.Post("/v1/completions", R"({"prompt":"Question: 1\nProgram:\n","max_tokens":3})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(Json::parse(ok->body)["usage"]["completion_tokens"], 3);
}

// ---- the server follows the published API where clients depend on it ----

namespace {

struct Reply {
  int status = 0;
  Json body;
};

// POSTs `body` as it is, with `type` as its content type.
Reply post_raw(int port, const std::string& path, const std::string& body, const std::string& type = "application/json") {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120);
  auto res = c.Post(path, body, type);
  if (!res) return {};
  return {res->status, Json::parse(res->body, nullptr, false)};
}
Reply post(int port, const std::string& path, const Json& body) { return post_raw(port, path, body.dump()); }

// A chat of one user message (spelled out: nested braces are ambiguous in nlohmann's initializers).
Json one_user_message(const std::string& content) {
  return Json::array({Json{{"role", "user"}, {"content", content}}});
}

std::string joined(const Json& tokens) {
  std::string s;
  for (auto& t : tokens) s += t.get<std::string>();
  return s;
}

// What lm-evaluation-harness's LocalCompletionsAPI.parse_logprobs computes from a choice: the
// continuation's summed logprob (token_logprobs[ctxlen:-1]) and whether every one of its tokens
// was the most likely one.
std::pair<double, bool> lm_eval_score(const Json& choice, std::size_t ctxlen) {
  auto& lp = choice["logprobs"];
  double sum = 0;
  bool greedy = true;
  for (std::size_t k = ctxlen; k + 1 < lp["token_logprobs"].size(); ++k) {
    double v = lp["token_logprobs"][k];
    sum += v;
    double best = -1e30;
    for (auto& [tok, x] : lp["top_logprobs"][k].items()) best = std::max(best, x.get<double>());
    greedy = greedy && v == best;
  }
  return {sum, greedy};
}

}  // namespace

// Scoring a text with echo gives, at each position, what the engine gave when it generated that
// text one token at a time: lm-evaluation-harness's loglikelihood requests (max_tokens 0 as older
// versions send, 1 as newer ones do) read the same numbers the sampler saw.
TEST_F(Live, EchoScoresThePromptAsGenerationSawItOneStepAtATime) {
  GenerateOptions g;
  g.max_tokens = 16;
  g.logprobs = true;
  g.top_logprobs = 3;
  auto gen = local_->complete(kPrompt, g);
  ASSERT_TRUE(gen) << gen.error().message;
  const Completion& c = (*gen)[0];
  ASSERT_EQ(c.logprobs.size(), 16u);
  std::string scored = kPrompt + c.text;
  for (int max_tokens : {0, 1}) {
    auto r = post(server_->port(), "/v1/completions",
                  {{"model", "wand-pot"}, {"prompt", scored}, {"temperature", 0}, {"max_tokens", max_tokens},
                   {"logprobs", 3}, {"seed", 1234}, {"echo", true}});
    ASSERT_EQ(r.status, 200) << r.body.dump();
    auto& choice = r.body["choices"][0];
    auto& lp = choice["logprobs"];
    std::string text = choice["text"];
    EXPECT_EQ(text.substr(0, scored.size()), scored);
    EXPECT_EQ(joined(lp["tokens"]), text);
    std::size_t prompt_tokens = r.body["usage"]["prompt_tokens"], generated = r.body["usage"]["completion_tokens"];
    EXPECT_EQ(generated, std::size_t(max_tokens));
    ASSERT_EQ(lp["tokens"].size(), prompt_tokens + generated);
    ASSERT_EQ(lp["token_logprobs"].size(), lp["tokens"].size());
    ASSERT_EQ(lp["top_logprobs"].size(), lp["tokens"].size());
    ASSERT_EQ(lp["text_offset"].size(), lp["tokens"].size());
    EXPECT_TRUE(lp["token_logprobs"][0].is_null());  // nothing before the first token predicts it
    EXPECT_TRUE(lp["top_logprobs"][0].is_null());
    std::size_t offset = 0;
    for (std::size_t k = 0; k < lp["tokens"].size(); ++k) {
      EXPECT_EQ(lp["text_offset"][k], offset);
      offset += lp["tokens"][k].get<std::string>().size();
      if (k == 0) continue;
      ASSERT_TRUE(lp["token_logprobs"][k].is_number()) << k;
      EXPECT_LE(lp["token_logprobs"][k].get<double>(), 0.0);
      EXPECT_EQ(lp["top_logprobs"][k].size(), 3u) << k;
    }
    // The text's last 16 tokens are the generated ones, with the logprobs generation reported.
    for (std::size_t k = 0; k < 16; ++k) {
      std::size_t pos = prompt_tokens - 16 + k;
      EXPECT_EQ(lp["tokens"][pos], c.logprobs[k].token) << k;
      EXPECT_NEAR(lp["token_logprobs"][pos].get<double>(), *c.logprobs[k].logprob, 1e-4) << k;
      for (auto& alt : c.logprobs[k].top) EXPECT_NEAR(lp["top_logprobs"][pos][alt.token].get<double>(), alt.logprob, 1e-4);
    }
    // lm-evaluation-harness's reading: the greedy continuation is greedy.
    if (max_tokens == 1) {
      auto [sum, greedy] = lm_eval_score(choice, prompt_tokens - 16);
      EXPECT_TRUE(greedy);
      double want = 0;
      for (auto& t : c.logprobs) want += *t.logprob;
      EXPECT_NEAR(sum, want, 1e-3);
    }
  }
  // wand's client passes echo through and splits the prompt's part off again.
  GenerateOptions e = g;
  e.echo = true;
  e.max_tokens = 4;
  auto want = local_->complete(kPrompt, e);
  auto got = remote_->complete(kPrompt, e);
  ASSERT_TRUE(want && got) << (want ? got.error().message : want.error().message);
  EXPECT_EQ((*got)[0].text, (*want)[0].text);
  ASSERT_EQ((*got)[0].prompt_logprobs.size(), (*want)[0].prompt_logprobs.size());
  ASSERT_EQ((*got)[0].prompt_logprobs.size(), std::size_t((*want)[0].prompt_tokens));
  EXPECT_FALSE((*got)[0].prompt_logprobs[0].logprob);
  std::string prompt_text;
  for (std::size_t k = 0; k < (*got)[0].prompt_logprobs.size(); ++k) {
    auto &a = (*got)[0].prompt_logprobs[k], &b = (*want)[0].prompt_logprobs[k];
    prompt_text += a.token;
    EXPECT_EQ(a.token, b.token);
    if (k > 0) {
      EXPECT_NEAR(*a.logprob, *b.logprob, 1e-4);
    }
    EXPECT_EQ(a.top.size(), k > 0 ? 3u : 0u);
  }
  EXPECT_EQ(prompt_text, kPrompt);
  ASSERT_EQ((*got)[0].logprobs.size(), 4u);
}

// The requests lm-evaluation-harness's local-completions model sends, field for field: token-id
// prompts in a batch (tokenized_requests, the default), string prompts in a batch, generation.
TEST_F(Live, LmEvaluationHarnessRequestsAreAnswered) {
  auto model = Model::load(kModel);
  ASSERT_TRUE(model) << model.error().message;
  const Tokenizer& tok = (*model)->tokenizer();
  GenerateOptions g;
  g.max_tokens = 6;
  auto gen = local_->complete(kPrompt, g);
  ASSERT_TRUE(gen);
  std::vector<int32_t> ctx = tok.encode(kPrompt, tok.add_bos_default());
  std::vector<int32_t> likely = ctx, unlikely = ctx;
  for (Token t : tok.encode((*gen)[0].text)) likely.push_back(t);
  for (Token t : tok.encode("pens pens pens")) unlikely.push_back(t);
  auto r = post(server_->port(), "/v1/completions",
                {{"model", "wand-pot"}, {"prompt", Json::array({likely, unlikely})}, {"temperature", 0}, {"max_tokens", 1},
                 {"logprobs", 1}, {"seed", 1234}, {"echo", true}});
  ASSERT_EQ(r.status, 200) << r.body.dump();
  ASSERT_EQ(r.body["choices"].size(), 2u);
  std::pair<double, bool> scores[2];
  for (auto& choice : r.body["choices"]) {
    int i = choice["index"];
    auto& ids = i == 0 ? likely : unlikely;
    ASSERT_EQ(choice["logprobs"]["tokens"].size(), ids.size() + 1);  // the prompt as sent, then one token
    EXPECT_EQ(joined(choice["logprobs"]["tokens"]), choice["text"]);
    scores[i] = lm_eval_score(choice, ctx.size());
  }
  EXPECT_TRUE(scores[0].second);
  EXPECT_FALSE(scores[1].second);
  EXPECT_GT(scores[0].first, scores[1].first);
  EXPECT_LT(scores[1].first, -5.0);
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], likely.size() + unlikely.size());
  // wand's client sends token ids as they are, and reads the same scores back.
  GenerateOptions score;
  score.echo = score.logprobs = true;
  score.max_tokens = 0;
  auto here = local_->complete_tokens(unlikely, score), there = remote_->complete_tokens(unlikely, score);
  ASSERT_TRUE(here && there) << (here ? there.error().message : here.error().message);
  ASSERT_EQ((*there)[0].prompt_logprobs.size(), unlikely.size());
  double sum = 0;
  for (std::size_t k = ctx.size(); k < unlikely.size(); ++k) {
    EXPECT_NEAR(*(*there)[0].prompt_logprobs[k].logprob, *(*here)[0].prompt_logprobs[k].logprob, 1e-4);
    sum += *(*there)[0].prompt_logprobs[k].logprob;
  }
  EXPECT_NEAR(sum, scores[1].first, 1e-3);

  // tokenized_requests=False with batch_size 2: strings; each prompt has its own choice.
  auto s = post(server_->port(), "/v1/completions",
                {{"model", "wand-pot"}, {"prompt", Json::array({kPrompt, "Question: 1+1?\nProgram:\n"})}, {"temperature", 0},
                 {"max_tokens", 1}, {"logprobs", 1}, {"seed", 1234}, {"echo", true}});
  ASSERT_EQ(s.status, 200) << s.body.dump();
  ASSERT_EQ(s.body["choices"].size(), 2u);
  EXPECT_EQ(s.body["choices"][0]["text"].get<std::string>().rfind(kPrompt, 0), 0u);
  EXPECT_EQ(s.body["choices"][1]["text"].get<std::string>().rfind("Question: 1+1?\nProgram:\n", 0), 0u);

  // generate_until: the greedy text, cut at the stop sequence.
  GenerateOptions until;
  until.max_tokens = 48;
  until.stop = {"\n\n"};
  auto want = local_->complete(kPrompt, until);
  ASSERT_TRUE(want);
  auto q = post(server_->port(), "/v1/completions",
                {{"prompt", Json::array({kPrompt})}, {"model", "wand-pot"}, {"max_tokens", 48}, {"temperature", 0},
                 {"stop", Json::array({"\n\n"})}, {"seed", 1234}});
  ASSERT_EQ(q.status, 200) << q.body.dump();
  EXPECT_EQ(q.body["choices"][0]["text"], (*want)[0].text);
}

// logprobs: N gives the N most likely tokens per position, most likely first; the tokens, which
// a stop sequence cuts like the text, add up to the text.
TEST_F(Live, LogprobsListTheTopAlternativesAndTheTokensSpellTheText) {
  auto chat = post(server_->port(), "/v1/chat/completions",
                   {{"messages", one_user_message("Ann has 5 pens and buys 7 more.")},
                    {"max_tokens", 8}, {"temperature", 0}, {"logprobs", true}, {"top_logprobs", 3}});
  ASSERT_EQ(chat.status, 200) << chat.body.dump();
  auto& content = chat.body["choices"][0]["logprobs"]["content"];
  ASSERT_GT(content.size(), 0u);
  std::string text;
  for (auto& t : content) {
    text += t["token"].get<std::string>();
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    EXPECT_EQ(t["top_logprobs"][0]["token"], t["token"]);  // greedy: the chosen token is the most likely
    EXPECT_FLOAT_EQ(t["top_logprobs"][0]["logprob"].get<float>(), t["logprob"].get<float>());
    for (int k = 1; k < 3; ++k) EXPECT_GE(t["top_logprobs"][k - 1]["logprob"], t["top_logprobs"][k]["logprob"]);
    std::string bytes;
    for (auto& b : t["bytes"]) bytes += char(b.get<int>());
    EXPECT_EQ(bytes, t["token"]);
  }
  EXPECT_EQ(text, chat.body["choices"][0]["message"]["content"]);

  for (std::string stop : {"answer", "nswer", "="}) {
    auto r = post(server_->port(), "/v1/completions", {{"prompt", kPrompt}, {"max_tokens", 60}, {"stop", Json::array({stop})}, {"logprobs", 2}});
    ASSERT_EQ(r.status, 200) << r.body.dump();
    auto& choice = r.body["choices"][0];
    EXPECT_EQ(choice["finish_reason"], "stop") << stop;
    std::string t = choice["text"];
    EXPECT_EQ(t.find(stop), std::string::npos) << stop;
    EXPECT_EQ(joined(choice["logprobs"]["tokens"]), t) << "stop " << stop;
    for (auto& top : choice["logprobs"]["top_logprobs"]) EXPECT_EQ(top.size(), 2u);
  }
}

TEST_F(Live, APromptLongerThanTheContextIsA400ContextLengthExceeded) {
  std::string longer;
  for (int i = 0; i < 300; ++i) longer += "7 ";  // every digit is a token: past the 256-token context
  std::vector<int> ids(300, 5);
  for (auto [path, body, param] : std::vector<std::tuple<std::string, Json, std::string>>{
           {"/v1/completions", {{"prompt", longer}}, "prompt"},
           {"/v1/completions", {{"prompt", ids}, {"echo", true}, {"logprobs", 1}, {"max_tokens", 0}}, "prompt"},
           {"/v1/chat/completions", {{"messages", one_user_message(longer)}}, "messages"}}) {
    auto r = post(server_->port(), path, body);
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.body["error"]["code"], "context_length_exceeded") << r.body.dump();
    EXPECT_EQ(r.body["error"]["param"], param);
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find("context"), std::string::npos);
  }
  // Both backends report it by its code, so the CLI can call it bad input.
  for (Backend* b : {local_.get(), remote_.get()}) {
    auto r = b->complete(longer, {});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, kContextLengthExceeded) << r.error().message;
  }
  auto bad_id = post(server_->port(), "/v1/completions", {{"prompt", {1, 2, 999999}}});
  EXPECT_EQ(bad_id.status, 400) << bad_id.body.dump();
  EXPECT_EQ(bad_id.body["error"]["param"], "prompt");
  EXPECT_NE(bad_id.body["error"]["message"].get<std::string>().find("999999"), std::string::npos);
}

// `curl -d` sends application/x-www-form-urlencoded: the body is JSON all the same, under the
// server's size limit, not refused as a form past 8 KB.
TEST_F(Live, AJsonBodyIsJsonWhateverItsContentType) {
  Json body = {{"prompt", kPrompt}, {"max_tokens", 3}, {"user", std::string(20000, 'x')}};
  for (std::string type : {"application/x-www-form-urlencoded", "text/plain", "application/json"}) {
    auto r = post_raw(server_->port(), "/v1/completions", body.dump(), type);
    EXPECT_EQ(r.status, 200) << type << ": " << r.body.dump();
    EXPECT_EQ(r.body["usage"]["completion_tokens"], 3) << type;
  }
  auto huge = post_raw(server_->port(), "/v1/completions", std::string(17u << 20, ' '), "application/x-www-form-urlencoded");
  EXPECT_EQ(huge.status, 413);
  EXPECT_TRUE(huge.body.contains("error")) << huge.body.dump();
}

// wand's models are question-to-program models, not chat models: a chat is its one user message
// in the model's recorded prompt format (wand.prompt_format); anything else is refused.
TEST_F(Live, ChatToAWandModelIsTheQuestionInItsPromptFormat) {
  std::string q = "Ann has 5 pens and buys 7 more. How many pens does she have?";
  auto chat = post(server_->port(), "/v1/chat/completions",
                   {{"messages", one_user_message(q)}, {"max_tokens", 48}, {"temperature", 0}, {"stop", Json::array({"\n\n"})}});
  auto done = post(server_->port(), "/v1/completions",
                   {{"prompt", *format_question("pot", q)}, {"max_tokens", 48}, {"temperature", 0},
                    {"stop", Json::array({"\n\n"})}});
  ASSERT_EQ(chat.status, 200) << chat.body.dump();
  ASSERT_EQ(done.status, 200) << done.body.dump();
  EXPECT_EQ(chat.body["choices"][0]["message"]["content"], done.body["choices"][0]["text"]);
  EXPECT_NE(done.body["choices"][0]["text"].get<std::string>().find("answer = "), std::string::npos);
  auto two = post(server_->port(), "/v1/chat/completions",
                  {{"messages", Json::array({Json{{"role", "system"}, {"content", "Be brief."}},
                                             Json{{"role", "user"}, {"content", q}}})}});
  EXPECT_EQ(two.status, 400) << two.body.dump();
  EXPECT_EQ(two.body["error"]["param"], "messages");
  EXPECT_NE(two.body["error"]["message"].get<std::string>().find("not a chat model"), std::string::npos);
  auto blank = post(server_->port(), "/v1/chat/completions", {{"messages", one_user_message("  ")}});
  EXPECT_EQ(blank.status, 400) << blank.body.dump();
  EXPECT_NE(blank.body["error"]["message"].get<std::string>().find("messages[0].content is empty"), std::string::npos);
}

// Without a seed, sampled requests differ (as OpenAI's API does); with one, they repeat.
TEST_F(Live, SamplingWithoutASeedDiffersAndASeedRepeats) {
  Json body = {{"prompt", "Question: "}, {"max_tokens", 24}, {"temperature", 2.0}};
  std::set<std::string> texts;
  for (int i = 0; i < 4; ++i) {
    auto r = post(server_->port(), "/v1/completions", body);
    ASSERT_EQ(r.status, 200) << r.body.dump();
    texts.insert(r.body["choices"][0]["text"].get<std::string>());
  }
  EXPECT_GT(texts.size(), 1u);
  body["seed"] = 5;
  auto a = post(server_->port(), "/v1/completions", body), b = post(server_->port(), "/v1/completions", body);
  EXPECT_EQ(a.body["choices"][0]["text"], b.body["choices"][0]["text"]);
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

// A caller's deadline or cancel flag ends a request the server never answers, within about a
// second (libcurl's progress callback), as kCancelled, and no retry is made.
TEST(Client, ADeadlineOrCancelEndsARequestTheServerNeverAnswers) {
  std::atomic<bool> release{false};  // outlives the server: its handlers wait on it
  FakeServer f;
  f.http.Post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++f.requests;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    res.set_content(R"({"choices":[{"index":0,"text":"late","finish_reason":"stop"}]})", "application/json");
  });
  f.start();
  auto b = must_open(f.spec(), fast_retries());
  auto timed = [&](const GenerateOptions& o) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = b->complete("p", o);
    return std::pair{std::move(r), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
  };
  GenerateOptions by_deadline;
  by_deadline.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  auto [r1, s1] = timed(by_deadline);
  ASSERT_FALSE(r1);
  EXPECT_EQ(r1.error().code, kCancelled) << r1.error().message;
  EXPECT_GE(s1, 0.5);
  EXPECT_LT(s1, 3.0);
  std::atomic<bool> stop{false};
  GenerateOptions by_flag;
  by_flag.cancel = &stop;
  std::thread signal([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  auto [r2, s2] = timed(by_flag);
  signal.join();
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, kCancelled) << r2.error().message;
  EXPECT_LT(s2, 3.0);
  EXPECT_EQ(f.requests, 2) << "a cancelled request is not retried";
  release = true;
}

// GET /models (the prompt format and context length a wand server lists) is asked inside a
// caller's budget: a server that never answers it gives the generic defaults after at most 10 s
// (the request timeout when shorter), not after the whole request timeout (300 s by default).
TEST(Client, AModelListingThatNeverComesGivesTheDefaultsSoon) {
  std::atomic<bool> release{false};
  FakeServer f;
  f.http.Get("/v1/models", [&](const httplib::Request&, httplib::Response& res) {
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    res.set_content(R"({"data":[]})", "application/json");
  });
  f.start();
  auto o = fast_retries();
  o.timeout_s = 60;
  auto b = must_open(f.spec(), o);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(b->context_length(), 0);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 13.0) << "the listing waited for the request timeout";
  release = true;
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
      res.set_content(Json{{"choices", {{{"index", 0}, {"text", "seed " + std::to_string(body["seed"].get<uint64_t>())},
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
    for (int i = 0; i < 3; ++i)  // the seeds the local engine gives its samples
      EXPECT_EQ((*r)[i].text, "seed " + std::to_string(sample_seed(10, i))) << "reject=" << reject;
    EXPECT_EQ(f.requests, reject ? 4 : 3);
    // The backend remembers: the next n > 1 call goes straight to single requests.
    f.requests = 0;
    ASSERT_TRUE(b->complete("p", o));
    EXPECT_EQ(f.requests, 3);
    EXPECT_EQ(with_n, 1);
  }
}

// A server that refuses the request itself (not n) refuses the single requests too: that error is
// the answer, and n is not blamed or remembered as unsupported.
TEST(Client, ARequestRefusedForAnotherReasonDoesNotBlameN) {
  FakeServer f;
  std::atomic<int> with_n{0};
  f.http.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    ++f.requests;
    if (Json::parse(req.body).value("n", 1) > 1) ++with_n;
    res.status = 400;
    res.set_content(R"({"error":{"message":"this model is not a chat model"}})", "application/json");
  });
  f.start();
  auto b = must_open(f.spec(), fast_retries());
  GenerateOptions o;
  o.n = 2;
  for (int round = 0; round < 2; ++round) {
    auto r = b->complete("p", o);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("this model is not a chat model"), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("n rejected"), std::string::npos) << r.error().message;
  }
  EXPECT_EQ(with_n, 2) << "each call tries n again: it was never shown to be the cause";
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
