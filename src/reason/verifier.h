// An outcome verifier (Cobbe et al., 2021, "Training Verifiers to Solve Math Word Problems"), fed
// the execution result as LEVER does (Ni et al., 2023, "LEVER: Learning to Verify
// Language-to-Code Generation with Execution"): a model that reads a question, a program and the
// answer the sandbox computed from it, and says how likely that answer is to be right.
//
// wand's verifier is a language model of prompt format "verifier" (kVerifierFormat) trained on
// documents verifier_prompt(...) + "1" (right) or + "0" (wrong): `wand export --run ID --format
// verifier --corpus DIR` writes them from a labelled run of the model's own samples, and
// `wand-train --init --objective final` trains the label token only. Any backend serving such a
// model scores: local GGUF or a server that gives top log-probabilities.
#pragma once
#include <string>
#include <string_view>

#include "common/status.h"
#include "llm/llm.h"

namespace wand::reason {

inline constexpr std::string_view kVerifierFormat = "verifier";

// The verifier's prompt (prompts/verify.wand.txt): `prompt` as the sample's model read it (the
// recorded prompt: for a model of mapped questions, the mapped question), `program` as it ran
// (trailing newlines dropped) and the executed `answer` (normalize_answer). Ends in "Right: ".
std::string verifier_prompt(std::string_view prompt, std::string_view program, std::string_view answer);

// P(right) in [0, 1] from the verifier's next-token distribution after `verifier_prompt`:
// p(1) / (p(1) + p(0)) over its 5 most likely tokens (a label outside them counts as 0).
// Errors: the backend's (a prompt longer than the verifier's context: code
// llm::kContextLengthExceeded), a reply without log-probabilities, or neither label among the
// most likely tokens (not a verifier: the error names the model).
Result<double> verifier_score(llm::Backend& verifier, const std::string& verifier_prompt);

}  // namespace wand::reason
