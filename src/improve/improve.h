// `wand improve`: a model that improves from its own execution feedback (expert iteration, as
// STaR (Zelikman et al., 2022) and rejection-sampling fine-tuning (RFT, Yuan et al., 2023)).
//
// Each round, on questions of a pool whose programs the model never saw (the question grammar's
// pool productions, GrammarGenerator::next_pool in train/corpus.h: in no training corpus and none
// a test template; or a file of questions with answers, `pool_file`; only their final answers
// are used):
//   1. sample k programs per question (`wand bench`'s pipeline, recorded as a bench run),
//   2. execute them in the sandbox and accept those whose executed answer equals the label,
//      exactly what `wand export --run ID --format sft` verifies (codegen/export.h): duplicates
//      dropped, at most `per_question` per question,
//   3. fine-tune the previous round's checkpoint (`from_start`: round 0's) on everything accepted so far, plus `replay`
//      documents of the original training templates per accepted one (against forgetting),
//      with wand-train --init (round 0's checkpoint is imported from the GGUF model),
//   4. export the checkpoint as a GGUF and evaluate it (greedy PoT) on the held-out sets, whose
//      templates are neither in the pool nor in the original training data.
// A pot-numbers model (number mapping, reason/numbers.h) works the same: solve maps each question,
// so its accepted documents are the mapped question and the program over the names (no bindings),
// its replay is the templates and grammar productions it was trained on, mapped the same way, and
// each round's model is exported as pot-numbers again.
// `task = "code"` runs the same rounds for the code model (wand-code, prompt format func): the pool
// is function tasks of the generator's *pool* families (train/corpus.h: neither trained on nor the
// test families), sampled with `wand code`'s pipeline (codegen.h, recorded as a code run); a
// program is accepted when it passes all the task's tests in the sandbox (`wand export` verified_by
// "tests"; with `repair`, also self-debugged repairs that pass); replay is `func` documents of the
// trained families; the evaluation is greedy pass@1 on the --eval function datasets (by default
// the held-out families, the test, and held-out inputs of trained families, for forgetting).
// Every round is a problem of one run of kind "improve" in the run store (index = round, extra:
// the counts, accuracies, bench run ids and file paths); round 0 is the starting model's
// evaluation. A rerun with the same --out resumes after the last recorded round.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "llm/llm.h"
#include "sandbox/sandbox.h"
#include "store/store.h"

namespace wand::improve {

struct ImproveOptions {
  std::string task = "pot";                // pot (word problems, answers) or code (function tasks, tests)
  std::string out_dir;                     // rounds/, state.json; created
  std::string model;                       // round 0's model: a wand GGUF of the task's prompt format (pot or pot-numbers, func)
  std::vector<std::string> eval;           // held-out datasets (answers; code: MBPP-format tasks), after every round
  int eval_limit = 200;                    // the first N problems of each; 0: all
  // One of `eval`, a validation set (never a test set): the round whose model scores best on it
  // (best_round) is copied to out_dir/best.gguf, since a round's held-out accuracy swings from
  // round to round and the last is not the best one (docs/improve.md). Empty: none chosen.
  std::string select;
  // Draw this many questions (code: tasks) of the pool productions into out_dir/validation.jsonl,
  // from a seed no round's pool uses, evaluate every round on all of them and select the round by
  // them (as `select` does; the two are exclusive). 0: none.
  int validation = 0;
  int rounds = 3;
  int pool = 300;                          // new pool questions per round
  // The pool's questions (code: tasks) from this file instead of the grammar's pool productions:
  // any answer dataset wand reads for pot (GSM8K's train split, PAL, SVAMP, {question, answer}),
  // function tasks with tests for code (MBPP, HumanEval, stdio); only labels and tests are used,
  // never the file's own solutions (RFT's setting: Yuan et al., 2023, sample on GSM8K train). Its
  // records in an order of `seed`'s: the validation set is the first `validation`, each round
  // takes the next `pool` after them, wrapping around. Questions that are also questions of a
  // test set under `test_sets` (train::default_test_sets; code: a task described as a HumanEval
  // or MBPP test-split task is, train::default_code_test_sets; exact match after normalising) are
  // dropped and counted.
  std::string pool_file;
  std::string test_sets = "../shared/data";
  int k = 8;                               // programs sampled per question
  double temperature = 1.0;
  int per_question = 2;                    // accepted programs per question at most
  double replay = 1.0;                     // original-template documents per accepted one
  // Also require every number of an accepted program to be in its question (ungrounded_numbers):
  // an answer-only filter accepts programs that reach the label by coincidence. For a pot-numbers
  // model the question is the mapped one: every literal other than 0, 1, 2, 100 and the number
  // words left in its text is one the model invented. A program must also use one of the
  // question's numbers (uses_question): a bare `answer = 2` is refused.
  bool grounded = false;
  // Fine-tune every round from round 0's weights (on everything accepted so far), as STaR does,
  // instead of from the previous round's: the model cannot drift further from the start each round.
  bool from_start = false;
  // A pot-numbers model: each sample of a pool question reads the names in an order of its own
  // (reason::SolveConfig::shuffle_names), and the replay documents are shuffled likewise, so the
  // fine-tuning data never ties a name to a role by its position. Evaluation reads the names in
  // order, as `wand solve` does by default.
  bool shuffle_names = false;
  int repair = 0;                          // code: self-debug rounds after a failing sample (0: sampling only)
  // Fine-tuning (wand-train).
  std::string trainer;                     // the wand-train binary
  int steps = 80, batch = 8, warmup = 10, threads = 1;
  double lr = 5e-4;
  uint64_t seed = 1;
};
// Checks the options before any work; the error names the option.
VoidResult validate(const ImproveOptions& o);

// Opens the model of a round (a GGUF path); the CLI opens the embedded engine, tests a script.
using ModelOpener = std::function<Result<std::unique_ptr<llm::Backend>>(const std::string& gguf)>;

struct RoundReport {
  int round = 0;
  int questions = 0, samples = 0;   // this round's pool (questions or function tasks) and programs sampled
  int solved = 0;                   // questions with at least one accepted program
  int accepted = 0;                 // programs accepted this round (after dedupe and the cap)
  int ungrounded = 0;               // with `grounded`: right answers refused for numbers not in the question
  int trained_on = 0;               // accepted programs so far (the fine-tuning set), replay not counted
  Json accuracy = Json::object();   // eval file -> {"correct", "n", "accuracy"}
  std::string model;                // the round's GGUF
  std::string sample_run;           // the bench run of the round's samples
  Json to_json() const;
};

// Runs (or resumes) the loop; `progress` gets one line per step. Errors: bad options, a model
// or dataset that cannot be read, the trainer failing (its log is named).
Result<std::vector<RoundReport>> run_improve(const ImproveOptions& o, store::Store& db, sandbox::Sandbox& sb,
                                             const ModelOpener& open_model,
                                             const std::function<void(const std::string&)>& progress = {});

// The numbers a program uses that its question does not give: numeric literals not written in
// the question as digits ("1,200" is 1200) or as words (zero to twenty, "a dozen" 12, "half" and
// "twice" 2, "triple" 3), other than 0, 1, 2 and 100. Empty for a grounded program.
std::vector<std::string> ungrounded_numbers(const std::string& program, const std::string& question);

// Whether `program` uses at least one number its question gives: a literal of the question's
// digits or number words (ungrounded_numbers' reading, without the free 0, 1, 2 and 100), or a
// number name nK of a mapped question. A right `answer = 2` uses none, so --grounded refuses it.
bool uses_question(const std::string& program, const std::string& question);

// The set the best round is chosen by: out_dir/validation.jsonl with `validation`, else `select`
// (empty: none).
std::string selection_set(const ImproveOptions& o);

// The round (an index into `rounds`) whose model has the highest accuracy on eval set `file`, the
// earliest of equals; -1 when no round was evaluated on it.
int best_round(const std::vector<RoundReport>& rounds, const std::string& file);

// The rounds as a Markdown table (round, accepted, solved, one accuracy column per eval set).
std::string markdown_table(const std::vector<RoundReport>& rounds);

}  // namespace wand::improve
