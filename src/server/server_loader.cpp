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

Server::Server(llm::Backend& backend, Options opt) : impl_(std::make_unique<Impl>()) {
  auto create = module_symbol(kServerModule, kServerEntry);
  if (create)
    impl_->module.reset(reinterpret_cast<CreateServer>(*create)(backend, opt));
  else
    impl_->error = create.error();
}

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
