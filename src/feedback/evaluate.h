// `wand eval`'s pipeline as a library call the CLI, the server and the Python module share:
// every sample of a code benchmark prepared (feedback.h prepare), run in the sandbox in batches,
// judged, and aggregated into pass@k and outcome counts.
#pragma once
#include <atomic>
#include <cstddef>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "feedback/feedback.h"
#include "sandbox/sandbox.h"

namespace wand::feedback {

// One completion to judge, for tasks[task].
struct EvalSample {
  std::size_t task = 0;
  std::string completion;
};

// Samples from a JSON-lines file of {task_id, completion} (HumanEval's tooling's format; a
// non-string task_id is matched by its JSON text). Errors name the file, line and problem: a
// missing field, a task_id not in `tasks`, a file without samples.
Result<std::vector<EvalSample>> load_samples(const std::string& path, const std::vector<Task>& tasks);
// The tasks' own reference solutions, one sample each; tasks without one are left out.
std::vector<EvalSample> reference_samples(const std::vector<Task>& tasks);

// One of `count` parts of a run, for a cluster's job array (README: Batch jobs on a cluster).
// A shard holds the tasks whose position in the dataset is `index` modulo `count`: every sample of
// a task stays in one shard (pass@k needs them together), and striding rather than contiguous
// ranges spreads datasets ordered by difficulty or length (APPS, MBPP) evenly over the shards.
struct Shard {
  int index = 0, count = 1;
  bool holds(std::size_t position) const { return static_cast<int>(position % count) == index; }
  std::string str() const;  // "I/N"
};
// "I/N" with 0 <= I < N (0-based, as Slurm's SLURM_ARRAY_TASK_ID for --array=0-(N-1)). Errors
// name the text: "--shard '4/4': expected I/N with 0 <= I < N".
Result<Shard> parse_shard(std::string_view text);

// SHA-256 (hex) of a file's bytes: what a run records of its dataset, so shards, --resume and
// --compare tell the same file from a changed or different one wherever it lives.
Result<std::string> file_sha256(const std::string& path);

struct EvalOptions {
  JudgeOptions judge;
  bool extract_code = false;     // code_from_completion first (chat models' fenced answers)
  std::vector<int> ks = {1, 10, 100};  // pass@k values, each >= 1
  // Samples per sandbox batch (0: all in one). Each batch is judged before the next runs, so the
  // execution results held at once (up to max_output_bytes per stream each) stay bounded.
  std::size_t batch_samples = 0;
  Shard shard;  // only the samples of this shard's tasks are run
  // Ctrl-C: once *stop is true no further run starts, and evaluate returns the samples whose
  // runs all finished (report.interrupted). Runs in progress finish. Not owned.
  const std::atomic<bool>* stop = nullptr;
};
// Checks the options before any work: every k >= 1; judge.answer is auto, last-line,
// var:NAME or call:NAME. Errors name the option ("--answer 'x': expected ...").
VoidResult validate(const EvalOptions& opt);

// A judge option that a kind of task never reads, so that it is refused rather than silently
// ignored: `answer` other than auto (only answer tasks read it), `float-tol` (stdin/stdout
// tasks), `strict` (assert tasks), `partial-credit` (not answer tasks: one answer, one check). `name` is the option's name without dashes; `used_by` says
// which tasks read it. nullopt when every option set applies.
struct UnusedOption {
  std::string name, used_by;
};
std::optional<UnusedOption> unused_option(const JudgeOptions& judge, TaskKind kind);

// One judged sample.
struct SampleResult {
  std::size_t sample = 0;  // index into the samples
  std::size_t task = 0;    // index into the tasks
  int index_in_task = 0;   // 0, 1, ... over the task's samples, in sample order
  Verdict verdict;
  sandbox::Status status = sandbox::Status::ok;  // of the sample's first run
  double wall_s = 0;                             // all of the sample's runs
};

struct EvalReport {
  std::string dataset, format;      // as given; the tasks' format (humaneval, mbpp, ...)
  std::vector<SampleResult> results;  // one per sample run, in sample order (empty when merged)
  std::size_t samples = 0;          // samples judged
  bool interrupted = false;         // stopped (EvalOptions::stop) before every sample was judged
  std::size_t samples_not_run = 0;  // of the shard's samples, those an interruption left unjudged
  std::size_t tasks = 0;            // tasks with at least one sample
  std::size_t tasks_unsolved = 0;   // of those, tasks no sample passed
  std::map<std::string, int> outcomes;        // error class name ("none" = passed) -> samples
  std::map<int, MeanPassAtK> pass_at_k;       // per requested k
  double wall_s = 0;                          // seconds in the sandbox's batches
  double sample_time_p50 = 0, sample_time_p99 = 0;  // seconds per sample (all its runs)

  // The summary `wand eval --json` prints: dataset, format, samples, wall_time, samples_per_s,
  // sample_time_p50/p99, outcomes, tasks, tasks_unsolved, pass_at_k {"pass@K": value} and
  // pass_at_k_not_computed {"pass@K": {reason, tasks_with_fewer_samples, fewest_samples}};
  // after an interruption also interrupted: true and samples_not_run.
  Json summary() const;
};

// One sample's line of `wand eval --out`: the verdict's fields plus task_id, sample (its index
// within the task), index (its line in the samples), task_index (the task's position in the
// dataset), status (of its first run) and wall_time.
Json sample_json(const SampleResult& r, const std::vector<Task>& tasks);

// The sandbox runs judging the samples of `shard` takes: one per sample, one per case for
// stdin/stdout tasks (the total for a progress display).
std::size_t run_count(const std::vector<Task>& tasks, const std::vector<EvalSample>& samples, Shard shard = {});

// Runs and judges every sample. `on_run` is called as each sandbox run finishes (run_count in
// all), from the sandbox's threads. `samples` index into `tasks`; `dataset` is recorded in the
// report as it is.
EvalReport evaluate(sandbox::Sandbox& sb, const std::string& dataset, const std::vector<Task>& tasks,
                    const std::vector<EvalSample>& samples, const EvalOptions& opt,
                    const std::function<void()>& on_run = {});
// The same with the runs made by `run_batch` (Sandbox::run_batch's shape: results in request
// order, on_done(i) as each finishes), e.g. on a remote service (remote.h).
using BatchRunner = std::function<std::vector<sandbox::ExecResult>(const std::vector<sandbox::ExecRequest>&,
                                                                   const std::function<void(std::size_t)>&)>;
EvalReport evaluate(const BatchRunner& run_batch, const std::string& dataset, const std::vector<Task>& tasks,
                    const std::vector<EvalSample>& samples, const EvalOptions& opt,
                    const std::function<void()>& on_run = {});

// --- shards and merging (README: Batch jobs on a cluster)

// Where a run's samples came from, recorded in a shard file's header so that merging refuses
// shards of different runs.
struct EvalOrigin {
  std::string dataset_sha256;
  std::size_t dataset_tasks = 0;
  std::string samples;         // the samples file as given, or "reference"
  std::string samples_sha256;  // "" for reference solutions
  std::size_t samples_total = 0;  // samples in all shards together
};

// The options that change a verdict or a number: a shard file records them and merging compares them.
Json options_json(const EvalOptions& opt);

// A shard file: a header line {"wand_eval_shard": {shard, dataset, format, dataset_sha256,
// dataset_tasks, samples, samples_sha256, samples_total, shard_samples, options, wall_time}},
// then sample_json's line for each of the shard's samples. Errors name `path`.
VoidResult write_shard(const std::string& path, const EvalReport& rep, const std::vector<Task>& tasks,
                       const EvalOptions& opt, const EvalOrigin& origin);

// Reading a set of shard files (wand eval's and wand bench's): each file is a header line
// {key: {shard: "I/N", count_field: rows, ...}} then one row per item.
struct ShardFormat {
  std::string key;                   // the header's one field: "wand_eval_shard"
  std::string writer;                // what writes such files, for the error on a file that is not one
  std::string count_field;           // the header field with the file's row count
  std::string item;                  // what a row is, for errors: "sample", "problem"
  std::set<std::string> per_shard;   // header fields that are each shard's own; the rest must agree
};
struct ShardSet {
  Json common;               // the header fields every file agrees on, plus shard_count
  std::vector<Json> headers;  // each file's whole header, in the order given
};
// Called for each row after its file's header; returns the row's item index (sample, problem).
using ShardRow = std::function<Result<std::size_t>(const std::string& path, int line, Shard shard, const Json& header,
                                                   const Json& row)>;
// Reads the files, checking that they are one run's shards. Errors name the file (and line) and
// the field: not a shard file, a header field that differs from the first file's, a shard given
// twice, an item in two files, fewer rows than the header says, a missing shard.
Result<ShardSet> read_shards(const std::vector<std::string>& paths, const ShardFormat& format, const ShardRow& on_row);

struct MergedEval {
  EvalReport report;       // pass@k, outcomes, tasks, times: computed as evaluate() computes them
  std::vector<Json> rows;  // every sample's line, in sample order: a single run's --out
  Json header;             // the shards' common header, without the per-shard fields
};
// Merges the shard files of one run. Errors name the file and the field: not a shard file, a
// header field that differs between files (dataset_sha256, options, samples_sha256, the shard
// count, ...), a shard given twice, a missing shard, a sample in two files, a file with fewer
// rows than its header says.
Result<MergedEval> merge_shards(const std::vector<std::string>& paths);

}  // namespace wand::feedback
