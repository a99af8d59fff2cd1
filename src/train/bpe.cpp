#include "train/bpe.h"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace wand::train {

llm::Tokenizer train_bpe(const std::vector<std::string>& texts, int vocab_size) {
  using llm::Tokenizer;
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(llm::byte_to_unicode(static_cast<uint8_t>(b)));
    types.push_back(Tokenizer::kNormal);
  }
  for (auto s : {"<|bos|>", "<|eos|>", "<|pad|>"}) {
    tokens.push_back(s);
    types.push_back(Tokenizer::kControl);
  }
  // Words as the tokenizer will split them (a merge-less tokenizer of the same split), each
  // counted as a sequence of byte symbols.
  Tokenizer bytes = Tokenizer::bpe(tokens, {}, types, "starcoder");
  std::map<std::vector<std::string>, long> words;
  for (auto& t : texts) {
    for (auto& piece : bytes.split(t)) {
      std::vector<std::string> w;
      for (unsigned char c : piece) w.push_back(llm::byte_to_unicode(c));
      ++words[w];
    }
  }
  std::vector<std::pair<std::vector<std::string>, long>> ws(words.begin(), words.end());
  std::vector<std::string> merges;
  while (static_cast<int>(tokens.size()) < vocab_size) {
    std::unordered_map<std::string, long> pairs;
    for (auto& [w, n] : ws)
      for (std::size_t i = 0; i + 1 < w.size(); ++i) pairs[w[i] + " " + w[i + 1]] += n;
    if (pairs.empty()) break;
    auto best = std::max_element(pairs.begin(), pairs.end(), [](auto& a, auto& b) {
      return a.second < b.second || (a.second == b.second && a.first > b.first);  // deterministic ties
    });
    if (best->second < 2) break;
    std::string m = best->first;
    auto sp = m.find(' ');
    std::string left = m.substr(0, sp), right = m.substr(sp + 1), joined = left + right;
    merges.push_back(m);
    tokens.push_back(joined);
    types.push_back(Tokenizer::kNormal);
    for (auto& [w, n] : ws) {
      for (std::size_t i = 0; i + 1 < w.size(); ++i)
        if (w[i] == left && w[i + 1] == right) {
          w[i] = joined;
          w.erase(w.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        }
    }
  }
  return Tokenizer::bpe(tokens, merges, types, "starcoder");
}

}  // namespace wand::train
