// `wand eval`'s pipeline as a library call the CLI, the server and the Python module share:
// every sample of a code benchmark prepared (feedback.h prepare), run in the sandbox in batches,
// judged, and aggregated into pass@k and outcome counts.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <string>
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

struct EvalOptions {
  JudgeOptions judge;
  bool extract_code = false;     // code_from_completion first (chat models' fenced answers)
  std::vector<int> ks = {1, 10, 100};  // pass@k values, each >= 1
  // Samples per sandbox batch (0: all in one). Each batch is judged before the next runs, so the
  // execution results held at once (up to max_output_bytes per stream each) stay bounded.
  std::size_t batch_samples = 0;
};
// Checks the options before any work: every k >= 1; judge.answer is auto, last-line,
// var:NAME or call:NAME. Errors name the option ("--answer 'x': expected ...").
VoidResult validate(const EvalOptions& opt);

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
  std::vector<SampleResult> results;  // one per sample, in sample order
  std::size_t tasks = 0;            // tasks with at least one sample
  std::size_t tasks_unsolved = 0;   // of those, tasks no sample passed
  std::map<std::string, int> outcomes;        // error class name ("none" = passed) -> samples
  std::map<int, MeanPassAtK> pass_at_k;       // per requested k
  double wall_s = 0;                          // seconds in the sandbox's batches
  double sample_time_p50 = 0, sample_time_p99 = 0;  // seconds per sample (all its runs)

  // The summary `wand eval --json` prints: dataset, format, samples, wall_time, samples_per_s,
  // sample_time_p50/p99, outcomes, tasks, tasks_unsolved, pass_at_k {"pass@K": value} and
  // pass_at_k_not_computed {"pass@K": {reason, tasks_with_fewer_samples, fewest_samples}}.
  Json summary() const;
};

// One sample's line of `wand eval --out`: the verdict's fields plus task_id, sample (its index
// within the task), status (of its first run) and wall_time.
Json sample_json(const SampleResult& r, const std::vector<Task>& tasks);

// The sandbox runs judging the samples takes: one per sample, one per case for stdin/stdout
// tasks (the total for a progress display).
std::size_t run_count(const std::vector<Task>& tasks, const std::vector<EvalSample>& samples);

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

}  // namespace wand::feedback
