// Synthetic, verifiable training data for wand's own model. Everything is deterministic in the seed.
// - Word problems come from templates (quantities, rates, fractions, percentages, money, time,
//   comparisons, unit conversions; one to five steps), each rendered three ways that must agree:
//   a Python program computing `answer`, a step-by-step rationale, and the answer.
// - Function tasks (MBPP-like) come from function families: a one-line description, a Python
//   function, and assert tests whose expected values are computed in C++, not by the function.
// Templates and families are split into train and held-out sets, so generalization to unseen
// phrasings and functions is measured, not only unseen numbers.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "reason/numbers.h"

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

struct FunctionTask {
  std::string name;                // the function's name
  std::string description;         // "Write a function to ..."
  std::string code;                // the function, `def name(...):` and its body
  std::vector<std::string> tests;  // "assert name(...) == ..." lines
  // Up to five further asserts on other inputs (expected values computed in C++ as well): the
  // `tests` part's documents, so a model learns to write tests for CodeT and the roles' tester.
  std::vector<std::string> more_tests;
  std::string text;                // the same task in prose, with worked examples and no code
  int template_id = 0;             // the family; held-out families count from 100, pool families from kPoolFamilyBase
  std::string tests_text() const;  // the tests, one per line
};
// MBPP's record shape (task_id, text, code, test_list, test_setup_code), which `wand eval` reads.
Json to_mbpp_json(const FunctionTask& t, long long task_id);

// Word problems from a compositional grammar (grammar.cpp): story shapes ("productions") filled
// with names, objects and units, verbs of gain and loss, numbers as digits or words, "a dozen",
// "twice as many", "half as many", distractor sentences, shuffled independent facts and the
// question first, last or folded into an "If ...". Split by production: TemplateSet::held_out
// gives story shapes no training corpus has. template_id counts from kGrammarTemplateBase
// (held-out productions from kGrammarTemplateBase + 100).
inline constexpr int kGrammarTemplateBase = 200;
// next_pool(): the loop's pool (`wand improve --task pot`), story shapes of everyday kinds of
// operation (percent change, rates, ages, unit prices, money in and out, groups), in no training
// corpus and none of the held-out test templates; template_id from kGrammarPoolBase.
inline constexpr int kGrammarPoolBase = 400;
class GrammarGenerator {
 public:
  explicit GrammarGenerator(uint64_t seed) : rng_(seed) {}
  Problem next(TemplateSet set);
  static int production_count(TemplateSet set);
  Problem next_pool();
  static int pool_count();

 private:
  std::mt19937_64 rng_;
};

// Function tasks of three disjoint sets of families: TemplateSet::train (18, ids 0-17: the corpus's),
// TemplateSet::held_out (10, ids 100-109: the test families of heldout-functions-templates.jsonl)
// and the pool (next_pool(); 8, ids from kPoolFamilyBase: what `wand improve --task code` learns
// from, in no corpus and never a test).
inline constexpr int kPoolFamilyBase = 200;
class FunctionTaskGenerator {
 public:
  explicit FunctionTaskGenerator(uint64_t seed) : rng_(seed) {}
  FunctionTask next(TemplateSet set);
  static int template_count(TemplateSet set);
  FunctionTask next_pool();
  static int pool_count();

 private:
  std::mt19937_64 rng_;
};


}  // namespace wand::train

namespace wand::train {

// The parts a mixture is made of, and what a document of each looks like:
//   pot   question + program          (the prompt `wand solve` uses, completed)
//   cot   question + rationale        (the prompt `wand solve --method cot` uses, completed)
//   func  description + tests + function (MBPP-like, the prompt of function_prompt())
//   tests description + the function's name + asserts on other inputs (tests_prompt(), then
//         more_tests; prompts/tests.wand.txt is this prompt), no function
//   code  plain code: a function with its tests, or a word problem's program, no prose
//   text  plain text: a word problem and its worked steps, or a function task told in prose
//   grammar, grammar-cot   pot and cot documents of the question grammar's training productions
//   gsm8k, gsm8k-cot       pot and cot documents of GSM8K's train split, converted and verified
//                          (load_gsm8k_train)
//   agent       an expert's trajectory on a train instance of kitchen, data or shop, as CodeAct
//               steps in the lean prompt of wand's own models (agent.h: Task/State, then per step
//               Task/Thought/Code/Observation); one kitchen document in three with a mistake and its recovery
//   agent_json  the same trajectories as JSON tool calls (one Action per step), for CodeAct vs JSON
//   world       prose about a generated world of towns and people (world.h; the same world in
//               every corpus), the facts the mixture study's knowledge probe asks about
inline const std::vector<std::string> kCorpusParts = {"pot",     "cot",         "func",  "tests", "code",
                                                      "text",    "grammar",     "grammar-cot",
                                                      "gsm8k",   "gsm8k-cot",   "agent", "agent_json",
                                                      "world"};
// Document `n` of the agent parts: train instance n of an environment (kitchen 3 in 5, data and
// shop 1 in 5 each), the expert's solution rendered as CodeAct steps or (json_calls) JSON tool
// calls (agent::expert_document; kitchen documents n with n / 5 % 3 == 1 show a mistake first,
// agent::find_mistake); `key` is the instance's id.
std::string agent_document(uint64_t seed, long long n, bool json_calls, std::string& key);
// "Task: ...\nTests:\n" + the first `shown` tests + "Code:\n"
std::string function_prompt(const FunctionTask& t, std::size_t shown = SIZE_MAX);
std::string tests_prompt(const FunctionTask& t);     // "Task: ...\nTests for NAME:\n"

// Vocabulary sizes a corpus can have: the 256 byte symbols and <|bos|>, <|eos|>, <|pad|> at
// least; at most what uint16 token ids hold.
inline constexpr int kMinVocab = 259;
inline constexpr int kMaxVocab = 65535;
inline constexpr double kMaxCorpusTokens = 1e11;

// `wand corpus`: token shards for training plus held-out evaluation sets.
struct CorpusOptions {
  std::string out_dir;
  std::vector<std::pair<std::string, double>> mix = {{"pot", 1.0}};  // parts from kCorpusParts
  // How the weights are read: false, as the chance that the next document is of that part; true,
  // as the share of the corpus's tokens (each next document is of the part furthest below its
  // share), so a mix states exactly how much of the token budget each part gets, whatever its
  // documents' lengths (the mixture study's code share).
  bool token_shares = false;
  long long tokens = 2'000'000;
  uint64_t seed = 1;
  int vocab = 512;
  int held_out = 1000;  // problems in each held-out set
  std::string tokenizer;  // an existing tokenizer GGUF to reuse ("" = train one)
  int verify = 200;       // items per kind (problems, functions) executed in the sandbox; 0 = none
  long long shard_tokens = 0;  // tokens per shard (train-00000.bin, ...); 0 = one file, train.bin
  // GSM8K's train split in its original format, for the gsm8k parts.
  std::string gsm8k = "../shared/data/gsm8k/train.jsonl";
  // Where the test sets live (default_test_sets): the corpus's questions are checked against them.
  std::string test_sets = "../shared/data";
  int ngram = 13;  // decontamination n-gram length, in words
  // Number mapping (reason/numbers.h): the pot, grammar and gsm8k parts' documents read the
  // question with its numbers as names (n0, n1, ...) and the program over the names, the prompt
  // format pot-numbers. Every such program runs in the sandbox with its bindings and is dropped
  // unless it gives the problem's answer. The cot parts stay prose.
  bool number_names = false;
  // With number_names: each document's names in an order of its own (reason::map_numbers's
  // names_seed, drawn from the corpus's seed), so no name stands for a role by its position.
  bool shuffle_names = false;
  // With number_names: the delexicalized reading (reason::Reading::delexicalized, prompt format
  // pot-delex): a name per mention, content words as placeholders, the programs' variables v0, ...
  bool delexicalize = false;
  // Every pot-style document (question then program) written the other way round, program then
  // question (reason::review_document): a reviewer model's corpus, p(question | program), for
  // Coder-Reviewer reranking. Documents of other kinds (cot, func, text, ...) are written as they are.
  bool review = false;
  // The reading the named parts are written in; nullopt without number_names.
  std::optional<reason::Reading> reading() const {
    if (!number_names) return std::nullopt;
    return delexicalize ? reason::Reading::delexicalized : reason::Reading::numbers;
  }
};
// Parses "pot=0.5,cot=0.5" or "code=0.5,text=0.5"; errors name the bad entry.
Result<std::vector<std::pair<std::string, double>>> parse_mix(const std::string& spec);
// Checks the options before any work: a non-empty mix of known parts with finite positive
// weights, tokens >= 1, vocab in [kMinVocab, kMaxVocab], non-negative counts, and a --tokenizer
// that reads as a tokenizer with <|bos|>, <|eos|> and at most kMaxVocab tokens, and an --out folder
// whose files of the names a run replaces (train*.bin, heldout-*.jsonl, tokenizer.gguf,
// manifest.json) an earlier corpus run wrote (its .wand-corpus mark, or a corpus manifest): files of
// those names from anywhere else are refused, never removed. Errors name the option and the value.
// write_corpus calls it first.
VoidResult check_corpus_options(const CorpusOptions& opt);
// Writes DIR/tokenizer.gguf, DIR/train.bin or its shards (uint16 ids; <|bos|> doc <|eos|>), DIR/heldout-numbers.jsonl,
// DIR/heldout-templates.jsonl, when the mix has a part made from function tasks also
// DIR/heldout-functions.jsonl and DIR/heldout-functions-templates.jsonl (MBPP format), and
// DIR/manifest.json; returns the manifest. With opt.verify, a sample of the training items is
// executed in the sandbox first (verify_items) and the counts go in the manifest.
Result<Json> write_corpus(const CorpusOptions& opt, const std::function<void(long long)>& progress = {});

// A corpus of the given documents in write_corpus's format, for `wand-train --data DIR` (with
// `--init CHECKPOINT`: fine-tuning): DIR/train.bin (each document <|bos|> text <|eos|>),
// DIR/tokenizer.gguf (the model's tokenizer, read from `tokenizer`: a GGUF that holds one) and
// DIR/manifest.json (vocab, documents, tokens, and `source`: where the documents came from).
// `wand export --run ID --format sft --corpus DIR` writes its rows this way.
Result<Json> write_document_corpus(const std::vector<std::string>& documents, const std::string& tokenizer,
                                   const std::string& out_dir, const Json& source);

// A preference pair as text (`wand export --format dpo` rows, as codegen::document_of reads them):
// the prompt, the preferred completion (a passing program) and the other (a failing one).
struct PreferencePair {
  std::string prompt, chosen, rejected;
};
// A pair corpus for `wand-train --dpo --data DIR`: DIR/pairs.bin (per pair three uint32 lengths,
// then the prompt's tokens from <|bos|>, the chosen's and the rejected's each ending in <|eos|>),
// DIR/tokenizer.gguf and DIR/manifest.json (vocab, pairs, tokens, source). Errors: no pairs, a
// tokenizer that cannot be read, a failed write.
Result<Json> write_pair_corpus(const std::vector<PreferencePair>& pairs, const std::string& tokenizer,
                               const std::string& out_dir, const Json& source);

// --- GSM8K's train split as verified programs

// The program a GSM8K solution's calculator annotations (`<<48/2=24>>`) spell: one assignment per
// annotation, named from the word after its result where that is a plain noun ("24 clips" ->
// `clips`), else `step3`; a number that repeats an earlier result not in the question becomes
// that result's name, so the steps read as a data flow; the last step is `answer`. `x` and `^` in
// annotations become `*` and `**`. nullopt for a solution without annotations.
std::optional<std::string> gsm8k_program(const std::string& question, const std::string& solution);

// Reads GSM8K's original format (question, answer with "#### N"), converts every solution with
// gsm8k_program, runs all the programs in the sandbox (one batch) and keeps the problems whose
// executed answer equals the label (rationale: the solution without annotations, ending "The
// answer is N."; template_id -1). `report` gets {"file", "records", "converted", "kept"}.
Result<std::vector<Problem>> load_gsm8k_train(const std::string& path, Json& report);

// A problem in the pot-numbers format (reason/numbers.h): `problem` as it was (its question is
// what decontamination checks), the mapped question and the program over the names.
struct NamedProblem {
  Problem problem;
  std::string text, program;
  reason::Reading reading = reason::Reading::numbers;
  // "Question: {text}\nProgram:\n{program}"; names_seed != 0: the names shuffled (both sides alike).
  std::string document(uint64_t names_seed = 0) const;
};
// Maps each problem's numbers, runs bindings + named program in the sandbox (one batch) and
// keeps those that give the problem's answer, in order.
Result<std::vector<NamedProblem>> name_numbers(const std::vector<Problem>& problems,
                                                reason::Reading reading = reason::Reading::numbers);

// --- decontamination against the test sets

// A question as the checks compare it: lower case, words of letters and digits, one space apart.
std::string normalize_question(std::string_view text);

struct TestSet {
  std::string name, path;
  // Only the records whose integer task_id is in [first_id, last_id] (a split kept in one file,
  // as MBPP's test split, 11-510, in mbpp.jsonl); 0, 0: every record.
  long long first_id = 0, last_id = 0;
};
// MultiArith, ASDiv, SVAMP and GSM8K test under `data_dir` (pal-math/mawpsmultiarith.jsonl,
// pal-math/asdiv.jsonl, svamp/SVAMP.json, gsm8k/test.jsonl).
std::vector<TestSet> default_test_sets(const std::string& data_dir);
// The code test sets under `data_dir`: HumanEval (humaneval/HumanEval.jsonl, its prompts) and
// MBPP's test split (mbpp/mbpp.jsonl, task ids 11-510, its descriptions: Austin et al., 2021).
std::vector<TestSet> default_code_test_sets(const std::string& data_dir);

// n-gram overlap between training questions and the test sets (the GPT-3 and Codex papers'
// 13-gram check), and exact matches of the normalised question, which the corpus drops.
class Decontaminator {
 public:
  // Reads each set (JSON lines with "question" or "input", HumanEval's "prompt", MBPP's "text",
  // or a JSON array of SVAMP's {"Body", "Question"}); a missing file is reported as missing, an
  // unreadable one is an error.
  static Result<Decontaminator> load(const std::vector<TestSet>& sets, int n = 13);
  // Checks one training question (each distinct question once); true when it exactly matches a
  // test question: the caller drops it.
  bool contaminated(const std::string& question);
  // {"n", "questions_checked", "sets": {name: {"path", "questions", "exact_matches", "ngram_hits",
  // "examples"}}} (or {"path", "missing": true}); exact matches are dropped, n-gram hits counted.
  Json report() const;

 private:
  struct Set {
    std::string name, path;
    bool missing = false;
    long long questions = 0, exact = 0, hits = 0;
    std::unordered_set<std::string> exact_set;
    std::unordered_set<std::string> ngrams;
    Json examples = Json::array();
  };
  int n_ = 13;
  long long checked_ = 0;
  std::vector<Set> sets_;
  std::unordered_map<std::string, bool> decided_;
};

// Runs items in the sandbox: each problem's program must assign its answer, each function must
// pass its tests and its more_tests (the `tests` part's asserts are checked against the reference). Returns {"problems": {"checked", "agreed"}, "functions": {"checked", "passed"},
// "failures": [...]} (at most 10 failures, each with the item and what happened).
Result<Json> verify_items(const std::vector<Problem>& problems, const std::vector<FunctionTask>& functions);
// Whether each problem's program, run in the sandbox (one batch), assigns the problem's answer.
Result<std::vector<bool>> programs_agree(const std::vector<Problem>& problems);

}  // namespace wand::train
