// Seeds an empty libFuzzer corpus directory with valid requests, so a bounded run in CI starts
// from the shapes clients send and spends its time on the parsers' edges rather than on
// discovering JSON. The first argument that is a directory is the corpus.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

inline void seed_corpus(int argc, char** argv, const std::vector<std::string>& seeds) {
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path dir = argv[i];
    if (argv[i][0] == '-' || !std::filesystem::is_directory(dir)) continue;
    if (std::filesystem::is_empty(dir))
      for (std::size_t k = 0; k < seeds.size(); ++k) std::ofstream(dir / ("seed-" + std::to_string(k))) << seeds[k];
    break;
  }
}
