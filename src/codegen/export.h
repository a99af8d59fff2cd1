// Training data from recorded runs (`wand export --run ID --format ...`): what a run's execution
// feedback verified, as JSON lines that common trainers read.
//
//   sft      {"prompt", "completion"} (TRL's prompt-completion shape; a chat prompt is a list of
//            messages and the completion [{"role": "assistant", ...}], TRL's conversational form)
//            or {"messages": [...]} (OpenAI's chat fine-tuning shape): verified samples only.
//   dpo      {"prompt", "chosen", "rejected"} (TRL's preference shape): a passing and a failing
//            sample of the same task *and the same prompt*.
//   rewards  {"prompt", "completion", "reward", "error_class", "tests_passed", "tests_total"}:
//            every sample with a verdict (CodeRL's reward mapping, feedback.h).
//   verifier {"prompt", "completion", "answer"}: every reasoning sample whose program answered, the
//            prompt an outcome verifier reads (reason/verifier.h: the sample's prompt, the program
//            as it ran, the executed answer) and the completion "1" (the answer matches the label)
//            or "0" (Cobbe et al., 2021). Solve and bench runs only; `balanced` keeps tasks with
//            both labels, as many wrong rows as right.
//
// Every row also has "run_id", "task_id", "problem" (its index in the run), "sample" (dpo:
// "chosen_sample", "rejected_sample") and "verdict" ({"passed", "error_class", "verified_by"};
// dpo: {"chosen": ..., "rejected": ...}), so any row can be traced back with `wand runs show`.
//
// Which samples are verified: code runs (`wand code`), a coder's program that passed the task's
// own tests ("verified_by": "tests"), or without them the visible or given tests
// ("visible_tests"); reasoning runs (`wand solve`, `wand bench`), a PoT/PAL program whose
// executed answer matches the problem's label ("label"); a problem without a label is skipped
// (a vote is not a verification). Chain-of-thought samples carry no program and are skipped.
// Programs identical after normalisation (normalize_program) are exported once per task.
#pragma once
#include <iosfwd>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "store/store.h"

namespace wand::codegen {

struct ExportOptions {
  std::string format = "sft";                 // sft, dpo, rewards, verifier
  std::string shape = "prompt-completion";    // sft: prompt-completion or messages
  int per_task = 4;                           // rows (dpo: pairs) per task at most; 0: no cap
  // verifier: only tasks with right and wrong answers, and as many wrong rows as right ones (the
  // first in sample order), so that a verifier learns what tells one question's programs apart
  // rather than which questions are easy.
  bool balanced = false;
};
// Checks the names and the cap (0 to 1,000,000); the error names the field.
VoidResult validate(const ExportOptions& o);

struct ExportStats {
  int rows = 0;
  int tasks = 0;           // tasks with at least one row
  int duplicates = 0;      // samples dropped as the same program as an earlier one of the task
  int capped = 0;          // rows left out by per_task
  int unlabelled = 0;      // reasoning problems skipped for want of a label
  int flaky = 0;           // programs of a task judged both passing and failing (nondeterministic): left out
};

// The rows of one run, in problem and sample order. Errors: a bad option, a failed write.
Result<ExportStats> export_training_data(const store::Run& run, const ExportOptions& o, std::ostream& out);

// The text a model trains on for an sft row (either shape): the prompt, then the completion; a
// chat prompt or messages row gives its turns' contents, each ending in a newline (wand's own
// models read no roles). What `wand export --corpus DIR` tokenizes for `wand-train --init`.
std::string document_of(const Json& sft_row);

// A program with its comment-only lines, blank lines and trailing whitespace removed and CRLF
// read as LF: two samples that differ only there are one program.
std::string normalize_program(std::string_view program);

}  // namespace wand::codegen
