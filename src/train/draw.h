// Internal to train: random draws for the corpus generators (word problems, function tasks).
#pragma once
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "train/corpus.h"

namespace wand::train {

inline const char* const kNames[] = {"Ava",  "Ben",  "Chloe", "Dan",   "Ella", "Finn", "Grace", "Hugo",
                                     "Ivy",  "Jack", "Kira",  "Leo",   "Maya", "Noah", "Olive", "Paul",
                                     "Quinn", "Rosa", "Sam",  "Tara",  "Uma",  "Vik",  "Wendy", "Zoe"};
// More names, for the grammar's people (half of them are drawn from each list; grammar.cpp's
// pronouns_of lists the names of both lists that take "he").
inline const char* const kMoreNames[] = {"Amir", "Bella", "Carlos", "Diana", "Elif", "Farah", "Gus",  "Hana", "Igor",
                                         "Jonas", "Keiko", "Lena", "Mateo", "Nia",  "Omar", "Priya", "Ravi", "Sofia",
                                         "Theo", "Yara",  "Ines", "Kofi",  "Lucia", "Mei"};

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

// An item from a random template of `list` (word-problem templates, function families); the
// item's template_id is the template's index, counted from 100 for held-out templates.
template <class Template>
auto from_random_template(std::mt19937_64& rng, const std::vector<Template>& list, TemplateSet set) {
  Draw d{rng};
  int id = d.num(0, static_cast<int>(list.size()) - 1);
  auto item = list[id](d);
  item.template_id = set == TemplateSet::train ? id : 100 + id;
  return item;
}

}  // namespace wand::train
