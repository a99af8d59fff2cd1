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
  Task t;
  t.task_id = "T/0", t.prompt = "def f(x):\n", t.reference = "    return x\n";
  t.test = "def check(c):\n    assert c(1) == 1\n", t.entry_point = "f";
  EXPECT_EQ(humaneval_program(t, "    return x\n"),
            "def f(x):\n    return x\n\ndef check(c):\n    assert c(1) == 1\n\ncheck(f)\n");
}

TEST(HumanEvalFormat, BadFilesNameTheProblem) {
  EXPECT_NE(load_tasks("/nonexistent.jsonl").error().message.find("/nonexistent.jsonl"), std::string::npos);
  std::string path = ::testing::TempDir() + "bad_he.jsonl";
  std::ofstream(path) << "{\"task_id\": \"a\", \"prompt\": \"p\"}\n";
  auto r = load_tasks(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("line 1"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("test"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace wand::feedback

namespace wand::feedback {
namespace {

TEST(Answers, NumbersAsAnswersWriteThem) {
  EXPECT_DOUBLE_EQ(*parse_number("1,234.5"), 1234.5);
  EXPECT_DOUBLE_EQ(*parse_number("$18"), 18);
  EXPECT_DOUBLE_EQ(*parse_number("-$3.50"), -3.5);
  EXPECT_DOUBLE_EQ(*parse_number("45%"), 45);
  EXPECT_DOUBLE_EQ(*parse_number("3/4"), 0.75);
  EXPECT_DOUBLE_EQ(*parse_number(" 18. "), 18);
  EXPECT_DOUBLE_EQ(*parse_number("1e3"), 1000);
  EXPECT_DOUBLE_EQ(*parse_number("1,000,000"), 1e6);
  EXPECT_FALSE(parse_number("1,23"));  // not a thousands separator
  EXPECT_FALSE(parse_number("eighteen"));
  EXPECT_FALSE(parse_number("1/0"));
  EXPECT_FALSE(parse_number(""));
}

TEST(Answers, MatchNumericallyOrAsNormalizedText) {
  EXPECT_TRUE(answers_match("18.0", "18"));
  EXPECT_TRUE(answers_match("0.3333333333", "1/3"));
  EXPECT_FALSE(answers_match("19", "18"));
  EXPECT_FALSE(answers_match("18.01", "18"));
  EXPECT_FALSE(answers_match("1450001", "1450000"));  // off by one stays wrong at any size
  EXPECT_TRUE(answers_match("0.30000000000000004", "0.3"));
  EXPECT_TRUE(answers_match("  New   York ", "new york"));
  EXPECT_FALSE(answers_match("Boston", "new york"));
  EXPECT_EQ(last_printed_line("step 1\n42\n\n  \n"), "42");
}

TEST(Outputs, NormalizedComparisonWithOptionalFloatTolerance) {
  EXPECT_TRUE(outputs_match("1 2\r\n3  \n\n", "1 2\n3"));
  EXPECT_FALSE(outputs_match("1 2\n3\n4", "1 2\n3"));
  EXPECT_FALSE(outputs_match("0.3333", "0.333333"));
  EXPECT_TRUE(outputs_match("0.3333 x", "0.333333 x", 1e-3));
  EXPECT_FALSE(outputs_match("0.3333 y", "0.333333 x", 1e-3));
  EXPECT_FALSE(outputs_match("0.4", "0.333333", 1e-3));
}

}  // namespace
}  // namespace wand::feedback
