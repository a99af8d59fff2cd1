// The entry point of wand_openai.so, the OpenAI client as a module (see common/module.h and
// openai_loader.cpp): the same code as in the static library, behind one extern "C" name.
#include "llm/backends.h"

extern "C" __attribute__((visibility("default"))) void wand_openai_open(
    const std::string& spec, const wand::llm::BackendOptions& opt,
    wand::Result<std::unique_ptr<wand::llm::Backend>>& out) {
  out = wand::llm::open_openai_backend(spec, opt);
}
