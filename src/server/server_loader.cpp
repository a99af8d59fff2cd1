// Server for the `wand` binary: forwards to the real one in wand_server.so, loaded when a Server
// is made, so that only `wand serve` maps cpp-httplib and OpenSSL. The binary links this object
// instead of the wand_server library; a module that cannot be loaded fails bind() with the reason.
#include "common/module.h"
#include "server/module.h"

namespace wand::server {

struct Server::Impl {
  std::unique_ptr<ServerModule> module;
  Error error;
};

namespace {

std::unique_ptr<ServerModule> create(llm::Backend* backend, const Options& opt, Error& error) {
  auto entry = module_symbol(kServerModule, kServerEntry);
  if (!entry) {
    error = entry.error();
    return nullptr;
  }
  return std::unique_ptr<ServerModule>(reinterpret_cast<CreateServer>(*entry)(backend, opt));
}

}  // namespace

Server::Server(llm::Backend& backend, Options opt) : impl_(std::make_unique<Impl>()) {
  impl_->module = create(&backend, opt, impl_->error);
}
Server::Server(Options opt) : impl_(std::make_unique<Impl>()) { impl_->module = create(nullptr, opt, impl_->error); }

Server::~Server() = default;

Result<int> Server::bind() {
  if (!impl_->module) return impl_->error;
  return impl_->module->bind();
}

void Server::run() {
  if (impl_->module) impl_->module->run();
}

void Server::stop() {
  if (impl_->module) impl_->module->stop();
}

}  // namespace wand::server
