// Grammar-constrained decoding with the shipped PoT model: the share of sampled programs that
// Python's parser refuses, with and without `--constrain pot`, and what the constraint costs in
// decoding speed (tokens/s, as a ratio to unconstrained decoding measured in the same run).
// Questions are the held-out synthetic sets (models/heldout-*.jsonl), never a benchmark's test set.
#include <fmt/core.h>

#include <fstream>
#include <string>

#include "common/json.h"
#include "llm/grammar.h"
#include "llm/llm.h"
#include "python_syntax.h"

using namespace wand;

int main(int argc, char** argv) {
  std::string models = WAND_MODELS_DIR, set = "templates";
  int questions = 40, per = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick")
      questions = 8, per = 2;
    else if (a == "--set" && i + 1 < argc)
      set = argv[++i];
    else if (a == "--questions" && i + 1 < argc)
      questions = std::atoi(argv[++i]);
    else if (a == "--per-question" && i + 1 < argc)
      per = std::atoi(argv[++i]);
    else {
      fmt::print(stderr,
                 "usage: constrain_bench [--quick] [--set templates|numbers] [--questions N] [--per-question K]\n");
      return 2;
    }
  }
  std::ifstream in(models + "/heldout-" + set + ".jsonl");
  std::vector<std::string> prompts;
  for (std::string line; (int)prompts.size() < questions && std::getline(in, line);)
    prompts.push_back("Question: " + Json::parse(line)["question"].get<std::string>() + "\nProgram:\n");
  if (prompts.empty()) {
    fmt::print(stderr, "constrain_bench: no questions in {}/heldout-{}.jsonl\n", models, set);
    return 2;
  }
  auto backend = llm::open_backend("local:" + models + "/wand-pot.gguf", {.threads = 1});
  auto pot = llm::Grammar::load("pot");
  if (!backend || !pot) {
    fmt::print(stderr, "constrain_bench: {}\n", !backend ? backend.error().message : pot.error().message);
    return 1;
  }
  fmt::print("{} held-out '{}' questions x {} samples, shipped PoT model, 1 thread\n\n", prompts.size(), set, per);
  fmt::print("{:<10} {:<12} {:>9} {:>16} {:>9} {:>8}\n", "decoding", "constraint", "samples", "fail to parse", "tok/s",
             "ratio");
  for (float temperature : {0.f, 1.f}) {
    double base_tps = 0;
    for (bool constrained : {false, true}) {
      std::vector<std::string> programs;
      double tokens = 0, ms = 0;
      for (std::size_t q = 0; q < prompts.size(); ++q) {
        llm::GenerateOptions o;
        o.max_tokens = 200;
        o.temperature = temperature;
        o.n = temperature > 0 ? per : 1;
        o.seed = 1000 + q * per;
        o.stop = {"\nQuestion:"};
        if (constrained) o.grammar = *pot;
        auto out = (*backend)->complete(prompts[q], o);
        if (!out) {
          fmt::print(stderr, "constrain_bench: {}\n", out.error().message);
          return 1;
        }
        for (auto& c : *out) {
          programs.push_back(c.text);
          tokens += c.completion_tokens;
          ms += c.generate_ms;
        }
      }
      double tps = tokens * 1000 / ms;
      if (!constrained) base_tps = tps;
      int bad = test::count_unparsable(programs);
      fmt::print("{:<10} {:<12} {:>9} {:>7} ({:>5.1f}%) {:>9.0f} {:>7.2f}x\n", temperature > 0 ? "T=1.0" : "greedy",
                 constrained ? "pot" : "none", programs.size(), bad, 100.0 * bad / programs.size(), tps,
                 tps / base_tps);
    }
  }
}
