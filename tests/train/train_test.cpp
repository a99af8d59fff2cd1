// The training pipeline: the generator's items agree with themselves when executed, the corpus
// is deterministic, the trainer lowers the loss, export -> load -> generate round-trips, and the
// shipped model answers held-out problems.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

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
    EXPECT_EQ(feedback::extract_answer(p.rationale), p.answer) << p.rationale;
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
  o.verify = 0;  // verification has its own tests
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
  for (const char* bad : {"pot=inf", "pot=nan", "pot=1e400", "pot=", "pot=1x"}) {
    auto r = train::parse_mix(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("--mix: the weight of 'pot' must be a positive number"), std::string::npos)
        << r.error().message;
  }
  EXPECT_FALSE(train::parse_mix("code=1,code=2"));
  auto mix = train::parse_mix("code=0.5,text=0.5,func=1");
  ASSERT_TRUE(mix) << mix.error().message;
  EXPECT_EQ(mix->size(), 3u);
  // The weights are read, not only checked (they were once all 1).
  auto weighted = train::parse_mix("func=2,tests=1");
  ASSERT_TRUE(weighted) << weighted.error().message;
  EXPECT_EQ(*weighted, (std::vector<std::pair<std::string, double>>{{"func", 2.0}, {"tests", 1.0}}));
  fs::remove_all(dir);
  fs::remove_all(again);
}

// Function tasks: every family, train and held out, draws functions that pass their own tests in
// the sandbox (the expected values come from C++, not from the function), and a wrong function
// is caught by the same check.
TEST(Functions, PassTheirTestsInTheSandboxAndAWrongOneFails) {
  train::FunctionTaskGenerator a(5), b(5);
  std::vector<train::FunctionTask> tasks;
  std::set<int> families;
  std::size_t more = 0;
  for (auto set : {train::TemplateSet::train, train::TemplateSet::held_out})
    for (int i = 0; i < 12 * train::FunctionTaskGenerator::template_count(set); ++i) {
      auto t = a.next(set);
      EXPECT_EQ(to_mbpp_json(t, i), to_mbpp_json(b.next(set), i));  // deterministic
      families.insert(t.template_id);
      EXPECT_EQ(t.code.rfind("def " + t.name + "(", 0), 0u) << t.code;
      EXPECT_EQ(t.description.rfind("Write a function to ", 0), 0u);
      EXPECT_GE(t.tests.size(), 3u);
      EXPECT_EQ(std::set<std::string>(t.tests.begin(), t.tests.end()).size(), t.tests.size());  // no repeated test
      for (auto& test : t.tests) EXPECT_EQ(test.rfind("assert " + t.name + "(", 0), 0u) << test;
      // The tests part's asserts: the same function on other inputs, none repeating a task test.
      std::set<std::string> all(t.tests.begin(), t.tests.end());
      for (auto& test : t.more_tests) {
        EXPECT_EQ(test.rfind("assert " + t.name + "(", 0), 0u) << test;
        EXPECT_TRUE(all.insert(test).second) << "repeated: " << test;
      }
      more += t.more_tests.size();
      EXPECT_EQ(t.text.find("def "), std::string::npos) << t.text;  // prose, no code
      EXPECT_EQ(t.text.find("assert"), std::string::npos) << t.text;
      tasks.push_back(std::move(t));
    }
  EXPECT_EQ(families.size(), std::size_t(train::FunctionTaskGenerator::template_count(train::TemplateSet::train) +
                                         train::FunctionTaskGenerator::template_count(train::TemplateSet::held_out)));
  EXPECT_GT(more, 4 * tasks.size());  // nearly every task has five (a few families have few inputs)
  // verify_items runs the tests part's asserts too: a wrong expected value there is caught.
  auto with_bad = tasks[1];
  ASSERT_FALSE(with_bad.more_tests.empty());
  with_bad.more_tests.back() += " + 1";
  auto bad = train::verify_items({}, {with_bad});
  ASSERT_TRUE(bad) << bad.error().message;
  EXPECT_EQ((*bad)["functions"]["passed"], 0) << with_bad.more_tests.back();
  // Every fifth function returns None instead: those must fail.
  std::size_t broken = 0;
  for (std::size_t i = 0; i < tasks.size(); i += 5, ++broken)
    tasks[i].code = tasks[i].code.substr(0, tasks[i].code.find('\n') + 1) + "    return None\n";
  auto v = train::verify_items({}, tasks);
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ((*v)["functions"]["checked"].get<std::size_t>(), tasks.size());
  EXPECT_EQ((*v)["functions"]["passed"].get<std::size_t>(), tasks.size() - broken) << (*v)["failures"].dump(1);
  ASSERT_FALSE((*v)["failures"].empty());
  EXPECT_EQ((*v)["failures"][0]["kind"], "function");
  EXPECT_NE((*v)["failures"][0]["feedback"].get<std::string>().find("test"), std::string::npos);
}

// A written corpus's documents, decoded: its shards in order, split at <|bos|> ... <|eos|>.
std::vector<std::string> corpus_documents(const fs::path& dir, const Json& manifest) {
  std::vector<std::string> docs;
  auto f = llm::GgufFile::open((dir / "tokenizer.gguf").string());
  auto tok = f ? llm::Tokenizer::from_gguf(**f) : Result<llm::Tokenizer>(Error{"no tokenizer"});
  if (!tok) return docs;
  std::string all;
  for (auto& shard : manifest["shards"])
    if (auto bin = read_file(dir / shard.get<std::string>())) all += *bin;
  std::vector<llm::Token> doc;
  for (std::size_t i = 0; i + 1 < all.size(); i += 2) {
    llm::Token t = static_cast<uint8_t>(all[i]) | static_cast<uint8_t>(all[i + 1]) << 8;
    if (t == tok->bos()) doc.clear();
    else if (t == tok->eos()) docs.push_back(tok->decode(doc));
    else doc.push_back(t);
  }
  return docs;
}

// A held-out function task shares no assert with any training document: `tests` documents list
// other asserts of the same functions in any order, `func` documents show 1 to all of a task's.
TEST(Corpus, HeldOutFunctionTasksShareNoAssertWithTraining) {
  auto dir = temp_dir("held_asserts");
  train::CorpusOptions o;
  o.out_dir = dir.string();
  o.tokens = 200000;
  o.held_out = 100;
  o.vocab = 400;
  o.verify = 0;
  o.mix = {{"func", 2}, {"tests", 1}};
  auto m = train::write_corpus(o);
  ASSERT_TRUE(m) << m.error().message;
  std::set<std::string> trained;
  for (auto& d : corpus_documents(dir, *m)) {
    std::istringstream lines(d);
    for (std::string l; std::getline(lines, l);)
      if (l.starts_with("assert ")) trained.insert(l);
  }
  ASSERT_GT(trained.size(), 1000u);
  int tasks = 0;
  ASSERT_TRUE(for_each_json_line((dir / "heldout-functions.jsonl").string(), [&](int, const Json& j) -> VoidResult {
    ++tasks;
    for (const auto& a : j["test_list"]) EXPECT_FALSE(trained.count(a.get<std::string>())) << "trained on: " << a;
    return ok_status();
  }));
  EXPECT_EQ(tasks, 100) << "the set ran out of clean draws";
  fs::remove_all(dir);
}

// A mix of plain code and plain text: documents of both kinds from both generators, the sample
// verified in the sandbox, and held-out function sets `wand eval` reads as MBPP.
TEST(Corpus, MixesPlainCodeAndPlainText) {
  auto dir = temp_dir("mix");
  train::CorpusOptions o;
  o.out_dir = dir.string();
  o.tokens = 40000;
  o.held_out = 30;
  o.vocab = 320;
  o.verify = 20;
  o.shard_tokens = 15000;
  o.mix = {{"code", 0.5}, {"text", 0.5}};
  auto m = train::write_corpus(o);
  ASSERT_TRUE(m) << m.error().message;
  ASSERT_EQ((*m)["shards"].size(), 3u);  // 40,000 tokens in shards of >= 15,000
  EXPECT_FALSE(fs::exists(dir / "train.bin"));
  EXPECT_EQ((*m)["verified"]["problems"]["agreed"], 20);
  EXPECT_EQ((*m)["verified"]["functions"]["passed"], 20);
  EXPECT_EQ((*m)["heldout"]["functions"], 30);
  EXPECT_EQ((*m)["heldout"]["functions_templates"], 30);
  auto held = feedback::load_tasks((dir / "heldout-functions-templates.jsonl").string());
  ASSERT_TRUE(held) << held.error().message;
  ASSERT_EQ(held->size(), 30u);
  EXPECT_EQ((*held)[0].format, "mbpp");

  // Split the shards into documents and sort them by what they hold.
  int code = 0, text = 0, from_functions = 0, from_problems = 0;
  for (auto& d : corpus_documents(dir, *m)) {
    EXPECT_EQ(d.find("Question:"), std::string::npos) << d;  // no prompt formats in plain parts
    bool is_code = d.find("def ") != std::string::npos || d.find("answer = ") != std::string::npos;
    (is_code ? code : text)++;
    (d.find("def ") != std::string::npos || d.find("function") != std::string::npos || d.find("For example") != std::string::npos
         ? from_functions
         : from_problems)++;
  }
  EXPECT_EQ(code, (*m)["documents"]["code"].get<int>());
  EXPECT_EQ(text, (*m)["documents"]["text"].get<int>());
  EXPECT_GT(from_functions, 20);
  EXPECT_GT(from_problems, 20);
  fs::remove_all(dir);
}

// The tests part: each document is tests_prompt() (description, the function's name) followed by
// asserts of that function and nothing else, the prompt prompts/tests.wand.txt gives the tester.
TEST(Corpus, TestsPartIsDescriptionNameAndAssertsOnly) {
  auto dir = temp_dir("testspart");
  train::CorpusOptions o;
  o.out_dir = dir.string();
  o.tokens = 6000;
  o.held_out = 5;
  o.vocab = 300;
  o.verify = 10;
  o.mix = {{"tests", 1}};
  auto m = train::write_corpus(o);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ((*m)["prompt_formats"]["tests"], "Task: {description}\nTests for {name}:\n");
  EXPECT_EQ((*m)["verified"]["functions"]["passed"], 10);
  EXPECT_EQ((*m)["heldout"]["functions"], 5);  // the held-out function sets come with it
  int docs = 0;
  for (auto& d : corpus_documents(dir, *m)) {
    ++docs;
    ASSERT_EQ(d.rfind("Task: Write a function to ", 0), 0u) << d;
    auto head = d.find("\nTests for ");
    ASSERT_NE(head, std::string::npos) << d;
    auto colon = d.find(":\n", head);
    std::string name = d.substr(head + 11, colon - head - 11);
    std::istringstream lines(d.substr(colon + 2));
    int asserts = 0;
    for (std::string line; std::getline(lines, line); ++asserts) EXPECT_EQ(line.rfind("assert " + name + "(", 0), 0u) << d;
    EXPECT_GE(asserts, 1) << d;
    EXPECT_EQ(d.find("def "), std::string::npos) << d;
  }
  EXPECT_EQ(docs, (*m)["documents"]["tests"].get<int>());
  fs::remove_all(dir);
}

// --number-names: the pot, grammar and gsm8k documents read names for the question's numbers and
// their programs are over the names; the cot parts stay prose; GSM8K's programs are run again with
// their bindings; a problem whose named program does not give its answer is dropped.
TEST(Corpus, NumberNamesWriteProgramsOverTheNamesAndRunThem) {
  auto dir = temp_dir("numbers");
  std::ofstream(dir / "gsm8k.jsonl")
      << Json{{"question", "Ann has 48 pens and gives away half. How many are left?"},
              {"answer", "48/2 = <<48/2=24>>24 pens.\n#### 24"}}.dump() << "\n"
      << Json{{"question", "Bob has 5 cards and buys 1,200 more."}, {"answer", "<<5+1200=1205>>1205 cards\n#### 1,205"}}.dump()
      << "\n";
  train::CorpusOptions o;
  o.out_dir = (dir / "tok").string();  // a tokenizer from a plain corpus: training one runs thousands of programs
  o.tokens = 1000;
  o.held_out = 1;
  o.vocab = 300;
  o.verify = 0;
  ASSERT_TRUE(train::write_corpus(o));
  o.tokenizer = (dir / "tok/tokenizer.gguf").string();
  o.out_dir = (dir / "c").string();
  o.tokens = 20000;
  o.held_out = 5;
  o.verify = 10;
  o.number_names = true;
  o.gsm8k = (dir / "gsm8k.jsonl").string();
  o.mix = {{"pot", 1}, {"grammar", 1}, {"gsm8k", 1}, {"cot", 1}};
  auto m = train::write_corpus(o);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ((*m)["number_names"]["prompt_format"], "pot-numbers");
  EXPECT_GE((*m)["number_names"]["generated_checked"].get<int>(), 100);
  EXPECT_EQ((*m)["number_names"]["generated_dropped"], 0);
  EXPECT_EQ((*m)["gsm8k"]["named"], 2);
  int named = 0, prose = 0, gsm8k = 0;
  for (auto& d : corpus_documents(fs::path(o.out_dir), *m)) {
    auto program = d.find("\nProgram:\n");
    if (program == std::string::npos) {  // cot: the question as written, a rationale
      ++prose;
      EXPECT_NE(d.find("\nAnswer: "), std::string::npos) << d;
      continue;
    }
    ++named;
    EXPECT_NE(d.find("n0"), std::string::npos) << d;
    std::string body = d.substr(program);
    EXPECT_NE(body.find("answer = "), std::string::npos) << d;
    gsm8k += d == "Question: Ann has n0 pens and gives away half. How many are left?\nProgram:\npens = n0/2\nanswer = pens\n" ||
             d == "Question: Bob has n0 cards and buys n1 more.\nProgram:\ncards = n0+n1\nanswer = cards\n";
  }
  EXPECT_EQ(named, (*m)["documents"]["pot"].get<int>() + (*m)["documents"]["grammar"].get<int>() +
                       (*m)["documents"]["gsm8k"].get<int>());
  EXPECT_EQ(prose, (*m)["documents"]["cot"].get<int>());
  EXPECT_EQ(gsm8k, (*m)["documents"]["gsm8k"].get<int>());

  // --shuffle-names: each document's names in an order of its own, the program renamed alike
  // (Bob's 5 and 1,200 as n0/n1 either way round); needs --number-names.
  o.out_dir = (dir / "s").string();
  o.shuffle_names = true;
  m = train::write_corpus(o);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ((*m)["number_names"]["shuffled"], true);
  int out_of_order = 0, bob = 0;
  for (auto& d : corpus_documents(fs::path(o.out_dir), *m)) {
    std::smatch first;  // the question's first name
    if (d.find("\nProgram:\n") == std::string::npos || !std::regex_search(d, first, std::regex(R"((^|[^\w$])\$?n(\d+))")))
      continue;
    out_of_order += first[2] != "0";
    bob += d == "Question: Bob has n0 cards and buys n1 more.\nProgram:\ncards = n0+n1\nanswer = cards\n" ||
           d == "Question: Bob has n1 cards and buys n0 more.\nProgram:\ncards = n1+n0\nanswer = cards\n";
  }
  EXPECT_GT(out_of_order, 10);
  EXPECT_GT(bob, 0);
  o.number_names = false;
  auto refused = train::write_corpus(o);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("--number-names"), std::string::npos);

  // The sandbox decides: a program that does not give the label is dropped, named or not.
  train::Problem good{"Tom has 3 bags of 4 apples.", "answer = 3 * 4\n", "", "12"};
  train::Problem wrong{"Tom has 3 bags of 4 apples.", "answer = 3 + 4\n", "", "12"};
  auto kept = train::name_numbers({good, wrong});
  ASSERT_TRUE(kept) << kept.error().message;
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ((*kept)[0].document(), "Question: Tom has n0 bags of n1 apples.\nProgram:\nanswer = n0 * n1\n");

  // --delexicalize: the nouns are placeholders, a repeated value has a name per mention (the
  // program's k-th literal of it is its k-th mention), the program's variables are inlined or
  // v0, ...; the manifest names the format pot-delex.
  train::Problem twice{"Tom has 4 bags. Each bag has 4 apples. He eats 3 apples.",
                       "bags = 4\napples = bags * 4\nanswer = apples - 3\n", "", "13"};
  auto delex = train::name_numbers({twice}, reason::Reading::delexicalized);
  ASSERT_TRUE(delex) << delex.error().message;
  ASSERT_EQ(delex->size(), 1u);
  EXPECT_EQ((*delex)[0].document(), "Question: w0 has n0 w1. Each w1 has n1 w2. He eats n2 w2.\nProgram:\n"
                                    "v0 = n0 * n1\nanswer = v0 - n2\n");
  o.number_names = true;
  o.shuffle_names = false;
  o.delexicalize = true;
  o.out_dir = (dir / "d").string();
  m = train::write_corpus(o);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ((*m)["number_names"]["prompt_format"], "pot-delex");
  EXPECT_EQ((*m)["number_names"]["generated_dropped"], 0);
  int placeholders = 0;
  for (auto& d : corpus_documents(fs::path(o.out_dir), *m))
    if (d.find("\nProgram:\n") != std::string::npos) placeholders += d.find(" w0") != std::string::npos;
  EXPECT_GT(placeholders, 10);
  o.number_names = false;
  auto needs_names = train::check_corpus_options(o);
  ASSERT_FALSE(needs_names);
  EXPECT_NE(needs_names.error().message.find("--delexicalize"), std::string::npos) << needs_names.error().message;
  o.delexicalize = false;
  o.number_names = true;

  // --review writes the same documents program first (a Coder-Reviewer reviewer's corpus).
  o.review = true;
  o.out_dir = (dir / "r").string();
  m = train::write_corpus(o);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ((*m)["review"], true);
  int reviewed = 0, asked = 0, cot = 0;
  for (auto& d : corpus_documents(fs::path(o.out_dir), *m)) {
    asked += d.starts_with("Question: ") && d.find("\nProgram:\n") != std::string::npos;
    cot += d.starts_with("Question: ") && d.find("\nAnswer: ") != std::string::npos;
    if (d.starts_with("Program:\n")) {
      auto q = d.find("\nQuestion: ");
      ASSERT_NE(q, std::string::npos) << d;
      EXPECT_NE(d.find("answer = ", 0), std::string::npos) << d;
      EXPECT_LT(d.find("answer = "), q) << d;  // the program comes before the question
      ++reviewed;
    }
  }
  EXPECT_GT(reviewed, 10);
  EXPECT_EQ(asked, 0);  // every pot document was turned around ...
  EXPECT_GT(cot, 0);    // ... and the mix's cot documents were written as they are
  o.review = false;

  // --number-names with no part it applies to is refused, not ignored.
  o.mix = {{"cot", 1}};
  auto c = train::check_corpus_options(o);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("--number-names"), std::string::npos) << c.error().message;
  o.number_names = false;
  o.review = true;  // and so is --review
  c = train::check_corpus_options(o);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("--review"), std::string::npos) << c.error().message;
  fs::remove_all(dir);
}

// A small word-problem corpus in DIR/corpus for the trainer (verification has its own tests).
train::CorpusOptions small_corpus(const fs::path& dir, long long tokens) {
  train::CorpusOptions co;
  co.out_dir = (dir / "corpus").string();
  co.tokens = tokens;
  co.held_out = 10;
  co.vocab = 300;
  co.verify = 0;
  return co;
}

// The manifest's prompt formats are the prompts themselves (real newlines, escaped once by the
// JSON writer), and rewriting a folder leaves nothing of an earlier mix behind.
TEST(Corpus, ManifestFormatsAreThePromptsAndRewritesLeaveNoStaleFiles) {
  auto dir = temp_dir("rewrite");
  auto co = small_corpus(dir, 3000);
  co.mix = {{"func", 1}};
  auto first = train::write_corpus(co);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ((*first)["prompt_formats"]["pot"], reason::pot_prompt("{question}"));
  EXPECT_EQ((*first)["prompt_formats"]["cot"], reason::cot_prompt("{question}"));
  EXPECT_EQ((*first)["prompt_formats"]["func"], "Task: {description}\nTests:\n{tests}Code:\n");
  auto text = read_file(fs::path(co.out_dir) / "manifest.json");
  ASSERT_TRUE(text);
  EXPECT_NE(text->find(R"("pot": "Question: {question}\nProgram:\n")"), std::string::npos) << *text;
  EXPECT_EQ(text->find(R"(\\n)"), std::string::npos) << "no literal backslash-n: " << *text;
  ASSERT_TRUE(fs::exists(fs::path(co.out_dir) / "heldout-functions.jsonl"));
  ASSERT_TRUE(fs::exists(fs::path(co.out_dir) / "heldout-functions-templates.jsonl"));

  co.mix = {{"pot", 1}};
  co.tokenizer = (fs::path(co.out_dir) / "tokenizer.gguf").string();
  fs::copy_file(co.tokenizer, dir / "tok.gguf");
  co.tokenizer = (dir / "tok.gguf").string();
  auto second = train::write_corpus(co);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_FALSE((*second)["heldout"].contains("functions"));
  std::set<std::string> files;
  for (auto& e : fs::directory_iterator(co.out_dir)) files.insert(e.path().filename().string());
  EXPECT_EQ(files, (std::set<std::string>{".wand-corpus", "heldout-numbers.jsonl", "heldout-templates.jsonl", "manifest.json",
                                          "tokenizer.gguf", "train.bin"}));
  fs::remove_all(dir);
}

// A run replaces an earlier corpus's shards, held-out sets, tokenizer and manifest. Files of those
// names that no corpus run wrote are refused, before any work, never removed (they once were:
// `heldout-mydata.jsonl` and `train-abc.bin` of a folder without a manifest). Other files stay.
TEST(Corpus, AFolderOfSomeoneElsesFilesIsRefusedNotEmptied) {
  auto dir = temp_dir("foreign");
  auto co = small_corpus(dir, 2000);
  fs::create_directories(co.out_dir);
  for (std::string name : {"heldout-mydata.jsonl", "train-abc.bin", "notes.txt"})
    std::ofstream(fs::path(co.out_dir) / name) << "mine\n";
  auto r = train::write_corpus(co);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "--out " + co.out_dir + ": holds heldout-mydata.jsonl and 1 more such file, which no earlier "
                               "wand corpus run wrote and this run would replace; give a new or empty folder");
  EXPECT_FALSE(train::check_corpus_options(co));
  for (std::string name : {"heldout-mydata.jsonl", "train-abc.bin", "notes.txt"})
    EXPECT_TRUE(fs::exists(fs::path(co.out_dir) / name)) << name;
  EXPECT_FALSE(fs::exists(fs::path(co.out_dir) / "tokenizer.gguf"));
  // Without them the run writes beside notes.txt, and a run stopped before its manifest (its mark
  // written, a shard left) may be run again into the folder.
  fs::remove(fs::path(co.out_dir) / "heldout-mydata.jsonl");
  fs::remove(fs::path(co.out_dir) / "train-abc.bin");
  ASSERT_TRUE(train::write_corpus(co));
  EXPECT_TRUE(fs::exists(fs::path(co.out_dir) / "notes.txt"));
  fs::remove(fs::path(co.out_dir) / "manifest.json");
  std::ofstream(fs::path(co.out_dir) / "train-0001.bin") << "half";
  auto again = train::write_corpus(co);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_FALSE(fs::exists(fs::path(co.out_dir) / "train-0001.bin"));
  fs::remove_all(dir);
}

TEST(Corpus, BadOptionsAreRefusedBeforeAnyWork) {
  auto dir = temp_dir("badopts");
  auto co = small_corpus(dir, 3000);
  co.vocab = 10;  // below the byte alphabet: was silently raised to 259
  auto r = train::write_corpus(co);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "--vocab must be from 259 (256 bytes and 3 control tokens) to 65535, got 10");
  EXPECT_FALSE(fs::exists(co.out_dir)) << "nothing written";
  co.vocab = 300;
  co.tokenizer = (dir / "missing.gguf").string();
  r = train::write_corpus(co);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("--tokenizer " + co.tokenizer + ": cannot open"), std::string::npos)
      << r.error().message;
  co.tokenizer.clear();
  co.mix = {{"pot", std::numeric_limits<double>::infinity()}};
  EXPECT_FALSE(train::check_corpus_options(co));
  co.mix = {};
  EXPECT_FALSE(train::check_corpus_options(co));
  fs::remove_all(dir);
}

// wand-train checks its numbers with wand's rules and message form: exit 2 before any work.
TEST(Trainer, BadNumbersAreRefused) {
  if (!fs::exists(WAND_TRAIN_BINARY)) GTEST_SKIP() << "wand-train was not built (libtorch-dev missing)";
  struct Case {
    std::string option, value, says;
  };
  const std::vector<Case> cases = {
      {"--lr", "nan", "must be a positive number up to 10"},      {"--lr", "inf", "must be a positive number up to 10"},
      {"--lr", "-1", "must be a positive number up to 10"},       {"--lr", "1e400", "must be a positive number up to 10"},
      {"--steps", "0", "must be an integer from 1 to"},           {"--steps", "1e308", "must be an integer from 1 to"},
      {"--batch", "-1", "must be an integer from 1 to 65536"},    {"--threads", "100000", "must be an integer from 0 to"},
      {"--min-lr-ratio", "2", "must be a number from 0 to 1"},    {"--clip", "nan", "must be a positive number"},
      {"--seed", "-1", "must be an integer from 0 to"},           {"--dim", "nan", "must be an integer from 2 to 65536"},
      {"--wd", "-0.1", "must be a number from 0 to 10"},          {"--sample-tokens", "0", "must be an integer from 1"},
  };
  for (const auto& c : cases) {
    std::string err = (fs::temp_directory_path() / ("wand_train_err_" + std::to_string(getpid()))).string();
    std::string cmd = std::string(WAND_TRAIN_BINARY) + " --data /nonexistent --out /nonexistent " + c.option + " " +
                      c.value + " 2> " + err;
    int st = std::system(cmd.c_str());
    EXPECT_EQ(WEXITSTATUS(st), 2) << cmd;
    auto msg = read_file(err);
    ASSERT_TRUE(msg);
    EXPECT_NE(msg->find("wand-train: " + c.option + ": " + c.says), std::string::npos) << *msg;
    EXPECT_NE(msg->find(", got '" + c.value + "'"), std::string::npos) << *msg;
    fs::remove(err);
  }
  // A cool-down corpus with no cool-down steps would be read by nothing: refused, not ignored.
  std::string err = (fs::temp_directory_path() / ("wand_train_err_" + std::to_string(getpid()))).string();
  int st = std::system((std::string(WAND_TRAIN_BINARY) + " --data /nonexistent --out /nonexistent --cooldown-data /c 2> " + err).c_str());
  EXPECT_EQ(WEXITSTATUS(st), 2);
  auto msg = read_file(err);
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("wand-train: --cooldown-data /c needs --cooldown-steps N"), std::string::npos) << *msg;
  fs::remove(err);
}

// --objective final (an outcome verifier's training: wand export --format verifier --corpus): the
// loss is the documents' last tokens' alone, the held-out loss too. Documents whose last token is
// fixed by their first word are learnt to a low loss; a manifest without an eos id, an unknown
// objective and --dpo with it are refused by name.
TEST(Trainer, FinalObjectiveTrainsTheDocumentsLastTokenOnly) {
  if (!fs::exists(WAND_TRAIN_BINARY)) GTEST_SKIP() << "wand-train was not built (libtorch-dev missing)";
  auto dir = temp_dir("final_objective");
  auto co = small_corpus(dir, 3000);
  ASSERT_TRUE(train::write_corpus(co));
  std::vector<std::string> docs;
  std::mt19937 rng(1);
  for (int i = 0; i < 3000; ++i) {
    bool cat = rng() % 2;
    docs.push_back(std::string(cat ? "cat" : "dog") + " ran " + std::to_string(rng() % 1000) + " miles. Right: " + (cat ? "1" : "0"));
  }
  const std::string data = (dir / "v").string();
  auto m = train::write_document_corpus(docs, co.out_dir + "/tokenizer.gguf", data, {{"format", "verifier"}});
  ASSERT_TRUE(m) << m.error().message;
  ASSERT_TRUE(m->contains("eos"));
  const std::string base = std::string(WAND_TRAIN_BINARY) + " --data " + data + " --out " + (dir / "run").string();
  std::string cmd = base + " --objective final --steps 120 --batch 8 --seq 64 --dim 32 --layers 1 --heads 2 --kv-heads 1"
                           " --ffn 64 --warmup 5 --lr 5e-3 --log-every 10 --eval-every 40 --threads 2 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<double> losses, held;
  ASSERT_TRUE(for_each_json_line((dir / "run/log.jsonl").string(), [&](int, const Json& j) -> VoidResult {
    losses.push_back(j["loss"].get<double>());
    if (j.contains("eval_loss")) held.push_back(j["eval_loss"].get<double>());
    return ok_status();
  }));
  ASSERT_GE(held.size(), 2u);
  // A label is 1 of 300 tokens at first (ln 300 = 5.7), then a coin the first word decides; a
  // window that starts after its document's first word leaves a coin toss (ln 2) at most.
  EXPECT_GT(losses.front(), 3.0);
  EXPECT_LT(held.back(), 0.4) << "first " << held.front() << " last " << held.back();

  auto refused = [&](const std::string& options, const std::string& says) {
    std::string err = (dir / "err.txt").string();
    int st = std::system((base + " " + options + " 2> " + err).c_str());
    ASSERT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 2) << options;
    auto msg = read_file(err);
    ASSERT_TRUE(msg);
    EXPECT_NE(msg->find(says), std::string::npos) << *msg;
  };
  refused("--objective last", "wand-train: --objective: 'last' (expected lm or final)");
  refused("--objective final --dpo --init x.wckpt", "--objective final is for language-model training, not --dpo");
  auto j = Json::parse(*read_file(fs::path(data) / "manifest.json"));
  j.erase("eos");
  std::ofstream(fs::path(data) / "manifest.json") << j.dump();
  refused("--objective final --out " + (dir / "run2").string(), "no \"eos\" entry, which --objective final needs");
  fs::remove_all(dir);
}

// A corpus folder whose manifest is not its tokens' (a `wand corpus` interrupted over an older
// one wrote new tokens under the old vocabulary) is refused naming the id, not an abort in torch;
// and a rewrite removes the old manifest before it writes tokens, so an interruption leaves none.
TEST(Trainer, TokenIdsOutsideTheManifestsVocabularyAreNamed) {
  if (!fs::exists(WAND_TRAIN_BINARY)) GTEST_SKIP() << "wand-train was not built (libtorch-dev missing)";
  auto dir = temp_dir("vocab_mismatch");
  auto co = small_corpus(dir, 20000);
  ASSERT_TRUE(train::write_corpus(co));
  auto manifest = read_file(fs::path(co.out_dir) / "manifest.json");
  ASSERT_TRUE(manifest);
  auto j = Json::parse(*manifest);
  j["vocab"] = 260;  // below the ids the tokens use
  std::ofstream(fs::path(co.out_dir) / "manifest.json") << j.dump();
  std::string err = (dir / "err.txt").string();
  std::string cmd = std::string(WAND_TRAIN_BINARY) + " --data " + co.out_dir + " --out " + (dir / "run").string() +
                    " --steps 2 --batch 2 --seq 32 --dim 16 --layers 1 --heads 2 --kv-heads 1 --ffn 32 --threads 1 2> " + err;
  int st = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(st)) << "killed by a signal: " << cmd;
  EXPECT_NE(WEXITSTATUS(st), 0);
  auto msg = read_file(err);
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find(co.out_dir + ": token id "), std::string::npos) << *msg;
  EXPECT_NE(msg->find("is outside the vocabulary of 260 (manifest.json is not these tokens'"), std::string::npos) << *msg;

  // A shard the manifest lists is missing (a partial copy), or a token file is cut mid-token.
  auto refused = [&](const std::string& says) {
    int rc = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(rc)) << "killed by a signal: " << cmd;
    EXPECT_NE(WEXITSTATUS(rc), 0);
    auto text = read_file(err);
    ASSERT_TRUE(text);
    EXPECT_NE(text->find(says), std::string::npos) << *text;
  };
  j["vocab"] = 65535;
  j["shards"] = {"train.bin", "train-00001.bin"};
  std::ofstream(fs::path(co.out_dir) / "manifest.json") << j.dump();
  refused("manifest.json lists train-00001.bin, which is not there");
  j["shards"] = {"train.bin"};
  std::ofstream(fs::path(co.out_dir) / "manifest.json") << j.dump();
  std::ofstream(fs::path(co.out_dir) / "train.bin", std::ios::app | std::ios::binary) << 'x';
  refused("not a whole number of 2-byte tokens");
  fs::remove_all(dir);
}

// Resuming: --sample checked before any step; a state of other sizes refused by name (it loaded
// and failed in torch); a finished run left as it is; Ctrl-C saves the state, and the resumed run
// logs each step once and draws its curves from the first step.
TEST(Trainer, ResumeIsSafeAndCtrlCSavesTheState) {
  if (!fs::exists(WAND_TRAIN_BINARY)) GTEST_SKIP() << "wand-train was not built (libtorch-dev missing)";
  auto dir = temp_dir("resume");
  auto co = small_corpus(dir, 40000);
  ASSERT_TRUE(train::write_corpus(co));
  const std::string out = (dir / "run").string(), err = (dir / "err.txt").string();
  auto train = [&](const std::string& extra) {
    std::string cmd = std::string(WAND_TRAIN_BINARY) + " --data " + co.out_dir + " --out " + out +
                      " --batch 4 --seq 32 --layers 1 --heads 2 --kv-heads 1 --ffn 32 --threads 1 --log-every 5 " + extra +
                      " 2> " + err;
    int st = std::system(cmd.c_str());
    auto text = read_file(err);
    return std::pair{WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), text ? *text : std::string()};
  };
  auto [rc1, e1] = train("--dim 16 --steps 5 --sample '1 abc'");
  EXPECT_EQ(rc1, 2);
  EXPECT_NE(e1.find("--sample: 'abc' is not a token id"), std::string::npos) << e1;
  EXPECT_FALSE(fs::exists(dir / "run/checkpoint.wckpt")) << "refused before training";

  auto [rc2, e2] = train("--dim 16 --steps 20 --save-every 10 --keep-checkpoints");
  ASSERT_EQ(rc2, 0) << e2;
  // --keep-checkpoints: each save's weights stay as checkpoint-STEP.wckpt; the last is the final one.
  auto step10 = read_file(dir / "run/checkpoint-10.wckpt"), step20 = read_file(dir / "run/checkpoint-20.wckpt"),
       last = read_file(dir / "run/checkpoint.wckpt");
  ASSERT_TRUE(step10 && step20 && last);
  EXPECT_EQ(*step20, *last);
  EXPECT_NE(*step10, *last);
  auto curves = read_file(dir / "run/curves.html");
  ASSERT_TRUE(curves);
  auto [rc3, e3] = train("--dim 16 --steps 20 --save-every 10 --resume");
  EXPECT_EQ(rc3, 0) << e3;
  EXPECT_NE(e3.find("is finished (20 of 20 steps); nothing to do"), std::string::npos) << e3;
  auto after = read_file(dir / "run/curves.html");
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, *curves) << "a finished run's curves stay";
  auto [rc4, e4] = train("--dim 32 --steps 40 --resume");
  EXPECT_EQ(rc4, 2) << e4;
  EXPECT_NE(e4.find("is a model of other sizes"), std::string::npos) << e4;
  // A damaged state is named, not read as step 0 (or as the end) nor blamed on the wrong file.
  for (std::string bad : {"garbage", "-5", "12 34"}) {
    std::ofstream(dir / "run/state.step") << bad;
    auto [rc, e] = train("--dim 16 --steps 40 --resume");
    EXPECT_EQ(rc, 2) << bad << "\n" << e;
    EXPECT_NE(e.find("run/state.step: not a step number"), std::string::npos) << bad << "\n" << e;
  }
  std::ofstream(dir / "run/state.step") << 20;
  fs::resize_file(dir / "run/optimizer.pt", 100);
  auto [rc6, e6] = train("--dim 16 --steps 40 --resume");
  EXPECT_EQ(rc6, 2) << e6;
  EXPECT_NE(e6.find("run/optimizer.pt cannot be loaded"), std::string::npos) << e6;

  // Ctrl-C: a long run stopped by SIGINT saves its state; --resume ends it with one log line a step.
  fs::remove_all(dir / "run");
  std::string cmd = std::string(WAND_TRAIN_BINARY) + " --data " + co.out_dir + " --out " + out +
                    " --batch 4 --seq 32 --dim 16 --layers 1 --heads 2 --kv-heads 1 --ffn 32 --threads 1 --log-every 5"
                    " --save-every 100000 --steps 100000";
  pid_t pid = fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    dup2(null, 2);
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), (char*)nullptr);
    _exit(127);
  }
  for (int i = 0; i < 300 && !fs::exists(dir / "run/log.jsonl"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  kill(pid, SIGINT);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFEXITED(st)) << "killed by signal " << WTERMSIG(st);
  EXPECT_EQ(WEXITSTATUS(st), 130);
  int saved = 0;
  std::ifstream(dir / "run/state.step") >> saved;
  ASSERT_GT(saved, 0);
  auto [rc5, e5] = train("--dim 16 --save-every 100000 --steps " + std::to_string(saved + 20) + " --resume");
  ASSERT_EQ(rc5, 0) << e5;
  EXPECT_NE(e5.find("resumed at step " + std::to_string(saved)), std::string::npos) << e5;
  std::set<int> steps;
  int lines = 0;
  ASSERT_TRUE(for_each_json_line((dir / "run/log.jsonl").string(), [&](int, const Json& j) -> VoidResult {
    steps.insert(j["step"].get<int>());
    ++lines;
    return ok_status();
  }));
  EXPECT_EQ(static_cast<int>(steps.size()), lines) << "a step logged twice";
  EXPECT_EQ(*steps.begin(), 0) << "the log keeps the steps before the interruption";
  EXPECT_EQ(*steps.rbegin(), saved + 19);
  fs::remove_all(dir);
}

// wand-train on CPU: the loss goes down, and the exported GGUF's greedy continuation in the
// engine equals the trainer's own.
TEST(Trainer, LossFallsAndTheExportGeneratesWhatTheTrainerDoes) {
  if (!fs::exists(WAND_TRAIN_BINARY)) GTEST_SKIP() << "wand-train was not built (libtorch-dev missing)";
  auto dir = temp_dir("trainer");
  auto co = small_corpus(dir, 150000);
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

// --dtype bf16 (autocast: bfloat16 matmuls, fp32 weights and optimizer): the loss falls as in
// fp32 and the log says which precision ran; an unknown dtype is refused, naming the value.
TEST(Trainer, Bf16MixedPrecisionTrains) {
  if (!fs::exists(WAND_TRAIN_BINARY)) GTEST_SKIP() << "wand-train was not built (libtorch-dev missing)";
  auto dir = temp_dir("bf16");
  auto co = small_corpus(dir, 100000);
  co.shard_tokens = 40000;  // the trainer reads the shards in order
  ASSERT_TRUE(train::write_corpus(co));
  std::string base = std::string(WAND_TRAIN_BINARY) + " --data " + co.out_dir + " --out " + (dir / "run").string() +
                     " --steps 50 --batch 8 --seq 64 --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128"
                     " --warmup 10 --lr 3e-3 --log-every 10 --eval-every 0 --threads 2";
  ASSERT_EQ(std::system((base + " --dtype bf16 2>/dev/null").c_str()), 0);
  std::vector<double> losses;
  ASSERT_TRUE(for_each_json_line((dir / "run/log.jsonl").string(), [&](int, const Json& j) -> VoidResult {
    losses.push_back(j["loss"].get<double>());
    EXPECT_EQ(j["dtype"], "bf16");
    return ok_status();
  }));
  ASSERT_GE(losses.size(), 5u);
  EXPECT_LT(losses.back(), losses.front() * 0.7) << "first " << losses.front() << " last " << losses.back();
  EXPECT_TRUE(fs::exists(dir / "run/checkpoint.wckpt"));
  std::string err = (dir / "err.txt").string();
  EXPECT_NE(std::system((base + " --dtype fp8 2>" + err).c_str()), 0);
  auto msg = read_file(err);
  ASSERT_TRUE(msg);
  EXPECT_NE(msg->find("fp8"), std::string::npos) << *msg;
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
                                   auto s = reason::solve(**model, sb->get(), j["question"], {});
                                   if (!s) return s.error();
                                   ++n;
                                   correct += s->answer && feedback::answers_match(*s->answer, j["answer"].get<std::string>());
                                   return ok_status();
                                 }));
  EXPECT_EQ(n, 20);
  EXPECT_GE(correct, 18);
}

}  // namespace
