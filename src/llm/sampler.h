// Turns logits into the next token: repetition penalty, top-k, top-p, min-p, temperature,
// then a draw from a seeded generator (or argmax when temperature is 0), in llama.cpp's order.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "llm/tokenizer.h"

namespace wand::llm {

struct SamplingParams {
  float temperature = 0.f;  // 0 = greedy
  int top_k = 0;            // 0 = off
  float top_p = 1.f;
  float min_p = 0.f;
  float repeat_penalty = 1.f;  // 1 = off; applied to the last `repeat_last_n` tokens
  int repeat_last_n = 64;
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(SamplingParams p);
  Token sample(std::span<const float> logits, std::span<const Token> history);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, Token>> cand_;
};

}  // namespace wand::llm
