// open_backend's dispatch on the spec, and the streaming stop-sequence matcher both backends use.
#include <algorithm>

#include <fmt/core.h>

#include "llm/backends.h"

namespace wand::llm {

Result<std::unique_ptr<Backend>> open_backend(const std::string& spec, const BackendOptions& opt) {
  if (spec.rfind("local:", 0) == 0) return open_local_backend(spec.substr(6), opt);
  if (spec.rfind("openai:", 0) == 0) return open_openai_backend(spec, opt);
  if (spec.size() > 5 && spec.ends_with(".gguf") && spec.find("://") == std::string::npos)
    return open_local_backend(spec, opt);
  return Error{fmt::format("model '{}': expected local:PATH.gguf or openai:http://HOST:PORT/v1/MODEL", spec)};
}

std::string StopMatcher::feed(std::string_view piece) {
  if (stopped_) return "";
  pending_ += piece;
  std::size_t cut = std::string::npos;
  for (auto& s : stops_)
    if (!s.empty()) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop sequence.
  std::size_t hold = 0;
  for (auto& s : stops_)
    for (std::size_t k = std::min(s.size() - 1, pending_.size()); k > hold; --k)
      if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopMatcher::flush() {
  std::string out = stopped_ ? "" : pending_;
  pending_.clear();
  return out;
}

}  // namespace wand::llm
