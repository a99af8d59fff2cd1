#include "reason/vote.h"

#include <algorithm>
#include <cmath>

#include <fmt/core.h>

#include "feedback/feedback.h"

namespace wand::reason {

std::string normalize_answer(std::string_view answer) {
  if (auto n = feedback::parse_number(answer)) {
    double v = *n == 0 ? 0.0 : *n;  // -0 reads 0
    return fmt::format("{}", v);
  }
  std::size_t b = answer.find_first_not_of(" \t\n"), e = answer.find_last_not_of(" \t\n");
  return b == std::string_view::npos ? "" : std::string(answer.substr(b, e - b + 1));
}

Json VoteResult::to_json() const {
  Json d = Json::array();
  for (auto& e : distribution)
    d.push_back({{"answer", e.answer}, {"votes", e.votes}, {"weight", e.weight}, {"samples", e.samples}});
  return {{"answer", answer ? Json(*answer) : Json(nullptr)},
          {"distribution", d},
          {"winner", winner},
          {"tie_broken_by", tie_broken_by},
          {"weighting", weighting}};
}

namespace {
// Chooses group `win` (sample `winner` of it): the answer, then the distribution with the winner
// first and the rest by weight; equal weights keep the order of their first samples.
void choose(VoteResult& r, std::size_t win, int winner) {
  r.answer = r.distribution[win].answer;
  r.winner = winner;
  std::rotate(r.distribution.begin(), r.distribution.begin() + static_cast<long>(win), r.distribution.begin() + static_cast<long>(win) + 1);
  std::stable_sort(r.distribution.begin() + 1, r.distribution.end(),
                   [](const VoteEntry& a, const VoteEntry& b) { return a.weight > b.weight; });
}
}  // namespace

VoteResult vote(std::span<const Ballot> ballots, const VoteOptions& opt) {
  VoteResult r;
  bool all_logprobs = true, any_verified = false;
  for (auto& b : ballots) {
    if (b.answer && !b.mean_logprob) all_logprobs = false;
    if (b.answer && b.verified) any_verified = true;
  }
  // A ranking of single samples (top_verified first, then top_logprob) takes its one key; an
  // unscored sample ranks below the verifier's scored ones.
  const bool by_verifier = opt.top_verified;
  const bool top = by_verifier ? any_verified : opt.top_logprob && all_logprobs;
  const bool ranked = opt.top_verified || opt.top_logprob;
  bool weighted = opt.weighted && all_logprobs && !ranked;
  auto key = [&](const Ballot& b) { return by_verifier ? b.verified.value_or(-1.0) : *b.mean_logprob; };
  r.weighting = top                 ? (by_verifier ? "top verified" : "top logprob")
                : weighted          ? "logprob"
                : by_verifier       ? "count (no verifier scores)"
                : opt.weighted || ranked ? "count (no log-probabilities)"
                                    : "count";
  std::vector<std::vector<double>> logprobs;  // per group
  int best = -1;                             // top: the top-ranked sample (of equals, the earliest)
  std::size_t best_group = 0;                // and its group
  for (std::size_t i = 0; i < ballots.size(); ++i) {
    const auto& b = ballots[i];
    if (!b.answer) continue;
    std::string norm = normalize_answer(*b.answer);
    if (norm.empty()) continue;
    auto g = std::find_if(r.distribution.begin(), r.distribution.end(),
                          [&](const VoteEntry& e) { return feedback::answers_match(norm, e.answer); });
    if (g == r.distribution.end()) {
      r.distribution.push_back({norm, 0, 0, {}});
      logprobs.emplace_back();
      g = r.distribution.end() - 1;
    }
    auto gi = static_cast<std::size_t>(g - r.distribution.begin());
    g->votes += 1;
    g->weight += weighted ? std::exp(*b.mean_logprob) : 1.0;
    g->samples.push_back(static_cast<int>(i));
    if (b.mean_logprob) logprobs[gi].push_back(*b.mean_logprob);
    if (top && (best < 0 || key(b) > key(ballots[best]))) best = static_cast<int>(i), best_group = gi;
  }
  if (r.distribution.empty()) return r;
  if (top) {
    choose(r, best_group, best);
    return r;
  }
  auto mean_lp = [&](std::size_t g) -> std::optional<double> {
    if (logprobs[g].size() != r.distribution[g].samples.size()) return std::nullopt;
    double s = 0;
    for (double x : logprobs[g]) s += x;
    return s / logprobs[g].size();
  };
  // The heaviest groups (weights within a relative 1e-9: sums of exp() differ in the last bits).
  double heaviest = 0;
  for (auto& e : r.distribution) heaviest = std::max(heaviest, e.weight);
  std::vector<std::size_t> tied;
  for (std::size_t g = 0; g < r.distribution.size(); ++g)
    if (r.distribution[g].weight >= heaviest * (1 - 1e-9)) tied.push_back(g);
  std::size_t win = tied.front();  // groups are in order of their first sample: the earliest
  if (tied.size() > 1) {
    bool by_lp = std::all_of(tied.begin(), tied.end(), [&](std::size_t g) { return mean_lp(g).has_value(); });
    if (by_lp) {
      for (std::size_t g : tied)
        if (*mean_lp(g) > *mean_lp(win)) win = g;
      r.tie_broken_by = "logprob";
    } else {
      r.tie_broken_by = "earliest";
    }
  }
  choose(r, win, r.distribution[win].samples.front());
  return r;
}

std::string implausible_because(std::string_view answer, std::span<const std::string> given) {
  auto v = feedback::parse_number(normalize_answer(answer));
  if (!v || !std::isfinite(*v)) return "it is not a finite number";
  if (*v < 0) return "a word problem's answer is not negative";
  auto whole = [](double x) { return std::abs(x - std::round(x)) < 1e-9; };
  bool all_whole = !given.empty() && std::all_of(given.begin(), given.end(), [&](const std::string& g) {
    auto n = feedback::parse_number(g);
    return n && whole(*n);
  });
  return all_whole && !whole(*v) ? "the question's numbers are whole, and so is its answer" : "";
}

}  // namespace wand::reason
