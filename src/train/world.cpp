#include "train/world.h"

#include <algorithm>
#include <set>

#include <fmt/core.h>

#include "train/draw.h"

namespace wand::train {
namespace {

const char* const kOnsets[] = {"b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "st", "th"};
const char* const kVowels[] = {"a", "e", "i", "o", "u", "ei", "ou"};
const char* const kTownEnds[] = {"ven", "mar", "dale", "wick", "holm", "ford", "stead", "bury"};
const char* const kThings[] = {"bridges", "wells", "towers"};
const int kCountRange[][2] = {{20, 900}, {3, 99}, {2, 60}};

std::string capital(std::string s) {
  s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

}  // namespace

World::World(uint64_t seed, int towns, int people) {
  std::mt19937_64 rng(seed);
  Draw d{rng};
  // Word problems' names stay out, so "Maya" in a question is never also a world's resident.
  std::set<std::string> used(std::begin(kNames), std::end(kNames));
  auto fresh = [&](auto make) {
    for (;;)
      if (std::string n = make(); used.insert(n).second) return n;
  };
  for (int i = 0; i < towns; ++i) {
    Town t;
    t.name = fresh([&] {  // one draw a statement: the order of a + b's operands is the compiler's
      std::string n = d.pick(kOnsets);
      n += d.pick(kVowels);
      n += d.pick(kTownEnds);
      return capital(n);
    });
    for (auto& r : kCountRange) t.counts.push_back(d.num(r[0], r[1]));
    towns_.push_back(std::move(t));
  }
  for (int i = 0; i < people; ++i) {
    Person p;
    p.name = fresh([&] {
      std::string n = d.pick(kOnsets);
      n += d.pick(kVowels);
      n += d.pick(kOnsets);
      n += d.pick(kVowels);
      return capital(n);
    });
    p.town = d.num(0, towns - 1);
    people_.push_back(std::move(p));
  }
}

int World::facts() const { return static_cast<int>(towns_.size() * std::size(kThings) + people_.size()); }

std::string World::document(std::mt19937_64& rng) const {
  Draw d{rng};
  int t = d.num(0, static_cast<int>(towns_.size()) - 1);
  const Town& town = towns_[t];
  std::vector<std::string> sentences;
  for (std::size_t k = 0; k < std::size(kThings); ++k) {
    int n = town.counts[k];
    switch (d.variant(3)) {
      case 0: sentences.push_back(fmt::format("{} has {} {}.", town.name, n, kThings[k])); break;
      case 1: sentences.push_back(fmt::format("There are {} {} in {}.", n, kThings[k], town.name)); break;
      default: sentences.push_back(fmt::format("The town of {} has {} {}.", town.name, n, kThings[k]));
    }
  }
  std::vector<const Person*> residents;
  for (auto& p : people_)
    if (p.town == t) residents.push_back(&p);
  std::shuffle(residents.begin(), residents.end(), rng);
  for (std::size_t i = 0; i < residents.size() && i < 3; ++i) {
    const std::string& who = residents[i]->name;
    switch (d.variant(3)) {
      case 0: sentences.push_back(fmt::format("{} lives in {}.", who, town.name)); break;
      case 1: sentences.push_back(fmt::format("{} has a home in {}.", who, town.name)); break;
      default: sentences.push_back(fmt::format("{} is where {} lives.", town.name, who));
    }
  }
  std::shuffle(sentences.begin(), sentences.end(), rng);
  std::string doc;
  for (auto& s : sentences) doc += (doc.empty() ? "" : " ") + s;
  return doc;
}

std::vector<WorldQuestion> World::questions(int distractors, uint64_t seed) const {
  std::mt19937_64 rng(seed);
  // `distractors` distinct wrong answers from `pool` (fewer if the pool has fewer).
  auto wrong = [&](std::vector<std::string> pool, const std::string& right) {
    std::sort(pool.begin(), pool.end());
    pool.erase(std::unique(pool.begin(), pool.end()), pool.end());
    std::erase(pool, right);
    std::shuffle(pool.begin(), pool.end(), rng);
    if (pool.size() > static_cast<std::size_t>(distractors)) pool.resize(distractors);
    return pool;
  };
  std::vector<WorldQuestion> out;
  for (std::size_t k = 0; k < std::size(kThings); ++k) {
    std::vector<std::string> pool;
    for (auto& t : towns_) pool.push_back(fmt::format(" {}", t.counts[k]));
    for (auto& t : towns_) {
      std::string right = fmt::format(" {}", t.counts[k]);
      out.push_back({fmt::format("How many {} does {} have? {} has", kThings[k], t.name, t.name), right,
                     wrong(pool, right), "count"});
    }
  }
  std::vector<std::string> town_names;
  for (auto& t : towns_) town_names.push_back(" " + t.name);
  for (auto& p : people_) {
    std::string right = " " + towns_[p.town].name;
    out.push_back({fmt::format("Where does {} live? {} lives in", p.name, p.name), right, wrong(town_names, right), "home"});
  }
  return out;
}

}  // namespace wand::train
