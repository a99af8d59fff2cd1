// splitmix64 (Steele, Lea and Flood 2014, "Fast splittable pseudorandom number generators"): one
// well-mixed 64-bit value from another, the same on every platform and standard library. Sample
// seeds (llm::sample_seed) and the orders of number names (reason::name_order) draw from it.
// Header-only and standard-library-only.
#pragma once
#include <cstdint>

namespace wand {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace wand
