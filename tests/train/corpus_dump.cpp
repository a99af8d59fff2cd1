// Prints what the word-problem grammar and the knowledge world draw from fixed seeds. Built once
// with the project's compiler and once with clang (tests/CMakeLists.txt): the two outputs must be
// byte for byte the same, so that a corpus is fixed by its command and seed, not by the compiler
// (an expression whose operands each draw leaves their order to the compiler).
#include <fmt/format.h>

#include <random>

#include "train/corpus.h"
#include "train/world.h"

int main() {
  using wand::train::TemplateSet;
  wand::train::GrammarGenerator g(1);
  for (int i = 0; i < 4000; ++i) {
    auto p = g.next(i % 5 == 0 ? TemplateSet::held_out : TemplateSet::train);
    fmt::print("{}\n{}{}\n{}\n", p.question, p.program, p.rationale, p.answer);
  }
  for (int i = 0; i < 500; ++i) fmt::print("{}\n", g.next_pool().question);
  wand::train::World world;
  std::mt19937_64 rng(2);
  for (int i = 0; i < 300; ++i) fmt::print("{}\n", world.document(rng));
  for (auto& q : world.questions()) fmt::print("{} {} {}\n", q.prompt, q.answer, fmt::join(q.distractors, ","));
}
