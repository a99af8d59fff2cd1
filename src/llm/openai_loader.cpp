// open_openai_backend for the `wand` binary: loads the OpenAI client (and with it libcurl) from
// wand_openai.so on first use instead of linking it, so commands that never talk to a server do
// not pay for mapping libcurl's ~25 libraries at start. The binary links this object, whose
// definition takes the place of openai_backend.cpp's (the archive member is then never pulled).
#include <fmt/core.h>

#include "common/module.h"
#include "llm/backends.h"

namespace wand::llm {

Result<std::unique_ptr<Backend>> open_openai_backend(const std::string& spec, const BackendOptions& opt) {
  using Open = void (*)(const std::string&, const BackendOptions&, Result<std::unique_ptr<Backend>>&);
  auto entry = module_symbol("wand_openai.so", "wand_openai_open");
  if (!entry) return Error{fmt::format("model '{}': {}", spec, entry.error().message)};
  Result<std::unique_ptr<Backend>> out = Error{"not opened"};
  reinterpret_cast<Open>(*entry)(spec, opt, out);
  return out;
}

}  // namespace wand::llm
