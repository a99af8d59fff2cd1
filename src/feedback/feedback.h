// Execution feedback: turns sandbox results into verdicts (which error class, a short text
// for a prompt, a scalar reward) and runs the field's code benchmarks (pass@k).
#pragma once
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "sandbox/sandbox.h"

namespace wand::feedback {

enum class ErrorClass { none, syntax_error, compile_error, runtime_error, wrong_answer, timeout, memory_limit,
                        output_limit, sandbox_error };
const char* to_string(ErrorClass c);

// Reward by outcome, default as in CodeRL: compile (or syntax) error -1, runtime error -0.6,
// failing tests -0.3, all pass +1. Timeouts and limits count as runtime errors.
struct RewardMap {
  double compile_error = -1.0;
  double runtime_error = -0.6;
  double failing_tests = -0.3;
  double pass = 1.0;
};

// One test of a sample: an assertion judged on its own, or one stdin/stdout case.
struct TestResult {
  int index = 0;
  bool passed = false;
  std::string source;           // the assertion, or the case's input (clipped)
  std::string expected, got;    // where derivable: `assert f(x) == y` sides, expected vs actual output
  std::string error;            // an exception other than AssertionError, or the run's status
};

struct Verdict {
  bool passed = false;
  ErrorClass error = ErrorClass::none;
  std::string exception_type;  // Python, when an exception ended the program
  int line = 0;                // where, counted within the completion (0: unknown or outside it)
  std::string feedback;        // short text meant to be pasted into a prompt
  double reward = 0;
  std::vector<TestResult> tests;  // per test, when the task has several
  std::string answer;             // answer tasks: what the program answered
  Json to_json() const;
};

// Judges an assert-style program (tests are asserts in the program): passing means it ran to
// the end. `program` is the code that ran, used to quote the failing line; the verdict's line
// counts from `first_line` of it (the completion's first line; 0 for a line before it).
Verdict judge_asserts(const sandbox::ExecResult& r, const std::string& program, const RewardMap& rewards = {},
                      int first_line = 1);

// --- answers (program-of-thought) and stdin/stdout

// A number as answers write it: "1,234.5", "$18", "45%", "3/4", "18.", "1e3"; nullopt otherwise.
std::optional<double> parse_number(std::string_view s);
// Numerically when both are numbers (within abs_tol, or rel_tol of the expected value for huge
// ones: 1,450,001 is not 1,450,000), else as text (trimmed, case and runs of whitespace folded).
bool answers_match(std::string_view got, std::string_view expected, double abs_tol = 1e-6, double rel_tol = 1e-12);
// A program-of-thought run's answer: its last non-blank printed line.
std::string last_printed_line(std::string_view stdout_text);
// stdin/stdout tasks: equal up to line endings, trailing whitespace and trailing blank lines;
// with float_tol, numeric tokens may differ by that relative amount.
bool outputs_match(std::string_view got, std::string_view expected, std::optional<double> float_tol = {});

// --- tasks in the field's formats, prepared for the sandbox and judged (tasks.cpp)

// asserts: HumanEval (prompt + completion + test + check(entry_point)) and MBPP (code + test_list);
// stdio: input/expected-output cases (APPS/CodeContests style); answer: GSM8K and PAL's math sets.
enum class TaskKind { asserts, stdio, answer };

struct Task {
  std::string task_id;
  TaskKind kind = TaskKind::asserts;
  std::string format;     // humaneval, mbpp, stdio, gsm8k, pal
  std::string prompt;     // HumanEval: prepended to each completion; answer tasks: the question
  std::string reference;  // the dataset's own solution (canonical_solution / code / solutions[0])
  std::string test, entry_point;                        // HumanEval
  std::vector<std::string> test_list;                   // MBPP
  std::string setup;                                    // MBPP test_setup_code
  std::vector<std::pair<std::string, std::string>> io;  // stdio: stdin -> expected stdout
  std::string expected;                                 // answer tasks
};

// Reads a JSONL dataset; the format is recognised from the first record's fields, and every
// record must have that format's fields (errors name the file, line and field). Records without
// a task_id get their 0-based index.
Result<std::vector<Task>> load_tasks(const std::string& path);

struct JudgeOptions {
  double timeout_s = 10;
  // Answer tasks: "auto" (solution() if defined, else the variable `answer`, else the last
  // printed line), "last-line", "var:NAME" or "call:NAME".
  std::string answer = "auto";
  std::optional<double> float_tol;  // stdio: numeric tokens may differ by this relative amount
  bool partial_credit = false;      // reward failing samples by the fraction of tests passed
  // Assert tasks: run the tests in a trusted process that never loads the sample; the sample's
  // process serves calls to its functions over a pipe, values as tagged JSON (README: threat
  // model). Slower; for rewards a sample must not be able to forge.
  bool strict = false;
  std::size_t memory_mb = sandbox::Limits{}.memory_mb;                // per run
  std::size_t max_output_bytes = sandbox::Limits{}.max_output_bytes;  // per stream, per run
  RewardMap rewards;
};

// The standard-library modules benchmark programs and the harness import, worth preloading in
// the sandbox's fork-server (each sample then forks with them loaded instead of importing them).
inline const std::vector<std::string> kEvalPreload = {"typing", "ast", "json", "math", "re", "collections",
                                                      "itertools", "functools", "string", "heapq", "hashlib"};

// What the sandbox runs for one sample: one request, or one per case for stdio tasks.
// Assert and answer tasks run wand's harness (harness.py), which receives the tests and a
// fresh key on the request's channel and signs its records with HMAC-SHA256 (RFC 2104).
struct Submission {
  std::vector<sandbox::ExecRequest> requests;
  std::string key;         // signs the harness's records; never in the program the sample sees
  std::string program;     // the text the verdict's line numbers and quotes refer to
  int first_line = 1;      // the completion's first line in `program`
};
Submission prepare(const Task& task, const std::string& completion, const JudgeOptions& opt);
Verdict judge(const Task& task, const Submission& sub, std::span<const sandbox::ExecResult> results,
              const JudgeOptions& opt);

// The unbiased estimator of Chen et al. (2021): 1 - C(n-c, k) / C(n, k).
double pass_at_k(int n, int c, int k);

// A HumanEval task's program exactly as HumanEval's own harness builds it:
// prompt + completion + test + check(entry_point) (judged with judge_asserts; the baseline form).
std::string humaneval_program(const Task& task, const std::string& completion);

}  // namespace wand::feedback
