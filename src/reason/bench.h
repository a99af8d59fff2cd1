// Benchmarks of the reasoning methods (`wand bench`): an answer dataset run problem by problem
// through solve(), each problem recorded in the run store as it finishes (so a killed run keeps
// what finished and a resumed one ends with the numbers an uninterrupted one gives), and the
// statistics of a run: accuracy with a Wilson 95% interval, answer coverage, tokens, model vs
// sandbox seconds; McNemar's paired test between two runs; a self-contained HTML report.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "feedback/evaluate.h"
#include "llm/llm.h"
#include "reason/reason.h"
#include "sandbox/sandbox.h"
#include "store/store.h"

namespace wand::reason {

// --- datasets

struct BenchProblem {
  int index = 0;         // 0-based position in the dataset: what the store and --compare match on
  std::string id;        // the dataset's task_id / problem_id, else the index
  std::string question;
  std::string expected;  // the label, compared with feedback::answers_match
};

// Reads an answer dataset with feedback::load_tasks (the reader `wand eval` uses): GSM8K
// ({question, answer} with "#### N"), PAL's math sets ({input, target}), a plain
// {question, answer} file (wand's held-out sets, a user's own). Errors name the file and line;
// a dataset of code tasks (HumanEval, MBPP, stdin/stdout) is refused naming its format.
Result<std::vector<BenchProblem>> load_bench_dataset(const std::string& path);

// --- a run's configuration

struct BenchConfig {
  std::string dataset;              // the file
  std::string model_spec;           // local:PATH.gguf or openai:URL/MODEL
  std::string kv_cache = llm::BackendOptions{}.kv_cache;  // the embedded engine's KV cache type
  std::string prompt_style = "auto";  // auto, wand, chat, completion (prompt_family)
  std::string prompt_file;          // --prompt: the user's own template, "" for the built-in one
  int limit = 0;                    // the first N problems; 0: all
  feedback::Shard shard;            // of those, the problems whose index is shard.index modulo shard.count
  SolveConfig solve;                // method, k, sampling, seed, repair, fallback (family set by the caller)
};

// The options as `wand bench` spells them ({"method": "pot", "k": 8, "temperature": 0.7,
// "no-repair": false, ...}), recorded with the run, so a --resume that differs names the flag.
Json bench_options(const BenchConfig& c);
// The inverse of bench_options; errors name the option that is missing or of the wrong type.
Result<BenchConfig> bench_config_from(const Json& options);
// The options a resumed run uses: the stored ones, checked against those the user gave
// explicitly (`given`, keys as in bench_options). Error: "--k: run ID used 8, not 4".
Result<Json> resume_options(const Json& stored, const Json& given, const std::string& run_id);

// Whether `run` can be finished with this dataset (its SHA-256, file_sha256) and template: a bench
// run that recorded both. Errors name the run and what changed since it started.
VoidResult check_resumable(const store::RunInfo& run, const std::string& dataset_sha256, const Template& prompt);

// What the store records for a bench run (kind "bench"; extra holds bench_options and the
// dataset's SHA-256).
store::RunConfig bench_run_config(const BenchConfig& c, const std::string& model_id, const std::string& prompt_hash,
                                  const std::string& dataset_sha256, int total_problems);

// --- statistics

struct Interval {
  double lo = 0, hi = 1;
};
// Wilson's score interval (Wilson, 1927) for `successes` of `n` at normal quantile z (1.96: 95%).
// Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n successes.
// n = 0 gives [0, 1].
Interval wilson_interval(int successes, int n, double z = 1.959963984540054);

// McNemar's test for paired outcomes (McNemar, 1947): only a = problems A got right and B wrong,
// only b the reverse. Few discordant pairs (< 25): the exact two-sided binomial test,
// p = min(1, 2 P(X <= min(a, b))) with X ~ Binomial(a + b, 1/2); else the chi-square statistic
// with Edwards' continuity correction, (|a - b| - 1)^2 / (a + b), on one degree of freedom.
struct McNemar {
  int only_a = 0, only_b = 0;
  std::string test;   // "exact binomial" or "chi-square (continuity-corrected)"; "none" with no discordant pairs
  double statistic = 0;  // chi-square; the smaller discordant count for the exact test
  double p_value = 1;
};
McNemar mcnemar(int only_a, int only_b);

struct BenchSummary {
  int problems = 0;   // recorded
  int correct = 0;
  int answered = 0;   // problems with any answer (coverage)
  double accuracy = 0, coverage = 0;
  Interval ci;        // Wilson 95% interval of the accuracy
  int64_t prompt_tokens = 0, completion_tokens = 0;
  double generate_s = 0, execute_s = 0;  // model vs sandbox time, summed over problems
  double verify_s = 0;                    // select verifier: the verifier's time, summed likewise
  std::map<std::string, int> answered_by;  // sample, repair, fallback
  Json to_json() const;
};
BenchSummary summarize(std::span<const store::ProblemRecord> problems);

// A recorded problem in one line: index, id, question, expected, answer, correct, outcome,
// answered_by, prompt_tokens, completion_tokens, timings, and the program (or rationale) and
// output of the sample that answered (else of the first sample). What --out writes and the HTML
// report shows.
Json problem_line(const store::ProblemRecord& p);

// --- shards (README: Batch jobs on a cluster)

// A shard file of a bench run: a header line {"wand_bench_shard": {shard, dataset,
// dataset_sha256, options (bench_options without dataset and shard), model_id, prompt_hash,
// problems_total (the problems of all shards), shard_problems, run_id, wall_s}}, then
// problem_line for each of the shard's problems. Errors name `path`.
VoidResult write_bench_shard(const std::string& path, const BenchConfig& c, const store::RunInfo& run,
                             int problems_total, std::span<const store::ProblemRecord> problems, double wall_s);

struct MergedBench {
  store::Run run;  // the run the shards make up: its config from the headers, its problems by index
  std::vector<Json> lines;  // every problem's line, by index: a single run's --out
};
// Merges the shard files of one bench run (feedback::read_shards's checks: the same dataset,
// options, model and template; every shard once; no problem twice). summarize(run.problems) then
// gives the single-machine accuracy, Wilson interval, coverage and tokens.
Result<MergedBench> merge_bench_shards(const std::vector<std::string>& paths);

// --- running

struct BenchProgress {
  int done = 0, total = 0;  // done includes problems recorded before a resume
  int correct = 0;
};

struct BenchRun {
  std::vector<store::ProblemRecord> problems;  // every recorded problem, by index
  bool stopped = false;                        // `stop` was raised before the end
};

// Solves each of `problems` not in `done` (the records of a run being resumed) and records it in
// `db` under `run_id` as it finishes (no store: db null). `parallel` problems run at once (each
// question's k samples are one batch in solve()); more than one pays off against a server that
// serves requests concurrently, and wants a sandbox with as many cells. on_progress is called
// under a lock after each recorded problem. `stop` is read after every problem: a problem that
// was running when it was raised is not recorded (a Ctrl-C reaches the sandbox's cells too), so a
// resume redoes it. A backend error (a dead server) ends the run with that error once the
// problems in flight are done; what finished stays recorded.
Result<BenchRun> run_bench(llm::Backend& model, sandbox::Sandbox* sb, std::span<const BenchProblem> problems,
                           const SolveConfig& config, std::vector<store::ProblemRecord> done, store::Store* db,
                           const std::string& run_id, const std::function<void(const BenchProgress&)>& on_progress = {},
                           const std::atomic<bool>* stop = nullptr, int parallel = 1);

// --- comparing and reporting runs

struct ComparedProblem {
  int index = 0;
  std::string id, question, expected;
  std::optional<std::string> answer_a, answer_b;
  bool correct_a = false, correct_b = false;
};

struct Comparison {
  store::RunInfo a, b;
  int common = 0;              // problems both runs recorded, matched by index
  int correct_a = 0, correct_b = 0;  // of the common problems
  McNemar test;
  std::vector<ComparedProblem> differing;  // right in one run and wrong in the other
  Json to_json() const;
};
// Errors: a run that is not a bench run, runs over different datasets (by the recorded SHA-256,
// naming both files), a problem index whose question differs, no problem in common.
Result<Comparison> compare_runs(const store::Run& a, const store::Run& b);

// One self-contained HTML page (no external scripts or styles): an inline SVG chart of each
// run's accuracy with its 95% interval, a table of the runs, and per run the failing problems
// (at most `max_failures` each) with the program and output, every text HTML-escaped.
std::string html_report(std::span<const store::Run> runs, int max_failures = 200);

}  // namespace wand::reason
