// `wand improve`: expert iteration from execution feedback (src/improve/improve.h); this face
// only parses options, finds wand-train and prints the rounds.
#include <filesystem>

#include <fmt/core.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/solver.h"
#include "improve/improve.h"
#include "store/store.h"
#include "train/corpus.h"

namespace wand::cli {

Command add_improve(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "improve", "Expert iteration: sample programs for unseen questions, keep those whose executed answer is right, fine-tune, repeat");
  struct Args {
    improve::ImproveOptions o;
    std::string store;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  a->o.model = models_dir() + "/wand-pot.gguf";
  a->o.eval = {models_dir() + "/heldout-templates.jsonl"};
  a->o.test_sets = shared_data_dir();
  auto& o = a->o;
  cmd->add_option("--task", o.task, "pot: word problems judged by their answers (wand-pot); code: function tasks judged "
                                    "by their tests (wand-code; --model and --eval default to the code model's)")
      ->capture_default_str()->check(CLI::IsMember({"pot", "code"}));
  cmd->add_option("--out", o.out_dir, "Folder of the rounds (pools, accepted programs, corpora, checkpoints, models); "
                                      "running again with it resumes")->required();
  auto* model = cmd->add_option("--model", o.model, "Round 0's model: a wand GGUF of the task's prompt format")->capture_default_str();
  auto* eval = cmd->add_option("--eval", o.eval, "Held-out datasets evaluated after every round (repeatable; code: MBPP format)")
                   ->capture_default_str();
  cmd->add_option("--select", o.select,
                  "One of the --eval sets, a validation set (never a test set): the round whose model scores best on "
                  "it is copied to OUT/best.gguf (a round's accuracy swings; the last is not always the best)");
  cmd->add_option("--validation", o.validation,
                  "Draw N questions of the pool productions (a seed no round's pool uses; or the first N of --pool-file) into OUT/validation.jsonl, "
                  "evaluate every round on all of them and copy the best round's model to OUT/best.gguf (instead of --select)")
      ->check(number({.lo = 0, .hi = 1e6, .integer = true}));
  cmd->add_option("--eval-limit", o.eval_limit, "Problems of each --eval set (the first N; 0: all)")
      ->capture_default_str()->check(number({.lo = 0, .hi = 1e7, .integer = true}));
  cmd->add_option("--rounds", o.rounds, "Rounds")->capture_default_str()->check(number({.lo = 1, .hi = 1000, .integer = true}));
  cmd->add_option("--pool", o.pool, "New questions per round (the grammar's pool productions: in no training corpus, none a "
                                    "test template; or the next N of --pool-file)")
      ->capture_default_str()->check(number({.lo = 1, .hi = 1e6, .integer = true}));
  cmd->add_option("--pool-file", o.pool_file,
                  "Draw the pool from this file instead: questions with answers for pot (GSM8K's train split, PAL, SVAMP, "
                  "{question, answer}), function tasks with tests for code (MBPP, HumanEval, stdio); only the labels and "
                  "tests are used. Shuffled by --seed; --validation takes its first N, each round the next --pool");
  cmd->add_option("--test-sets", o.test_sets,
                  "Folder of the test sets (MultiArith, ASDiv, SVAMP, GSM8K test; code: HumanEval, MBPP's test split): "
                  "--pool-file questions and tasks that are test ones are dropped")->capture_default_str();
  cmd->add_option("--k", o.k, "Programs sampled per question")->capture_default_str()->check(number({.lo = 1, .hi = 64, .integer = true}));
  cmd->add_option("--temperature", o.temperature, "Sampling temperature")->capture_default_str()->check(number({.lo = 0, .hi = 2}));
  cmd->add_option("--per-question", o.per_question, "Accepted programs per question at most")
      ->capture_default_str()->check(number({.lo = 1, .hi = 64, .integer = true}));
  cmd->add_option("--replay", o.replay, "Documents of the original training templates per accepted program")
      ->capture_default_str()->check(number({.lo = 0, .hi = 100}));
  cmd->add_option("--repair", o.repair, "Code: self-debug rounds after a failing sample; passing repairs are accepted too")
      ->capture_default_str()->check(number({.lo = 0, .hi = 20, .integer = true}));
  cmd->add_flag("--grounded", o.grounded,
                "Accept a right program only when it uses its question's numbers and no others (refuses coincidences)");
  cmd->add_flag("--from-start", o.from_start,
                "Fine-tune every round from round 0's weights on everything accepted so far (STaR), not from the previous round's");
  cmd->add_flag("--shuffle-names", o.shuffle_names,
                "A pot-numbers model: each sample, and each replayed document, reads the number names in an order of its "
                "own, so no name stands for a role by its position");
  cmd->add_option("--steps", o.steps, "Fine-tuning steps per round")->capture_default_str()->check(number({.lo = 1, .hi = 1e7, .integer = true}));
  cmd->add_option("--batch", o.batch, "Fine-tuning batch (sequences)")->capture_default_str()->check(number({.lo = 1, .hi = 65536, .integer = true}));
  cmd->add_option("--lr", o.lr, "Fine-tuning learning rate")->capture_default_str()->check(number({.lo = 0, .hi = 10, .lo_open = true}));
  cmd->add_option("--warmup", o.warmup, "Fine-tuning warm-up steps")->capture_default_str()->check(number({.lo = 0, .hi = 1e7, .integer = true}));
  cmd->add_option("--threads", o.threads, "Threads for wand-train and the engine (0: every core)")
      ->capture_default_str()->check(parallel(true));
  cmd->add_option("--seed", o.seed, "Seed of the pools, the samples and the fine-tuning")->capture_default_str()->check(number(kSeed));
  cmd->add_option("--trainer", o.trainer, "The wand-train binary (default: $WAND_TRAIN, else beside wand)");
  add_store_option(cmd, a->store);
  cmd->add_flag("--json", a->json, "Print the rounds as JSON");
  return [a, model, eval] {
    auto& o = a->o;
    if (o.task == "code") {  // the code model and its test (held-out families) and forgetting (held-out inputs) sets
      if (!model->count()) o.model = models_dir() + "/wand-code.gguf";
      if (!eval->count()) o.eval = {models_dir() + "/heldout-functions-templates.jsonl", models_dir() + "/heldout-functions.jsonl"};
    }
    if (o.trainer.empty()) o.trainer = find_trainer();
    std::error_code ec;  // --select names an --eval set by any path to the same file
    for (auto& e : o.eval)
      if (!o.select.empty() && o.select != e && std::filesystem::equivalent(o.select, e, ec)) o.select = e;
    // The round chosen on a test set would be chosen by the test: --select takes a validation set.
    if (!o.select.empty()) {
      auto tests = train::default_test_sets(o.test_sets);
      for (auto& t : train::default_code_test_sets(o.test_sets)) tests.push_back(t);
      for (const char* shipped : {"heldout-templates.jsonl", "heldout-functions-templates.jsonl"})
        tests.push_back({.name = shipped, .path = models_dir() + "/" + shipped});
      for (const auto& t : tests)
        if (std::filesystem::equivalent(o.select, t.path, ec)) {
          fmt::print(stderr, "wand improve: --select {}: a test set ({}); choose rounds on a validation set "
                             "(--validation N draws one)\n", o.select, t.name);
          return kExitBadInput;
        }
    }
    if (auto v = improve::validate(o); !v) {
      fmt::print(stderr, "wand improve: {}\n", v.error().message);
      return kExitBadInput;
    }
    if (auto problem = out_dir_problem(o.out_dir); !problem.empty()) {
      fmt::print(stderr, "wand improve: {}\n", problem);
      return kExitBadInput;
    }
    auto db = store::Store::open(a->store.empty() ? store::default_store_path() : a->store);
    if (!db) {
      fmt::print(stderr, "wand improve: {}\n", store_error(a->store, db.error().message));
      return kExitBadInput;
    }
    auto sb = small_sandbox(2);
    if (!sb) {
      fmt::print(stderr, "wand improve: sandbox: {}\n", sb.error().message);
      return kExitSandbox;
    }
    int threads = o.threads;
    auto open_model = [threads](const std::string& gguf) {
      return llm::open_backend("local:" + gguf, {.threads = threads});
    };
    auto rounds = improve::run_improve(o, **db, **sb, open_model,
                                       [](const std::string& line) { fmt::print(stderr, "wand improve: {}\n", line); });
    if (!rounds) {
      fmt::print(stderr, "wand improve: {}\n", rounds.error().message);
      return rounds.error().code == kOptionConflict ? kExitBadInput : kExitFailed;
    }
    if (a->json) {
      const std::string chosen_by = improve::selection_set(o);
      const int best = chosen_by.empty() ? -1 : improve::best_round(*rounds, chosen_by);
      Json j = Json::array();
      for (std::size_t i = 0; i < rounds->size(); ++i) {
        j.push_back((*rounds)[i].to_json());
        if (static_cast<int>(i) == best) j.back()["selected"] = true;  // its model is OUT/best.gguf
      }
      fmt::print("{}\n", j.dump(2));
    } else {
      fmt::print("{}", improve::markdown_table(*rounds));
    }
    return kExitOk;
  };
}

}  // namespace wand::cli
