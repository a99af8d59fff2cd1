// Internal: the interface between the `wand` binary and wand_server.so, the HTTP server as a
// module loaded on first use (see common/module.h). Virtual calls cross the boundary, so the
// module's own Server (same name as the loader's) never clashes with the binary's.
#pragma once
#include "server/server.h"

namespace wand::server {

struct ServerModule {
  virtual ~ServerModule() = default;
  virtual Result<int> bind() = 0;
  virtual void run() = 0;
  virtual void stop() = 0;
};

// extern "C" ServerModule* wand_server_create(llm::Backend*, const Options&); null: no model.
using CreateServer = ServerModule* (*)(llm::Backend*, const Options&);
inline constexpr const char* kServerModule = "wand_server.so";
inline constexpr const char* kServerEntry = "wand_server_create";

}  // namespace wand::server
