// Decontamination: the corpus's questions against the test sets that measure wand's models.
// Two checks, as the GPT-3 and Codex papers ran them: shared word n-grams (13 by default), which
// are counted, and a question equal to a test question once normalised, which is dropped.
#include <fmt/core.h>

#include <filesystem>
#include <fstream>
#include <cctype>
#include <sstream>

#include "common/text.h"
#include "train/corpus.h"

namespace wand::train {
namespace {

std::vector<std::string> words_of(const std::string& normalized) {
  std::vector<std::string> w;
  std::istringstream in(normalized);
  for (std::string s; in >> s;) w.push_back(s);
  return w;
}

// The n-grams of a normalised text, each as its words joined by single spaces.
template <class F>
void for_each_ngram(const std::vector<std::string>& w, int n, F f) {
  for (std::size_t i = 0; i + n <= w.size(); ++i) {
    std::string g = w[i];
    for (int k = 1; k < n; ++k) g += " " + w[i + k];
    f(g);
  }
}

// A test set's questions: JSON lines with "question" or "input", HumanEval's "prompt" or MBPP's
// "text", or a JSON array of records with "Body" and "Question" (SVAMP) or "question"; with an id
// range, only the records whose task_id is in it.
Result<std::vector<std::string>> read_questions(const TestSet& set) {
  const std::string& path = set.path;
  std::ifstream in(path);
  if (!in) return Error{fmt::format("{}: cannot read", path)};
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  std::vector<std::string> out;
  auto take = [&](const Json& r, const std::string& where) -> VoidResult {
    if (!r.is_object()) return Error{fmt::format("{}: not a JSON object", where)};
    if (set.first_id || set.last_id) {
      const Json id = r.value("task_id", Json());
      if (!id.is_number_integer()) return Error{fmt::format("{}: no integer task_id to take the split by", where)};
      if (id.get<long long>() < set.first_id || id.get<long long>() > set.last_id) return ok_status();
    }
    if (r.contains("question") && r["question"].is_string()) out.push_back(r["question"]);
    else if (r.contains("prompt") && r["prompt"].is_string()) out.push_back(r["prompt"]);
    else if (r.contains("text") && r["text"].is_string()) out.push_back(r["text"]);
    else if (r.contains("input") && r["input"].is_string()) out.push_back(r["input"]);
    else if (r.contains("Body") && r.contains("Question") && r["Body"].is_string() && r["Question"].is_string())
      out.push_back(r["Body"].get<std::string>() + " " + r["Question"].get<std::string>());
    else return Error{fmt::format("{}: no question field (question, input, prompt, text, or Body and Question)", where)};
    return ok_status();
  };
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    auto j = parse_json(text, path);
    if (!j) return j.error();
    for (std::size_t i = 0; i < j->size(); ++i)
      if (auto r = take((*j)[i], fmt::format("{} record {}", path, i)); !r) return r.error();
    return out;
  }
  std::istringstream lines(text);
  std::string line;
  for (int n = 1; std::getline(lines, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = parse_json(line, fmt::format("{} line {}", path, n));
    if (!j) return j.error();
    if (auto r = take(*j, fmt::format("{} line {}", path, n)); !r) return r.error();
  }
  return out;
}

}  // namespace

std::string normalize_question(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      if (space && !out.empty()) out += ' ';
      out += static_cast<char>(std::tolower(u));
      space = false;
    } else {
      space = true;
    }
  }
  return out;
}

std::vector<TestSet> default_test_sets(const std::string& data_dir) {
  namespace fs = std::filesystem;
  auto at = [&](const char* rel) { return (fs::path(data_dir) / rel).string(); };
  return {{"multiarith", at("pal-math/mawpsmultiarith.jsonl")},
          {"asdiv", at("pal-math/asdiv.jsonl")},
          {"svamp", at("svamp/SVAMP.json")},
          {"gsm8k_test", at("gsm8k/test.jsonl")}};
}

std::vector<TestSet> default_code_test_sets(const std::string& data_dir) {
  namespace fs = std::filesystem;
  return {{"humaneval", (fs::path(data_dir) / "humaneval/HumanEval.jsonl").string()},
          {"mbpp_test", (fs::path(data_dir) / "mbpp/mbpp.jsonl").string(), 11, 510}};
}

Result<Decontaminator> Decontaminator::load(const std::vector<TestSet>& sets, int n) {
  if (n < 1 || n > 64) return Error{fmt::format("--ngram must be from 1 to 64 words, got {}", n)};
  Decontaminator d;
  d.n_ = n;
  for (const auto& t : sets) {
    Set s;
    s.name = t.name, s.path = t.path;
    if (!std::filesystem::exists(t.path)) {
      s.missing = true;
      d.sets_.push_back(std::move(s));
      continue;
    }
    auto qs = read_questions(t);
    if (!qs) return Error{"decontamination: " + qs.error().message};
    for (const auto& q : *qs) {
      std::string norm = normalize_question(q);
      s.exact_set.insert(norm);
      for_each_ngram(words_of(norm), n, [&](const std::string& g) { s.ngrams.insert(g); });
    }
    s.questions = static_cast<long long>(qs->size());
    d.sets_.push_back(std::move(s));
  }
  return d;
}

bool Decontaminator::contaminated(const std::string& question) {
  if (auto it = decided_.find(question); it != decided_.end()) return it->second;
  ++checked_;
  std::string norm = normalize_question(question);
  auto words = words_of(norm);
  bool drop = false;
  for (auto& s : sets_) {
    if (s.missing) continue;
    bool exact = s.exact_set.count(norm) > 0, hit = false;
    for_each_ngram(words, n_, [&](const std::string& g) { hit = hit || s.ngrams.count(g) > 0; });
    s.exact += exact;
    s.hits += hit;
    if ((exact || hit) && s.examples.size() < 5)
      s.examples.push_back({{"question", printable(question, 300)}, {"exact", exact}});
    drop = drop || exact;
  }
  decided_.emplace(question, drop);
  return drop;
}

Json Decontaminator::report() const {
  Json sets = Json::object();
  for (const auto& s : sets_) {
    if (s.missing) {
      sets[s.name] = {{"path", s.path}, {"missing", true}};
      continue;
    }
    sets[s.name] = {{"path", s.path},          {"questions", s.questions}, {"exact_matches", s.exact},
                    {"exact_dropped", s.exact}, {"ngram_hits", s.hits},     {"examples", s.examples}};
  }
  return {{"n", n_}, {"questions_checked", checked_}, {"sets", sets}};
}

}  // namespace wand::train
