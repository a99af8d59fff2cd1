#include "reason/reason.h"

#include <fmt/core.h>

#include "feedback/feedback.h"

namespace wand::reason {

std::string pot_prompt(const std::string& question) { return *llm::format_question("pot", question); }
std::string cot_prompt(const std::string& question) { return *llm::format_question("cot", question); }

namespace {
// The model's completion of the question in the method's prompt. A blank question is refused:
// the model would answer it anyway (with a training template's number).
Result<llm::Completion> generate(llm::Backend& model, const std::string& question, const SolveOptions& opt,
                                 std::string (*prompt)(const std::string&)) {
  if (question.find_first_not_of(" \t\r\n") == std::string::npos)
    return Error{"the question is empty", std::string(llm::kInvalidRequest)};
  llm::GenerateOptions g = opt.gen;
  g.n = 1;
  auto r = model.complete(prompt(question), g);
  if (!r) return r.error();
  if (r->empty()) return Error{"the model returned no completion"};
  return std::move(r->front());
}

Solution from_completion(const char* method, const llm::Completion& c) {
  Solution s;
  s.method = method;
  s.generation = c.text;
  s.prompt_tokens = c.prompt_tokens, s.completion_tokens = c.completion_tokens, s.generate_ms = c.generate_ms;
  return s;
}
}  // namespace

Result<Solution> solve_pot(llm::Backend& model, sandbox::Sandbox& sb, const std::string& question,
                           const SolveOptions& opt) {
  auto c = generate(model, question, opt, pot_prompt);
  if (!c) return c.error();
  Solution s = from_completion("pot", *c);
  sandbox::ExecRequest req;
  req.code = s.generation + "\nprint(answer)\n";
  req.limits.timeout_s = opt.timeout_s;
  auto r = sb.run(req);
  s.execute_ms = r.wall_s * 1000;
  s.output = r.stdout_data;
  if (r.status != sandbox::Status::ok) {
    s.error = r.exception ? fmt::format("{}: {} (line {})", r.exception->type, r.exception->message, r.exception->line)
                          : sandbox::to_string(r.status);
    return s;
  }
  // The value of `answer`, printed last, as it is (as `wand eval --answer var:answer` reads
  // it): a value needs no extracting; the extractor is for texts (rationales, printed prose).
  s.answer = feedback::last_printed_line(r.stdout_data);
  if (s.answer.empty()) s.error = "the program printed no answer";
  return s;
}

Result<Solution> solve_cot(llm::Backend& model, const std::string& question, const SolveOptions& opt) {
  auto c = generate(model, question, opt, cot_prompt);
  if (!c) return c.error();
  Solution s = from_completion("cot", *c);
  s.answer = feedback::extract_answer(c->text);  // the extractor `wand eval` uses, rules in feedback.h
  if (s.answer.empty()) s.error = "the rationale has no answer";
  return s;
}

}  // namespace wand::reason
