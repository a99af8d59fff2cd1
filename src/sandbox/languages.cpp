// The language table. Adding a language is one entry: where its source goes, how to
// compile it (if at all), how to run it. Python alone runs in the fork-server itself.
#include <algorithm>

#include "sandbox/sandbox.h"

namespace wand::sandbox {

const std::vector<Language>& languages() {
  static const std::vector<Language> table = {
      {"python", "main.py", {}, {}, {".py"}},
      {"c", "main.c", {"/usr/bin/gcc", "-O2", "-std=gnu17", "-pipe", "-o", "main", "main.c", "-lm"}, {"./main"},
       {".c"}},
      {"cpp",
       "main.cpp",
       {"/usr/bin/g++", "-O2", "-std=gnu++17", "-pipe", "-o", "main", "main.cpp"},
       {"./main"},
       {".cpp", ".cc", ".cxx"}},
      {"js", "main.js", {}, {"/usr/bin/node", "main.js"}, {".js", ".mjs"}},
      {"bash", "main.sh", {}, {"/bin/bash", "main.sh"}, {".sh", ".bash"}},
  };
  return table;
}

const Language* find_language(std::string_view name) {
  if (name == "c++") name = "cpp";
  if (name == "javascript" || name == "node") name = "js";
  if (name == "py" || name == "python3") name = "python";
  if (name == "sh") name = "bash";
  for (const auto& l : languages())
    if (l.name == name) return &l;
  return nullptr;
}

const Language* language_for_path(std::string_view path) {
  for (const auto& l : languages())
    for (const auto& ext : l.extensions)
      if (path.size() > ext.size() && path.substr(path.size() - ext.size()) == ext) return &l;
  return nullptr;
}

}  // namespace wand::sandbox
