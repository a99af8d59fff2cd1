#include "common/module.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <filesystem>

#include <fmt/core.h>

namespace wand {

Result<std::string> executable_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return Error{fmt::format("cannot locate the running executable: {}", ec.message())};
  return exe.parent_path().string();
}

Result<void*> module_symbol(std::string_view file, const char* symbol) {
  // Next to the executable rather than on the library path: the module must match this build
  // of wand exactly (it shares its C++ types), so a system-wide copy must never be picked up.
  auto dir = executable_dir();
  if (!dir) return Error{fmt::format("cannot load '{}': {}", file, dir.error().message)};
  std::string path = (std::filesystem::path(*dir) / file).string();
  // RTLD_LOCAL: the module's own copies of templates stay private; it resolves wand's own
  // functions (logging, JSON) from the executable, which exports them.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    return Error{fmt::format("cannot load the module '{}' (installed next to the wand binary): {}", path,
                             why ? why : "unknown error")};
  }
  void* entry = dlsym(handle, symbol);
  if (!entry) return Error{fmt::format("module '{}' has no entry point '{}': wrong version?", path, symbol)};
  return entry;
}

}  // namespace wand
