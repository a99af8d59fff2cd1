// Optional parts of wand that live in shared modules next to the `wand` binary and are loaded
// (dlopen) on first use, so that commands which do not need them start without mapping and
// relocating their libraries: the OpenAI client (libcurl and its ~25 dependencies) and the HTTP
// server (cpp-httplib, OpenSSL). A one-shot `wand exec` starts in a few milliseconds because of it.
#pragma once
#include <string>
#include <string_view>

#include "common/status.h"

namespace wand {

// The address of `symbol` (an extern "C" entry point) in the module `file` (e.g.
// "wand_openai.so"), looked up in the directory of the running executable. The module stays
// loaded for the life of the process. Errors name the module's path and the loader's reason.
Result<void*> module_symbol(std::string_view file, const char* symbol);

// The folder of the running executable (/proc/self/exe's), or an error saying why not. Modules,
// wand-train and an installed copy's models are found relative to it.
Result<std::string> executable_dir();

}  // namespace wand
