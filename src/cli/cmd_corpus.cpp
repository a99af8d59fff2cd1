#include <fmt/core.h>

#include "cli/commands.h"
#include "common/progress.h"
#include "train/corpus.h"

namespace wand::cli {

Command add_corpus(CLI::App& app) {
  auto* cmd = app.add_subcommand("corpus", "Write a synthetic word-problem training corpus (token shards + held-out sets)");
  struct Args {
    train::CorpusOptions opt;
    std::string mix = "pot=1";
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--out", a->opt.out_dir, "Output directory")->required();
  cmd->add_option("--mix", a->mix, "Parts and weights: pot (question + program), cot (question + rationale)")
      ->capture_default_str();
  cmd->add_option("--tokens", a->opt.tokens, "Training tokens to write")->capture_default_str();
  cmd->add_option("--seed", a->opt.seed, "Generator seed")->capture_default_str();
  cmd->add_option("--vocab", a->opt.vocab, "BPE vocabulary size to train")->capture_default_str();
  cmd->add_option("--tokenizer", a->opt.tokenizer, "Reuse this tokenizer GGUF instead of training one");
  cmd->add_option("--heldout", a->opt.held_out, "Problems per held-out set")->capture_default_str();
  cmd->add_flag("--json", a->json, "Print the manifest as JSON");
  return [a] {
    auto mix = train::parse_mix(a->mix);
    if (!mix) {
      fmt::print(stderr, "wand corpus: {}\n", mix.error().message);
      return kExitBadInput;
    }
    a->opt.mix = *mix;
    Progress progress("corpus tokens", static_cast<std::size_t>(a->opt.tokens));
    long long shown = 0;
    auto m = train::write_corpus(a->opt, [&](long long n) {
      progress.tick(static_cast<std::size_t>(n - shown));
      shown = n;
    });
    progress.finish();
    if (!m) {
      fmt::print(stderr, "wand corpus: {}\n", m.error().message);
      return kExitFailed;
    }
    if (a->json) {
      fmt::print("{}\n", m->dump(2));
    } else {
      fmt::print("wrote {} tokens ({} vocabulary) to {}\n", (*m)["tokens"].get<long long>(), (*m)["vocab"].get<int>(),
                 a->opt.out_dir);
      for (auto& [part, n] : (*m)["documents"].items()) fmt::print("  {:<4} {} documents\n", part, n.get<long long>());
      fmt::print("  held out: {} problems (train templates, new numbers), {} (unseen templates)\n",
                 (*m)["heldout"]["numbers"].get<long long>(), (*m)["heldout"]["templates"].get<long long>());
    }
    return kExitOk;
  };
}

}  // namespace wand::cli
