// feedback::evaluate, the pipeline behind `wand eval`, as a library call in the real sandbox:
// pass@k over samples split across sandbox batches, per-sample results in order, stdin/stdout
// cases counted as runs, the summary's fields, and the options it refuses.
#include <fmt/core.h>

#include <atomic>

#include "feedback/evaluate.h"
#include "support.h"

namespace wand::test {
namespace {

feedback::Task answer_task(std::string id, std::string expected) {
  feedback::Task t;
  t.task_id = std::move(id);
  t.kind = feedback::TaskKind::answer;
  t.format = "gsm8k";
  t.prompt = "q";
  t.expected = std::move(expected);
  return t;
}

// Three tasks, three samples each, interleaved (a, b, c, a, b, c, ...) so that any batch size
// splits every task's samples across batches: a passes once, b always, c never.
struct Fixture {
  std::vector<feedback::Task> tasks = {answer_task("a", "1"), answer_task("b", "2"), answer_task("c", "3")};
  std::vector<feedback::EvalSample> samples;
  Fixture() {
    const char* programs[3][3] = {{"answer = 1", "answer = 0", "answer = 9"},
                                  {"answer = 2", "answer = 1 + 1", "answer = 4 // 2"},
                                  {"answer = 4", "answer = 1 / 0", "answer = (("}};
    for (int round = 0; round < 3; ++round)
      for (std::size_t t = 0; t < 3; ++t) samples.push_back({t, programs[t][round]});
  }
};

TEST(Evaluate, PassAtKIsTheSameWhateverTheBatchesAndMatchesTheEstimator) {
  Fixture f;
  feedback::EvalOptions opt;
  opt.ks = {1, 2, 3, 4};
  for (std::size_t batch : {0, 1, 2, 4, 9, 100}) {
    opt.batch_samples = batch;
    std::atomic<int> runs{0};
    auto rep = feedback::evaluate(shared_sandbox(), "fixture", f.tasks, f.samples, opt, [&] { ++runs; });
    SCOPED_TRACE("batch " + std::to_string(batch));
    EXPECT_EQ(runs.load(), 9);
    EXPECT_EQ(feedback::run_count(f.tasks, f.samples), 9u);
    ASSERT_EQ(rep.results.size(), 9u);
    for (std::size_t i = 0; i < 9; ++i) {
      EXPECT_EQ(rep.results[i].sample, i);
      EXPECT_EQ(rep.results[i].task, i % 3);
      EXPECT_EQ(rep.results[i].index_in_task, static_cast<int>(i / 3));
    }
    // a: n=3, c=1; b: n=3, c=3; c: n=3, c=0 (Chen et al.: 1 - C(n-c, k)/C(n, k) per task).
    EXPECT_NEAR(*rep.pass_at_k[1].value, (1.0 / 3 + 1 + 0) / 3, 1e-12);
    EXPECT_NEAR(*rep.pass_at_k[2].value, (2.0 / 3 + 1 + 0) / 3, 1e-12);
    EXPECT_NEAR(*rep.pass_at_k[3].value, 2.0 / 3, 1e-12);
    EXPECT_FALSE(rep.pass_at_k[4].value);
    EXPECT_EQ(rep.pass_at_k[4].tasks_with_fewer, 3u);
    EXPECT_EQ(rep.tasks, 3u);
    EXPECT_EQ(rep.tasks_unsolved, 1u);
    EXPECT_EQ(rep.outcomes, (std::map<std::string, int>{
                                {"none", 4}, {"wrong_answer", 3}, {"runtime_error", 1}, {"syntax_error", 1}}));
    Json s = rep.summary();
    EXPECT_EQ(s["samples"], 9);
    EXPECT_EQ(s["format"], "gsm8k");
    EXPECT_EQ(s["dataset"], "fixture");
    EXPECT_EQ(s["pass_at_k"].size(), 3u);
    EXPECT_EQ(s["pass_at_k_not_computed"]["pass@4"]["fewest_samples"], 3);
    EXPECT_GT(s["wall_time"].get<double>(), 0);
    Json line = feedback::sample_json(rep.results[7], f.tasks);  // b's third sample
    EXPECT_EQ(line["task_id"], "b");
    EXPECT_EQ(line["sample"], 2);
    EXPECT_EQ(line["passed"], true);
    EXPECT_EQ(line["status"], "ok");
  }
}

TEST(Evaluate, StdinStdoutCasesAreRunsOfTheirSample) {
  feedback::Task t;
  t.task_id = "double";
  t.kind = feedback::TaskKind::stdio;
  t.format = "stdio";
  t.io = {{"2\n", "4\n"}, {"5\n", "10\n"}, {"0\n", "0\n"}};
  std::vector<feedback::Task> tasks = {t};
  std::vector<feedback::EvalSample> samples = {{0, "print(int(input()) * 2)"}, {0, "print(int(input()) + 2)"}};
  EXPECT_EQ(feedback::run_count(tasks, samples), 6u);
  std::atomic<int> runs{0};
  feedback::EvalOptions opt;
  opt.ks = {1, 2};
  opt.batch_samples = 1;
  auto rep = feedback::evaluate(shared_sandbox(), "d", tasks, samples, opt, [&] { ++runs; });
  EXPECT_EQ(runs.load(), 6);
  ASSERT_EQ(rep.results.size(), 2u);
  EXPECT_TRUE(rep.results[0].verdict.passed);
  EXPECT_FALSE(rep.results[1].verdict.passed);
  EXPECT_DOUBLE_EQ(*rep.pass_at_k[1].value, 0.5);
  EXPECT_DOUBLE_EQ(*rep.pass_at_k[2].value, 1.0);
}

TEST(Evaluate, ReferenceSamplesAndBadOptions) {
  std::vector<feedback::Task> tasks = {answer_task("a", "1"), answer_task("b", "2")};
  tasks[1].reference = "answer = 2";
  auto refs = feedback::reference_samples(tasks);
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(refs[0].task, 1u);
  EXPECT_EQ(refs[0].completion, "answer = 2");

  feedback::EvalOptions opt;
  EXPECT_TRUE(feedback::validate(opt));
  opt.judge.answer = "var:";
  EXPECT_EQ(feedback::validate(opt).error().message, "--answer 'var:': expected auto, last-line, var:NAME or call:NAME");
  for (std::string bad : {"var:1bad", "call:f()", "var:a b"}) {
    opt.judge.answer = bad;
    EXPECT_EQ(feedback::validate(opt).error().message,
              fmt::format("--answer '{}': '{}' is not a Python name", bad, bad.substr(bad.find(':') + 1)));
  }
  opt.judge.answer = "call:solution";
  EXPECT_TRUE(feedback::validate(opt));
  opt.ks = {1, 0};
  EXPECT_EQ(feedback::validate(opt).error().message, "--k: '0' is not a positive integer");
}

// Shard I/N holds the tasks at positions I, I+N, I+2N, ...: each task in exactly one shard.
TEST(Evaluate, ShardsPartitionTheTasksByPositionModuloN) {
  for (const char* good : {"0/1", "0/4", "3/4", "41/100"}) EXPECT_TRUE(feedback::parse_shard(good)) << good;
  for (const char* bad : {"", "1/1", "4/4", "-1/4", "1/0", "1/-2", "x/4", "1/4x", " 1/4", "1/", "/4", "1", "1/2/3"}) {
    auto s = feedback::parse_shard(bad);
    ASSERT_FALSE(s) << bad;
    EXPECT_NE(s.error().message.find(std::string("--shard '") + bad + "'"), std::string::npos) << s.error().message;
  }
  for (int n : {1, 2, 3, 7})
    for (std::size_t task = 0; task < 30; ++task) {
      int holders = 0;
      for (int i = 0; i < n; ++i) holders += feedback::Shard{i, n}.holds(task);
      EXPECT_EQ(holders, 1);
      EXPECT_TRUE((feedback::Shard{static_cast<int>(task % n), n}.holds(task)));
    }
  EXPECT_EQ((feedback::Shard{2, 5}.str()), "2/5");
}

// evaluate() on a shard runs only its tasks' samples, keeping their indices in the whole set.
TEST(Evaluate, AShardRunsItsTasksSamplesWithTheirIndices) {
  Fixture f;
  feedback::EvalOptions opt;
  opt.ks = {1};
  opt.shard = {1, 3};  // task b only
  EXPECT_EQ(feedback::run_count(f.tasks, f.samples, opt.shard), 3u);
  auto rep = feedback::evaluate(shared_sandbox(), "fixture", f.tasks, f.samples, opt);
  ASSERT_EQ(rep.results.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(rep.results[i].sample, 1u + 3 * i);
    EXPECT_EQ(rep.results[i].task, 1u);
    EXPECT_EQ(rep.results[i].index_in_task, i);
  }
  EXPECT_EQ(rep.samples, 3u);
  EXPECT_EQ(rep.tasks, 1u);
  EXPECT_DOUBLE_EQ(*rep.pass_at_k[1].value, 1.0);
  EXPECT_EQ(feedback::sample_json(rep.results[2], f.tasks)["index"], 7);
  EXPECT_EQ(feedback::sample_json(rep.results[2], f.tasks)["task_index"], 1);
}

}  // namespace
}  // namespace wand::test
