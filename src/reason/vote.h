// Self-consistency (Wang et al., 2023): a majority vote over the answers of several samples.
// wand votes over *executed* answers: what each program computed, not what its text claims.
#pragma once
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/json.h"

namespace wand::reason {

struct Ballot {
  std::optional<std::string> answer;  // none: the sample failed (no program, error, no answer): no vote
  std::optional<double> mean_logprob; // mean token log-probability of the sample, when the backend gave it
};

struct VoteOptions {
  // Each vote weighs exp(mean token log-probability) instead of 1 (the per-token geometric-mean
  // probability: longer samples are not penalised). Needs every voting sample's log-probability;
  // without them the vote counts, and VoteResult::weighting says so.
  bool weighted = false;
};

struct VoteEntry {
  std::string answer;        // the group's answer, normalised ("1,234" -> "1234", "3/4" -> "0.75")
  int votes = 0;
  double weight = 0;         // votes, or the sum of the weights when weighted
  std::vector<int> samples;  // indices of the ballots in this group, ascending
};

struct VoteResult {
  std::optional<std::string> answer;  // none when no ballot voted
  std::vector<VoteEntry> distribution;  // by weight, then by first sample
  int winner = -1;               // the ballot whose answer won: the earliest of the winning group
  std::string tie_broken_by;     // "" (no tie), "logprob" (highest mean log-probability) or "earliest"
  std::string weighting;         // "count", "logprob", or "count (no log-probabilities)" when asked to weigh
  Json to_json() const;
};

// Groups the answers that match (feedback::answers_match: numerically where both parse as
// numbers, else as text, case- and space-folded) and picks the heaviest group. Ties, in this
// order: the higher mean of the groups' samples' mean log-probabilities when every tied sample
// has one; else the group whose first sample came earliest. Deterministic for equal inputs.
VoteResult vote(std::span<const Ballot> ballots, const VoteOptions& opt = {});

// An answer as the vote shows it: a number in its shortest form ("1,234.0" -> "1234"), else the
// text trimmed.
std::string normalize_answer(std::string_view answer);

}  // namespace wand::reason
