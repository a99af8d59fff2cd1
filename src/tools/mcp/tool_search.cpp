// BM25 over tool descriptions (tool_search.h). A few hundred short documents: an inverted
// index is not worth it; each query scores every document.
#include "tools/mcp/tool_search.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

namespace wand::tools {

namespace {
// Words that say nothing about what a tool does ("weather in Paris" is about weather).
const std::set<std::string, std::less<>> kStopWords = {
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "for", "from", "how", "i", "in", "into", "is", "it",
    "its", "me", "my", "of", "on", "or", "that", "the", "this", "to", "what", "which", "with", "you", "your"};
}  // namespace

std::vector<std::string> search_words(std::string_view text) {
  std::vector<std::string> words;
  std::string w;
  auto flush = [&] {
    if (w.empty() || kStopWords.count(w)) {
      w.clear();
      return;
    }
    words.push_back(w);
    // Plural and singular match: "files" also indexes "file" (not "ss" words: "class").
    if (w.size() > 3 && w.back() == 's' && w[w.size() - 2] != 's') words.push_back(w.substr(0, w.size() - 1));
    w.clear();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    unsigned char c = text[i];
    if (std::isalnum(c)) {
      // camelCase: a capital after a lower-case letter starts a word.
      if (std::isupper(c) && i > 0 && std::islower(static_cast<unsigned char>(text[i - 1]))) flush();
      w.push_back(static_cast<char>(std::tolower(c)));
    } else {
      flush();
    }
  }
  flush();
  return words;
}

std::vector<std::size_t> rank_documents(const std::vector<std::string>& documents, std::string_view query, std::size_t k) {
  constexpr double k1 = 1.2, b = 0.75;
  std::vector<std::map<std::string, int>> tf(documents.size());
  std::map<std::string, int> df;
  std::vector<std::size_t> len(documents.size());
  double total = 0;
  for (std::size_t d = 0; d < documents.size(); ++d) {
    auto words = search_words(documents[d]);
    len[d] = words.size();
    total += words.size();
    for (auto& w : words) tf[d][w]++;
    for (auto& [w, n] : tf[d]) df[w]++;
  }
  auto q = search_words(query);
  std::set<std::string> terms(q.begin(), q.end());
  if (terms.empty() || k == 0 || documents.empty()) return {};
  double avg = std::max(1.0, total / documents.size());
  double n = documents.size();
  std::vector<double> score(documents.size(), 0);
  for (auto& t : terms) {
    auto f = df.find(t);
    if (f == df.end()) continue;
    double idf = std::log(1 + (n - f->second + 0.5) / (f->second + 0.5));
    for (std::size_t d = 0; d < documents.size(); ++d) {
      auto it = tf[d].find(t);
      if (it == tf[d].end()) continue;
      double x = it->second;
      score[d] += idf * x * (k1 + 1) / (x + k1 * (1 - b + b * len[d] / avg));
    }
  }
  std::vector<std::size_t> order(documents.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto c) { return score[a] > score[c]; });
  std::vector<std::size_t> out;
  for (auto i : order) {
    if (score[i] <= 0 || out.size() == k) break;
    out.push_back(i);
  }
  return out;
}

}  // namespace wand::tools
