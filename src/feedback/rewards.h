// Rewards in the shapes RL trainers call, shared by the Python module (wand.rewards) and the
// execution API of `wand serve` (OpenRLHF's remote reward): a completion and a ground truth as
// verl passes them to compute_score(data_source, solution_str, ground_truth, extra_info) become a
// Task judged exactly as `wand eval` judges one (evaluate.h), so a reward and an eval verdict on
// the same sample agree.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "feedback/evaluate.h"

namespace wand::feedback {

// How a verdict becomes a number.
enum class RewardMapping {
  binary,  // 1 passed, 0 not (verl's code and math scorers); with partial_credit, the fraction of tests passed
  coderl,  // the verdict's reward: JudgeOptions::rewards (CodeRL's -1/-0.6/-0.3/+1), partial credit as in eval
};
Result<RewardMapping> reward_mapping_from_string(std::string_view s);  // "binary" or "coderl"

struct RewardOptions {
  EvalOptions eval = [] {  // completions are chat answers: code taken out of fences
    EvalOptions e;
    e.extract_code = true;
    return e;
  }();
  RewardMapping mapping = RewardMapping::binary;
};

// The task a ground truth describes, in verl's conventions:
//  - code: an object, or a string holding one (verl's prime_code and sandbox_fusion store test
//    cases as JSON text): {"inputs": [...], "outputs": [...]} stdin/stdout cases (also under
//    "input_output"), with "fn_name": call-based cases (inputs[i] the argument list, outputs[i]
//    the value, or [value] as APPS writes it), {"test_list": [asserts]} (MBPP) or HumanEval's
//    {"prompt", "test", "entry_point"};
//  - math: any other string or a number, the expected final answer ("#### 72" reads 72).
// Errors name `data_source` and the problem.
Result<Task> reward_task(std::string_view data_source, const Json& ground_truth);

// Judges solutions[i] against tasks[i], all in one sandbox batch. Math answers: a solution with a
// fenced Python block runs it (the program's answer, as `wand eval` reads it for PAL-style tasks);
// one without is a final-answer text, its answer found by extract_answer and compared by
// answers_match, as `wand eval` compares answers.
std::vector<Verdict> judge_rewards(sandbox::Sandbox& sb, const std::vector<Task>& tasks,
                                   const std::vector<std::string>& solutions, const RewardOptions& opt);

// The verdict as a number under opt.mapping.
double reward_value(const Verdict& v, const RewardOptions& opt);

}  // namespace wand::feedback
