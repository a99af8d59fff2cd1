// The training pipeline: the generator's items agree with themselves when executed, the corpus
// is deterministic, the trainer lowers the loss, export -> load -> generate round-trips, and the
// shipped model answers held-out problems.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "common/json.h"
#include "feedback/feedback.h"
#include "llm/llm.h"
#include "llm/model.h"
#include "llm/sampler.h"
#include "reason/reason.h"
#include "sandbox/sandbox.h"
#include "train/bpe.h"
#include "train/corpus.h"
#include "train/export.h"

using namespace wand;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  auto p = fs::temp_directory_path() / ("wand_train_test_" + std::to_string(getpid()) + "_" + name);
  fs::create_directories(p);
  return p;
}

TEST(Generator, IsDeterministicInTheSeed) {
  train::ProblemGenerator a(42), b(42), c(43);
  int differ = 0;
  for (int i = 0; i < 200; ++i) {
    auto x = a.next(train::TemplateSet::train), y = b.next(train::TemplateSet::train),
         z = c.next(train::TemplateSet::train);
    EXPECT_EQ(to_json(x), to_json(y));
    differ += x.question != z.question;
  }
  EXPECT_GT(differ, 150);
}

// Every step "a op b = c" in a rationale is right, its final answer is the answer, and the
// program, run in the sandbox, computes the same answer: for every template, 25 draws each.
TEST(Generator, ProgramRationaleAndAnswerAgreeWhenExecuted) {
  sandbox::Options o;
  o.cells = 2;
  o.preload = {};
  auto sb = sandbox::Sandbox::create(o);
  ASSERT_TRUE(sb) << sb.error().message;
  std::vector<sandbox::ExecRequest> reqs;
  std::vector<train::Problem> probs;
  for (auto set : {train::TemplateSet::train, train::TemplateSet::held_out}) {
    train::ProblemGenerator g(7);
    for (int i = 0; i < 25 * train::ProblemGenerator::template_count(set); ++i) probs.push_back(g.next(set));
  }
  std::set<int> templates;
  const std::regex step(R"((-?\d+) ([-+*/]) (-?\d+)(?: ([-+*/]) (-?\d+))? = (-?\d+))");
  for (auto& p : probs) {
    templates.insert(p.template_id);
    EXPECT_EQ(reason::extract_final_answer(p.rationale), p.answer) << p.rationale;
    for (auto it = std::sregex_iterator(p.rationale.begin(), p.rationale.end(), step); it != std::sregex_iterator(); ++it) {
      auto& m = *it;
      auto apply = [](long long a, char op, long long b) {
        return op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : a / b;
      };
      long long v = apply(std::stoll(m[1]), m[2].str()[0], std::stoll(m[3]));
      if (m[4].matched) v = apply(v, m[4].str()[0], std::stoll(m[5]));
      EXPECT_EQ(v, std::stoll(m[6])) << "in: " << p.rationale;
    }
    sandbox::ExecRequest r;
    r.code = p.program + "print(answer)\n";
    reqs.push_back(r);
  }
  EXPECT_EQ(templates.size(), std::size_t(train::ProblemGenerator::template_count(train::TemplateSet::train) +
                                          train::ProblemGenerator::template_count(train::TemplateSet::held_out)));
  auto results = (*sb)->run_batch(reqs);
  ASSERT_EQ(results.size(), probs.size());
  for (std::size_t i = 0; i < probs.size(); ++i) {
    ASSERT_EQ(results[i].status, sandbox::Status::ok) << probs[i].program << results[i].stderr_data;
    EXPECT_EQ(feedback::last_printed_line(results[i].stdout_data), probs[i].answer) << probs[i].question;
  }
}

TEST(Bpe, TrainsAVocabularyThatRoundTripsAndSplitsDigits) {
  train::ProblemGenerator g(1);
  std::vector<std::string> texts;
  for (int i = 0; i < 300; ++i) texts.push_back(g.next(train::TemplateSet::train).program);
  auto tok = train::train_bpe(texts, 320);
  EXPECT_EQ(tok.size(), 320u);
  EXPECT_GE(tok.bos(), 0);
  EXPECT_GE(tok.eos(), 0);
  std::string s = "answer = start + found - given\nprice = 1234\n";
  auto ids = tok.encode(s);
  EXPECT_EQ(tok.decode(ids), s);
  EXPECT_LT(ids.size(), s.size() * 3 / 5);  // merges compress the program text (digits stay single)
  for (auto id : tok.encode("1234")) EXPECT_EQ(tok.piece(id).size(), 1u);  // one digit per token
}

TEST(Corpus, WritesShardsManifestAndDisjointHeldOutSets) {
  auto dir = temp_dir("corpus");
  train::CorpusOptions o;
  o.out_dir = dir.string();
  o.tokens = 60000;
  o.held_out = 50;
  o.vocab = 300;
  o.mix = {{"pot", 1}, {"cot", 1}};
  auto m = train::write_corpus(o);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_GE((*m)["tokens"].get<long long>(), 60000);
  EXPECT_GT((*m)["documents"]["pot"].get<int>(), 100);
  EXPECT_GT((*m)["documents"]["cot"].get<int>(), 100);
  EXPECT_EQ(fs::file_size(dir / "train.bin"), 2 * (*m)["tokens"].get<uint64_t>());
  auto again = temp_dir("corpus2");
  o.out_dir = again.string();
  ASSERT_TRUE(train::write_corpus(o));
  auto first = read_file(dir / "train.bin"), second = read_file(again / "train.bin");
  ASSERT_TRUE(first && second);
  EXPECT_EQ(*first, *second);  // deterministic
  int n = 0;
  ASSERT_TRUE(for_each_json_line((dir / "heldout-templates.jsonl").string(), [&](int, const Json& j) -> VoidResult {
    EXPECT_GE(j["template"].get<int>(), 100);
    ++n;
    return ok_status();
  }));
  EXPECT_EQ(n, 50);
  EXPECT_FALSE(train::parse_mix("pot=1,poetry=2"));
  EXPECT_FALSE(train::parse_mix("pot=-1"));
  fs::remove_all(dir);
  fs::remove_all(again);
}

// wand-train on CPU: the loss goes down, and the exported GGUF's greedy continuation in the
// engine equals the trainer's own.
TEST(Trainer, LossFallsAndTheExportGeneratesWhatTheTrainerDoes) {
  if (!fs::exists(WAND_TRAIN_BINARY)) GTEST_SKIP() << "wand-train was not built (libtorch-dev missing)";
  auto dir = temp_dir("trainer");
  train::CorpusOptions co;
  co.out_dir = (dir / "corpus").string();
  co.tokens = 150000;
  co.held_out = 10;
  co.vocab = 300;
  ASSERT_TRUE(train::write_corpus(co));
  std::string cmd = std::string(WAND_TRAIN_BINARY) + " --data " + co.out_dir + " --out " + (dir / "run").string() +
                    " --steps 60 --batch 8 --seq 64 --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128"
                    " --warmup 10 --lr 3e-3 --log-every 10 --eval-every 30 --threads 2"
                    " --sample '256 81 117' --sample-tokens 12 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<double> losses;
  ASSERT_TRUE(for_each_json_line((dir / "run/log.jsonl").string(), [&](int, const Json& j) -> VoidResult {
    losses.push_back(j["loss"].get<double>());
    return ok_status();
  }));
  ASSERT_GE(losses.size(), 5u);
  EXPECT_LT(losses.back(), losses.front() * 0.7) << "first " << losses.front() << " last " << losses.back();
  EXPECT_TRUE(fs::exists(dir / "run/curves.html"));

  train::ExportOptions eo;
  eo.checkpoint = (dir / "run/checkpoint.wckpt").string();
  eo.tokenizer = co.out_dir + "/tokenizer.gguf";
  eo.out = (dir / "m.gguf").string();
  eo.type = llm::TensorType::F32;
  ASSERT_TRUE(train::export_model(eo));
  auto model = llm::Model::load(eo.out);
  ASSERT_TRUE(model) << model.error().message;
  EXPECT_EQ((*model)->prompt_format(), "pot");
  llm::Context ctx(*model, 0, 2);
  std::vector<llm::Token> ids = {256, 81, 117};
  auto logits = ctx.eval(ids);
  ASSERT_TRUE(logits);
  llm::Sampler greedy({});
  std::string got;
  for (int i = 0; i < 12; ++i) {
    llm::Token t = greedy.sample(*logits, ids);
    got += (i ? " " : "") + std::to_string(t);
    logits = ctx.eval(std::span<const llm::Token>(&t, 1));
    ASSERT_TRUE(logits);
  }
  auto want = read_file(dir / "run/sample.txt");
  ASSERT_TRUE(want) << want.error().message;
  EXPECT_EQ(got + "\n", *want);
  // A bad checkpoint is an error naming it.
  std::ofstream(dir / "bad.wckpt") << "WANDCKPT1\nxx";
  eo.checkpoint = (dir / "bad.wckpt").string();
  auto bad = train::export_model(eo);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("bad.wckpt"), std::string::npos);
  fs::remove_all(dir);
}

// The shipped model, through the real engine and sandbox, on held-out problems.
TEST(ShippedModel, SolvesHeldOutProblems) {
  std::string path = std::string(WAND_MODELS_DIR) + "/wand-pot.gguf";
  ASSERT_TRUE(fs::exists(path)) << path;
  auto model = llm::open_backend("local:" + path, {.threads = 2});
  ASSERT_TRUE(model) << model.error().message;
  sandbox::Options o;
  o.cells = 1;
  o.preload = {};
  auto sb = sandbox::Sandbox::create(o);
  ASSERT_TRUE(sb) << sb.error().message;
  int n = 0, correct = 0;
  ASSERT_TRUE(for_each_json_line(std::string(WAND_MODELS_DIR) + "/heldout-numbers.jsonl",
                                 [&](int line, const Json& j) -> VoidResult {
                                   if (line > 20) return ok_status();
                                   auto s = reason::solve_pot(**model, **sb, j["question"]);
                                   if (!s) return s.error();
                                   ++n;
                                   correct += feedback::answers_match(s->answer, j["answer"].get<std::string>());
                                   return ok_status();
                                 }));
  EXPECT_EQ(n, 20);
  EXPECT_GE(correct, 18);
}

}  // namespace
