// http_get for the `wand` binary: loads the fetch (and with it libcurl) from wand_tools_http.so
// on first use instead of linking it. The binary links this object, whose definition takes the
// place of http.cpp's (the archive member is then never pulled).
#include <fmt/core.h>

#include "common/module.h"
#include "tools/builtins.h"

namespace wand::tools {

Result<Json> http_get(const std::string& url, const BuiltinOptions& opt, double timeout_s) {
  using Get = void (*)(const std::string&, const BuiltinOptions&, double, Result<Json>&);
  auto entry = module_symbol("wand_tools_http.so", "wand_tools_http_get");
  if (!entry) return Error{fmt::format("http_get: {}", entry.error().message)};
  Result<Json> out = Error{"not fetched"};
  reinterpret_cast<Get>(*entry)(url, opt, timeout_s, out);
  return out;
}

}  // namespace wand::tools
