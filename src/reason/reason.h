// Reasoning methods over a Backend. Program-of-thought: the model writes a program, the
// sandbox runs it, the executed value of `answer` is the answer. Chain-of-thought: the model
// writes prose and does the arithmetic itself; feedback::extract_answer reads its final answer
// ("The answer is N.").
// Flow: the program asks the model sub-questions through `llm(prompt)` and combines the replies
// with code (loops, conditions): reasoning as a flowchart with the model in the loop, of which
// least-to-most prompting (Zhou et al., 2023) is a shallow instance. Its answer votes as PoT's.
//
// solve() is the whole pipeline the CLI, the server and the Python module share: prompt (a
// template from prompts/, prompt.h), k samples, program extraction (extract.h), one sandbox
// batch, a vote over executed answers (vote.h), then repair and fallback when nothing answered.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "feedback/feedback.h"
#include "llm/llm.h"
#include "reason/prompt.h"
#include "reason/vote.h"
#include "sandbox/sandbox.h"
#include "store/store.h"

namespace wand::reason {

// The prompt formats wand's own models are trained on (train/corpus.h writes the documents).
std::string pot_prompt(const std::string& question);
std::string cot_prompt(const std::string& question);
// Coder-Reviewer reranking (Zhang et al., 2022): a reviewer model reads a program first and then
// the question, so that log p(question | program) says how well the program explains the
// question. review_prompt is what precedes the question ("Program:\n{program}\nQuestion: ", the
// program's trailing newlines dropped); review_document turns a pot document ("Question:
// Q\nProgram:\nP") around into review_prompt(P) + Q, and gives nullopt for any other document.
std::string review_prompt(const std::string& program);
std::optional<std::string> review_document(const std::string& pot_document);

// --- solve(): PoT / PAL / CoT with self-consistency, repair and fallback

// Which prompt family suits a model: "wand" (wand's own models: the bare format their GGUF
// records as wand.prompt_format), "completion" (few-shot text) or "chat" (system message and
// few-shot turns). `style` is "auto" or one of the three; auto picks wand for a model whose
// backend reports a prompt format (llm::Backend::prompt_format: a local wand GGUF, or a model
// `wand serve` lists as one), else chat (a local model's chat renders its own template; other
// servers mostly serve chat models). An unknown style is an error naming it.
Result<std::string> prompt_family(llm::Backend& model, const std::string& style = "auto");

struct SolveConfig {
  std::string method = "pot";   // cot, pot, pal or flow
  std::string family = "wand";  // wand, completion or chat (prompt_family)
  std::optional<Template> prompt;  // the user's own template instead of the built-in one (--prompt)
  int k = 1;                    // samples
  float temperature = 0.f;      // 0 = greedy (a k > 1 vote wants > 0)
  float top_p = 1.f;
  uint64_t seed = 0;            // sample i draws from llm::sample_seed(seed, i); repair i = k, fallback k + 1
  int max_tokens = 256;
  bool weighted = false;        // vote weighted by mean token log-probability (vote.h)
  // How the answer is chosen among the samples' answers: "vote" (self-consistency, the largest
  // group), "logprob" (the one most likely sample: vote.h's top_logprob) or "verifier" (the sample
  // `verifier` rates most likely right: vote.h's top_verified; each answering sample is scored,
  // Sample::verified).
  std::string select = "vote";
  // select "verifier": a model of prompt format "verifier" (verifier.h), and its spec as recorded.
  std::shared_ptr<llm::Backend> verifier;
  std::string verifier_spec;
  // Answers a word problem cannot have (implausible_because, vote.h: negative, or a fraction from a
  // question of whole numbers) are set aside before the choice: such a sample's outcome is
  // "implausible", its verdict a wrong_answer saying why, and when no sample is left the repair
  // round shows the model that verdict.
  bool plausible = false;
  // A pot-numbers model (numbers.h) with k > 1: sample i reads the question with its names in an
  // order of its own (map_numbers's names_seed; sample 0 in the order of appearance) and its
  // program runs with those bindings, so the samples vote from different inputs. One prompt per
  // sample: the k are not decoded together. Any other model (or method, or a user's prompt): an error.
  bool shuffle_names = false;
  bool repair = true;           // one self-debug round when no sample answers (pot, pal)
  bool fallback = true;         // then CoT (pot, pal; never for a pot-numbers model, which writes no prose)
  double timeout_s = 5;         // per program run
  // Constrained decoding of the programs (the k samples and the repair; not the CoT fallback,
  // which writes prose): llm::Grammar::load of a built-in name ("pot", "python-block") or a
  // .gbnf path, recorded as given in `constrain`. Needs a backend that can_constrain().
  std::string constrain;
  std::shared_ptr<const llm::Grammar> grammar;
  // flow: each program may call llm() this many times, each call generating at most flow_tokens.
  int flow_calls = 8;
  int flow_tokens = 256;
};
// Checks the ranges (method, family and select known, a verifier for select verifier and none
// without it, 1 <= k <= 64, temperature in [0, 2], top_p in
// (0, 1], max_tokens >= 1, timeout_s > 0, flow: 1 <= flow_calls <= 64, 1 <= flow_tokens <= 4096
// and a family other than wand, whose models know only their bare pot and cot formats) and that a built-in grammar describes what the
// built-in prompt asks for: `pot` the bare programs of pot's wand and completion prompts and of
// pal's wand prompt; `python-block` the fenced block chat prompts ask for; cot (prose) takes
// neither. A grammar file, or the user's own template, is the user's to match. The error names
// the field.
VoidResult validate(const SolveConfig& c);

// What in a valid config cannot change what solve() does, one line per option, naming it and
// why, for a face to warn about (a sweep over --k keeps its other options, so these are not
// errors): weighted, shuffle_names or select logprob with k = 1 (no vote, sample 0 reads the
// names in order, nothing to choose from), weighted with select logprob (one sample wins), top_p
// < 1 at temperature 0 (greedy decoding), repair off for cot (which has no repair round).
std::vector<std::string> idle_options(const SolveConfig& c);

// What `c` asks of the model it will run on (solve() checks it first; the CLI before any work,
// as bad input): shuffle_names needs a pot-numbers model read through wand's built-in prompt of
// a program method. The error names the option and the model's prompt format.
VoidResult fits_model(llm::Backend& model, const SolveConfig& c);

// One completion and what became of it.
struct Sample {
  int index = 0;
  std::string stage;      // "sample" (one of the k), "repair" or "fallback" (CoT)
  std::string method;     // cot, pot, pal or flow (the fallback is cot)
  uint64_t seed = 0;
  std::string prompt;     // completion prompt, or the chat messages as JSON
  std::string completion;
  std::string program;    // extracted (pot, pal, flow); "" when none
  std::string extracted_from;  // extract.h: fence, code_tag, bare
  // ok, no_program, syntax_error, runtime_error, timeout, memory_limit, output_limit,
  // sandbox_error, no_answer, implausible (SolveConfig::plausible)
  std::string outcome;
  std::optional<std::string> answer;  // the executed (pot, pal) or extracted (cot) answer
  std::optional<double> mean_logprob;
  std::optional<double> verified;  // select verifier: P(right) by the verifier (verifier.h)
  std::optional<sandbox::ExecResult> exec;
  std::optional<feedback::Verdict> verdict;
  int prompt_tokens = 0, completion_tokens = 0;
  double generate_ms = 0;
  // flow: the model calls the program made, in order: {"prompt", "completion", "prompt_tokens",
  // "completion_tokens", "ms"}, or {"prompt", "error", "ms"} (flow.h). Recorded in the run store
  // as the sample's extra "tool_calls"; their tokens are not in prompt_tokens/completion_tokens.
  Json tool_calls = Json::array();
};

struct SolveResult {
  std::optional<std::string> answer;
  std::string answered_by;   // the stage that gave the answer: sample, repair or fallback; "" if none
  int winner = -1;           // index into samples of the sample whose answer won
  VoteResult vote;           // over the k samples
  std::vector<Sample> samples;  // the k samples, then the repair and fallback steps taken
  std::string prompt_hash;   // the method template's hash
  double generate_ms = 0, execute_ms = 0, verify_ms = 0;  // verify: select verifier's scoring
};

// Solves one question. `sb` may be null for cot. With select verifier, the verifier scores every
// answering sample (a plausible one, with `plausible`) before the choice. A model whose prompt format is pot-numbers
// (numbers.h), prompted with its own built-in template (family wand, no --prompt), reads the
// question with its numbers mapped to names (Sample::prompt is that mapped prompt), every program
// it writes (samples and repair) runs with the names' bindings first (Sample::program is bindings
// + program), and there is no CoT fallback. Errors: a config validate() refuses, a grammar
// the backend cannot take, a blank question (these with code llm::kInvalidRequest), the backend's
// or the verifier's (unreachable server, prompt too long, not a verifier) or a missing sandbox;
// everything that goes wrong with a sample is its outcome.
Result<SolveResult> solve(llm::Backend& model, sandbox::Sandbox* sb, const std::string& question,
                          const SolveConfig& config);

// The run store's records of solve runs (store.h): the run's config (model spec and id, method,
// the template's hash, sampling options, seed), and per question every sample with its prompt,
// completion, program, execution result, verdict and answer, plus the vote.
store::RunConfig run_config(const SolveConfig& c, const std::string& model_spec, const std::string& model_id,
                            const std::string& prompt_hash);
store::ProblemRecord problem_record(int index, const std::string& question, const SolveResult& r);

Json to_json(const Sample& s);
Json to_json(const SolveResult& r);  // with its samples
// A sample's verdict as recorded and printed. A question has no label in solve, so a program that
// answered is neither right nor wrong here: its `passed` and `reward` are null (`wand bench`
// judges the answer against the label per problem, export per sample). Null without a verdict.
Json verdict_json(const Sample& s);

}  // namespace wand::reason
