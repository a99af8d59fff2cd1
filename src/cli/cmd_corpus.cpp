#include <fmt/core.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/progress.h"
#include "train/corpus.h"

namespace wand::cli {

Command add_corpus(CLI::App& app) {
  auto* cmd = app.add_subcommand("corpus", "Write a synthetic training corpus: word problems, function tasks, plain code and text (token shards + held-out sets)");
  struct Args {
    train::CorpusOptions opt;
    std::string mix = "pot=1";
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--out", a->opt.out_dir, "Output directory")->required();
  cmd->add_option("--mix", a->mix,
                  "Parts and weights, e.g. code=0.5,text=0.5: pot (question + program), cot (question + rationale), "
                  "func (function task: description + tests + function), tests (description + asserts on other inputs), "
                  "code (plain code), text (plain text), "
                  "grammar and grammar-cot (the question grammar), gsm8k and gsm8k-cot (GSM8K train, verified programs), "
                  "agent (expert trajectories of kitchen, data and shop tasks as CodeAct steps), agent_json (the same "
                  "as JSON tool calls), world (prose about a generated world of towns and people)")
      ->capture_default_str();
  cmd->add_flag("--token-shares", a->opt.token_shares,
                "Read the --mix weights as shares of the tokens (default: as the chance of each document's part)");
  cmd->add_option("--tokens", a->opt.tokens, "Training tokens to write")
      ->capture_default_str()
      ->check(number({.lo = 1, .hi = train::kMaxCorpusTokens, .integer = true}));
  cmd->add_option("--seed", a->opt.seed, "Generator seed")->capture_default_str()->check(number(kSeed));
  cmd->add_option("--vocab", a->opt.vocab, "BPE vocabulary size to train (the 256 bytes and 3 control tokens included)")
      ->capture_default_str()
      ->check(number({.lo = train::kMinVocab, .hi = train::kMaxVocab, .integer = true}));
  cmd->add_option("--tokenizer", a->opt.tokenizer, "Reuse this tokenizer GGUF instead of training one")->excludes("--vocab");
  cmd->add_option("--heldout", a->opt.held_out, "Problems per held-out set")
      ->capture_default_str()
      ->check(number({.lo = 0, .hi = 1e6, .integer = true}));
  cmd->add_option("--shard-tokens", a->opt.shard_tokens, "Tokens per shard file (train-00000.bin, ...); 0 writes one train.bin")
      ->capture_default_str()
      ->check(number({.lo = 0, .hi = train::kMaxCorpusTokens, .integer = true}));
  cmd->add_option("--verify", a->opt.verify,
                  "Items of each kind (problems, functions) executed in the sandbox before writing; 0 skips it")
      ->capture_default_str()
      ->check(number({.lo = 0, .hi = 1e6, .integer = true}));
  a->opt.gsm8k = shared_data_dir() + "/gsm8k/train.jsonl";
  a->opt.test_sets = shared_data_dir();
  cmd->add_option("--gsm8k", a->opt.gsm8k, "GSM8K's train split (original format) for the gsm8k parts")
      ->capture_default_str();
  // A folder named here must be one: a typo would turn decontamination off with only a warning.
  cmd->add_option("--test-sets", a->opt.test_sets,
                  "Folder of the test sets the questions are checked against (MultiArith, ASDiv, SVAMP, GSM8K test)")
      ->capture_default_str()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--ngram", a->opt.ngram, "Decontamination n-gram length in words")
      ->capture_default_str()
      ->check(number({.lo = 1, .hi = 64, .integer = true}));
  cmd->add_flag("--number-names", a->opt.number_names,
                "Write the pot, grammar and gsm8k parts with the question's numbers as names (n0, n1, ...) and "
                "programs over the names, each run in the sandbox with its bindings (prompt format pot-numbers)");
  cmd->add_flag("--shuffle-names", a->opt.shuffle_names,
                "With --number-names: each document's names in an order of its own (n1 may come before n0), so "
                "a model must read which name stands for what rather than count positions");
  cmd->add_flag("--delexicalize", a->opt.delexicalize,
                "With --number-names: also a name per mention of a number, every word outside a closed list of "
                "function and quantity words as a placeholder (w0, w1, ...), the programs' variables as v0, v1, ... "
                "(prompt format pot-delex: the model reads a story's structure, never a noun it has not seen)");
  cmd->add_flag("--review", a->opt.review,
                "Write each question-and-program document the other way round, the program first and then the "
                "question: a reviewer model's corpus, p(question | program), for Coder-Reviewer reranking (Zhang "
                "et al. 2022; scripts/selection_rules.py --reviewer)");
  cmd->add_flag("--json", a->json, "Print the manifest as JSON");
  return [a] {
    auto mix = train::parse_mix(a->mix);
    if (!mix) {
      fmt::print(stderr, "wand corpus: {}\n", mix.error().message);
      return kExitBadInput;
    }
    a->opt.mix = *mix;
    // Bad input (a tokenizer that cannot be read, say) is exit 2 before any work; what fails
    // while writing is exit 1.
    if (auto c = train::check_corpus_options(a->opt); !c) {
      fmt::print(stderr, "wand corpus: {}\n", c.error().message);
      return kExitBadInput;
    }
    if (auto problem = out_dir_problem(a->opt.out_dir); !problem.empty()) {
      fmt::print(stderr, "wand corpus: {}\n", problem);
      return kExitBadInput;
    }
    Progress progress("corpus tokens", static_cast<std::size_t>(a->opt.tokens));
    long long shown = 0;
    auto m = train::write_corpus(a->opt, [&](long long n) {
      progress.tick(static_cast<std::size_t>(n - shown));
      shown = n;
    });
    progress.finish();
    if (!m) {
      fmt::print(stderr, "wand corpus: {}\n", m.error().message);
      return m.error().code == kOptionConflict ? kExitBadInput : kExitFailed;  // a bad --gsm8k file is bad input
    }
    if (a->json) {
      fmt::print("{}\n", m->dump(2));
    } else {
      fmt::print("wrote {} tokens ({} vocabulary, {} shard{}) to {}\n", (*m)["tokens"].get<long long>(),
                 (*m)["vocab"].get<int>(), (*m)["shards"].size(), (*m)["shards"].size() == 1 ? "" : "s", a->opt.out_dir);
      if (const Json& asked = (*m)["vocab_requested"]; asked.is_number())
        fmt::print("  note: --vocab {}: the tokenizer's sample text gave only {} tokens (merges stop when no pair "
                   "repeats); the vocabulary is that\n", asked.get<long long>(), (*m)["vocab"].get<int>());
      for (auto& [part, n] : (*m)["documents"].items())
        fmt::print("  {:<11} {} documents, {} tokens\n", part, n.get<long long>(), (*m)["part_tokens"][part].get<long long>());
      const Json& h = (*m)["heldout"];
      fmt::print("  held out: {} problems (train templates, new numbers), {} (unseen templates)\n",
                 h["numbers"].get<long long>(), h["templates"].get<long long>());
      if (h.contains("functions"))
        fmt::print("  held out: {} function tasks (train families, new inputs), {} (unseen families)\n",
                   h["functions"].get<long long>(), h["functions_templates"].get<long long>());
      if (h.contains("grammar"))
        fmt::print("  held out: {} problems (the grammar's unseen productions)\n", h["grammar"].get<long long>());
      if (const Json& g = (*m)["gsm8k"]; g.is_object())
        fmt::print("  gsm8k: {} records, {} converted to programs, {} kept (their program gives the label)\n",
                   g["records"].get<long long>(), g["converted"].get<long long>(), g["kept"].get<long long>());
      if (const Json& n = (*m)["number_names"]; n.is_object())
        fmt::print("  number names: {} generated programs mapped and run, {} dropped{}\n",
                   n["generated_checked"].get<long long>(), n["generated_dropped"].get<long long>(),
                   (*m)["gsm8k"].contains("named") ? fmt::format("; gsm8k {} of {} kept", (*m)["gsm8k"]["named"].get<long long>(),
                                                                 (*m)["gsm8k"]["kept"].get<long long>())
                                                   : "");
      const Json& d = (*m)["decontamination"];
      for (auto& [name, set] : d["sets"].items())
        if (set.contains("missing"))
          fmt::print(stderr, "wand corpus: warning: test set {} not found at {}: not checked\n", name, set["path"].get<std::string>());
        else
          fmt::print("  decontamination vs {}: {} exact matches (dropped), {} questions sharing a {}-gram\n", name,
                     set["exact_matches"].get<long long>(), set["ngram_hits"].get<long long>(), d["n"].get<int>());
      if (const Json& v = (*m)["verified"]; v.is_object())
        fmt::print("  verified in the sandbox: {}/{} programs give their answer, {}/{} functions pass their tests\n",
                   v["problems"]["agreed"].get<long long>(), v["problems"]["checked"].get<long long>(),
                   v["functions"]["passed"].get<long long>(), v["functions"]["checked"].get<long long>());
    }
    return kExitOk;
  };
}

}  // namespace wand::cli
