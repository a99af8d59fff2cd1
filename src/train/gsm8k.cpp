// GSM8K's train split as verified programs: each solution's calculator annotations become a
// straight-line program, every program runs in the sandbox, and only those whose executed answer
// equals the label are kept. Only the train split is read here; the test split is a test set.
#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <regex>
#include <set>

#include "common/json.h"
#include "feedback/feedback.h"
#include "train/corpus.h"

namespace wand::train {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Numbers written in the question ("48", "1,000", "2.5"), as the annotations would write them.
std::set<std::string> question_numbers(const std::string& q) {
  std::set<std::string> out;
  std::string cur;
  for (std::size_t i = 0; i <= q.size(); ++i) {
    char c = i < q.size() ? q[i] : ' ';
    if (is_digit(c) || (c == '.' && !cur.empty() && i + 1 < q.size() && is_digit(q[i + 1]))) {
      cur += c;
    } else if (c == ',' && !cur.empty() && i + 1 < q.size() && is_digit(q[i + 1])) {
      continue;  // thousands separator
    } else if (!cur.empty()) {
      out.insert(cur);
      cur.clear();
    }
  }
  return out;
}

// A name for a step from the text after its result ("24 clips in May" -> "clips"), when that is
// a plain word Python would not misread; "" otherwise.
std::string name_after(const std::string& rest) {
  static const std::set<std::string> kSkip = {
      "and", "the", "per", "in", "of", "for", "to", "a", "an", "is", "are", "was", "more", "left", "so", "total",
      "each", "on", "at", "from", "with", "that", "this", "which", "then", "than", "times", "x", "as", "by", "or",
      "if", "not", "it", "be", "all", "into", "out", "over", "her", "his", "their", "she", "he", "they", "we",
      "you", "i", "would", "will", "can", "has", "have", "had", "now", "answer", "sum", "min", "max", "round",
      "abs", "int", "float", "len", "list", "str", "pow", "range", "print", "id", "type", "input", "open"};
  std::size_t i = 0;
  while (i < rest.size() && (rest[i] == ' ' || rest[i] == '%')) ++i;
  std::string w;
  while (i < rest.size() && is_alpha(rest[i])) w += static_cast<char>(std::tolower(rest[i++]));
  if (w.size() < 3 || w.size() > 20 || kSkip.count(w)) return "";
  return w;
}

}  // namespace

std::optional<std::string> gsm8k_program(const std::string& question, const std::string& solution) {
  static const std::regex kAnnotation(R"(<<([^=<>]*)=([^<>]*)>>)");
  auto in_question = question_numbers(question);
  std::vector<std::pair<std::string, std::string>> steps;  // name, result text
  std::set<std::string> names;
  std::string program;
  int index = 0;
  for (auto it = std::sregex_iterator(solution.begin(), solution.end(), kAnnotation); it != std::sregex_iterator(); ++it) {
    ++index;
    std::string expr = (*it)[1].str(), result = (*it)[2].str();
    // The expression in Python: multiplication as `x`, powers as `^`, no thousands commas, no
    // leading zeros (Python reads 08 as an error); numbers equal to an earlier result and absent
    // from the question become that step's name.
    std::string py;
    for (std::size_t i = 0; i < expr.size();) {
      char c = expr[i];
      if (is_digit(c) || (c == '.' && i + 1 < expr.size() && is_digit(expr[i + 1]))) {
        std::string num;
        while (i < expr.size() && (is_digit(expr[i]) || expr[i] == '.' ||
                                   (expr[i] == ',' && i + 1 < expr.size() && is_digit(expr[i + 1]))))
          if (expr[i++] != ',') num += expr[i - 1];
        std::string plain = num;
        while (plain.size() > 1 && plain[0] == '0' && plain[1] != '.') plain.erase(0, 1);
        std::string name;
        if (!in_question.count(num))
          for (auto s = steps.rbegin(); s != steps.rend(); ++s)
            if (s->second == num) {
              name = s->first;
              break;
            }
        py += name.empty() ? plain : name;
        continue;
      }
      if (c == 'x' || c == 'X') py += '*';
      else if (c == '^') py += "**";
      else if (c == '$' || c == ',') py += "";
      else py += c;
      ++i;
    }
    std::string res;
    for (char c : result)
      if (c != ',' && c != '$' && c != ' ') res += c;
    std::string name = name_after(solution.substr(it->position() + it->length() + result.size()));
    if (name.empty()) name = fmt::format("step{}", index);
    if (names.count(name)) name = fmt::format("{}_{}", name, index);
    names.insert(name);
    program += name + " = " + py + "\n";
    steps.emplace_back(name, res);
  }
  if (steps.empty()) return std::nullopt;
  program += "answer = " + steps.back().first + "\n";
  return program;
}

Result<std::vector<Problem>> load_gsm8k_train(const std::string& path, Json& report) {
  std::ifstream in(path);
  // The file's own faults are the caller's input (kOptionConflict: exit 2); a sandbox that fails is not.
  if (!in) return Error{fmt::format("{}: cannot read GSM8K's train split (--gsm8k)", path), kOptionConflict};
  std::vector<Problem> converted;
  long long records = 0;
  std::string line;
  static const std::regex kAnnotation(R"(<<[^<>]*>>)");
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = parse_json(line, fmt::format("{} line {}", path, n));
    if (!j) return Error{j.error().message, kOptionConflict};
    if (!j->is_object() || !(*j)["question"].is_string() || !(*j)["answer"].is_string())
      return Error{fmt::format("{} line {}: expected GSM8K's {{\"question\", \"answer\"}} strings", path, n), kOptionConflict};
    ++records;
    std::string q = (*j)["question"], solution = (*j)["answer"];
    auto mark = solution.rfind("####");
    if (mark == std::string::npos) continue;
    std::string label = solution.substr(mark + 4);
    label.erase(std::remove_if(label.begin(), label.end(), [](char c) { return c == ',' || c == ' ' || c == '\n'; }),
                label.end());
    auto program = gsm8k_program(q, solution.substr(0, mark));
    if (!program) continue;
    Problem p;
    p.question = q;
    p.program = *program;
    p.answer = label;
    p.template_id = -1;
    std::string steps = std::regex_replace(solution.substr(0, mark), kAnnotation, "");
    std::replace(steps.begin(), steps.end(), '\n', ' ');
    while (!steps.empty() && steps.back() == ' ') steps.pop_back();
    p.rationale = steps + fmt::format(" The answer is {}.", label);
    p.steps = static_cast<int>(std::count(p.program.begin(), p.program.end(), '\n')) - 1;
    converted.push_back(std::move(p));
  }
  if (records == 0) return Error{fmt::format("{}: holds no records (an empty file?)", path), kOptionConflict};
  auto agree = programs_agree(converted);
  if (!agree) return agree.error();
  std::vector<Problem> kept;
  for (std::size_t i = 0; i < converted.size(); ++i)
    if ((*agree)[i]) kept.push_back(std::move(converted[i]));
  report = {{"file", path}, {"records", records}, {"converted", converted.size()}, {"kept", kept.size()}};
  return kept;
}

}  // namespace wand::train
