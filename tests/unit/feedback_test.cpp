#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "feedback/feedback.h"

namespace wand::feedback {
namespace {

double binom(int n, int k) {
  if (k < 0 || k > n) return 0;
  return std::exp(std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1));
}

TEST(PassAtK, MatchesTheCombinatorialDefinition) {
  for (int n : {1, 5, 10, 50, 200})
    for (int c = 0; c <= n; c += std::max(1, n / 7))
      for (int k : {1, 2, 5, 10, 100}) {
        if (k > n) continue;
        double expected = 1.0 - binom(n - c, k) / binom(n, k);
        EXPECT_NEAR(pass_at_k(n, c, k), expected, 1e-9) << n << " " << c << " " << k;
      }
  EXPECT_DOUBLE_EQ(pass_at_k(10, 1, 1), 0.1);
  EXPECT_DOUBLE_EQ(pass_at_k(10, 0, 5), 0.0);
  EXPECT_DOUBLE_EQ(pass_at_k(10, 10, 1), 1.0);
}

TEST(HumanEvalFormat, ProgramIsPromptCompletionTestAndCheck) {
  AssertTask t{"T/0", "def f(x):\n", "    return x\n", "def check(c):\n    assert c(1) == 1\n", "f"};
  EXPECT_EQ(humaneval_program(t, "    return x\n"),
            "def f(x):\n    return x\n\ndef check(c):\n    assert c(1) == 1\n\ncheck(f)\n");
}

TEST(HumanEvalFormat, BadFilesNameTheProblem) {
  EXPECT_NE(load_humaneval("/nonexistent.jsonl").error().message.find("/nonexistent.jsonl"), std::string::npos);
  std::string path = ::testing::TempDir() + "bad_he.jsonl";
  std::ofstream(path) << "{\"task_id\": \"a\", \"prompt\": \"p\"}\n";
  auto r = load_humaneval(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("line 1"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("test"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace wand::feedback
