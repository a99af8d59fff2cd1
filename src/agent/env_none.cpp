// A stand-in for env.cpp while the environments are not in the tree (CMakeLists.txt builds it
// only then): no environment is known, and asking for one says so.
#include <fmt/core.h>

#include "agent/env.h"

namespace wand::agent {

std::vector<std::string> environment_names() { return {}; }

Result<std::unique_ptr<Environment>> make_environment(const std::string& name, const std::string&, int, uint64_t) {
  return Error{fmt::format("unknown environment '{}': this build has no environments", name)};
}

Result<int> split_size(const std::string& name, const std::string&) {
  return Error{fmt::format("unknown environment '{}': this build has no environments", name)};
}

}  // namespace wand::agent
