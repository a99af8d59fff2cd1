// How many of some programs Python's own parser refuses (python3's ast.parse, one process for
// all of them): the measure of "fails to parse" shared by the grammar tests and constrain_bench.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/json.h"

namespace wand::test {

// -1 when python3 could not be run.
inline int count_unparsable(const std::vector<std::string>& programs) {
  auto file = std::filesystem::temp_directory_path() / ("wand_python_syntax_" + std::to_string(::getpid()) + ".json");
  std::ofstream(file) << Json(programs).dump();
  std::string cmd =
      "python3 -c 'import ast, json, sys\nbad = 0\nfor p in json.load(open(sys.argv[1])):\n"
      "    try: ast.parse(p)\n    except SyntaxError: bad += 1\nprint(bad)' " +
      file.string();
  FILE* p = popen(cmd.c_str(), "r");
  int bad = -1;
  if (p && std::fscanf(p, "%d", &bad) != 1) bad = -1;
  if (p) pclose(p);
  std::filesystem::remove(file);
  return bad;
}

}  // namespace wand::test
