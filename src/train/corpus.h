// Synthetic, verifiable training data for wand's own model. Word problems come from templates
// (quantities, rates, fractions, percentages, money, time, comparisons, unit conversions; one to
// five steps), each rendered three ways that must agree: a Python program computing `answer`,
// a step-by-step rationale, and the answer. Everything is deterministic in the seed.
// Templates are split into train and held-out sets, so generalization to unseen phrasings is
// measured, not only unseen numbers.
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace wand::train {

struct Problem {
  std::string question;
  std::string program;    // straight-line Python that assigns `answer`
  std::string rationale;  // prose steps ending in "The answer is N."
  std::string answer;     // canonical number text
  int template_id = 0;
  int steps = 1;
};
Json to_json(const Problem& p);

enum class TemplateSet { train, held_out };

class ProblemGenerator {
 public:
  explicit ProblemGenerator(uint64_t seed) : rng_(seed) {}
  Problem next(TemplateSet set);
  static int template_count(TemplateSet set);

 private:
  std::mt19937_64 rng_;
};


}  // namespace wand::train

namespace wand::train {

// `wand corpus`: token shards for training plus held-out evaluation sets.
struct CorpusOptions {
  std::string out_dir;
  std::vector<std::pair<std::string, double>> mix = {{"pot", 1.0}};  // parts: pot, cot
  long long tokens = 2'000'000;
  uint64_t seed = 1;
  int vocab = 512;
  int held_out = 1000;  // problems in each held-out set
  std::string tokenizer;  // an existing tokenizer GGUF to reuse ("" = train one)
};
// Parses "pot=0.5,cot=0.5"; errors name the bad entry.
Result<std::vector<std::pair<std::string, double>>> parse_mix(const std::string& spec);
// Writes DIR/tokenizer.gguf, DIR/train.bin (uint16 ids; <|bos|> doc <|eos|>), DIR/heldout-numbers.jsonl,
// DIR/heldout-templates.jsonl and DIR/manifest.json; returns the manifest.
Result<Json> write_corpus(const CorpusOptions& opt, const std::function<void(long long)>& progress = {});

}  // namespace wand::train
