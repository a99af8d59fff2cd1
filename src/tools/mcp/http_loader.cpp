// http_post for the `wand` binary: loads libcurl's part of the MCP client from wand_mcp_http.so
// on first use instead of linking it (as llm/openai_loader.cpp does for the OpenAI client).
#include <fmt/core.h>

#include "common/module.h"
#include "tools/mcp/mcp_client.h"

namespace wand::tools::mcp {

Result<HttpResponse> http_post(const HttpRequest& req,
                               const std::function<bool(long, const HttpResponse&, std::string_view)>& on_data) {
  using Post = void (*)(const HttpRequest&, const std::function<bool(long, const HttpResponse&, std::string_view)>&,
                        Result<HttpResponse>&);
  auto entry = module_symbol("wand_mcp_http.so", "wand_mcp_http_post");
  if (!entry) return Error{fmt::format("MCP server '{}': {}", req.url, entry.error().message)};
  Result<HttpResponse> out = Error{"not sent"};
  reinterpret_cast<Post>(*entry)(req, on_data, out);
  return out;
}

}  // namespace wand::tools::mcp
