// wand bench: the statistics on hand-built tables with known values, the dataset reader's
// errors, the run pipeline with a scripted backend and the real sandbox and store (a dead
// server, a stop, a resume), --compare and the HTML report; then the real binary with the
// shipped model: SIGKILL mid-run and --resume, the OpenAI path through `wand serve`, bad input.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "reason/bench.h"
#include "serve_process.h"
#include "store/store.h"
#include "support.h"

namespace wand::test {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  std::string dir = ::testing::TempDir() + "wand_bench_test_" + std::to_string(::getpid());
  fs::create_directories(dir);
  return dir + "/" + name;
}

std::string write_file(const std::string& name, const std::string& text) {
  std::string p = temp_path(name);
  std::ofstream(p) << text;
  return p;
}

// --- statistics: values computed independently from the published formulas

TEST(BenchStats, WilsonIntervalMatchesKnownValues) {
  struct Case {
    int k, n;
    double lo, hi;
  } cases[] = {{0, 10, 0.0, 0.2775328}, {5, 10, 0.2365931, 0.7634069}, {10, 10, 0.7224672, 1.0},
               {81, 263, 0.2552885, 0.3662096}, {187, 200, 0.8919809, 0.9616236}};
  for (auto& c : cases) {
    auto ci = reason::wilson_interval(c.k, c.n);
    EXPECT_NEAR(ci.lo, c.lo, 1e-6) << c.k << "/" << c.n;
    EXPECT_NEAR(ci.hi, c.hi, 1e-6) << c.k << "/" << c.n;
  }
  auto none = reason::wilson_interval(0, 0);
  EXPECT_EQ(none.lo, 0);
  EXPECT_EQ(none.hi, 1);
}

TEST(BenchStats, McNemarExactBinomialBelowTwentyFiveDiscordantPairs) {
  struct Case {
    int a, b;
    double p;
  } cases[] = {{1, 6, 0.125}, {0, 5, 0.0625}, {3, 3, 1.0}, {2, 12, 0.012939453125}, {5, 19, 0.006610751152038574}};
  for (auto& c : cases) {
    auto m = reason::mcnemar(c.a, c.b);
    EXPECT_EQ(m.test, "exact binomial");
    EXPECT_NEAR(m.p_value, c.p, 1e-12) << c.a << " vs " << c.b;
    EXPECT_NEAR(reason::mcnemar(c.b, c.a).p_value, c.p, 1e-12) << "symmetric";
  }
  auto none = reason::mcnemar(0, 0);
  EXPECT_EQ(none.test, "none");
  EXPECT_EQ(none.p_value, 1);
}

TEST(BenchStats, McNemarChiSquareWithContinuityCorrectionFromTwentyFive) {
  struct Case {
    int a, b;
    double chi2, p;
  } cases[] = {{121, 59, 20.672222, 5.450094825e-06},  // the textbook table (Wikipedia's McNemar example)
               {10, 25, 5.6, 0.017960477526},
               {12, 40, 14.019231, 0.00018095049},
               {100, 130, 3.656522, 0.05585011368},
               {30, 30, 0.016667, 0.897278961260}};
  for (auto& c : cases) {
    auto m = reason::mcnemar(c.a, c.b);
    EXPECT_EQ(m.test, "chi-square (continuity-corrected)");
    EXPECT_NEAR(m.statistic, c.chi2, 1e-5) << c.a << " vs " << c.b;
    EXPECT_NEAR(m.p_value / c.p, 1.0, 1e-6) << c.a << " vs " << c.b;
  }
}

// --- datasets

TEST(BenchDataset, ReadsEveryAnswerFormat) {
  auto plain = write_file("plain.jsonl", R"({"question": "What is 2 plus 3?", "answer": "5"})"
                                         "\n" R"({"question": "What is 1 plus 1?", "answer": 2, "task_id": "two"})" "\n");
  auto p = reason::load_bench_dataset(plain);
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].expected, "5");
  EXPECT_EQ((*p)[0].id, "0");
  EXPECT_EQ((*p)[1].expected, "2");
  EXPECT_EQ((*p)[1].id, "two");
  EXPECT_EQ((*p)[1].index, 1);
  auto gsm = write_file("gsm.jsonl", R"({"question": "q?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"})" "\n");
  auto g = reason::load_bench_dataset(gsm);
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ((*g)[0].expected, "7");
  auto pal = reason::load_bench_dataset(std::string(WAND_SHARED_DATA) + "/pal-math/mawpsmultiarith.jsonl");
  if (pal) {
    EXPECT_EQ(pal->size(), 600u);
    EXPECT_FALSE((*pal)[0].question.empty());
  }
  auto held = reason::load_bench_dataset(std::string(WAND_MODELS_DIR) + "/heldout-numbers.jsonl");
  ASSERT_TRUE(held) << held.error().message;
  EXPECT_EQ(held->size(), 1000u);
}

TEST(BenchDataset, MalformedDatasetsNameTheFileAndLine) {
  struct Case {
    std::string text, says;
  } cases[] = {
      {"{\"question\": \"a?\", \"answer\": \"1\"}\n{\"question\": \"b?\", \"answer\": \n", "line 2: invalid JSON"},
      {"{\"question\": \"a?\", \"answer\": \"1\"}\n{\"question\": \"b?\"}\n", "line 2: field 'answer' is missing"},
      {"{\"question\": \"a?\", \"answer\": \"a rationale\\nwith no marker\"}\n", "line 1: 'answer' has no '#### N'"},
      {"{\"question\": \"a?\", \"answer\": [1]}\n", "line 1: field 'answer' must be a string or a number"},
      {"{\"input\": \"a?\", \"target\": 1}\n{\"input\": \"b?\"}\n", "line 2: field 'target' is missing"},
      // values of the wrong type are refused, not turned into text and solved
      {"{\"question\": 5, \"answer\": \"#### 3\"}\n", "line 1: field 'question' must be a string"},
      {"{\"question\": {\"a\": 1}, \"answer\": 3}\n", "line 1: field 'question' must be a string"},
      {"{\"question\": \"a?\", \"answer\": \"#### \"}\n", "line 1: 'answer' has an empty final answer after '####'"},
      {"{\"input\": \"a?\", \"target\": true}\n", "line 1: field 'target' must be a string or a number"},
      {"{\"input\": \"a?\", \"target\": \" \"}\n", "line 1: field 'target' is empty"},
      {"{\"input\": true, \"target\": 2}\n", "line 1: field 'input' must be a string"},
      {"{\"foo\": 1}\n", "line 1: unrecognised record"},
      {"{\"question\": \"  \", \"answer\": \"1\"}\n", "problem 1 (0): the question is empty"},
      {"{\"task_id\": \"T/0\", \"prompt\": \"def f():\\n\", \"canonical_solution\": \"  return 1\\n\", \"test\": \"\", "
       "\"entry_point\": \"f\"}\n",
       "a humaneval dataset of code tasks"},
      {"", "no tasks"},
  };
  int i = 0;
  for (auto& c : cases) {
    auto path = write_file(fmt::format("bad{}.jsonl", i++), c.text);
    auto r = reason::load_bench_dataset(path);
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }
  auto missing = reason::load_bench_dataset("/nonexistent/set.jsonl");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/nonexistent/set.jsonl"), std::string::npos);
  auto folder = reason::load_bench_dataset("/tmp");
  ASSERT_FALSE(folder);
  EXPECT_EQ(folder.error().message, "/tmp: a folder, not a dataset file");
}

// --- options recorded for --resume

TEST(BenchOptions, RoundTripAndResumeNamesTheDifferingOption) {
  reason::BenchConfig c;
  c.dataset = "/data/set.jsonl";
  c.model_spec = "local:m.gguf";
  c.limit = 30;
  c.solve.k = 8, c.solve.temperature = 0.7f, c.solve.seed = 18446744073709551615ull, c.solve.repair = false;
  Json o = reason::bench_options(c);
  Json stored = Json::parse(o.dump());  // as the store gives it back
  auto back = reason::bench_config_from(stored);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(reason::bench_options(*back), o);
  EXPECT_EQ(back->solve.seed, 18446744073709551615ull);
  EXPECT_FALSE(back->solve.repair);

  auto same = reason::resume_options(stored, {{"k", 8}, {"temperature", 0.7f}}, "abcd1234");
  ASSERT_TRUE(same) << same.error().message;
  EXPECT_EQ(*same, stored);
  auto k = reason::resume_options(stored, {{"k", 4}}, "abcd1234");
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error().message, "--k: run abcd1234 used 8, not 4; resume it with its own options");
  auto t = reason::resume_options(stored, {{"temperature", 0.3f}}, "abcd1234");
  ASSERT_FALSE(t);  // floats shown as given, not as the doubles nearest them
  EXPECT_EQ(t.error().message, "--temperature: run abcd1234 used 0.7, not 0.3; resume it with its own options");
  auto ds = reason::resume_options(stored, {{"dataset", "/data/other.jsonl"}}, "abcd1234");
  ASSERT_FALSE(ds);
  EXPECT_NE(ds.error().message.find("DATASET: run abcd1234 used /data/set.jsonl, not /data/other.jsonl"), std::string::npos);
  EXPECT_FALSE(reason::bench_config_from(Json{{"k", 1}}));
  // flow's budget round-trips; a run recorded before flow existed resumes with the defaults
  c.solve.method = "flow", c.solve.flow_calls = 3, c.solve.flow_tokens = 40;
  auto flow = reason::bench_config_from(Json::parse(reason::bench_options(c).dump()));
  ASSERT_TRUE(flow);
  EXPECT_EQ(flow->solve.flow_calls, 3);
  EXPECT_EQ(flow->solve.flow_tokens, 40);
  Json old = o;
  old.erase("flow-calls"), old.erase("flow-tokens");
  auto before = reason::bench_config_from(old);
  ASSERT_TRUE(before) << before.error().message;
  EXPECT_EQ(before->solve.flow_calls, 8);
  // --shard round-trips; a run recorded before shards existed ran every problem
  c.shard = {2, 5};
  auto sharded = reason::bench_config_from(Json::parse(reason::bench_options(c).dump()));
  ASSERT_TRUE(sharded) << sharded.error().message;
  EXPECT_EQ(sharded->shard.str(), "2/5");
  old.erase("shard");
  EXPECT_EQ(reason::bench_config_from(old)->shard.str(), "0/1");
  Json bad = o;
  bad["shard"] = "5/5";
  EXPECT_FALSE(reason::bench_config_from(bad));
  // the KV cache type round-trips; a run recorded before it existed used f32
  c.kv_cache = "q8";
  EXPECT_EQ(reason::bench_config_from(Json::parse(reason::bench_options(c).dump()))->kv_cache, "q8");
  old.erase("kv-cache");
  EXPECT_EQ(reason::bench_config_from(old)->kv_cache, "f32");
  // and a resume of such a run may name what it used (its default), not another
  EXPECT_TRUE(reason::resume_options(old, {{"kv-cache", "f32"}}, "abcd1234"));
  auto q8 = reason::resume_options(old, {{"kv-cache", "q8"}}, "abcd1234");
  ASSERT_FALSE(q8);
  EXPECT_EQ(q8.error().message, "--kv-cache: run abcd1234 used f32, not q8; resume it with its own options");
  // --select and --plausible round-trip; a run recorded before them voted over every answer
  c.solve.select = "logprob", c.solve.plausible = true;
  auto chosen = reason::bench_config_from(Json::parse(reason::bench_options(c).dump()));
  ASSERT_TRUE(chosen) << chosen.error().message;
  EXPECT_EQ(chosen->solve.select, "logprob");
  EXPECT_TRUE(chosen->solve.plausible);
  old.erase("select"), old.erase("plausible");
  EXPECT_EQ(reason::bench_config_from(old)->solve.select, "vote");
  EXPECT_FALSE(reason::bench_config_from(old)->solve.plausible);
  auto by_logprob = reason::resume_options(old, {{"select", "logprob"}}, "abcd1234");
  ASSERT_FALSE(by_logprob);
  EXPECT_EQ(by_logprob.error().message, "--select: run abcd1234 used vote, not logprob; resume it with its own options");
  // --verifier round-trips too (the model is opened again on resume); older runs had none
  c.solve.select = "verifier", c.solve.verifier_spec = "local:/m/wand-verify.gguf";
  auto verified = reason::bench_config_from(Json::parse(reason::bench_options(c).dump()));
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_EQ(verified->solve.verifier_spec, "local:/m/wand-verify.gguf");
  EXPECT_FALSE(verified->solve.verifier);
  old.erase("verifier");
  EXPECT_EQ(reason::bench_config_from(old)->solve.verifier_spec, "");
}

TEST(BenchOptions, ResumeRefusesAChangedDatasetOrPrompt) {
  store::RunInfo run;
  run.id = "abcd1234";
  run.config.kind = "bench";
  run.config.dataset = "/data/set.jsonl";
  run.config.prompt_hash = "p1";
  run.config.extra = {{"dataset_sha256", "d1"}};
  reason::Template t;
  t.name = "prompts/pot.wand.txt", t.hash = "p1";
  EXPECT_TRUE(reason::check_resumable(run, "d1", t));
  auto data = reason::check_resumable(run, "d2", t);
  ASSERT_FALSE(data);
  EXPECT_EQ(data.error().message, "run abcd1234: /data/set.jsonl changed since the run started (its SHA-256 differs)");
  t.hash = "p2";
  auto prompt = reason::check_resumable(run, "d1", t);
  ASSERT_FALSE(prompt);
  EXPECT_EQ(prompt.error().message, "run abcd1234: the prompt template prompts/pot.wand.txt changed since the run started");
  run.config.kind = "solve";
  EXPECT_FALSE(reason::check_resumable(run, "d1", t));
}

// --- the pipeline, scripted: "What is A plus B?" is answered with the program `answer = A + B`

class AddingBackend : public llm::Backend {
 public:
  std::atomic<int> calls = 0;
  int fail_from = -1;  // from that call on, the server is dead
  std::size_t context = 0;  // a prompt longer than this many characters is refused as the engine refuses it
  Result<std::vector<llm::Completion>> complete(const std::string& prompt, const llm::GenerateOptions& opt) override {
    if (fail_from >= 0 && calls >= fail_from) return Error{"connection refused (127.0.0.1:1)"};
    if (context && prompt.size() > context)
      return Error{"the prompt has 300 tokens; the model's context holds 256", std::string(llm::kContextLengthExceeded)};
    ++calls;
    std::smatch m;
    std::string text = "print('no idea')\n";
    static const std::regex ask(R"(What is (\d+) plus (\d+)\?\s*\nProgram:\s*$)");
    if (std::regex_search(prompt, m, ask)) text = fmt::format("answer = {} + {}\n", m[1].str(), m[2].str());
    llm::Completion c;
    c.text = text;
    c.completion_tokens = 5, c.prompt_tokens = 10;
    return std::vector<llm::Completion>(opt.n, c);
  }
  Result<std::vector<llm::Completion>> chat(const std::vector<llm::Message>&, const llm::GenerateOptions&) override {
    return Error{"not a chat model"};
  }
  std::string id() const override { return "adding"; }
};

std::vector<reason::BenchProblem> adding_problems(int n) {
  std::vector<reason::BenchProblem> out;
  for (int i = 0; i < n; ++i)  // every third label is wrong on purpose: accuracy 2/3
    out.push_back({i, "p" + std::to_string(i), fmt::format("What is {} plus {}?", i, 2 * i),
                   std::to_string(3 * i + (i % 3 == 2 ? 1 : 0))});
  return out;
}

reason::SolveConfig adding_config() {
  reason::SolveConfig c;
  c.family = "wand";
  c.repair = false, c.fallback = false;
  return c;
}

TEST(BenchRun, RecordsEachProblemAndSummarizes) {
  AddingBackend model;
  auto problems = adding_problems(9);
  auto db = store::Store::open(temp_path("run.db"));
  ASSERT_TRUE(db);
  auto id = (*db)->create_run({.kind = "bench", .dataset = "adding"});
  ASSERT_TRUE(id);
  std::vector<int> seen;
  auto run = reason::run_bench(model, &shared_sandbox(), problems, adding_config(), {}, db->get(), *id,
                               [&](const reason::BenchProgress& p) { seen.push_back(p.done); });
  ASSERT_TRUE(run) << run.error().message;
  EXPECT_FALSE(run->stopped);
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  auto s = reason::summarize(run->problems);
  EXPECT_EQ(s.problems, 9);
  EXPECT_EQ(s.correct, 6);
  EXPECT_EQ(s.answered, 9);
  EXPECT_DOUBLE_EQ(s.coverage, 1.0);
  EXPECT_EQ(s.completion_tokens, 45);
  EXPECT_EQ(s.answered_by.at("sample"), 9);
  EXPECT_NEAR(s.ci.lo, reason::wilson_interval(6, 9).lo, 1e-12);
  // Four at a time: the same records, whatever order they finish in.
  AddingBackend parallel_model;
  auto id4 = (*db)->create_run({.kind = "bench", .dataset = "adding"});
  std::vector<int> seen4;
  auto run4 = reason::run_bench(parallel_model, &shared_sandbox(), problems, adding_config(), {}, db->get(), *id4,
                                [&](const reason::BenchProgress& p) { seen4.push_back(p.done); }, nullptr, 4);
  ASSERT_TRUE(run4) << run4.error().message;
  EXPECT_EQ(seen4, seen);
  EXPECT_EQ(parallel_model.calls, 9);
  ASSERT_EQ(run4->problems.size(), 9u);
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(run4->problems[i].index, i);
    EXPECT_EQ(run4->problems[i].answer, run->problems[i].answer);
  }
  EXPECT_EQ((*db)->finished_problems(*id4)->size(), 9u);

  auto stored = (*db)->get_run(*id);
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored->problems.size(), 9u);
  EXPECT_EQ(stored->problems[4].problem_id, "p4");
  EXPECT_EQ(stored->problems[4].expected, "12");
  EXPECT_EQ(stored->problems[4].answer, "12");
  EXPECT_EQ(stored->problems[5].correct, false);
  Json line = reason::problem_line(stored->problems[4]);
  EXPECT_EQ(line["program"], "answer = 4 + 8\n");
  EXPECT_EQ(line["answered_by"], "sample");
}

// A question longer than the model's context is unanswered and the run goes on (GSM8K's longest
// questions and a 256-token model); any other error still ends the run (below).
TEST(BenchRun, AQuestionLongerThanTheContextIsUnansweredAndTheRunGoesOn) {
  auto problems = adding_problems(3);
  problems[1].question += std::string(400, ' ') + "And a very long story?";
  AddingBackend model;
  model.context = 200;
  auto run = reason::run_bench(model, &shared_sandbox(), problems, adding_config(), {}, nullptr, "");
  ASSERT_TRUE(run) << run.error().message;
  ASSERT_EQ(run->problems.size(), 3u);
  EXPECT_EQ(run->problems[1].outcome, "context_length_exceeded");
  EXPECT_EQ(run->problems[1].correct, false);
  EXPECT_NE(run->problems[1].extra["error"].get<std::string>().find("context holds 256"), std::string::npos);
  EXPECT_EQ(run->problems[0].correct, true);  // (problem 2's label is wrong on purpose)
  EXPECT_EQ(run->problems[2].answer, "6");
  auto s = reason::summarize(run->problems);
  EXPECT_EQ(s.problems, 3);
  EXPECT_EQ(s.answered, 2);
}

// A dead server mid-run, then a stop (Ctrl-C): what finished stays recorded, and resuming gives
// the numbers of an uninterrupted run.
TEST(BenchRun, DeadServerAndStopKeepWhatFinishedAndResumeEqualsAFullRun) {
  auto problems = adding_problems(12);
  AddingBackend full_model;
  auto full = reason::run_bench(full_model, &shared_sandbox(), problems, adding_config(), {}, nullptr, "");
  ASSERT_TRUE(full);
  Json want = reason::summarize(full->problems).to_json();
  want.erase("generate_s"), want.erase("execute_s");

  auto db = store::Store::open(temp_path("resume.db"));
  ASSERT_TRUE(db);
  auto id = *(*db)->create_run({.kind = "bench", .dataset = "adding"});
  AddingBackend dying;
  dying.fail_from = 4;
  auto r = reason::run_bench(dying, &shared_sandbox(), problems, adding_config(), {}, db->get(), id);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("problem 5 (p4): connection refused"), std::string::npos) << r.error().message;
  EXPECT_EQ((*db)->finished_problems(id)->size(), 4u);

  std::atomic<bool> stop{false};
  AddingBackend model;
  auto again = (*db)->get_run(id);
  auto stopped = reason::run_bench(model, &shared_sandbox(), problems, adding_config(), again->problems, db->get(), id,
                                   [&](const reason::BenchProgress& p) { stop = p.done >= 7; }, &stop);
  ASSERT_TRUE(stopped);
  EXPECT_TRUE(stopped->stopped);
  EXPECT_EQ((*db)->finished_problems(id)->size(), 7u);
  EXPECT_EQ(model.calls, 3);

  stop = false;
  auto rest = reason::run_bench(model, &shared_sandbox(), problems, adding_config(), (*db)->get_run(id)->problems,
                                db->get(), id);
  ASSERT_TRUE(rest);
  EXPECT_FALSE(rest->stopped);
  EXPECT_EQ(model.calls, 3 + 5) << "only the unfinished problems ran";
  Json got = reason::summarize((*db)->get_run(id)->problems).to_json();
  got.erase("generate_s"), got.erase("execute_s");
  EXPECT_EQ(got, want);
}

// --- compare and report

store::Run stored_run(const std::string& id, const std::string& sha, const std::vector<bool>& right,
                      const std::string& dataset = "set.jsonl") {
  store::Run r;
  r.info.id = id;
  r.info.config.kind = "bench";
  r.info.config.method = "pot";
  r.info.config.dataset = dataset;
  r.info.config.options = {{"k", 1}};
  r.info.config.extra = {{"dataset_sha256", sha}};
  for (std::size_t i = 0; i < right.size(); ++i) {
    store::ProblemRecord p;
    p.index = static_cast<int>(i);
    p.input = fmt::format("question {}", i);
    p.expected = "1";
    p.answer = right[i] ? "1" : "2";
    p.correct = right[i];
    r.problems.push_back(p);
  }
  return r;
}

TEST(BenchCompare, PairsProblemsByIndexAndTestsThem) {
  // 10 both right, A alone right on 1, B alone right on 6, 3 both wrong: exact test, p = 0.125.
  std::vector<bool> a, b;
  for (int i = 0; i < 10; ++i) a.push_back(true), b.push_back(true);
  a.push_back(true), b.push_back(false);
  for (int i = 0; i < 6; ++i) a.push_back(false), b.push_back(true);
  for (int i = 0; i < 3; ++i) a.push_back(false), b.push_back(false);
  auto c = reason::compare_runs(stored_run("aaaa0000", "h", a), stored_run("bbbb0000", "h", b));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->common, 20);
  EXPECT_EQ(c->correct_a, 11);
  EXPECT_EQ(c->correct_b, 16);
  EXPECT_EQ(c->test.only_a, 1);
  EXPECT_EQ(c->test.only_b, 6);
  EXPECT_DOUBLE_EQ(c->test.p_value, 0.125);
  ASSERT_EQ(c->differing.size(), 7u);
  EXPECT_EQ(c->differing[0].index, 10);
  EXPECT_TRUE(c->differing[0].correct_a);
  EXPECT_EQ(c->to_json()["p_value"], 0.125);

  auto other = reason::compare_runs(stored_run("aaaa0000", "h", a), stored_run("cccc0000", "other", b, "b.jsonl"));
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message.find("different datasets (set.jsonl and b.jsonl, whose contents differ)"),
            std::string::npos)
      << other.error().message;
  auto moved = stored_run("dddd0000", "h", b);
  moved.problems[3].input = "something else";
  auto differs = reason::compare_runs(stored_run("aaaa0000", "h", a), moved);
  ASSERT_FALSE(differs);
  EXPECT_NE(differs.error().message.find("problem 4 differs"), std::string::npos);
  auto solve = stored_run("eeee0000", "h", b);
  solve.info.config.kind = "solve";
  EXPECT_FALSE(reason::compare_runs(stored_run("aaaa0000", "h", a), solve));
}

TEST(BenchReport, HtmlIsSelfContainedAndEscapesHostileText) {
  auto run = stored_run("aaaa0000", "h", {true, false, false});
  run.problems[1].input = "<script>alert('q')</script> & \"more\"";
  store::SampleRecord s;
  s.program = "answer = '</pre><img src=x onerror=alert(1)>'\n";
  s.exec_result = {{"stdout", "<b>out</b>\n"}};
  run.problems[1].samples.push_back(s);
  run.problems[1].answer.reset();
  run.problems[1].outcome = "no_answer";
  auto second = stored_run("bbbb0000", "h", {true, true, false});
  second.info.config.method = "cot";
  std::vector<store::Run> runs = {run, second};
  std::string h = reason::html_report(runs);
  EXPECT_EQ(h.find("<script"), std::string::npos);
  EXPECT_EQ(h.find("<img"), std::string::npos);
  EXPECT_EQ(h.find("<b>out"), std::string::npos);
  EXPECT_NE(h.find("&lt;script&gt;alert('q')&lt;/script&gt; &amp; &quot;more&quot;"), std::string::npos);
  EXPECT_NE(h.find("&lt;/pre&gt;&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
  EXPECT_NE(h.find("&lt;b&gt;out&lt;/b&gt;"), std::string::npos);
  EXPECT_NE(h.find("<svg"), std::string::npos);
  EXPECT_NE(h.find("pot k=1 on set.jsonl"), std::string::npos);
  EXPECT_NE(h.find("cot k=1 on set.jsonl"), std::string::npos);
  EXPECT_NE(h.find("33.3%"), std::string::npos);  // run A: 1 of 3
  EXPECT_NE(h.find("66.7%"), std::string::npos);  // run B: 2 of 3
  EXPECT_NE(h.find("(none: no_answer)"), std::string::npos);
  EXPECT_EQ(h.find("src=\"http"), std::string::npos) << "no external resources";
}

// --- the real binary and the shipped model

struct CliRun {
  int rc;
  std::string out, err;
};

CliRun wand(const std::string& args) {
  std::string err_path = temp_path("err.txt");
  std::string cmd = std::string(WAND_BINARY) + " " + args + " 2> " + err_path;
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), out, slurp(err_path)};
}

// The numbers that must not depend on how the run went (times do).
Json final_numbers(const std::string& json_out) {
  Json j = Json::parse(json_out);
  Json out;
  for (const char* k : {"problems", "correct", "accuracy", "ci95", "answered", "coverage", "answered_by",
                        "prompt_tokens", "completion_tokens", "dataset", "method", "k", "seed"})
    out[k] = j[k];
  return out;
}

// Starts `wand bench synthetic --set templates --limit 48` recording into `store_path` (stderr to
// `err_path`) and returns its pid and run id once it has recorded `after` problems.
std::pair<pid_t, std::string> start_bench(const std::string& store_path, int after, const std::string& err_path,
                                          const std::string& out = "") {
  std::vector<std::string> args = {WAND_BINARY, "bench", "synthetic", "--set", "templates", "--limit", "48", "--seed", "7",
                                   "--store", store_path};
  if (!out.empty()) args.insert(args.end(), {"--out", out});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    FILE* f = std::freopen("/dev/null", "w", stdout);
    f = std::freopen(err_path.c_str(), "w", stderr);
    (void)f;
    ::execv(WAND_BINARY, argv.data());
    ::_exit(127);
  }
  std::string id;
  for (int i = 0, recorded = 0; i < 2400 && recorded < after; ++i) {  // up to a minute on a loaded machine
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    if (!fs::exists(store_path)) continue;
    auto db = store::Store::open(store_path, false);
    if (!db) continue;
    auto runs = (*db)->list_runs();
    if (!runs || runs->empty()) continue;
    id = runs->front().id;
    recorded = static_cast<int>((*db)->finished_problems(id)->size());
  }
  return {pid, id};
}

TEST(BenchCli, KilledWithSigkillThenResumedGivesTheUninterruptedNumbers) {
  std::string common = "synthetic --set templates --limit 48 --seed 7 --quiet";
  std::string full_store = temp_path("full.db");
  CliRun full = wand(fmt::format("bench {} --json --store {}", common, full_store));
  ASSERT_EQ(full.rc, 0) << full.err;
  Json want = final_numbers(full.out);
  ASSERT_EQ(want["problems"], 48);

  std::mt19937 rng(std::random_device{}());
  std::string store_path = temp_path("killed.db");
  // Kill at a random point once the run has recorded some problems, none being its last.
  int kill_after = 1 + static_cast<int>(rng() % 24);
  auto [pid, id] = start_bench(store_path, kill_after, "/dev/null");
  std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << "the run ended before the kill";
  ASSERT_FALSE(id.empty());
  {
    auto db = store::Store::open(store_path, false);
    auto info = (*db)->get_run_info(id);
    EXPECT_EQ(info->status, "interrupted");
    EXPECT_GE(info->problems_done, kill_after);
    EXPECT_LT(info->problems_done, 48) << "killed mid-run";
  }
  CliRun wrong = wand(fmt::format("bench --resume {} --k 2 --store {}", id, store_path));
  EXPECT_EQ(wrong.rc, 2);
  EXPECT_NE(wrong.err.find("--k: run " + id + " used 1, not 2"), std::string::npos) << wrong.err;
  CliRun resumed = wand(fmt::format("bench --resume {} --quiet --json --store {}", id, store_path));
  ASSERT_EQ(resumed.rc, 0) << resumed.err;
  EXPECT_EQ(final_numbers(resumed.out), want);
  auto db = store::Store::open(store_path, false);
  EXPECT_EQ((*db)->get_run_info(id)->status, "finished");
  CliRun again = wand(fmt::format("bench --resume {} --store {}", id, store_path));
  EXPECT_EQ(again.rc, 2) << "a finished run is not resumed";

  // --compare of the two runs: the same answers, so no discordant pair.
  auto full_db = store::Store::open(full_store, false);
  std::string full_id = (*full_db)->list_runs()->front().id;
  CliRun cmp = wand(fmt::format("bench --compare {} {} --store {}", id, id, store_path));
  EXPECT_EQ(cmp.rc, 0) << cmp.err;
  EXPECT_NE(cmp.out.find(fmt::format("A {} pot k=1 (", id)), std::string::npos) << cmp.out;
  EXPECT_NE(cmp.out.find(fmt::format("): {} of 48 common problems right", Json::parse(resumed.out)["correct"].get<int>())),
            std::string::npos)
      << cmp.out;
  EXPECT_NE(cmp.out.find("only A 0, only B 0"), std::string::npos) << cmp.out;
  EXPECT_NE(cmp.out.find("McNemar: no discordant problems"), std::string::npos) << cmp.out;
}

// Ctrl-C: the problem in progress is dropped, the run is marked interrupted, exit 130, and the
// message says how to finish it; the resume that finishes it writes the --out it was given.
TEST(BenchCli, CtrlCStopsAfterTheCurrentProblemAndSaysHowToResume) {
  std::string store_path = temp_path("sigint.db"), err_path = temp_path("sigint.err"), out = temp_path("sigint.jsonl");
  fs::remove(out);
  auto [pid, id] = start_bench(store_path, 2, err_path, out);
  ::kill(pid, SIGINT);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFEXITED(st)) << "killed by signal " << WTERMSIG(st);
  EXPECT_EQ(WEXITSTATUS(st), 130);
  std::string err = slurp(err_path);
  auto db = store::Store::open(store_path, false);
  auto info = (*db)->get_run_info(id);
  EXPECT_EQ(info->status, "interrupted");
  EXPECT_NE(err.find(fmt::format("wand bench: interrupted; {} of 48 problems are recorded in run {}: finish it with "
                                 "`wand bench --resume {} --store '{}'`, which writes --out and --html",
                                 info->problems_done, id, id, store_path)),
            std::string::npos)
      << err;
  EXPECT_FALSE(fs::exists(out)) << "an unfinished run writes no --out";
  CliRun resumed = wand(fmt::format("bench --resume {} --quiet --json --store {}", id, store_path));
  ASSERT_EQ(resumed.rc, 0) << resumed.err;
  EXPECT_EQ(Json::parse(resumed.out)["problems"], 48);
  int lines = 0;
  std::ifstream written(out);
  for (std::string line; std::getline(written, line);) ++lines;
  EXPECT_EQ(lines, 48) << "the resume wrote the run's --out";
}

TEST(BenchCli, CompareAndReportAcrossMethods) {
  std::string store_path = temp_path("cmp.db");
  CliRun pot = wand("bench synthetic --limit 15 --quiet --json --store " + store_path);
  ASSERT_EQ(pot.rc, 0) << pot.err;
  CliRun cot = wand("bench synthetic --method cot --limit 15 --quiet --json --store " + store_path);
  ASSERT_EQ(cot.rc, 0) << cot.err;
  std::string a = Json::parse(pot.out)["run_id"], b = Json::parse(cot.out)["run_id"];
  CliRun cmp = wand(fmt::format("bench --compare {} {} --json --store {}", a, b, store_path));
  ASSERT_EQ(cmp.rc, 0) << cmp.err;
  Json c = Json::parse(cmp.out);
  EXPECT_EQ(c["common"], 15);
  EXPECT_EQ(c["correct_a"], Json::parse(pot.out)["correct"]);
  EXPECT_EQ(c["correct_b"], Json::parse(cot.out)["correct"]);
  std::string html = temp_path("report.html");
  CliRun rep = wand(fmt::format("bench --report {} {} --html {} --store {}", a, b, html, store_path));
  ASSERT_EQ(rep.rc, 0) << rep.err;
  std::string page = slurp(html);
  EXPECT_NE(page.find("pot k=1 on heldout-numbers.jsonl"), std::string::npos);
  EXPECT_NE(page.find("cot k=1 on heldout-numbers.jsonl"), std::string::npos);

  CliRun other = wand("bench synthetic --set templates --limit 3 --quiet --json --store " + store_path);
  ASSERT_EQ(other.rc, 0) << other.err;
  CliRun mixed = wand(fmt::format("bench --compare {} {} --store {}", a, std::string(Json::parse(other.out)["run_id"]),
                                  store_path));
  EXPECT_EQ(mixed.rc, 2);
  EXPECT_NE(mixed.err.find("different datasets"), std::string::npos) << mixed.err;
}

// Through `wand serve` at temperature 0: the completion endpoint (--prompt-style wand) and the
// chat endpoint (a user's one-turn chat template: wand serve refuses chat with more turns to
// wand's models, which are not chat models) give the local backend's answers, problem by problem.
// The same model both ways: wand serve's default, wand-pot (bench's default for pot is another).
TEST(BenchCli, ThroughWandServeTheAnswersEqualTheLocalBackends) {
  ServeProcess server;
  ASSERT_NE(server.port(), 0) << "wand serve did not start";
  std::string remote = fmt::format("openai:http://127.0.0.1:{}/v1", server.port());
  const std::string local_model = fmt::format("--model local:{}/wand-pot.gguf", WAND_MODELS_DIR);
  auto answers = [](const std::string& out_path) {
    std::vector<Json> a;
    std::ifstream in(out_path);
    for (std::string l; std::getline(in, l);) {
      Json j = Json::parse(l);
      a.push_back({j["index"], j["answer"], j["program"]});
    }
    return a;
  };
  std::string set = "synthetic --set templates --limit 12 --quiet --no-store";
  std::string local_out = temp_path("local.jsonl"), http_out = temp_path("http.jsonl");
  CliRun local = wand(fmt::format("bench {} {} --out {}", set, local_model, local_out));
  ASSERT_EQ(local.rc, 0) << local.err;
  CliRun http = wand(fmt::format("bench {} --model {} --prompt-style wand --parallel 4 --out {}", set, remote, http_out));
  ASSERT_EQ(http.rc, 0) << http.err;
  auto want = answers(local_out);
  ASSERT_EQ(want.size(), 12u);
  EXPECT_EQ(answers(http_out), want);

  // No repair round and no fallback: they continue the conversation or use the built-in chat
  // prompt, which have more turns than these models take.
  std::string chat = write_file("one_turn.txt", "@@ user\n{{question}}\n@@ stop\n\\nQuestion:\n");
  set += " --no-repair --no-fallback";
  std::string chat_local = temp_path("chat_local.jsonl"), chat_http = temp_path("chat_http.jsonl");
  CliRun cl = wand(fmt::format("bench {} {} --prompt {} --out {}", set, local_model, chat, chat_local));
  ASSERT_EQ(cl.rc, 0) << cl.err;
  CliRun ch = wand(fmt::format("bench {} --model {} --prompt {} --out {}", set, remote, chat, chat_http));
  ASSERT_EQ(ch.rc, 0) << ch.err;
  EXPECT_EQ(answers(chat_http), answers(chat_local));

  // The built-in chat prompt (a system message and few-shot turns) is refused by wand serve: exit 2, said.
  CliRun refused = wand(fmt::format("bench {} --model {} --prompt-style chat", set, remote));
  EXPECT_EQ(refused.rc, 2) << refused.err;
  EXPECT_NE(refused.err.find("not a chat model"), std::string::npos) << refused.err;
}

// --constrain goes through to solve and is recorded; a resume that names another grammar is refused.
TEST(BenchCli, ConstrainIsRecordedAndChecked) {
  std::string store_path = temp_path("constrain.db");
  CliRun r = wand("bench synthetic --limit 3 --constrain pot --quiet --json --store " + store_path);
  ASSERT_EQ(r.rc, 0) << r.err;
  Json j = Json::parse(r.out);
  EXPECT_EQ(j["correct"], 3);
  std::string id = j["run_id"];
  auto db = store::Store::open(store_path, false);
  auto info = (*db)->get_run_info(id);
  EXPECT_EQ(info->config.extra["bench"]["constrain"], "pot");
  EXPECT_EQ(info->config.options["constrain"], "pot");
  CliRun other = wand(fmt::format("bench --resume {} --constrain python-block --store {}", id, store_path));
  EXPECT_EQ(other.rc, 2);
  EXPECT_NE(other.err.find("--constrain: run " + id + " used pot, not python-block"), std::string::npos) << other.err;
}

TEST(BenchCli, BadInputIsExitTwoNamingIt) {
  std::string bad = write_file("cli_bad.jsonl", "{\"question\": \"What is 1 plus 1?\", \"answer\": \"2\"}\n{\"question\": 3\n");
  struct Case {
    std::string args, says;
  } cases[] = {
      {"bench " + bad, bad + " line 2: invalid JSON"},
      {"bench synthetic --problems " + bad, bad + " line 2: invalid JSON"},
      {"bench", "a DATASET is needed"},
      {"bench /nonexistent/set.jsonl", "/nonexistent/set.jsonl"},
      {"bench " + std::string(WAND_SHARED_DATA) + "/humaneval/HumanEval.jsonl", "a humaneval dataset of code tasks"},
      {"bench synthetic --k 0", "--k: must be an integer from 1 to 64"},
      {"bench synthetic --compare a", "--compare"},
      {"bench synthetic --compare a b", "dataset: not an option of --compare, which reads stored runs"},
      {"bench --report a --k 2", "--k: not an option of --report"},
      {"bench --compare a b --out " + temp_path("o.jsonl"), "--out: not an option of --compare"},
      {"bench " + bad + " --set templates", "--set: chooses among the synthetic sets"},
      {"bench synthetic --constrain /nonexistent/g.gbnf", "--constrain: "},
      {"bench --resume zzzz --store " + temp_path("empty.db"), "--store"},
      {"bench synthetic --html /nonexistent-dir/r.html", "--html: /nonexistent-dir/r.html: cannot write"},
  };
  for (auto& c : cases) {
    CliRun r = wand(c.args);
    EXPECT_EQ(r.rc, 2) << c.args << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args << ": " << r.err;
  }
}

TEST(BenchCli, HtmlOfARunEscapesAHostileQuestion) {
  std::string set = write_file("hostile.jsonl",
                               "{\"question\": \"<script>alert(1)</script> Ann has 5 pens and buys 3 more. How many pens "
                               "does she have?\", \"answer\": \"999\"}\n");
  std::string html = temp_path("hostile.html");
  CliRun r = wand(fmt::format("bench {} --quiet --no-store --html {}", set, html));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("accuracy   0.0%  (0 of 1; 95% CI 0.0-79.3%)"), std::string::npos) << r.out;
  std::string page = slurp(html);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;alert(1)&lt;/script&gt; Ann has 5 pens"), std::string::npos);
}

}  // namespace
}  // namespace wand::test
