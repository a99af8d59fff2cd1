// Internal to train: random draws for the corpus generators (word problems, function tasks).
#pragma once
#include <random>
#include <string>
#include <utility>

namespace wand::train {

inline const char* const kNames[] = {"Ava",  "Ben",  "Chloe", "Dan",   "Ella", "Finn", "Grace", "Hugo",
                                     "Ivy",  "Jack", "Kira",  "Leo",   "Maya", "Noah", "Olive", "Paul",
                                     "Quinn", "Rosa", "Sam",  "Tara",  "Uma",  "Vik",  "Wendy", "Zoe"};

// Draws for one item; names never repeat within an item.
struct Draw {
  std::mt19937_64& rng;
  int num(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
  template <std::size_t N>
  const char* pick(const char* const (&list)[N]) { return list[num(0, N - 1)]; }
  std::string name() { return pick(kNames); }
  std::pair<std::string, std::string> two_names() {
    std::string a = name(), b;
    do b = name(); while (b == a);
    return {a, b};
  }
  int variant(int n) { return num(0, n - 1); }
};

}  // namespace wand::train
