// Where `wand improve`'s rounds draw their questions from (internal to src/improve): the
// grammar's pool productions, or a file of labelled questions or function tasks (--pool-file).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "feedback/feedback.h"
#include "improve/improve.h"
#include "reason/bench.h"

namespace wand::improve {

// The validation set's "round": its pool seed is past every round of the run's seed and below
// every round of the next seed's, so no round draws from it.
constexpr int kValidationRound = 1000002;

// Where the rounds' questions come from: the grammar's pool productions, fresh from each round's
// seed, or --pool-file's records in the seed's order, the validation set its first `validation`
// and each round the next `pool` after them, wrapping around. A file's questions that are test
// questions (ImproveOptions::test_sets) or repeats are dropped.
class PoolSource {
 public:
  // Reads and checks --pool-file (none: the grammar's); errors name the option and the record.
  static Result<PoolSource> open(const ImproveOptions& o);
  // Round `round`'s pool (kValidationRound: the validation set) as JSON lines of a dataset;
  // `pool` gets the pot questions as bench problems.
  std::string lines(int round, std::vector<reason::BenchProblem>* pool = nullptr) const;
  // For the run's first line: where the pool comes from, and what was dropped from it.
  std::string describe() const;

 private:
  std::string dropped_text() const;

  bool code_ = false;
  uint64_t seed_ = 0;
  int pool_ = 0, validation_ = 0;
  std::string file_;
  std::vector<feedback::Task> tasks_;
  long long dropped_ = 0, repeats_ = 0;
  std::string missing_;  // the test sets not found, named
  Json decontamination_;
};

}  // namespace wand::improve
