#include "reason/reason.h"

namespace wand::reason {

std::string pot_prompt(const std::string& question) { return *llm::format_question("pot", question); }
std::string cot_prompt(const std::string& question) { return *llm::format_question("cot", question); }

std::string review_prompt(const std::string& program) {
  std::string p = program;
  while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();  // one newline before the question
  return "Program:\n" + p + "\nQuestion: ";
}

std::optional<std::string> review_document(const std::string& pot_document) {
  // The pot format's text before and after the question, from pot_prompt itself.
  static const std::string marked = pot_prompt("\x01"), head = marked.substr(0, marked.find('\x01')),
                           mid = marked.substr(marked.find('\x01') + 1);
  if (!pot_document.starts_with(head)) return std::nullopt;
  auto at = pot_document.find(mid);
  if (at == std::string::npos) return std::nullopt;
  return review_prompt(pot_document.substr(at + mid.size())) + pot_document.substr(head.size(), at - head.size());
}

}  // namespace wand::reason
