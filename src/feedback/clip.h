// Internal to feedback: shortening texts quoted in feedback (for prompts and reports).
#pragma once
#include <string>

namespace wand::feedback {

// s cut to n bytes, with an ellipsis when cut.
inline std::string clip(std::string s, std::size_t n) {
  if (s.size() > n) s = s.substr(0, n) + "…";
  return s;
}

}  // namespace wand::feedback
