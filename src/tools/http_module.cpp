// The entry point of wand_tools_http.so, http_get's fetch as a module (see common/module.h and
// http_loader.cpp): the same code as in the static library, behind one extern "C" name.
#include "tools/builtins.h"

extern "C" __attribute__((visibility("default"))) void wand_tools_http_get(const std::string& url,
                                                                          const wand::tools::BuiltinOptions& opt,
                                                                          double timeout_s, wand::Result<wand::Json>& out) {
  out = wand::tools::http_get(url, opt, timeout_s);
}
