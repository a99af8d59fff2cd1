// `wand serve`: any llm::Backend (usually the embedded engine) behind OpenAI-compatible HTTP
// endpoints — POST /v1/completions, POST /v1/chat/completions (both also streamed as
// server-sent events), GET /v1/models, GET /health — so OpenAI clients can use wand's models.
// Bad requests get 4xx with OpenAI's error shape {"error": {"message", "type", "param", "code"}}.
#pragma once
#include <memory>
#include <string>

#include "common/status.h"
#include "llm/llm.h"

namespace wand::server {

class ExecApi;  // exec_api.h

struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;          // 0: any free port (bind() says which)
  std::string model_name;   // the id clients use; requests naming another model get 404
  int max_tokens_limit = 4096;
  int max_n = 16;
  // The execution endpoints (/run_code, /v1/exec, /get_reward; exec_api.h), served when set.
  ExecApi* exec = nullptr;
  std::size_t max_exec_body_bytes = 16u << 20;  // larger bodies to them get 413
  // When set, every request but GET /health needs "Authorization: Bearer <token>" (else 401).
  std::string token;
  // Connections served at once (worker threads); more wait for a worker.
  int http_threads = 64;
};

class Server {
 public:
  Server(llm::Backend& backend, Options opt);
  // No model: only the execution endpoints (opt.exec) and /health answer; generation requests
  // get 404 saying so, /v1/models lists none.
  explicit Server(Options opt);
  ~Server();
  // Binds and listens; returns the port. Connections queue until run().
  Result<int> bind();
  void run();   // serves until stop(); call after bind()
  void stop();  // safe from another thread

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wand::server
