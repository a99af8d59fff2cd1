// open_backend's dispatch on the spec, what every backend shares (sample seeds, prompt formats),
// and the streaming stop-sequence matcher both backends use.
#include <algorithm>
#include <random>

#include <fmt/core.h>

#include "common/random.h"
#include "llm/backends.h"

namespace wand::llm {

Result<std::unique_ptr<Backend>> open_backend(const std::string& spec, const BackendOptions& opt) {
  if (spec.rfind("local:", 0) == 0) return open_local_backend(spec.substr(6), opt);
  if (spec.rfind("openai:", 0) == 0) return open_openai_backend(spec, opt);
  if (spec.size() > 5 && spec.ends_with(".gguf") && spec.find("://") == std::string::npos)
    return open_local_backend(spec, opt);
  return Error{fmt::format("model '{}': expected local:PATH.gguf or openai:http://HOST:PORT/v1/MODEL", spec)};
}

Result<std::vector<Completion>> Backend::complete_tokens(const std::vector<int32_t>&, const GenerateOptions&) {
  return Error{fmt::format("{} takes text prompts, not token ids", id()), std::string(kInvalidRequest)};
}

// Seeds wand makes stay below 2^53, so they survive JSON numbers read as doubles (JavaScript
// clients, a server's range check) when they travel to a server or into a record.
constexpr uint64_t kSeedMask = (uint64_t{1} << 53) - 1;

uint64_t sample_seed(uint64_t seed, int index) {
  if (index == 0) return seed;
  // The index is mixed before it meets the seed, so (seed, i) and (seed + 1, i - 1) land far apart.
  return splitmix64(seed ^ splitmix64(static_cast<uint64_t>(index))) & kSeedMask;
}

uint64_t random_seed() {
  std::random_device rd;
  return ((static_cast<uint64_t>(rd()) << 32) ^ rd()) & kSeedMask;
}

Result<std::string> format_question(std::string_view format, std::string_view question) {
  // pot-numbers: the question's numbers are already names (reason::map_numbers); solve maps them.
  if (format == "pot" || format == "pot-numbers" || format == "pot-delex") return fmt::format("Question: {}\nProgram:\n", question);
  if (format == "cot") return fmt::format("Question: {}\nAnswer: ", question);
  if (format == "func") return fmt::format("Task: {}\nTests:\n", question);
  return Error{fmt::format("prompt format '{}': expected pot, pot-numbers, pot-delex, cot or func", format)};
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
