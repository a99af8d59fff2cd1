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
  std::optional<double> verified;     // P(right) from an outcome verifier (verifier.h), when one scored it
};

struct VoteOptions {
  // Each vote weighs exp(mean token log-probability) instead of 1 (the per-token geometric-mean
  // probability: longer samples are not penalised). Needs every voting sample's log-probability;
  // without them the vote counts, and VoteResult::weighting says so.
  bool weighted = false;
  // The answer of the one sample with the highest mean token log-probability wins, whatever the
  // groups' sizes: the ranking of single samples Chen et al. (2021, "Evaluating Large Language
  // Models Trained on Code", section 3.3) found best without tests. For a small model whose
  // samples at a high temperature are wrong more often than not, the most likely one beats the
  // most frequent. Needs every answering sample's log-probability; without them the vote counts,
  // and VoteResult::weighting says so.
  bool top_logprob = false;
  // The answer of the one sample an outcome verifier (verifier.h) rates most likely right wins
  // (Cobbe et al., 2021: the verifier's top-ranked sample); a sample without a score (one the
  // verifier could not read) ranks below every scored one. Without any score the vote counts,
  // and VoteResult::weighting says so.
  bool top_verified = false;
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
  int winner = -1;               // the ballot whose answer won: the earliest of the winning group (top_logprob, top_verified: the top-ranked)
  std::string tie_broken_by;     // "" (no tie), "logprob" (highest mean log-probability) or "earliest"
  // "count", "logprob" (weighted), "top logprob", "top verified", or "count (no log-probabilities)"
  // / "count (no verifier scores)" when asked for a ranking without its numbers
  std::string weighting;
  Json to_json() const;
};

// Groups the answers that match (feedback::answers_match: numerically where both parse as
// numbers, else as text, case- and space-folded) and picks the heaviest group. Ties, in this
// order: the higher mean of the groups' samples' mean log-probabilities when every tied sample
// has one; else the group whose first sample came earliest. Deterministic for equal inputs.
VoteResult vote(std::span<const Ballot> ballots, const VoteOptions& opt = {});

// Why a grade-school word problem cannot have `answer`, or "" when it can. It can have a finite
// number (after normalize_answer) that is not negative, and whole when the question gives numbers
// (`given`, as NumberMap::values holds them) that are all whole: a count, an amount or a measure
// computed from whole numbers by a right program is rarely a fraction, and one that is usually
// comes from a division the wrong way round. Text that is not a number is not plausible. A prior
// from the domain, not a test: a question whose true answer is a fraction of whole numbers loses it.
std::string implausible_because(std::string_view answer, std::span<const std::string> given);
inline bool plausible_answer(std::string_view answer, std::span<const std::string> given) {
  return implausible_because(answer, given).empty();
}

// An answer as the vote shows it: a number in its shortest form ("1,234.0" -> "1234"), else the
// text trimmed.
std::string normalize_answer(std::string_view answer);

}  // namespace wand::reason
