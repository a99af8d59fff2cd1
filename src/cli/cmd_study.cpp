// `wand study mixture`: the code-mixture study (src/study/mixture.h); this face only parses
// options, finds wand-train and prints the table.
#include <fmt/core.h>

#include <cmath>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/solver.h"
#include "study/mixture.h"
#include "train/sizes.h"

namespace wand::cli {

Command add_study(CLI::App& app) {
  auto* study = app.add_subcommand("study", "Experiments that train wand's small models and measure them");
  study->require_subcommand(1);
  auto* cmd = study->add_subcommand(
      "mixture", "Train same-size models with 0-100% code on one token budget, then a cool-down with and without code; "
                 "probe reasoning, knowledge and code (docs/mixture.md)");
  struct Args {
    study::MixtureOptions o;
    std::vector<int> shares = {0, 25, 50, 75, 90, 100};
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto& o = a->o;
  const NumberRule count{.lo = 1, .hi = 1e7, .integer = true};
  cmd->add_option("--out", o.out_dir, "Folder of the study (corpora, checkpoints, models, results); running again resumes")
      ->required();
  cmd->add_option("--shares", a->shares, "Code shares in percent of the training tokens, comma-separated")
      ->delimiter(',')->capture_default_str()->check(number({.lo = 0, .hi = 100, .integer = true}));
  cmd->add_option("--seeds", o.seeds, "Seeds per point (1..N)")->capture_default_str()->check(number({.lo = 1, .hi = 100, .integer = true}));
  cmd->add_option("--tokens", o.tokens, "Corpus tokens per point")->capture_default_str()->check(number({.lo = 1000, .hi = 1e10, .integer = true}));
  cmd->add_option("--vocab", o.vocab, "Vocabulary of the shared tokenizer")->capture_default_str()->check(number({.lo = 259, .hi = 65535, .integer = true}));
  // The model's sizes take wand-train's ranges (train/sizes.h), so that a size it would refuse is
  // refused here, before the tokenizer and the corpora are made.
  auto size = [](int lo, int hi) { return number({.lo = static_cast<double>(lo), .hi = static_cast<double>(hi), .integer = true}); };
  cmd->add_option("--dim", o.dim, "Model width")->capture_default_str()->check(size(2, train::kMaxDim));
  cmd->add_option("--layers", o.layers, "Model layers")->capture_default_str()->check(size(1, train::kMaxLayers));
  cmd->add_option("--heads", o.heads, "Attention heads")->capture_default_str()->check(size(1, train::kMaxHeads));
  cmd->add_option("--kv-heads", o.kv_heads, "Key/value heads")->capture_default_str()->check(size(1, train::kMaxHeads));
  cmd->add_option("--ffn", o.ffn, "Feed-forward width")->capture_default_str()->check(size(1, train::kMaxFfn));
  cmd->add_option("--seq", o.seq, "Training window (tokens; also the models' context)")->capture_default_str()->check(size(1, train::kMaxSeq));
  cmd->add_option("--steps", o.steps, "Training steps per point")->capture_default_str()->check(number(count));
  cmd->add_option("--batch", o.batch, "Sequences per step")->capture_default_str()->check(number({.lo = 1, .hi = 65536, .integer = true}));
  cmd->add_option("--warmup", o.warmup, "Warm-up steps")->capture_default_str()->check(number({.lo = 0, .hi = 1e7, .integer = true}));
  cmd->add_option("--lr", o.lr, "Peak learning rate (cosine decay to a tenth)")->capture_default_str()->check(number({.lo = 0, .hi = 10, .lo_open = true}));
  cmd->add_option("--cooldown-steps", o.cooldown_steps, "Cool-down steps from the balanced model (0: no cool-down)")
      ->capture_default_str()->check(number({.lo = 0, .hi = 1e7, .integer = true}));
  cmd->add_option("--cooldown-tokens", o.cooldown_tokens, "Cool-down corpus tokens")
      ->capture_default_str()->check(number({.lo = 1000, .hi = 1e10, .integer = true}));
  cmd->add_option("--cooldown-lr", o.cooldown_lr, "Cool-down learning rate (decays to zero)")
      ->capture_default_str()->check(number({.lo = 0, .hi = 10, .lo_open = true}));
  cmd->add_option("--threads", o.threads, "Threads for wand-train and the engine")->capture_default_str()->check(parallel(true));
  cmd->add_option("--dtype", o.dtype, "wand-train's precision")->capture_default_str()->check(CLI::IsMember({"fp32", "bf16"}));
  cmd->add_option("--probe-items", o.probe_items, "Items per probe")->capture_default_str()->check(number({.lo = 1, .hi = 1e6, .integer = true}));
  cmd->add_option("--distractors", o.distractors, "Wrong answers per cloze item")->capture_default_str()->check(number({.lo = 1, .hi = 100, .integer = true}));
  o.multiarith = shared_data_dir() + "/pal-math/mawpsmultiarith.jsonl";
  o.test_sets = shared_data_dir();
  cmd->add_option("--multiarith", o.multiarith, "MultiArith (PAL's jsonl), evaluation only")->capture_default_str();
  cmd->add_option("--test-sets", o.test_sets, "Where the test sets are, for the corpora's decontamination check")->capture_default_str();
  cmd->add_option("--trainer", o.trainer, "The wand-train binary (default: $WAND_TRAIN, else beside wand)");
  cmd->add_flag("--json", a->json, "Print the summary as JSON instead of the Markdown table");
  return [a, cmd] {
    if (!*cmd) return kExitBadInput;  // `wand study` alone: CLI11 already refused it
    auto& o = a->o;
    o.shares.clear();
    for (int s : a->shares) o.shares.push_back(s / 100.0);
    if (o.trainer.empty()) o.trainer = find_trainer();
    if (auto v = study::validate(o); !v) {
      fmt::print(stderr, "wand study mixture: {}\n", v.error().message);
      return kExitBadInput;
    }
    if (auto problem = out_dir_problem(o.out_dir); !problem.empty()) {
      fmt::print(stderr, "wand study mixture: {}\n", problem);
      return kExitBadInput;
    }
    auto sb = small_sandbox(1);
    if (!sb) {
      fmt::print(stderr, "wand study mixture: sandbox: {}\n", sb.error().message);
      return kExitSandbox;
    }
    int threads = o.threads;
    auto open_model = [threads](const std::string& gguf) { return llm::open_backend("local:" + gguf, {.threads = threads}); };
    auto summary = study::run_mixture(o, **sb, open_model,
                                      [](const std::string& line) { fmt::print(stderr, "wand study mixture: {}\n", line); });
    if (!summary) {
      fmt::print(stderr, "wand study mixture: {}\n", summary.error().message);
      return summary.error().code == kOptionConflict ? kExitBadInput : kExitFailed;
    }
    fmt::print("{}", a->json ? summary->dump(2) + "\n" : study::markdown_table(*summary));
    return kExitOk;
  };
}

}  // namespace wand::cli
