// A generated world for the knowledge probe of the code-mixture study (study/mixture.h): towns
// with counted things ("Tolven has 340 bridges.") and people who live in them ("Mara lives in
// Tolven."). The corpus's `world` part states these facts in prose only; no code part ever does,
// so a model can know them only from the text it was trained on. The world depends on its seed
// alone (kWorldSeed for every corpus), so models trained on different mixtures are asked about
// the same facts.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace wand::train {

inline constexpr uint64_t kWorldSeed = 20240917;

// One question about the world, for likelihood scoring and for greedy answers: `prompt` is the
// question followed by the answer sentence's stem ("How many bridges does Tolven have? Tolven
// has"), `answer` the text that completes it (" 340"), `distractors` wrong completions of the same
// kind (other towns' counts of the same thing, other towns), never equal to the answer.
struct WorldQuestion {
  std::string prompt, answer;
  std::vector<std::string> distractors;
  std::string kind;  // "count" or "home"
};

class World {
 public:
  // `towns` towns with a count of each of kWorldThings, `people` people living in them; names
  // are made of syllables and unique (none is a word problem's name).
  explicit World(uint64_t seed = kWorldSeed, int towns = 24, int people = 48);
  // A prose paragraph about a random town: its counts and up to three residents, in a shuffled
  // order and one of three phrasings each.
  std::string document(std::mt19937_64& rng) const;
  // Every fact as a question (towns x things counts, then each person's home), each with
  // `distractors` wrong answers drawn with `seed`.
  std::vector<WorldQuestion> questions(int distractors = 4, uint64_t seed = 1) const;
  int facts() const;

 private:
  struct Town {
    std::string name;
    std::vector<int> counts;  // one per kWorldThings
  };
  struct Person {
    std::string name;
    int town = 0;
  };
  std::vector<Town> towns_;
  std::vector<Person> people_;
};

}  // namespace wand::train
