// The entry point of wand_mcp_http.so (see common/module.h and http_loader.cpp): http_post
// behind one extern "C" name.
#include "tools/mcp/mcp_client.h"

using OnData = std::function<bool(long, const wand::tools::mcp::HttpResponse&, std::string_view)>;

extern "C" __attribute__((visibility("default"))) void wand_mcp_http_post(
    const wand::tools::mcp::HttpRequest& req, const OnData& on_data,
    wand::Result<wand::tools::mcp::HttpResponse>& out) {
  out = wand::tools::mcp::http_post(req, on_data);
}
