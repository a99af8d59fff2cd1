#include "reason/reason.h"

namespace wand::reason {

std::string pot_prompt(const std::string& question) { return *llm::format_question("pot", question); }
std::string cot_prompt(const std::string& question) { return *llm::format_question("cot", question); }

}  // namespace wand::reason
