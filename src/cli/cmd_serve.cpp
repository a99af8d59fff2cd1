#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include <fmt/core.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "llm/llm.h"
#include "server/server.h"

namespace wand::cli {

Command add_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve",
                                 "Serve a model over OpenAI-compatible HTTP: /v1/chat/completions, /v1/completions "
                                 "(streaming too), /v1/models");
  struct Args {
    std::string model = default_model_spec(), name;
    server::Options opt;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-m,--model", a->model, "local:PATH.gguf (the embedded engine) or openai:URL/MODEL")
      ->capture_default_str();
  cmd->add_option("--host", a->opt.host, "Address to listen on (127.0.0.1: this machine only)")->capture_default_str();
  cmd->add_option("-p,--port", a->opt.port, "Port (0: any free port; the chosen one is printed)")
      ->capture_default_str()
      ->check(number({.lo = 0, .hi = 65535, .integer = true}));
  cmd->add_option("--name", a->name, "Model id clients ask for (default: the GGUF file's name without .gguf)");
  cmd->add_option("--threads", a->threads, "Engine threads (0 = every core)")->check(parallel(true));
  cmd->add_option("--max-tokens-limit", a->opt.max_tokens_limit, "Largest max_tokens a request may ask for")
      ->capture_default_str()
      ->check(number({.lo = 1, .hi = 1 << 20, .integer = true}));
  return [a] {
    // SIGINT/SIGTERM are taken by a thread that stops the server, so in-flight replies finish.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    llm::BackendOptions bo;
    bo.threads = a->threads;
    auto backend = llm::open_backend(a->model, bo);
    if (!backend) {
      fmt::print(stderr, "wand serve: {}\n", backend.error().message);
      return kExitBadInput;
    }
    if (a->name.empty()) {
      std::string id = (*backend)->id();
      a->name = id.starts_with("local:") ? std::filesystem::path(id.substr(6)).stem().string()
                                         : id.substr(id.rfind('/') + 1);
    }
    a->opt.model_name = a->name;
    server::Server srv(**backend, a->opt);
    auto port = srv.bind();
    if (!port) {  // its module missing beside the binary, or --host/--port not ours to take: usage, not a failed run
      fmt::print(stderr, "wand serve: {}\n", port.error().message);
      return kExitBadInput;
    }
    fmt::print(stderr, "wand serve: model '{}' ({}) at http://{}:{}/v1 — Ctrl-C stops\n", a->name, (*backend)->id(),
               a->opt.host, *port);
    std::fflush(stderr);
    std::thread stopper([&] {
      int sig = 0;
      sigwait(&stop_signals, &sig);
      if (sig) srv.stop();
    });
    srv.run();
    // run() also returns on its own (listener failure): wake the stopper thread.
    pthread_kill(stopper.native_handle(), SIGTERM);
    stopper.join();
    fmt::print(stderr, "wand serve: stopped\n");
    return kExitOk;
  };
}

}  // namespace wand::cli
