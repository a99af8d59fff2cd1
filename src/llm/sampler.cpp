#include "llm/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "llm/kernels.h"

namespace wand::llm {

Sampler::Sampler(SamplingParams p) : p_(p), rng_(p.seed) {}

Token Sampler::sample(std::span<const float> logits, std::span<const Token> history) {
  const bool penalty = p_.repeat_penalty != 1.f && p_.repeat_last_n > 0;
  if (p_.temperature <= 0.f && !penalty)  // greedy: the first maximum
    return static_cast<Token>(argmax(logits.data(), static_cast<int>(logits.size())));
  cand_.resize(logits.size());
  for (std::size_t i = 0; i < logits.size(); ++i) cand_[i] = {logits[i], static_cast<Token>(i)};
  if (penalty) {
    std::unordered_set<Token> seen;
    std::size_t from = history.size() > std::size_t(p_.repeat_last_n) ? history.size() - p_.repeat_last_n : 0;
    for (std::size_t i = from; i < history.size(); ++i) seen.insert(history[i]);
    for (Token t : seen) {
      if (t < 0 || std::size_t(t) >= cand_.size()) continue;
      float& l = cand_[t].first;
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }
  if (p_.temperature <= 0.f) {  // greedy: the first maximum
    std::size_t best = 0;
    for (std::size_t i = 1; i < cand_.size(); ++i)
      if (cand_[i].first > cand_[best].first) best = i;
    return cand_[best].second;
  }
  auto by_logit = [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  std::size_t n = cand_.size();
  if (p_.top_k > 0 && std::size_t(p_.top_k) < n) {
    std::partial_sort(cand_.begin(), cand_.begin() + p_.top_k, cand_.end(), by_logit);
    n = p_.top_k;
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  // Softmax over the kept candidates (before temperature, as llama.cpp's top-p/min-p see them).
  std::vector<double> prob(n);
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += prob[i] = std::exp(double(cand_[i].first - cand_[0].first));
  for (auto& x : prob) x /= sum;
  if (p_.top_p < 1.f) {
    double cum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      cum += prob[i];
      if (cum >= p_.top_p) {
        n = i + 1;
        break;
      }
    }
  }
  if (p_.min_p > 0.f) {
    std::size_t keep = 1;
    while (keep < n && prob[keep] >= p_.min_p * prob[0]) ++keep;
    n = keep;
  }
  std::vector<double> w(n);
  for (std::size_t i = 0; i < n; ++i) w[i] = std::exp(double(cand_[i].first - cand_[0].first) / p_.temperature);
  std::discrete_distribution<std::size_t> pick(w.begin(), w.end());
  return cand_[pick(rng_)].second;
}

}  // namespace wand::llm
