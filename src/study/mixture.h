// `wand study mixture`: the code-mixture study ("To Code or Not To Code? Exploring Impact of Code
// in Pre-training", Aryabumi et al., 2024) at wand's scale. Same-size models are trained on the
// same token budget with different shares of code, then probed for natural-language reasoning,
// knowledge and code; a cool-down from the balanced model with and without code follows.
//
// Code share: the fraction of a corpus's training tokens that come from code parts (`func`:
// task, tests and function; `code`: plain functions with tests and word-problem programs),
// half each. The rest is prose in equal thirds: `world` (the facts the knowledge probe asks
// about, train/world.h), `cot` (word problems with worked answers in prose) and `text` (word
// problems and function tasks told in prose). Shares are exact in tokens (CorpusOptions::
// token_shares), not in documents; every corpus uses one tokenizer, so log-probabilities compare.
//
// Probes (the same items for every model):
//   reasoning   held-out word-problem templates (never in any corpus) and MultiArith (evaluation
//               only): greedy CoT answers (exact match), the answer cloze (`...Answer: The answer
//               is` + the right number vs k distractors: rank rate and log-probability), and for
//               the templates the mean per-token log-probability of the worked rationale;
//   knowledge   every world fact as a question ("How many bridges does Tolven have? Tolven has"):
//               greedy answer, rank rate against k other towns' values, log-probability;
//   code        function tasks of training families on unseen inputs (drawn from a probe seed;
//               a few may coincide with a training instance, equally for every mixture): greedy
//               pass@1 in the sandbox, and the reference function's mean per-token log-probability.
// Exact-match numbers are rates with Wilson 95% intervals; log-probabilities (natural log, so
// higher is better) are means with a normal 95% interval over items. Rates of 1/(k+1) are chance.
//
// Layout of --out: tokenizer/ (the shared tokenizer), points/<name>/{corpus,train,model.gguf,
// result.json} for main runs ("code050-seed1"), cooldown/<name>/... for cool-downs
// ("with-code-seed1", "without-code-seed1"), summary.json and summary.md. A point whose
// result.json exists is skipped, so running again resumes (the trainer resumes from its state).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "llm/llm.h"
#include "sandbox/sandbox.h"

namespace wand::study {

struct MixtureOptions {
  std::string out_dir;
  std::vector<double> shares = {0, 0.25, 0.5, 0.75, 0.9, 1.0};  // code shares, each in [0, 1]
  int seeds = 2;                  // seeds 1..N: corpus order and model initialisation
  long long tokens = 600'000;     // corpus tokens per point (the same budget for every share)
  int vocab = 512;
  // The model (wand-train's sizes) and its training.
  int dim = 64, layers = 2, heads = 4, kv_heads = 2, ffn = 176, seq = 256;
  int steps = 600, batch = 16, warmup = 30;
  double lr = 2e-3;
  // The cool-down: from the balanced model (the share nearest 0.5) of each seed, `cooldown_steps`
  // more steps on `cooldown_tokens` of high-quality data (cot and world prose, with or without
  // 30% `func`), the learning rate decaying from cooldown_lr to zero. 0 steps: no cool-down.
  int cooldown_steps = 120;
  long long cooldown_tokens = 150'000;
  double cooldown_lr = 5e-4;
  int threads = 1;
  std::string dtype = "bf16";
  std::string trainer;  // the wand-train binary
  std::string multiarith = "../shared/data/pal-math/mawpsmultiarith.jsonl";
  std::string test_sets = "../shared/data";  // for the corpora's decontamination check
  int probe_items = 100;  // items per probe (the world: every fact, at most this many)
  int distractors = 4;    // k wrong answers per cloze item
};

// Checks the options before any work; the error names the option and the value.
VoidResult validate(const MixtureOptions& o);

// The mixture of a code share: {"func", s/2}, {"code", s/2}, {"world", (1-s)/3}, {"cot", ...},
// {"text", ...}, parts of weight 0 left out. Weights are token shares.
std::vector<std::pair<std::string, double>> mixture_of(double code_share);

// Opens a point's model; the CLI opens the embedded engine.
using ModelOpener = std::function<Result<std::unique_ptr<llm::Backend>>(const std::string& gguf)>;

// The probes (see above) on one model; {"reasoning_templates", "multiarith", "knowledge", "code"},
// each {"n", metric: {"value", "lo", "hi", "kind": "exact" | "likelihood"}, ...}.
struct ProbeOptions {
  int items = 100, distractors = 4;
  std::string multiarith;
};
Result<Json> run_probes(llm::Backend& model, sandbox::Sandbox& sb, const ProbeOptions& o);

// Runs (or resumes) the study; `progress` gets one line per step (with an estimate of the time
// left). Returns the summary (what summary.json holds): {"options", "runs": [each result.json],
// "table": [per (phase, share): every metric's mean over seeds with the pooled 95% interval and
// the seeds' values]}. Errors: bad options, a corpus or trainer failure (its log is named).
Result<Json> run_mixture(const MixtureOptions& o, sandbox::Sandbox& sb, const ModelOpener& open_model,
                         const std::function<void(const std::string&)>& progress = {});

// The summary's table as Markdown: one row per (phase, share), one column per metric.
std::string markdown_table(const Json& summary);

}  // namespace wand::study
