// Reasoning methods over a Backend. Program-of-thought: the model writes a program, the
// sandbox runs it, the executed value of `answer` is the answer. Chain-of-thought: the model
// writes prose and does the arithmetic itself; feedback::extract_answer reads its final answer
// ("The answer is N.").
#pragma once
#include <string>

#include "llm/llm.h"
#include "sandbox/sandbox.h"

namespace wand::reason {

struct Solution {
  std::string method;      // pot or cot
  std::string answer;      // "" when none could be read
  std::string generation;  // the program (pot) or the rationale (cot)
  std::string output;      // the program's stdout (pot)
  std::string error;       // why there is no answer (sandbox status, exception, no answer line)
  int prompt_tokens = 0, completion_tokens = 0;
  double generate_ms = 0, execute_ms = 0;
};

struct SolveOptions {
  llm::GenerateOptions gen;
  double timeout_s = 5;  // per program run
  SolveOptions() {
    gen.max_tokens = 200;
    gen.stop = {"\nQuestion:"};
  }
};

// The prompt formats wand's own models are trained on (train/corpus.h writes the documents).
std::string pot_prompt(const std::string& question);
std::string cot_prompt(const std::string& question);

Result<Solution> solve_pot(llm::Backend& model, sandbox::Sandbox& sb, const std::string& question,
                           const SolveOptions& opt = {});
Result<Solution> solve_cot(llm::Backend& model, const std::string& question, const SolveOptions& opt = {});

}  // namespace wand::reason
