// CodeT's dual agreement (Chen et al. 2022, section 2.2): programs that pass the same tests agree
// with each other and with those tests; a consensus set scores |programs| × |tests|.
#include <algorithm>
#include <map>

#include "codegen/codegen.h"

namespace wand::codegen {

Json Agreement::to_json() const {
  return {{"pick", pick}, {"group", group}, {"tests_passed", tests_passed}, {"score", score}, {"groups", groups}};
}

Agreement dual_agreement(const std::vector<std::vector<bool>>& pass) {
  Agreement a;
  if (pass.empty()) return a;
  // Programs grouped by their pass set; std::map keeps the groups' order independent of hashing.
  std::map<std::vector<bool>, std::vector<int>> groups;
  for (int i = 0; i < static_cast<int>(pass.size()); ++i) groups[pass[i]].push_back(i);
  a.groups = static_cast<int>(groups.size());
  bool first = true;
  for (auto& [set, programs] : groups) {
    int tests = static_cast<int>(std::count(set.begin(), set.end(), true));
    double score = static_cast<double>(programs.size()) * tests;
    auto better = [&] {
      if (score != a.score) return score > a.score;
      if (tests != a.tests_passed) return tests > a.tests_passed;
      if (programs.size() != a.group.size()) return programs.size() > a.group.size();
      return programs.front() < a.group.front();
    };
    if (first || better()) {
      a.score = score, a.tests_passed = tests, a.group = programs, a.pick = programs.front();
      first = false;
    }
  }
  return a;
}

}  // namespace wand::codegen
