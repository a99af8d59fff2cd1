#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <fmt/core.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/text.h"
#include "llm/llm.h"
#include "sandbox/sandbox.h"
#include "server/exec_api.h"
#include "server/server.h"

namespace wand::cli {

Command add_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve",
                                 "Serve a model over OpenAI-compatible HTTP: /v1/chat/completions, /v1/completions "
                                 "(streaming too), /v1/models");
  struct Args {
    std::string model = default_model_spec(), name;
    server::Options opt;
    llm::BackendOptions engine;  // --threads, --kv-cache
    bool exec = false, no_model = false;
    std::size_t exec_cells = 0, max_body_mb = 16, max_response_mb = 64;
    server::ExecLimits limits;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-m,--model", a->model, "local:PATH.gguf (the embedded engine) or openai:URL/MODEL")
      ->capture_default_str();
  cmd->add_option("--host", a->opt.host, "Address to listen on (127.0.0.1: this machine only)")->capture_default_str();
  cmd->add_option("-p,--port", a->opt.port, "Port (0: any free port; the chosen one is printed)")
      ->capture_default_str()
      ->check(number({.lo = 0, .hi = 65535, .integer = true}));
  cmd->add_option("--name", a->name, "Model id clients ask for (default: the GGUF file's name without .gguf)");
  add_threads_option(cmd, a->engine.threads);
  add_kv_cache_option(cmd, a->engine.kv_cache);
  cmd->add_option("--max-tokens-limit", a->opt.max_tokens_limit, "Largest max_tokens a request may ask for")
      ->capture_default_str()
      ->check(number({.lo = 1, .hi = 1 << 20, .integer = true}));
  auto* exec = cmd->add_flag("--exec", a->exec,
                "Also serve code execution: POST /run_code (SandboxFusion's API), /v1/exec (wand's JSON-lines schema), "
                "/get_reward (OpenRLHF's remote reward)");
  cmd->add_option("--exec-cells", a->exec_cells, "Sandbox cells for --exec (0 = one per core)")->check(parallel(true))
      ->needs(exec);
  cmd->add_option("--max-timeout", a->limits.max.timeout_s, "--exec: the longest run a request may ask for, in seconds")
      ->capture_default_str()
      ->check(number(sandbox::kTimeoutRange))
      ->needs(exec);
  cmd->add_option("--max-memory-mb", a->limits.max.memory_mb, "--exec: the most memory a run may ask for, in MiB")
      ->capture_default_str()
      ->check(number(sandbox::kMemoryMbRange))
      ->needs(exec);
  cmd->add_option("--max-concurrent", a->limits.max_concurrent,
                  "--exec: execution requests in flight before 429 (0 = twice the cells)")
      ->capture_default_str()
      ->check(number({.lo = 0, .hi = 1 << 20, .integer = true}))
      ->needs(exec);
  cmd->add_option("--max-body-mb", a->max_body_mb, "--exec: largest execution request body, in MiB (413 past it)")
      ->capture_default_str()
      ->check(number({.lo = 1, .hi = 1024, .integer = true}))
      ->needs(exec);
  cmd->add_option("--max-response-mb", a->max_response_mb,
                  "--exec: most output (stdout, stderr, files) one response carries, in MiB (413 past it)")
      ->capture_default_str()
      ->check(number({.lo = 1, .hi = 1 << 20, .integer = true}))
      ->needs(exec);
  // Execution workers behind a load balancer need no model: loading one costs memory and start time.
  cmd->add_flag("--no-model", a->no_model, "--exec only: load no model; the OpenAI endpoints answer 404")
      ->needs(exec)
      ->excludes(cmd->get_option("--model"), cmd->get_option("--name"), cmd->get_option("--threads"),
                 cmd->get_option("--kv-cache"), cmd->get_option("--max-tokens-limit"));
  auto* token = cmd->add_option("--token", a->opt.token, "Require 'Authorization: Bearer TOKEN' on every request but /health")
                    ->envname("WAND_SERVE_TOKEN");
  cmd->add_option("--http-threads", a->opt.http_threads,
                  "Connections served at once (an idle client holds one for up to 5 s; more wait)")
      ->capture_default_str()
      ->check(number({.lo = 1, .hi = 4096, .integer = true}));
  return [a, token] {
    // An empty token (`--token "$TOKEN"` with TOKEN unset) would leave the server open, silently.
    const char* env_token = std::getenv("WAND_SERVE_TOKEN");
    if (a->opt.host.empty()) {  // httplib reads "" as localhost over IPv6 only, and the URL printed would be http://:PORT
      fmt::print(stderr, "wand serve: --host: empty (127.0.0.1 for this machine only, 0.0.0.0 for every interface)\n");
      return kExitBadInput;
    }
    if ((token->count() || env_token) && is_blank(a->opt.token)) {
      fmt::print(stderr, "wand serve: {}: empty or blank (give the token, or leave the option out to serve without one)\n",
                 token->count() ? "--token" : "WAND_SERVE_TOKEN");
      return kExitBadInput;
    }
    // Code execution for anyone who can reach the address: said, not refused (a private network may be
    // the point), since the sandbox is what stands between them and the host.
    const bool loopback = a->opt.host == "127.0.0.1" || a->opt.host == "localhost" || a->opt.host == "::1";
    if (a->exec && !loopback && a->opt.token.empty())
      fmt::print(stderr, "wand serve: warning: --exec on {} without --token: anyone who reaches it runs code in the "
                         "sandbox; give --token (or $WAND_SERVE_TOKEN)\n", a->opt.host);
    // SIGINT/SIGTERM are taken by a thread that stops the server, so in-flight replies finish.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    std::unique_ptr<llm::Backend> backend;
    if (!a->no_model) {
      auto opened = llm::open_backend(a->model, a->engine);
      if (!opened) {
        fmt::print(stderr, "wand serve: {}\n", opened.error().message);
        return kExitBadInput;
      }
      backend = std::move(*opened);
      if (a->name.empty()) {
        std::string id = backend->id();
        a->name = id.starts_with("local:") ? std::filesystem::path(id.substr(6)).stem().string()
                                           : id.substr(id.rfind('/') + 1);
      }
      a->opt.model_name = a->name;
    }
    std::unique_ptr<sandbox::Sandbox> sb;
    std::unique_ptr<server::ExecApi> exec;
    if (a->exec) {
      sandbox::Options so;
      so.cells = a->exec_cells;
      auto made = sandbox::Sandbox::create(so);
      if (!made) {
        fmt::print(stderr, "wand serve: --exec: {}\n", made.error().message);
        return kExitSandbox;
      }
      sb = std::move(*made);
      a->limits.max_response_bytes = a->max_response_mb << 20;
      exec = std::make_unique<server::ExecApi>(*sb, a->limits);
      a->opt.exec = exec.get();
      a->opt.max_exec_body_bytes = a->max_body_mb << 20;
    }
    server::Server srv = backend ? server::Server(*backend, a->opt) : server::Server(a->opt);
    auto port = srv.bind();
    if (!port) {  // its module missing beside the binary, or --host/--port not ours to take: usage, not a failed run
      fmt::print(stderr, "wand serve: {}\n", port.error().message);
      return kExitBadInput;
    }
    std::string what = backend ? fmt::format("model '{}' ({}{})", a->name, backend->id(),
                                             a->engine.kv_cache != llm::BackendOptions{}.kv_cache
                                                 ? ", " + a->engine.kv_cache + " KV cache"
                                                 : "")
                               : "no model";
    fmt::print(stderr, "wand serve: {} at http://{}:{}/v1{} — Ctrl-C stops\n", what, a->opt.host, *port,
               a->exec ? fmt::format("; code execution on {} cells", sb->cells()) : "");
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
