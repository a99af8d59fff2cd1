// The language table. Adding a language is one entry: where its source goes, how to
// compile it (if at all), how to run it. Python alone runs in the fork-server itself.
#include <fmt/core.h>

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

std::string known_languages() {
  std::string names;
  for (const auto& l : languages()) names += (names.empty() ? "" : ", ") + l.name;
  return names;
}

Result<const Language*> choose_language(std::string_view name, std::string_view path) {
  if (!name.empty()) {
    if (const Language* l = find_language(name)) return l;
    return Error{fmt::format("unknown language '{}' (known: {})", name, known_languages())};
  }
  if (path.empty() || path == "-") return find_language("python");
  if (const Language* l = language_for_path(path)) return l;
  std::string_view base = path.substr(path.rfind('/') + 1);  // npos + 1 == 0
  std::size_t dot = base.rfind('.');
  std::string exts;
  for (const auto& l : languages())
    for (const auto& e : l.extensions) exts += (exts.empty() ? "" : " ") + e;
  std::string what = dot == std::string_view::npos || dot == 0
                         ? "it has no file extension"
                         : fmt::format("unknown file extension '{}'", base.substr(dot));
  return Error{fmt::format("{}: cannot tell the language: {} (known extensions: {}; languages: {})", path, what,
                           exts, known_languages())};
}

}  // namespace wand::sandbox
