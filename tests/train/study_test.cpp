// The code-mixture study (study/mixture.h) and what it builds on: the generated world of the
// knowledge probe, corpora mixed by token shares, and `wand study mixture` end to end on a
// trivial budget (real corpus, real wand-train, real engine and sandbox) with its resumption.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "common/json.h"
#include "llm/llm.h"
#include "sandbox/sandbox.h"
#include "study/mixture.h"
#include "train/corpus.h"
#include "train/world.h"

using namespace wand;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  auto p = fs::temp_directory_path() / ("wand_study_test_" + std::to_string(getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(World, IsFixedByItsSeedAndEveryQuestionHasDistinctWrongAnswers) {
  train::World a, b;
  auto qa = a.questions(4, 7), qb = b.questions(4, 7);
  ASSERT_EQ(qa.size(), static_cast<std::size_t>(a.facts()));
  EXPECT_EQ(a.facts(), 24 * 3 + 48);
  for (std::size_t i = 0; i < qa.size(); ++i) {
    EXPECT_EQ(qa[i].prompt, qb[i].prompt);
    EXPECT_EQ(qa[i].answer, qb[i].answer);
    ASSERT_EQ(qa[i].distractors.size(), 4u) << qa[i].prompt;
    std::set<std::string> wrong(qa[i].distractors.begin(), qa[i].distractors.end());
    EXPECT_EQ(wrong.size(), 4u) << qa[i].prompt;
    EXPECT_FALSE(wrong.count(qa[i].answer)) << qa[i].prompt;
  }
  EXPECT_NE(train::World(5).questions()[0].prompt, qa[0].prompt) << "another seed, another world";
}

// Every question's answer is stated in the prose: over enough paragraphs each count appears in
// one of its phrasings and each person's home in one of theirs.
TEST(World, ParagraphsStateTheFactsTheQuestionsAsk) {
  train::World w;
  std::mt19937_64 rng(3);
  std::string prose;
  for (int i = 0; i < 3000; ++i) prose += w.document(rng) + "\n";
  std::regex count(R"(How many (\w+) does (\w+) have\? \w+ has)"), home(R"(Where does (\w+) live\? \w+ lives in)");
  int checked = 0;
  for (auto& q : w.questions()) {
    std::smatch m;
    std::string n = q.answer.substr(1);
    if (std::regex_search(q.prompt, m, count)) {
      std::string thing = m[1], town = m[2];
      bool said = prose.find(town + " has " + n + " " + thing + ".") != std::string::npos ||
                  prose.find("There are " + n + " " + thing + " in " + town + ".") != std::string::npos;
      EXPECT_TRUE(said) << q.prompt << q.answer;
      // ... and no other count of that thing for that town.
      EXPECT_EQ(prose.find(town + " has " + std::to_string(std::stoi(n) + 1) + " " + thing + "."), std::string::npos);
    } else {
      ASSERT_TRUE(std::regex_search(q.prompt, m, home)) << q.prompt;
      std::string who = m[1];
      EXPECT_TRUE(prose.find(who + " lives in " + n + ".") != std::string::npos ||
                  prose.find(who + " has a home in " + n + ".") != std::string::npos ||
                  prose.find(n + " is where " + who + " lives.") != std::string::npos)
          << q.prompt << q.answer;
    }
    ++checked;
  }
  EXPECT_EQ(checked, w.facts());
}

TEST(Mixture, CodeSharesAreTokenSharesOfCodeAndProseParts) {
  auto m = study::mixture_of(0.25);
  std::map<std::string, double> w(m.begin(), m.end());
  EXPECT_DOUBLE_EQ(w["func"] + w["code"], 0.25);
  EXPECT_NEAR(w["world"] + w["cot"] + w["text"], 0.75, 1e-12);
  EXPECT_NEAR(w["world"], 0.25, 1e-12);
  EXPECT_EQ(study::mixture_of(1.0).size(), 2u) << "all code: no world, cot or text part";
  EXPECT_EQ(study::mixture_of(0.0).size(), 3u) << "no code: no func or code part";
  ASSERT_TRUE(train::parse_mix("world=1,func=2"));
}

// --token-shares: the parts' token counts follow the weights (within one document), whatever
// their documents' lengths; by documents (the default) the long func documents take far more.
TEST(Mixture, TokenSharesHoldInTheWrittenCorpus) {
  auto dir = temp_dir("shares");
  for (bool by_tokens : {true, false}) {
    train::CorpusOptions c;
    c.out_dir = (dir / (by_tokens ? "tokens" : "docs")).string();
    c.mix = {{"world", 0.75}, {"func", 0.25}};
    c.token_shares = by_tokens;
    c.tokens = 40000;
    c.vocab = 300;
    c.held_out = 0;
    c.verify = 0;
    auto m = train::write_corpus(c);
    ASSERT_TRUE(m) << m.error().message;
    double func = (*m)["part_tokens"]["func"].get<double>() / (*m)["tokens"].get<double>();
    EXPECT_EQ((*m)["mix_by"], by_tokens ? "tokens" : "documents");
    if (by_tokens)
      EXPECT_NEAR(func, 0.25, 0.01);
    else
      EXPECT_GT(func, 0.35) << "a func document is longer than a world paragraph";
  }
  fs::remove_all(dir);
}

// A study's probes run in one cell.
Result<std::unique_ptr<sandbox::Sandbox>> one_cell_sandbox() {
  sandbox::Options so;
  so.cells = 1;
  return sandbox::Sandbox::create(so);
}

// Opens a point's model in the embedded engine, counting the models opened.
study::ModelOpener counting_opener(int& opened) {
  return [&opened](const std::string& gguf) {
    ++opened;
    return llm::open_backend("local:" + gguf, {.threads = 1});
  };
}

study::MixtureOptions tiny(const fs::path& out) {
  study::MixtureOptions o;
  o.out_dir = out.string();
  o.shares = {0, 0.5};
  o.seeds = 1;
  o.tokens = 4000;
  o.vocab = 300;
  o.dim = 16, o.layers = 1, o.heads = 2, o.kv_heads = 1, o.ffn = 32, o.seq = 256;
  o.steps = 3, o.batch = 2, o.warmup = 1;
  o.cooldown_steps = 2, o.cooldown_tokens = 3000;
  o.probe_items = 3;
  o.distractors = 2;
  o.trainer = WAND_TRAIN_BINARY;
  o.multiarith = std::string(WAND_SHARED_DATA) + "/pal-math/mawpsmultiarith.jsonl";
  o.test_sets = WAND_SHARED_DATA;
  return o;
}

TEST(Mixture, BadOptionsAreRefusedNamingTheOption) {
  auto o = tiny(temp_dir("bad"));
  auto says = [&](const std::string& text) {
    auto v = study::validate(o);
    EXPECT_FALSE(v);
    if (!v) {
      EXPECT_NE(v.error().message.find(text), std::string::npos) << v.error().message;
    }
  };
  o.shares = {0.5, 0.5};
  says("--shares: 50% is given twice");
  o.shares = {1.2};
  says("--shares: 120");
  o.shares = {};
  says("--shares");
  o.shares = {0};
  o.dim = 10, o.heads = 4;
  says("--dim 10 / --heads 4");
  o.dim = 16, o.heads = 2;
  o.trainer = "/nonexistent/wand-train";
  says("--trainer '/nonexistent/wand-train'");
  o.trainer = WAND_TRAIN_BINARY;
  o.multiarith = "/nonexistent.jsonl";
  says("--multiarith /nonexistent.jsonl: no such file");
}

// Two points and both cool-downs, a few steps each: every result has every probe with a value
// inside its interval, the summary's table has a row per run kind, and a second run redoes
// nothing; with one result removed, only that point runs again.
TEST(Mixture, RunsEndToEndAndResumes) {
  if (!fs::exists(WAND_TRAIN_BINARY)) GTEST_SKIP() << "wand-train was not built (libtorch-dev missing)";
  auto dir = temp_dir("e2e");
  auto o = tiny(dir / "study");
  auto sb = one_cell_sandbox();
  ASSERT_TRUE(sb) << sb.error().message;
  int opened = 0;
  auto open = counting_opener(opened);
  std::vector<std::string> lines;
  auto say = [&](const std::string& l) { lines.push_back(l); };
  auto s = study::run_mixture(o, **sb, open, say);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(opened, 4);
  ASSERT_EQ((*s)["runs"].size(), 4u);
  ASSERT_EQ((*s)["table"].size(), 4u);
  std::vector<std::string> rows;
  for (auto& r : (*s)["table"]) rows.push_back(r["phase"].get<std::string>() + ":" + r["cooldown"].get<std::string>());
  EXPECT_EQ(rows, (std::vector<std::string>{"main:", "main:", "cooldown:with-code", "cooldown:without-code"}));
  for (auto& r : (*s)["runs"]) {
    ASSERT_TRUE(fs::exists(dir / "study" / (r["phase"] == "main" ? "points" : "cooldown") / r["name"].get<std::string>() /
                           "result.json"));
    EXPECT_FALSE(r["train"].is_null()) << r.dump();
    for (auto& [probe, metrics] : {std::pair<std::string, std::vector<std::string>>{"reasoning_templates", {"exact", "rank", "answer_logprob", "rationale_logprob"}},
                                   {"multiarith", {"exact", "rank", "answer_logprob"}},
                                   {"knowledge", {"exact", "rank", "answer_logprob"}},
                                   {"code", {"pass1", "code_logprob"}}})
      for (auto& m : metrics) {
        ASSERT_TRUE(r["probes"][probe].contains(m)) << probe << "." << m;
        const Json& v = r["probes"][probe][m];
        double val = v["value"];
        EXPECT_LE(v["lo"].get<double>(), val + 1e-9) << probe << "." << m;
        EXPECT_GE(v["hi"].get<double>(), val - 1e-9) << probe << "." << m;
        EXPECT_EQ(v["kind"], m == "exact" || m == "pass1" ? "exact" : "likelihood");
        if (m.ends_with("logprob")) {
          EXPECT_LT(val, 0) << probe << "." << m;
        } else {
          EXPECT_TRUE(val >= 0 && val <= 1) << probe << "." << m;
        }
      }
    EXPECT_EQ(r["probes"]["knowledge"]["n"], 3);
    EXPECT_EQ(r["probes"]["code"]["too_long"], 0) << "every function task fits a 256-token context";
  }
  EXPECT_DOUBLE_EQ((*s)["runs"][0]["measured_code_share"].get<double>(), 0.0);
  EXPECT_NEAR((*s)["runs"][1]["measured_code_share"].get<double>(), 0.5, 0.05);
  EXPECT_TRUE(fs::exists(dir / "study" / "summary.json"));
  std::string md = slurp(dir / "study" / "summary.md");
  EXPECT_NE(md.find("| cool-down with-code | 50% "), std::string::npos) << md;
  EXPECT_NE(md.find("| main | 0% (0.0%) | 1 |"), std::string::npos) << md;

  // Again: nothing is trained or probed.
  lines.clear();
  opened = 0;
  auto again = study::run_mixture(o, **sb, open, say);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(opened, 0);
  EXPECT_EQ((*again)["table"], (*s)["table"]);
  for (auto& l : lines)
    if (l.starts_with("[")) {
      EXPECT_NE(l.find("skipped"), std::string::npos) << l;
    }

  // One result gone: that point alone runs again (its corpus and trained state are reused).
  fs::remove(dir / "study" / "points" / "code050-seed1" / "result.json");
  opened = 0;
  auto third = study::run_mixture(o, **sb, open, say);
  ASSERT_TRUE(third) << third.error().message;
  EXPECT_EQ(opened, 1);
  EXPECT_EQ((*third)["runs"][1]["probes"], (*s)["runs"][1]["probes"]) << "the same model, the same answers";

  // Run again with another model size: refused naming the option, nothing trained or probed.
  auto other = o;
  other.dim *= 2;
  opened = 0;
  auto refused = study::run_mixture(other, **sb, open, say);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, kOptionConflict);
  EXPECT_EQ(refused.error().message.find(fmt::format("--dim {}: {} holds a study made with --dim {}", other.dim,
                                                     other.out_dir, o.dim)),
            0u)
      << refused.error().message;
  EXPECT_EQ(opened, 0);
  fs::remove_all(dir);
}

// A context too short for the probes is refused once the tokenizer can measure them, before any
// training (the probes would otherwise skip every item that does not fit and report nothing).
TEST(Mixture, AContextShorterThanTheProbesIsRefusedBeforeTraining) {
  if (!fs::exists(WAND_TRAIN_BINARY)) GTEST_SKIP() << "wand-train was not built (libtorch-dev missing)";
  auto dir = temp_dir("seq");
  auto o = tiny(dir / "study");
  o.seq = 32;
  auto sb = one_cell_sandbox();
  ASSERT_TRUE(sb) << sb.error().message;
  int opened = 0;
  auto open = counting_opener(opened);
  auto s = study::run_mixture(o, **sb, open);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, kOptionConflict);
  EXPECT_EQ(s.error().message.find("--seq 32: the "), 0u) << s.error().message;
  EXPECT_NE(s.error().message.find("give --seq "), std::string::npos) << s.error().message;
  EXPECT_EQ(opened, 0);
  EXPECT_FALSE(fs::exists(dir / "study" / "points")) << "nothing trained";
  fs::remove_all(dir);
}

// The face: bad input is exit 2 with the option named, before any work.
TEST(Mixture, CliRefusesBadInputWithExitTwo) {
  auto dir = temp_dir("cli");
  struct Case {
    std::string args, says;
  };
  std::vector<Case> cases = {
      {"--shares 0,120", "--shares"},
      {"--shares 50,50", "--shares: 50% is given twice"},
      {"--seeds 0", "--seeds"},
      {"--dtype fp8", "--dtype"},
      {"--trainer /nonexistent/wand-train", "--trainer '/nonexistent/wand-train'"},
      {"--multiarith /nonexistent.jsonl", "--multiarith /nonexistent.jsonl"},
      // sizes wand-train refuses, refused before the tokenizer and corpora are made
      {"--layers 5000", "--layers: must be an integer from 1 to 1024"},
      {"--ffn 10000000", "--ffn: must be an integer from 1 to 1048576"},
      {"--seq 2000000", "--seq: must be an integer from 1 to 1048576"},
  };
  if (fs::exists(WAND_TRAIN_BINARY))  // past the option checks: the probes measured by the tokenizer
    cases.push_back({"--seq 32 --trainer " WAND_TRAIN_BINARY " --multiarith " WAND_SHARED_DATA
                     "/pal-math/mawpsmultiarith.jsonl", "--seq 32: the "});
  for (auto& c : cases) {
    std::string err = (dir / "err").string();
    std::string cmd = std::string(WAND_BINARY) + " study mixture --out " + (dir / "out").string() + " " + c.args + " 2> " + err;
    int st = std::system(cmd.c_str());
    EXPECT_EQ(WEXITSTATUS(st), 2) << cmd;
    std::string msg = slurp(err);
    EXPECT_NE(msg.find(c.says), std::string::npos) << cmd << ": " << msg;
  }
  int st = std::system((std::string(WAND_BINARY) + " study 2>/dev/null").c_str());
  EXPECT_EQ(WEXITSTATUS(st), 2) << "wand study without a study";
  EXPECT_FALSE(fs::exists(dir / "out" / "points")) << "nothing trained";
  fs::remove_all(dir);
}

}  // namespace
