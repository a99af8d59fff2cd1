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

// --- answers (program-of-thought, chain-of-thought) and stdin/stdout

// A number as answers write it, the whole of s: "1,234.5", "$18", "-$3.50", "45%", "3/4",
// "18.", "72,", "1e3"; nullopt otherwise ("1,23", "1/0", "eighteen"). The grammar is
// extract_answer's: thousands separators are commas before exactly three digits, a trailing
// ".", ",", ";", ":", "!" or "?" is punctuation, "$" "€" "£" are dropped, and "45%" reads 45
// (not 0.45: GSM8K and the PAL sets label "what percent" questions with the bare number).
std::optional<double> parse_number(std::string_view s);

// The final answer in a text: a program's printed output or a chain-of-thought rationale.
// The one extractor every method and `wand eval` use; rules, in order:
//  1. A marker wins, the last one in the text: "the answer is X" (also "The final answer is"),
//     "answer: X" as a label starting its line ("Answer:", "**Final answer:**"), "#### X"
//     (GSM8K's label format) and "\boxed{X}" (read by boxed_answer, below). X is the number right
//     after the marker (spaces, ":", "=", "*" skipped), else its words up to the end of the
//     sentence ("The answer is yes." -> "yes"; not after "####", which is then a Markdown
//     heading); a marker with neither is passed over.
//  2. Else the last number on the last non-blank line ("so 72, in total." -> "72";
//     "x = 3, y = 4" -> "4").
//  3. Else that line as text, without trailing punctuation ("Yes." -> "Yes"); "" for a blank text.
// A number comes back in its shortest form ("$1,234.50" -> "1234.5", "3/4" -> "0.75", "18." ->
// "18"). Numbers do not start inside a word ("x2" holds none); number words ("eighteen") are text.
// Against lm-evaluation-harness's GSM8K filters: its "strict-match" reads the first
// "#### (-?[0-9.,]+)" and "flexible-extract" the last number anywhere in the text, both compared
// as strings once ",", "$" and a final "." are dropped. Here every marker counts and the last one
// wins (a rationale that corrects itself ends with its final word), the fallback reads the last
// line only (a program's last printed line is its answer, and a text answer stays readable), and
// numbers compare by value (18.0 = 18, 0.3333333 = 1/3).
std::string extract_answer(std::string_view text);
// What "\boxed{content}" answers, `content` being what the braces hold: \frac{a}{b} reads a/b,
// \text{yes} reads yes, 1{,}000 reads 1,000; a number (alone, or followed by plain words: "18
// apples") comes back as a number, other math as its text ("2\sqrt{3}", not 2). A math label in
// LaTeX goes through it too (rewards.h), so "\frac{1}{2}" matches a boxed 0.5.
std::string boxed_answer(std::string_view content);

// Numerically when both are numbers (parse_number; within abs_tol, or rel_tol of the expected
// value for huge ones: 1,450,001 is not 1,450,000), else as text (trimmed, case and runs of
// whitespace folded). Compares two answers; extract_answer finds one in a longer text first.
bool answers_match(std::string_view got, std::string_view expected, double abs_tol = 1e-6, double rel_tol = 1e-12);
// The last non-blank line of a program's output, trimmed.
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

// Reads a dataset, one JSON record per line or one JSON array of records (SVAMP.json); the
// format is recognised from the first record's fields, and every record must have that format's
// fields (errors name the file, line or record, and field). Records without a task_id (or
// problem_id, or SVAMP's ID) get their 0-based index; a task_id seen twice is an error naming both.
Result<std::vector<Task>> load_tasks(const std::string& path);
// One record in any of those formats (recognised from its fields), e.g. a task sent to `wand
// mcp`'s evaluate tool; errors name `what` and the field. Without a task_id it is "0".
Result<Task> task_from_json(const Json& record, const std::string& what = "task");
// The inverse: `t` as one record that task_from_json and load_tasks read back as `t`: HumanEval
// and MBPP in their own fields, stdio as {task_id, question, inputs, outputs, solution}, and every
// answer task (GSM8K, PAL, SVAMP) as {task_id, question, answer: the label}, read back as format
// gsm8k (a PAL record's own program is not kept). For writing a subset of a dataset (wand improve's pools from --pool-file).
Json task_json(const Task& t);

// --- code in model completions (code.cpp)

// The program in a model's completion, as chat models write it: prose around fenced blocks
// (``` or ~~~, CommonMark's rules: a closing fence of the same mark at least as long; a block
// cut off by max_tokens runs to the end; CRLF read as LF; a fence's indentation is removed from
// its lines). Which block: among those tagged `language` (or an alias: py, python3, c++, sh,
// javascript...) or untagged, else among all, the first that defines (a top-level `def NAME(`)
// one of `defines`, else the first. A completion without fences comes back as it is (less CRs).
// `language` is a sandbox language name: python, c, cpp, js, bash.
std::string extract_code(std::string_view completion, std::string_view language = "python",
                         std::span<const std::string> defines = {});

// The fenced blocks of a completion, in order, by extract_code's rules (CRLF read as LF).
struct CodeBlock {
  std::string tag;  // the info string's first word, lower-case ("" when untagged)
  std::string code;
};
std::vector<CodeBlock> code_blocks(std::string_view completion);
// Whether a fence's tag names `language` (a sandbox language name) or one of its aliases.
bool tag_is(const std::string& tag, std::string_view language);

// A sample's completion for a Python task with its code taken out of prose and fences
// (extract_code; `wand eval --extract-code`), preferring the block that defines the function
// the task's tests call (HumanEval's entry_point, the functions MBPP's test_list calls). For
// HumanEval, a block that defines the whole entry point replaces the prompt's stub: the
// program is the prompt (its imports and helpers), then the block, whose `def` is the one
// check() sees; a block without that `def` is a body appended to the prompt, as a plain
// completion is.
std::string code_from_completion(const Task& task, std::string_view completion);

struct JudgeOptions {
  double timeout_s = 10;
  // Answer tasks: "auto" (solution() if defined, else the variable `answer`, else the printed
  // output), "last-line" (the printed output), "var:NAME" or "call:NAME". The printed output's
  // answer is read by extract_answer; a variable's or a call's value is the answer as it is.
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

// pass@k of a run: the mean of pass_at_k over the tasks that have samples (n[t] samples, c[t]
// of them passing). Defined only where every such task has at least k samples (averaging over
// the rest would hide the short tasks); otherwise `value` is empty and the rest say why.
struct MeanPassAtK {
  std::optional<double> value;
  std::size_t tasks_with_fewer = 0;  // tasks with 0 < n < k
  int fewest = 0;                    // the fewest samples any task has
  std::string why_not;               // "3 of 164 tasks have fewer than 10 samples (fewest: 1)"
};
MeanPassAtK mean_pass_at_k(std::span<const int> n, std::span<const int> c, int k);

// A HumanEval task's program exactly as HumanEval's own harness builds it:
// prompt + completion + test + check(entry_point) (judged with judge_asserts; the baseline form).
std::string humaneval_program(const Task& task, const std::string& completion);

}  // namespace wand::feedback
