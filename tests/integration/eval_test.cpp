// Execution feedback on real data: HumanEval from ../shared/data, judged in the real sandbox.
#include <fmt/core.h>

#include <filesystem>

#include "feedback/feedback.h"
#include "support.h"

namespace wand::test {
namespace {
using feedback::ErrorClass;

std::string humaneval_path() { return std::string(WAND_SHARED_DATA) + "/humaneval/HumanEval.jsonl"; }

class HumanEval : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(humaneval_path()))
      GTEST_SKIP() << humaneval_path() << " not found: the HumanEval tests need ../shared/data beside the repo";
    auto t = feedback::load_tasks(humaneval_path());
    ASSERT_TRUE(t.ok()) << t.error().message;
    tasks = std::move(t.value());
  }

  std::vector<feedback::Verdict> judge_all(const std::function<std::string(const feedback::Task&)>& completion) {
    std::vector<std::string> programs;
    std::vector<sandbox::ExecRequest> reqs;
    for (const auto& t : tasks) {
      programs.push_back(feedback::humaneval_program(t, completion(t)));
      sandbox::ExecRequest r;
      r.code = programs.back();
      r.limits.timeout_s = 20;
      reqs.push_back(r);
    }
    auto results = shared_sandbox().run_batch(reqs);
    std::vector<feedback::Verdict> v;
    for (std::size_t i = 0; i < results.size(); ++i) v.push_back(feedback::judge_asserts(results[i], programs[i]));
    return v;
  }

  std::vector<feedback::Task> tasks;
};

TEST_F(HumanEval, AllReferenceSolutionsPass) {
  ASSERT_EQ(tasks.size(), 164u);
  auto v = judge_all([](const feedback::Task& t) { return t.reference; });
  for (std::size_t i = 0; i < v.size(); ++i) {
    EXPECT_TRUE(v[i].passed) << tasks[i].task_id << ": " << v[i].feedback;
    EXPECT_EQ(v[i].reward, 1.0);
  }
}

TEST_F(HumanEval, EveryStubbedSolutionFails) {
  auto v = judge_all([](const feedback::Task&) { return std::string("    return None\n"); });
  int wrong = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    EXPECT_FALSE(v[i].passed) << tasks[i].task_id;
    EXPECT_LT(v[i].reward, 0) << tasks[i].task_id;
    EXPECT_FALSE(v[i].feedback.empty());
    wrong += v[i].error == ErrorClass::wrong_answer;
  }
  EXPECT_GT(wrong, 100);  // most fail an assert; the rest fail on None before one
}

TEST(Judge, ClassesRewardsAndFeedbackFromRealRuns) {
  struct Case {
    const char* code;
    ErrorClass error;
    double reward;
    const char* in_feedback;
  } cases[] = {
      {"assert 1 + 1 == 2\n", ErrorClass::none, 1.0, "passed"},
      {"x = 1\nassert x == 2, 'x is wrong'\n", ErrorClass::wrong_answer, -0.3, "line 2"},
      {"def f(:\n  pass\n", ErrorClass::syntax_error, -1.0, "SyntaxError"},
      {"{}['k']\n", ErrorClass::runtime_error, -0.6, "KeyError"},
      {"while True: pass\n", ErrorClass::timeout, -0.6, "Time limit"},
  };
  for (const auto& c : cases) {
    sandbox::ExecRequest req;
    req.code = c.code;
    req.limits.timeout_s = 1;
    auto v = feedback::judge_asserts(shared_sandbox().run(req), c.code);
    EXPECT_EQ(v.error, c.error) << c.code;
    EXPECT_DOUBLE_EQ(v.reward, c.reward) << c.code;
    EXPECT_NE(v.feedback.find(c.in_feedback), std::string::npos) << v.feedback;
  }
}

}  // namespace
}  // namespace wand::test
