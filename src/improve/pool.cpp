#include "improve/pool.h"

#include <algorithm>
#include <random>
#include <set>

#include <fmt/core.h>

#include "common/text.h"
#include "train/corpus.h"

namespace wand::improve {
namespace {

// A round's pool of `n` questions (pot: {question, answer}; code: MBPP-format tasks of the pool
// families) from `seed`, as JSON lines; `pool` gets the pot questions as bench problems.
std::string pool_lines(bool code, int n, uint64_t seed, std::vector<reason::BenchProblem>* pool) {
  train::GrammarGenerator gen(seed);
  train::FunctionTaskGenerator functions(seed);
  std::string text;
  for (int i = 0; i < n; ++i) {
    if (code) {
      text += train::to_mbpp_json(functions.next_pool(), i).dump() + "\n";
      continue;
    }
    auto p = gen.next_pool();
    if (pool) pool->push_back({i, std::to_string(i), p.question, p.answer});
    text += Json{{"question", p.question}, {"answer", p.answer}}.dump() + "\n";
  }
  return text;
}

// Round r's pool seed is seed * 1000003 + r with r <= 1000; the validation pool's is past every
// round of this seed and below every round of the next, so no round of the run draws from it.
uint64_t pool_seed(uint64_t seed, int round) { return seed * 1000003 + static_cast<uint64_t>(round); }

}  // namespace

Result<PoolSource> PoolSource::open(const ImproveOptions& o) {
  PoolSource s;
  s.code_ = o.task == "code", s.seed_ = o.seed, s.pool_ = o.pool, s.validation_ = o.validation;
  if (o.pool_file.empty()) return s;
  s.file_ = o.pool_file;
  auto tasks = feedback::load_tasks(o.pool_file);
  if (!tasks) return Error{"--pool-file " + tasks.error().message};
  const feedback::Task& first = tasks->front();  // one format a file
  if ((first.kind == feedback::TaskKind::answer) == s.code_)
    return Error{fmt::format("--pool-file {}: its records are {} ({} format); --task {} draws its pool from {}", o.pool_file,
                             s.code_ ? "word problems" : "function tasks", first.format, o.task,
                             s.code_ ? "function tasks with tests (MBPP, HumanEval, stdio)"
                                     : "questions with answers (GSM8K, PAL, SVAMP, {question, answer})")};
  // Never learn from a test question (code: a test task's description), whichever file it came in.
  auto d = train::Decontaminator::load(s.code_ ? train::default_code_test_sets(o.test_sets)
                                               : train::default_test_sets(o.test_sets));
  if (!d) return Error{"--test-sets " + d.error().message};
  std::string missing;
  bool none = true;
  const Json sets = d->report()["sets"];
  for (auto& [name, set] : sets.items()) {
    if (!set.value("missing", false)) {
      none = false;
      continue;
    }
    missing += fmt::format("{}{} ({})", missing.empty() ? "" : ", ", name, set["path"].get<std::string>());
  }
  if (none)
    return Error{fmt::format("--test-sets {}: none of the test sets is there ({}), so the pool cannot be checked against "
                             "them: give the folder that holds them", o.test_sets, missing)};
  s.missing_ = missing;
  // Each question once (a repeat could be drawn into the validation set and a round's pool); a
  // function task is a repeat when its description and tests are, whatever its solution.
  auto key = [&](const feedback::Task& t) {
    if (!s.code_) return train::normalize_question(t.prompt);
    Json j = feedback::task_json(t);
    for (const char* k : {"task_id", "code", "canonical_solution", "solution"}) j.erase(k);
    return j.dump();
  };
  std::set<std::string> seen;
  for (auto& t : *tasks) {
    if (is_blank(t.prompt))
      return Error{fmt::format("--pool-file {}: record {}: the {} is empty", o.pool_file, t.task_id,
                               s.code_ ? "task's description" : "question")};
    if (d->contaminated(t.prompt)) {
      ++s.dropped_;
      continue;
    }
    if (!seen.insert(key(t)).second) {
      ++s.repeats_;
      continue;
    }
    s.tasks_.push_back(std::move(t));
  }
  s.decontamination_ = d->report();
  if (s.tasks_.size() <= static_cast<std::size_t>(o.validation))
    return Error{fmt::format("--pool-file {}: {} {}{}, none left for the rounds after --validation {}", o.pool_file,
                             s.tasks_.size(), s.code_ ? "tasks" : "questions", s.dropped_text(), o.validation)};
  std::shuffle(s.tasks_.begin(), s.tasks_.end(), std::mt19937_64(o.seed ^ 0x9e3779b97f4a7c15ULL));
  return s;
}

std::string PoolSource::lines(int round, std::vector<reason::BenchProblem>* pool) const {
  const bool validation = round == kValidationRound;
  if (file_.empty()) return pool_lines(code_, validation ? validation_ : pool_, pool_seed(seed_, round), pool);
  const std::size_t left = tasks_.size() - validation_;
  const std::size_t n = validation ? validation_ : std::min<std::size_t>(pool_, left);
  const std::size_t start = validation ? 0 : static_cast<std::size_t>(round - 1) * pool_ % left;
  std::string text;
  for (std::size_t i = 0; i < n; ++i) {
    const feedback::Task& t = tasks_[validation ? i : validation_ + (start + i) % left];
    if (pool) pool->push_back({static_cast<int>(i), t.task_id, t.prompt, t.expected});
    text += feedback::task_json(t).dump() + "\n";
  }
  return text;
}

std::string PoolSource::describe() const {
  if (file_.empty()) return "the grammar's pool productions";
  return fmt::format("{} {} of {}{}{}{}", tasks_.size(), code_ ? "tasks" : "questions", file_, dropped_text(),
                     repeats_ ? fmt::format(", {} repeats of an earlier one dropped", repeats_) : "",
                     missing_.empty() ? "" : fmt::format(" (not checked against {}: not found)", missing_));
}

// " after dropping 2 test questions (of multiarith, asdiv)" (code: test tasks), or nothing.
std::string PoolSource::dropped_text() const {
  if (!dropped_) return "";
  std::string sets;
  for (auto& [name, set] : decontamination_["sets"].items())
    if (set.value("exact_matches", 0LL) > 0) sets += (sets.empty() ? "" : ", ") + name;
  return fmt::format(" after dropping {} test {}{} (of {})", dropped_, code_ ? "task" : "question", dropped_ == 1 ? "" : "s",
                     sets);
}

}  // namespace wand::improve
