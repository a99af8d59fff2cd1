// The entry point of wand_server.so: the real Server (server.cpp) behind ServerModule.
#include "server/module.h"

namespace {

struct Module final : wand::server::ServerModule {
  Module(wand::llm::Backend* b, wand::server::Options o)
      : server(b ? wand::server::Server(*b, std::move(o)) : wand::server::Server(std::move(o))) {}
  wand::Result<int> bind() override { return server.bind(); }
  void run() override { server.run(); }
  void stop() override { server.stop(); }
  wand::server::Server server;
};

}  // namespace

extern "C" __attribute__((visibility("default"))) wand::server::ServerModule* wand_server_create(
    wand::llm::Backend* backend, const wand::server::Options& opt) {
  return new Module(backend, opt);
}
