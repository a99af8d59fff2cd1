// The outcome verifier's prompt and score (verifier.h).
#include "reason/verifier.h"

#include <cmath>

#include <fmt/core.h>

#include "common/text.h"
#include "reason/prompt.h"
#include "reason/vote.h"

extern const std::string_view wand_embedded_prompt_verify_wand;

namespace wand::reason {
namespace {

const Template& verify_template() {
  static const Template t = [] {
    auto parsed = parse_template(std::string(wand_embedded_prompt_verify_wand), "prompts/verify.wand.txt",
                                 {"prompt", "program", "answer"}, {"prompt", "program", "answer"});
    return parsed ? std::move(*parsed) : Template{};  // the embedded file is checked by the tests
  }();
  return t;
}

}  // namespace

std::string verifier_prompt(std::string_view prompt, std::string_view program, std::string_view answer) {
  std::string p(program);
  while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
  return render(verify_template(), {{"prompt", std::string(prompt)}, {"program", p}, {"answer", normalize_answer(answer)}})
      .prompt;
}

Result<double> verifier_score(llm::Backend& verifier, const std::string& prompt) {
  llm::GenerateOptions g;
  g.max_tokens = 1;
  g.logprobs = true;
  g.top_logprobs = 5;  // the most the OpenAI completions API (and wand serve) gives
  auto out = verifier.complete(prompt, g);
  if (!out) return out.error();
  if (out->empty() || out->front().logprobs.empty())
    return Error{fmt::format("verifier {}: the reply has no log-probabilities to score with", verifier.id())};
  std::optional<double> right, wrong;
  for (const auto& t : out->front().logprobs.front().top) {
    std::string token = trim(t.token);
    if (token == "1" && !right) right = t.logprob;
    if (token == "0" && !wrong) wrong = t.logprob;
  }
  if (!right && !wrong)
    return Error{fmt::format("verifier {}: neither 1 nor 0 is among its likely next tokens; is it a verifier "
                             "(prompt format '{}')?",
                             verifier.id(), kVerifierFormat)};
  if (!right) return 0.0;
  if (!wrong) return 1.0;
  return 1.0 / (1.0 + std::exp(*wrong - *right));
}

}  // namespace wand::reason
