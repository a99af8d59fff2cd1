// src/reason: prompt templates, program extraction (a corpus of raw model outputs), the vote,
// and the solve pipeline (scripted backends for the order of steps; the real sandbox and the
// shipped model for the whole path).
#include <array>
#include <atomic>
#include <cmath>
#include <functional>
#include <deque>
#include <filesystem>
#include <mutex>

#include "llm/grammar.h"
#include "python_syntax.h"
#include "reason/extract.h"
#include "reason/prompt.h"
#include "reason/reason.h"
#include "reason/verifier.h"
#include "reason/vote.h"
#include "store/store.h"
#include "scripted_backend.h"
#include "support.h"

namespace wand::test {
namespace {

using reason::Ballot;

reason::SolveConfig config(std::string method, int k, std::string family = "chat") {
  reason::SolveConfig c;
  c.method = std::move(method);
  c.k = k;
  c.family = std::move(family);
  c.temperature = k > 1 ? 0.7f : 0.f;
  return c;
}

// --- prompt templates

TEST(Prompt, EveryBuiltInTemplateParses) {
  for (std::string method : {"cot", "pot", "pal", "repair"})
    for (std::string family : {"wand", "completion", "chat"}) {
      auto t = reason::builtin_template(method, family);
      ASSERT_TRUE(t) << method << "." << family << ": " << t.error().message;
      EXPECT_EQ(t->hash.size(), 64u);
      EXPECT_EQ(t->chat(), family == "chat") << method << "." << family;
    }
}

// wand's own models keep the format they were trained on (train/dataset.cpp writes it).
TEST(Prompt, WandFamilyIsTheTrainedFormat) {
  auto pot = reason::builtin_template("pot", "wand"), cot = reason::builtin_template("cot", "wand");
  ASSERT_TRUE(pot && cot);
  EXPECT_EQ(reason::render(*pot, {{"question", "Q?"}}).prompt, reason::pot_prompt("Q?"));
  EXPECT_EQ(reason::render(*cot, {{"question", "Q?"}}).prompt, reason::cot_prompt("Q?"));
  EXPECT_EQ(pot->stop, std::vector<std::string>{"\nQuestion:"});
}

// A reviewer's document (Coder-Reviewer) is a pot document turned around: one newline between the
// program and the question however the program ends; other documents are not pot documents.
TEST(Prompt, ReviewDocumentPutsTheProgramFirst) {
  EXPECT_EQ(reason::review_document(reason::pot_prompt("w0 had n0 w1.") + "answer = n0\n"),
            "Program:\nanswer = n0\nQuestion: w0 had n0 w1.");
  EXPECT_EQ(reason::review_prompt("v0 = n0 * n1\nanswer = v0 - n2"), "Program:\nv0 = n0 * n1\nanswer = v0 - n2\nQuestion: ");
  EXPECT_FALSE(reason::review_document(reason::cot_prompt("w0 had n0 w1.") + "The answer is 3."));
  EXPECT_FALSE(reason::review_document("Task: add two numbers\nTests:\n"));
}

TEST(Prompt, FewShotTemplatesHoldEightExemplars) {
  for (std::string method : {"cot", "pot", "pal"}) {
    auto chat = reason::builtin_template(method, "chat");
    ASSERT_TRUE(chat);
    ASSERT_EQ(chat->messages.size(), 18u) << method;  // system, 8 x (user, assistant), the question
    EXPECT_EQ(chat->messages.front().role, "system");
    auto r = reason::render(*chat, {{"question", "How many?"}});
    EXPECT_EQ(r.messages.back().content, "How many?");
    auto completion = reason::builtin_template(method, "completion");
    ASSERT_TRUE(completion);
    std::string p = completion->prompt;
    int questions = 0;
    for (std::size_t at = p.find("Question: "); at != std::string::npos; at = p.find("Question: ", at + 1)) ++questions;
    EXPECT_EQ(questions, 9) << method;
    EXPECT_TRUE(p.ends_with(method == "cot" ? "Answer:\n" : "Program:\n")) << p.substr(p.size() - 40);
  }
}

TEST(Prompt, OwnTemplateRendersPlaceholdersAndKeepsProgramBraces) {
  auto t = reason::parse_template(
      "# mine\n@@ system\nUse Python.\n@@ user\nd = {'a': 1}; f\"{x}\"\n@@ assistant\n```python\nanswer = 1\n```\n"
      "@@ user\nQ: {{question}}\n@@ stop\n\\n\\nQ:\n",
      "mine.txt");
  ASSERT_TRUE(t) << t.error().message;
  auto r = reason::render(*t, {{"question", "What is {{question}}?"}});
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[1].content, "d = {'a': 1}; f\"{x}\"");
  EXPECT_EQ(r.messages[3].content, "Q: What is {{question}}?");  // a value is inserted as it is
  EXPECT_EQ(t->stop, std::vector<std::string>{"\n\nQ:"});
  auto end = reason::parse_template("@@ prompt\nQ: {{question}}\nA: {{end}}\n", "end.txt");
  ASSERT_TRUE(end);
  EXPECT_EQ(end->prompt, "Q: {{question}}\nA: ");
}

TEST(Prompt, MalformedTemplatesNameTheFileAndLine) {
  struct Case {
    std::string text, says;
  };
  for (auto& c : std::vector<Case>{
           {"@@ prompt\nQ: {{question}}\n@@ answer\nx\n", "bad.txt line 3: unknown section '@@ answer'"},
           {"@@ prompt\nQ: {{quesiton}}\n", "bad.txt line 2: unknown placeholder '{{quesiton}}'"},
           {"@@ prompt\nQ: nothing\n", "bad.txt: the template never uses '{{question}}'"},
           {"hello\n@@ prompt\n{{question}}\n", "bad.txt line 1: text before the first section"},
           {"@@ user\n{{question}}\n@@ assistant\nok\n", "bad.txt: the last turn must be '@@ user'"},
           {"@@ prompt\n{{question}}\n@@ user\nx\n", "has both '@@ prompt' and chat turns"},
           {"@@ user\n{{question}} {{end}}\n", "bad.txt line 2: '{{end}}' belongs in a '@@ prompt' section"},
           {"@@ prompt\nA: {{end}}\n{{question}}\n", "bad.txt line 3: text after '{{end}}'"},
           {"@@ user\n{{question}}\n@@ system\nx\n", "bad.txt line 3: '@@ system' must be the first turn"},
           {"@@ user\n\n@@ user\n{{question}}\n", "bad.txt line 1: the 'user' turn is empty"},
           {"# only a comment\n", "bad.txt: no '@@ prompt' section and no chat turns"},
       }) {
    auto t = reason::parse_template(c.text, "bad.txt");
    ASSERT_FALSE(t) << c.text;
    EXPECT_NE(t.error().message.find(c.says), std::string::npos) << t.error().message;
  }
  auto missing = reason::load_template("/nonexistent/prompt.txt");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/nonexistent/prompt.txt"), std::string::npos);
}

// --- extraction: rules on their own

TEST(Extract, ChoosesTheBlockTheMethodReads) {
  auto e = reason::extract_program("```python\nx = 1\n```\n```python\nanswer = x + 1\n```", "pot");
  EXPECT_EQ(e.program, "answer = x + 1\n");
  EXPECT_EQ(e.source, "fence");
  e = reason::extract_program("```python\nprint(solution())\n```\n```\ndef solution():\n    return 1\n```", "pal");
  EXPECT_EQ(e.program, "def solution():\n    return 1\n");
  e = reason::extract_program("x = 1\r\n\tanswer = 2\r\n", "pot");
  EXPECT_EQ(e.program, "x = 1\n    answer = 2\n");  // the tab becomes four spaces; CRs go
  EXPECT_EQ(reason::extract_program("No code here, sorry.", "pot").source, "");
}

// Lines of hundreds of thousands of characters (a model repeating itself until max_tokens) are
// read without recursion that grows with the line (std::regex would overflow the stack).
TEST(Extract, HugeLinesDoNotCrash) {
  auto e = reason::extract_program("x = " + std::string(300000, '1') + "\nanswer = x\n", "pot");
  EXPECT_EQ(e.source, "bare");
  EXPECT_EQ(e.program.size(), 300000u + 4 + 1 + 11);
  e = reason::extract_program("Prose " + std::string(300000, 'a') + ".\n<code " + std::string(300000, 'b'), "pot");
  EXPECT_EQ(e.source, "");
  e = reason::extract_program("<CODE class=x>\nanswer = (" + std::string(300000, '(') + "\n</Code>", "pal");
  EXPECT_EQ(e.source, "code_tag");
  EXPECT_TRUE(e.program.starts_with("answer = (((")) << e.program.substr(0, 20);
}

// --- extraction: the corpus of raw outputs, each run through the real pipeline and sandbox

TEST(Extract, CorpusOfRawOutputsGivesTheExpectedOutcome) {
  std::ifstream in(std::string(WAND_SOURCE_DIR) + "/tests/reason/extraction_corpus.jsonl");
  ASSERT_TRUE(in);
  std::vector<Json> cases;
  for (std::string line; std::getline(in, line);) cases.push_back(Json::parse(line));
  ASSERT_GE(cases.size(), 40u);
  for (auto& c : cases) {
    std::string name = c["name"], method = c["method"], completion = c["completion"];
    SCOPED_TRACE(name);
    auto e = reason::extract_program(completion, method);
    if (c.contains("source")) {
      EXPECT_EQ(e.source, c["source"].get<std::string>());
    }
    if (c.contains("excludes")) {
      EXPECT_EQ(e.program.find(c["excludes"].get<std::string>()), std::string::npos) << e.program;
    }
    EXPECT_EQ(e.program.find('\r'), std::string::npos);
    ScriptedBackend model;
    model.add({completion});
    auto cfg = config(method, 1);
    cfg.repair = cfg.fallback = false;
    cfg.timeout_s = 1;
    auto r = reason::solve(model, &shared_sandbox(), "q", cfg);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->samples.size(), 1u);
    const auto& s = r->samples[0];
    EXPECT_EQ(s.outcome, c["outcome"].get<std::string>()) << e.program << "\n" << (s.verdict ? s.verdict->feedback : "");
    if (c.contains("answer")) {
      ASSERT_TRUE(r->answer) << e.program;
      EXPECT_TRUE(feedback::answers_match(*r->answer, c["answer"].get<std::string>())) << *r->answer;
    } else {
      EXPECT_FALSE(r->answer);
    }
  }
}

// --- the vote

TEST(Vote, MajorityOverNormalisedNumbers) {
  std::vector<Ballot> b = {{"1,234"}, {"7"}, {"1234.0"}, {"$1,234"}, {"7"}};
  auto v = reason::vote(b);
  ASSERT_TRUE(v.answer);
  EXPECT_EQ(*v.answer, "1234");
  EXPECT_EQ(v.winner, 0);
  ASSERT_EQ(v.distribution.size(), 2u);
  EXPECT_EQ(v.distribution[0].votes, 3);
  EXPECT_EQ(v.distribution[0].samples, (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(v.distribution[1].answer, "7");
  EXPECT_EQ(v.tie_broken_by, "");
  EXPECT_EQ(reason::normalize_answer("3/4"), "0.75");
  EXPECT_EQ(*reason::vote(std::vector<Ballot>{{"3/4"}, {"0.75"}, {"1"}}).answer, "0.75");
}

TEST(Vote, FailedSamplesDoNotVote) {
  std::vector<Ballot> b = {{std::nullopt}, {std::nullopt}, {std::nullopt}, {"5"}};
  auto v = reason::vote(b);
  EXPECT_EQ(*v.answer, "5");
  EXPECT_EQ(v.winner, 3);
  EXPECT_EQ(v.distribution.size(), 1u);
  auto none = reason::vote(std::vector<Ballot>{{std::nullopt}, {std::nullopt}});
  EXPECT_FALSE(none.answer);
  EXPECT_EQ(none.winner, -1);
  EXPECT_TRUE(none.distribution.empty());
}

TEST(Vote, TieGoesToTheEarliestWithoutLogprobs) {
  auto v = reason::vote(std::vector<Ballot>{{"3"}, {"8"}, {"8"}, {"3"}});
  EXPECT_EQ(*v.answer, "3");
  EXPECT_EQ(v.winner, 0);
  EXPECT_EQ(v.tie_broken_by, "earliest");
  // One tied sample without a log-probability: the earliest rule, not a partial mean.
  v = reason::vote(std::vector<Ballot>{{"3", -0.9}, {"8", -0.1}, {"8", -0.1}, {"3"}});
  EXPECT_EQ(*v.answer, "3");
  EXPECT_EQ(v.tie_broken_by, "earliest");
}

TEST(Vote, TieGoesToTheHigherMeanLogprob) {
  auto v = reason::vote(std::vector<Ballot>{{"3", -0.9}, {"8", -0.2}, {"8", -0.4}, {"3", -0.5}});
  EXPECT_EQ(*v.answer, "8");  // 8: mean -0.3, 3: mean -0.7
  EXPECT_EQ(v.winner, 1);
  EXPECT_EQ(v.tie_broken_by, "logprob");
  EXPECT_EQ(v.distribution.front().answer, "8");
}

TEST(Vote, WeightedVoteCanOverruleTheCount) {
  std::vector<Ballot> b = {{"10", -3.0}, {"10", -3.0}, {"12", -0.01}};
  EXPECT_EQ(*reason::vote(b).answer, "10");
  auto w = reason::vote(b, {.weighted = true});
  EXPECT_EQ(*w.answer, "12");  // e^-0.01 = 0.99 > 2 e^-3 = 0.10
  EXPECT_EQ(w.weighting, "logprob");
  EXPECT_NEAR(w.distribution[0].weight, std::exp(-0.01), 1e-12);
  // Without every voter's log-probability the weighted vote counts, and says so.
  auto missing = reason::vote(std::vector<Ballot>{{"10", -3.0}, {"10"}, {"12", -0.01}}, {.weighted = true});
  EXPECT_EQ(*missing.answer, "10");
  EXPECT_EQ(missing.weighting, "count (no log-probabilities)");
}

// The most likely sample's answer wins, whatever the groups' sizes (Chen et al., 2021).
TEST(Vote, TopLogprobTakesTheMostLikelySample) {
  std::vector<Ballot> b = {{"10", -0.9}, {"10", -0.8}, {std::nullopt, -0.01}, {"12", -0.3}, {"10", -0.7}};
  EXPECT_EQ(*reason::vote(b).answer, "10");
  auto top = reason::vote(b, {.top_logprob = true});
  EXPECT_EQ(*top.answer, "12");
  EXPECT_EQ(top.winner, 3);  // a failed sample's log-probability is no ballot
  EXPECT_EQ(top.weighting, "top logprob");
  ASSERT_EQ(top.distribution.size(), 2u);
  EXPECT_EQ(top.distribution[0].answer, "12");
  EXPECT_EQ(top.distribution[1].votes, 3);
  // The winner is the sample itself, not the earliest of its group.
  auto later = reason::vote(std::vector<Ballot>{{"5", -0.9}, {"5", -0.1}, {"6", -0.5}}, {.top_logprob = true});
  EXPECT_EQ(*later.answer, "5");
  EXPECT_EQ(later.winner, 1);
  // Equal log-probabilities: the earliest.
  EXPECT_EQ(reason::vote(std::vector<Ballot>{{"6", -0.5}, {"5", -0.5}}, {.top_logprob = true}).winner, 0);
  // Without every answering sample's log-probability it counts, and says so.
  auto missing = reason::vote(std::vector<Ballot>{{"10", -3.0}, {"10"}, {"12", -0.01}}, {.top_logprob = true});
  EXPECT_EQ(*missing.answer, "10");
  EXPECT_EQ(missing.weighting, "count (no log-probabilities)");
}

TEST(Vote, TopVerifiedTakesTheSampleTheVerifierRatesHighest) {
  std::vector<Ballot> b = {{"10", -0.1, 0.2}, {"10", -0.2, 0.3}, {std::nullopt, -0.01, 0.99}, {"12", -0.9, 0.7}};
  auto top = reason::vote(b, {.top_verified = true});
  EXPECT_EQ(*top.answer, "12");  // the vote and the most likely sample both say 10
  EXPECT_EQ(top.winner, 3);      // a failed sample's score is no ballot
  EXPECT_EQ(top.weighting, "top verified");
  // It wins over --select logprob when both are asked (one ranking, the verifier's).
  EXPECT_EQ(*reason::vote(b, {.top_logprob = true, .top_verified = true}).answer, "12");
  // A sample without a score (longer than the verifier's context) ranks below the scored ones.
  auto unscored = reason::vote(std::vector<Ballot>{{"10", -3.0}, {"12", -0.01, 0.0}}, {.top_verified = true});
  EXPECT_EQ(*unscored.answer, "12");
  EXPECT_EQ(unscored.weighting, "top verified");
  // Without any score it counts, and says why.
  auto missing = reason::vote(std::vector<Ballot>{{"10", -3.0}, {"10", -3.0}, {"12", -0.01}}, {.top_verified = true});
  EXPECT_EQ(*missing.answer, "10");
  EXPECT_EQ(missing.weighting, "count (no verifier scores)");
}

TEST(Verifier, PromptIsTheSampleThenTheProgramAsRunAndItsAnswer) {
  EXPECT_EQ(reason::verifier_prompt("Question: w0 has n0 w1.\nProgram:\n", "n0 = 3\nanswer = n0 + 1\n\n", "4.0"),
            "Question: w0 has n0 w1.\nProgram:\nn0 = 3\nanswer = n0 + 1\nAnswer: 4\nRight: ");
}

// A verifier backend: its next token after a verifier prompt is "1" with probability `right(prompt)`.
class ScriptedVerifier : public ScriptedBackend {
 public:
  std::function<double(const std::string&)> right;
  std::vector<std::string> asked;
  Result<std::vector<llm::Completion>> complete(const std::string& prompt, const llm::GenerateOptions& opt) override {
    asked.push_back(prompt);
    if (auto e = errors.find(asked.size() - 1); e != errors.end()) return e->second;
    EXPECT_EQ(opt.max_tokens, 1);
    EXPECT_TRUE(opt.logprobs);
    llm::Completion c;
    double p = right(prompt);
    c.text = p >= 0.5 ? "1" : "0";
    c.logprobs = {{c.text, 0.f, {{"1", float(std::log(p))}, {"0", float(std::log(1 - p))}, {"x", -9.f}}}};
    return std::vector<llm::Completion>{c};
  }
};

TEST(Solve, TheVerifierChoosesAmongTheAnswersAndScoresEachProgramOnce) {
  ScriptedBackend model;
  model.add({"```python\nanswer = 12 + 3\n```", "```python\nanswer = 12 - 3\n```", "```python\nanswer = 12 + 3\n```",
             "no program here", "```python\nanswer = 12 - 3 - 0\n```"},
            {-0.1, -0.9, -0.2, -0.05, -0.8});
  auto verifier = std::make_shared<ScriptedVerifier>();
  verifier->format = "verifier";
  verifier->right = [](const std::string& p) { return p.find("Answer: 9\n") != std::string::npos ? 0.8 : 0.1; };
  auto cfg = config("pot", 5);
  cfg.select = "verifier";
  cfg.verifier = verifier;
  cfg.verifier_spec = "scripted";
  auto r = reason::solve(model, &shared_sandbox(), "Ann had 12 pens and lost 3. How many are left?", cfg);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r->answer, "9");  // the vote, and the most likely sample, say 15
  EXPECT_EQ(r->winner, 1);
  EXPECT_EQ(r->vote.weighting, "top verified");
  ASSERT_EQ(verifier->asked.size(), 3u);  // three distinct programs; the sample without one is not asked
  // The sample's recorded prompt (here chat turns), its program as it ran, the executed answer.
  EXPECT_TRUE(verifier->asked[0].starts_with(r->samples[0].prompt)) << verifier->asked[0];
  EXPECT_TRUE(verifier->asked[0].ends_with("]answer = 12 + 3\nAnswer: 15\nRight: ")) << verifier->asked[0];
  EXPECT_NEAR(*r->samples[1].verified, 0.8, 1e-6);
  EXPECT_NEAR(*r->samples[2].verified, 0.1, 1e-6);
  EXPECT_FALSE(r->samples[3].verified);
  auto rec = reason::problem_record(0, "q", *r);
  EXPECT_NEAR(rec.samples[1].extra["verified"].get<double>(), 0.8, 1e-6);
  EXPECT_EQ(reason::to_json(*r)["samples"][1]["verified"].get<double>(), r->samples[1].verified);
  EXPECT_EQ(reason::run_config(cfg, "m", "m", "h").options["verifier"], "scripted");

  // A select verifier without a verifier, and a verifier without select verifier, are refused.
  cfg.verifier = nullptr;
  EXPECT_EQ(reason::validate(cfg).error().message, "select 'verifier' needs a verifier model");
  cfg.verifier = verifier, cfg.select = "vote";
  EXPECT_EQ(reason::validate(cfg).error().message, "verifier scripted: only select verifier reads a verifier (select is 'vote')");
  // A wand model of another format is no verifier; a backend that says nothing of its format is trusted.
  cfg.select = "verifier";
  verifier->format = "pot";
  auto wrong = reason::fits_model(model, cfg);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("a wand model of prompt format 'pot', not a verifier"), std::string::npos)
      << wrong.error().message;
  // A verifier that cannot read a sample (longer than its context) leaves it unscored.
  auto short_context = std::make_shared<ScriptedVerifier>();
  short_context->right = [](const std::string& p) { return p.find("Answer: 9\n") != std::string::npos ? 0.8 : 0.1; };
  short_context->errors[0] = Error{"the prompt is longer than the context", std::string(llm::kContextLengthExceeded)};
  cfg.verifier = short_context;
  model.add({"```python\nanswer = 12 - 3\n```", "```python\nanswer = 12 + 3\n```"}, {-0.1, -0.2});
  cfg.k = 2;
  auto unread = reason::solve(model, &shared_sandbox(), "Ann had 12 pens and lost 3?", cfg);
  ASSERT_TRUE(unread) << unread.error().message;
  EXPECT_FALSE(unread->samples[0].verified);
  EXPECT_EQ(*unread->answer, "15");
  cfg.k = 5;
  // A model whose likely next tokens hold neither label is no verifier: said, not guessed.
  verifier->format = "";
  auto other = std::make_shared<ScriptedBackend>();
  other->add({"banana"}, {-0.1});
  cfg.verifier = other;
  model.add({"```python\nanswer = 12 - 3\n```"}, {-0.1});
  auto refused = reason::solve(model, &shared_sandbox(), "Ann had 12 pens and lost 3?", cfg);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("neither 1 nor 0 is among its likely next tokens"), std::string::npos)
      << refused.error().message;
}

TEST(Vote, PlausibleAnswersAreNotNegativeAndWholeFromWholeNumbers) {
  std::vector<std::string> whole = {"12", "3", "1200"}, money = {"2.5", "4"};
  EXPECT_TRUE(reason::plausible_answer("4", whole));
  EXPECT_TRUE(reason::plausible_answer("4.0", whole));
  EXPECT_TRUE(reason::plausible_answer("1,234", whole));
  EXPECT_TRUE(reason::plausible_answer("0", whole));
  EXPECT_FALSE(reason::plausible_answer("-4", whole));
  EXPECT_FALSE(reason::plausible_answer("0.25", whole));  // 3 / 12: a division the wrong way round
  EXPECT_FALSE(reason::plausible_answer("inf", whole));
  EXPECT_FALSE(reason::plausible_answer("nan", whole));
  EXPECT_FALSE(reason::plausible_answer("four", whole));
  EXPECT_TRUE(reason::plausible_answer("0.25", money));  // a question with a fraction may have one
  EXPECT_FALSE(reason::plausible_answer("-0.25", money));
  EXPECT_TRUE(reason::plausible_answer("2.5", {}));  // no numbers given: nothing says whole
  // and each refusal says why, for the repair round
  EXPECT_EQ(reason::implausible_because("4", whole), "");
  EXPECT_EQ(reason::implausible_because("inf", whole), "it is not a finite number");
  EXPECT_EQ(reason::implausible_because("four", whole), "it is not a finite number");
  EXPECT_EQ(reason::implausible_because("-4", whole), "a word problem's answer is not negative");
  EXPECT_EQ(reason::implausible_because("0.25", whole), "the question's numbers are whole, and so is its answer");
}

// --- the pipeline, scripted

TEST(Solve, VotesOnExecutedAnswersNotOnWhatTheTextClaims) {
  ScriptedBackend model;
  model.add({"```python\nanswer = 2 * 3  # the answer is 5\n```", "```python\nanswer = 12 / 2\n```",
             "```python\nanswer = 5\n```", "```python\nanswer = 1 / 0\n```", "no program"});
  auto cfg = config("pot", 5);
  cfg.seed = 40;
  auto r = reason::solve(model, &shared_sandbox(), "How many?", cfg);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r->answer, "6");
  EXPECT_EQ(r->answered_by, "sample");
  EXPECT_EQ(r->winner, 0);
  ASSERT_EQ(r->samples.size(), 5u);  // no repair, no fallback: the vote answered
  EXPECT_EQ(r->samples[3].outcome, "runtime_error");
  EXPECT_EQ(r->samples[4].outcome, "no_program");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(r->samples[i].seed, llm::sample_seed(40, i));
  ASSERT_EQ(model.calls.size(), 1u);  // one request for the k samples
  EXPECT_EQ(model.calls[0].opt.n, 5);
  EXPECT_EQ(model.calls[0].opt.seed, 40u);
  EXPECT_FLOAT_EQ(model.calls[0].opt.temperature, 0.7f);
  EXPECT_EQ(model.calls[0].messages.size(), 18u);  // the chat template
  EXPECT_EQ(r->vote.distribution.size(), 2u);
}

TEST(Solve, TieBrokenByLogprobThroughThePipeline) {
  ScriptedBackend model;
  model.add({"```python\nanswer = 3\n```", "```python\nanswer = 4\n```"}, {-1.0, -0.1});
  auto r = reason::solve(model, &shared_sandbox(), "q", config("pot", 2));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->answer, "4");
  EXPECT_EQ(r->vote.tie_broken_by, "logprob");
  EXPECT_NEAR(*r->samples[1].mean_logprob, -0.1, 1e-6);
}

TEST(Solve, RepairShowsTheProgramAndItsErrorThenAnswers) {
  ScriptedBackend model;
  model.add({"```python\ndef solution():\n    total = 10\n    return total / 0\n```"});
  model.add({"```python\ndef solution():\n    return 10 / 2\n```"});
  auto r = reason::solve(model, &shared_sandbox(), "q", config("pal", 2));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->samples.size(), 3u);
  EXPECT_EQ(r->samples[2].stage, "repair");
  EXPECT_EQ(*r->answer, "5");
  EXPECT_EQ(r->answered_by, "repair");
  EXPECT_EQ(r->winner, 2);
  ASSERT_EQ(model.calls.size(), 2u);
  const auto& turns = model.calls[1].messages;
  ASSERT_EQ(turns.size(), 20u);  // the method's turns, the failed reply, the repair request
  EXPECT_EQ(turns[18].role, "assistant");
  const std::string& ask = turns[19].content;
  EXPECT_NE(ask.find("runtime_error (line 3)"), std::string::npos) << ask;
  EXPECT_NE(ask.find("ZeroDivisionError"), std::string::npos) << ask;
  EXPECT_NE(ask.find("return total / 0"), std::string::npos) << ask;
  EXPECT_EQ(model.calls[1].opt.n, 1);
  EXPECT_FLOAT_EQ(model.calls[1].opt.temperature, 0.f);
  EXPECT_EQ(model.calls[1].opt.seed, llm::sample_seed(0, 2));  // the seed's sample k
}

// --select logprob --plausible: implausible answers are set aside, then the most likely sample
// wins; when none is left the repair round shows the model why.
TEST(Solve, ImplausibleAnswersAreSetAsideBeforeTheMostLikelyWins) {
  ScriptedBackend model;
  model.add({"```python\nanswer = 3 - 12\n```", "```python\nanswer = 12 / 5\n```", "```python\nanswer = 12 - 3\n```",
             "```python\nanswer = 12 + 3\n```", "```python\nanswer = 12 + 3\n```"},
            {-0.05, -0.1, -0.4, -0.9, -0.8});
  auto cfg = config("pot", 5);
  cfg.select = "logprob";
  cfg.plausible = true;
  auto r = reason::solve(model, &shared_sandbox(), "Ann had 12 pens and lost 3. How many are left?", cfg);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r->answer, "9");  // the vote would say 15; the likelier -9 and 2.4 cannot be
  EXPECT_EQ(r->winner, 2);
  EXPECT_EQ(r->samples[0].outcome, "implausible");
  EXPECT_FALSE(r->samples[0].answer);
  ASSERT_TRUE(r->samples[0].verdict);
  EXPECT_EQ(r->samples[0].verdict->feedback, "The program's answer is -9, and a word problem's answer is not negative.");
  EXPECT_EQ(r->samples[1].outcome, "implausible");
  EXPECT_EQ(r->vote.weighting, "top logprob");
  // Without --plausible the most likely is -9; without either, the vote's 15.
  cfg.plausible = false;
  model.add({"```python\nanswer = 3 - 12\n```", "```python\nanswer = 12 + 3\n```", "```python\nanswer = 12 + 3\n```"},
            {-0.05, -0.9, -0.8});
  cfg.k = 3;
  EXPECT_EQ(*reason::solve(model, &shared_sandbox(), "Ann had 12 pens and lost 3?", cfg)->answer, "-9");
  cfg.select = "vote";
  model.add({"```python\nanswer = 3 - 12\n```", "```python\nanswer = 12 + 3\n```", "```python\nanswer = 12 + 3\n```"},
            {-0.05, -0.9, -0.8});
  EXPECT_EQ(*reason::solve(model, &shared_sandbox(), "Ann had 12 pens and lost 3?", cfg)->answer, "15");

  // Nothing plausible: the repair round sees the reason, and its answer is checked too.
  ScriptedBackend repaired;
  repaired.add({"```python\nanswer = 3 / 12\n```"});
  repaired.add({"```python\nanswer = 12 / 3\n```"});
  auto one = config("pot", 1);
  one.plausible = true;
  r = reason::solve(repaired, &shared_sandbox(), "12 pens shared by 3 friends?", one);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r->answer, "4");
  EXPECT_EQ(r->answered_by, "repair");
  ASSERT_EQ(repaired.calls.size(), 2u);
  const std::string& ask = repaired.calls[1].messages.back().content;
  EXPECT_NE(ask.find("wrong_answer: The program's answer is 0.25, and the question's numbers are whole, and so is its answer."),
            std::string::npos) << ask;
  ScriptedBackend stubborn;
  stubborn.add({"```python\nanswer = 3 / 12\n```"});
  stubborn.add({"```python\nanswer = 3 - 12\n```"});
  one.fallback = false;
  r = reason::solve(stubborn, &shared_sandbox(), "12 pens shared by 3 friends?", one);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->answer);
  EXPECT_EQ(r->samples.back().outcome, "implausible");
  // A select the pipeline does not know is refused by name.
  one.select = "best";
  auto bad = reason::solve(stubborn, &shared_sandbox(), "q?", one);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "select 'best': expected vote, logprob or verifier");
}

// wand's own pot model has never written prose: asked for a rationale it writes a program, whose
// last line ("answer = total // friends") was once printed as the answer. It gets no CoT fallback.
TEST(Solve, WandsOwnPotModelGetsNoProseFallback) {
  ScriptedBackend model;
  model.format = "pot";
  model.add({"answer = ("});
  model.add({"answer = (("});
  model.add({"answer = total // friends"});  // what a prose request would get
  auto r = reason::solve(model, &shared_sandbox(), "q", config("pot", 1, "wand"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(model.calls.size(), 2u);  // the sample and the repair
  EXPECT_FALSE(r->answer);
  EXPECT_EQ(r->answered_by, "");
  // Nor do the models of number names, also under a user's own prompt (which reads the question
  // unmapped): the delexicalized one, asked for prose, once had its program's last line printed.
  auto own = reason::parse_template("@@ prompt\nQuestion: {{question}}\nProgram:\n", "mine.txt");
  ASSERT_TRUE(own);
  for (std::string format : {"pot-numbers", "pot-delex"}) {
    ScriptedBackend names;
    names.format = format;
    names.add({"answer = ("});
    names.add({"answer = (("});
    names.add({"answer = v3-n1"});
    auto cfg = config("pot", 1, "wand");
    cfg.prompt = *own;
    auto n = reason::solve(names, &shared_sandbox(), "q", cfg);
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(names.calls.size(), 2u) << format;
    EXPECT_FALSE(n->answer) << format;
  }
}

// A wand model through its built-in prompt is asked only for the format it writes (its
// wand.prompt_format): a program model for pot or pal, the CoT model for cot. Anything else is a
// bad request before the model is called; the user's own template, another prompt family or a
// model that says nothing of itself are the user's to match.
TEST(Solve, AWandModelIsAskedOnlyForTheFormatItWrites) {
  struct Case {
    std::string format, method, family;
    bool own_prompt, fits;
  };
  auto own = reason::parse_template("@@ prompt\nQuestion: {{question}}\nProgram:\n", "mine.txt");
  ASSERT_TRUE(own);
  for (const Case& c : std::vector<Case>{{"pot-delex", "cot", "wand", false, false},
                                         {"pot", "cot", "wand", false, false},
                                         {"cot", "pot", "wand", false, false},
                                         {"cot", "pal", "wand", false, false},
                                         {"func", "pot", "wand", false, false},
                                         {"agent", "cot", "wand", false, false},
                                         {"pot-numbers", "pal", "wand", false, true},
                                         {"cot", "cot", "wand", false, true},
                                         {"", "cot", "wand", false, true},
                                         {"cot", "pot", "wand", true, true},
                                         {"pot", "cot", "chat", false, true}}) {
    ScriptedBackend model;
    model.format = c.format;
    model.add({"answer = 4\nThe answer is 4."});
    auto cfg = config(c.method, 1, c.family);
    if (c.own_prompt) cfg.prompt = *own;
    const std::string what = c.format + " " + c.method + " " + c.family + (c.own_prompt ? " own" : "");
    EXPECT_EQ(static_cast<bool>(reason::fits_model(model, cfg)), c.fits) << what;
    auto r = reason::solve(model, &shared_sandbox(), "What is 2 + 2?", cfg);
    if (c.fits) {
      EXPECT_TRUE(r) << what << ": " << r.error().message;
      continue;
    }
    ASSERT_FALSE(r) << what;
    EXPECT_EQ(r.error().code, llm::kInvalidRequest) << what;
    EXPECT_NE(r.error().message.find("prompt format '" + c.format + "'"), std::string::npos) << r.error().message;
    EXPECT_TRUE(model.calls.empty()) << what;
  }
}

TEST(Solve, FallsBackToCotWhenRepairFailsToo) {
  ScriptedBackend model;
  model.add({"```python\nanswer = (\n```"});
  model.add({"still no code"});
  model.add({"She has 3 + 4 = 7 apples. The answer is 7."});
  auto cfg = config("pot", 1, "completion");
  auto r = reason::solve(model, &shared_sandbox(), "q", cfg);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->samples.size(), 3u);
  EXPECT_EQ(r->samples[0].outcome, "syntax_error");
  EXPECT_EQ(r->samples[1].stage, "repair");
  EXPECT_EQ(r->samples[1].outcome, "no_program");
  EXPECT_EQ(r->samples[2].stage, "fallback");
  EXPECT_EQ(r->samples[2].method, "cot");
  EXPECT_EQ(*r->answer, "7");
  EXPECT_EQ(r->answered_by, "fallback");
  ASSERT_EQ(model.calls.size(), 3u);
  // completion family: the repair prompt continues the method's prompt and the failed completion
  EXPECT_TRUE(model.calls[1].prompt.starts_with(model.calls[0].prompt + "```python\nanswer = (\n```"));
  EXPECT_NE(model.calls[1].prompt.find("syntax_error"), std::string::npos);
  EXPECT_TRUE(model.calls[2].prompt.ends_with("Answer:\n"));  // the CoT template
}

// A user's chat template on a model that answers one question (a wand model: the local engine
// refuses any chat but one user turn): the repair round asks that turn again rather than
// building a conversation the model cannot take, which failed the whole solve.
TEST(Solve, RepairAsksAOneQuestionModelAgainInOneTurn) {
  ScriptedBackend model;
  model.format = "pot";
  model.add({"answer = (\n"});
  model.add({"answer = 3 + 4\n"});
  auto own = reason::parse_template("@@ user\nSolve with a program: {{question}}\n", "one-turn.txt");
  ASSERT_TRUE(own);
  auto cfg = config("pot", 1, "wand");
  cfg.prompt = *own;
  auto r = reason::solve(model, &shared_sandbox(), "What is 3 + 4?", cfg);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(model.calls.size(), 2u);  // no CoT fallback: a program model never wrote prose
  ASSERT_EQ(model.calls[1].messages.size(), 1u);
  EXPECT_EQ(model.calls[1].messages[0].role, "user");
  EXPECT_EQ(model.calls[1].text(), model.calls[0].text());
  EXPECT_EQ(r->samples[1].stage, "repair");
  EXPECT_EQ(*r->answer, "7");
}

// A pot-numbers model (reason/numbers.h) reads the question with names for its numbers; its
// programs, the repair's too, run with the bindings first, the records keep the mapped prompt and
// the executed program, and there is no CoT fallback (it never wrote prose).
TEST(Solve, NumbersModelReadsNamesAndItsProgramsRunWithTheBindings) {
  ScriptedBackend model;
  model.format = "pot-numbers";
  model.add({"left = n0 - n1\nanswer = left * n2\n", "answer = n0 +\n"});
  auto cfg = config("pot", 2, "wand");
  auto r = reason::solve(model, &shared_sandbox(), "Sam had 1,200 cards, sold 200 and then tripled the rest 3 times?", cfg);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(model.calls.size(), 1u);
  EXPECT_EQ(model.calls[0].prompt,
            "Question: Sam had n0 cards, sold n1 and then tripled the rest n2 times?\nProgram:\n");
  ASSERT_TRUE(r->answer);
  EXPECT_EQ(*r->answer, "3000");
  EXPECT_EQ(r->samples[0].prompt, model.calls[0].prompt);
  EXPECT_EQ(r->samples[0].program, "n0 = 1200\nn1 = 200\nn2 = 3\nleft = n0 - n1\nanswer = left * n2\n");
  EXPECT_EQ(r->samples[1].outcome, "syntax_error");

  // Nothing answers: the repair asks the mapped question again and runs with the bindings; no fallback.
  ScriptedBackend broken;
  broken.format = "pot-numbers";
  broken.add({"answer = n0 +\n"});
  broken.add({"answer = n0 * n1\n"});
  r = reason::solve(broken, &shared_sandbox(), "6 boxes of 7 eggs?", config("pot", 1, "wand"));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(broken.calls.size(), 2u);
  EXPECT_EQ(broken.calls[1].prompt, "Question: n0 boxes of n1 eggs?\nProgram:\n");
  EXPECT_EQ(r->answered_by, "repair");
  EXPECT_EQ(*r->answer, "42");
  broken.add({"answer = n0 +\n"});
  broken.add({"still not a program ("});
  r = reason::solve(broken, &shared_sandbox(), "6 boxes of 7 eggs?", config("pot", 1, "wand"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(broken.calls.size(), 4u);  // sample, repair, and no CoT call
  EXPECT_FALSE(r->answer);
  EXPECT_EQ(r->samples.back().stage, "repair");

  // A plain pot model reads the question as written.
  ScriptedBackend plain;
  plain.format = "pot";
  plain.add({"answer = 6 * 7\n"});
  r = reason::solve(plain, &shared_sandbox(), "6 boxes of 7 eggs?", config("pot", 1, "wand"));
  ASSERT_TRUE(r);
  EXPECT_EQ(plain.calls[0].prompt, "Question: 6 boxes of 7 eggs?\nProgram:\n");
  EXPECT_EQ(r->samples[0].program, "answer = 6 * 7\n");
}

// shuffle_names: sample 0 reads the names in order, the others each in an order of their own, one
// call each; every program runs with the bindings of the question its sample read, so one program
// text answers differently under different namings. A model without number names refuses it.
TEST(Solve, ShuffledNamesGiveEachSampleItsOwnNamingAndBindings) {
  ScriptedBackend model;
  model.format = "pot-numbers";
  const int k = 6;
  for (int i = 0; i < k; ++i) model.add({"answer = n0 - n1\n"});
  auto cfg = config("pot", k, "wand");
  cfg.temperature = 0.7f;
  cfg.shuffle_names = true;
  auto r = reason::solve(model, &shared_sandbox(), "Sam had 50 cards and sold 20?", cfg);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(model.calls.size(), std::size_t(k));
  ASSERT_EQ(r->samples.size(), std::size_t(k));
  EXPECT_EQ(model.calls[0].prompt, "Question: Sam had n0 cards and sold n1?\nProgram:\n");
  int swapped = 0;
  for (int i = 0; i < k; ++i) {
    const auto& s = r->samples[i];
    EXPECT_EQ(s.prompt, model.calls[i].prompt);
    const bool in_order = s.prompt.find("had n0 cards and sold n1") != std::string::npos;
    ASSERT_TRUE(in_order || s.prompt.find("had n1 cards and sold n0") != std::string::npos) << s.prompt;
    swapped += !in_order;
    EXPECT_EQ(s.program, in_order ? "n0 = 50\nn1 = 20\nanswer = n0 - n1\n" : "n0 = 20\nn1 = 50\nanswer = n0 - n1\n");
    ASSERT_TRUE(s.answer) << s.outcome;
    EXPECT_EQ(*s.answer, in_order ? "30" : "-30");
  }
  EXPECT_GT(swapped, 0);
  EXPECT_LT(swapped, k);

  ScriptedBackend plain;
  plain.format = "pot";
  auto bad = reason::solve(plain, &shared_sandbox(), "6 boxes of 7 eggs?", cfg);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("pot-numbers"), std::string::npos) << bad.error().message;
}

TEST(Solve, OwnChatTemplateIsUsedAndRepairContinuesItsConversation) {
  auto t = reason::parse_template("@@ system\nWrite Python.\n@@ user\nQ: {{question}}\n", "mine.txt");
  ASSERT_TRUE(t);
  ScriptedBackend model;
  model.add({"```python\nanswer = undefined_name\n```"});
  model.add({"```python\nanswer = 8\n```"});
  auto cfg = config("pot", 1, "wand");  // a wand-family model, but the user's template is chat
  cfg.prompt = *t;
  auto r = reason::solve(model, &shared_sandbox(), "How many?", cfg);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->prompt_hash, t->hash);
  ASSERT_EQ(model.calls.size(), 2u);
  ASSERT_EQ(model.calls[0].messages.size(), 2u);
  EXPECT_EQ(model.calls[0].messages[1].content, "Q: How many?");
  EXPECT_TRUE(model.calls[1].prompt.empty());  // the repair round is a chat turn too
  ASSERT_EQ(model.calls[1].messages.size(), 4u);
  EXPECT_NE(model.calls[1].messages[3].content.find("NameError"), std::string::npos);
  EXPECT_EQ(*r->answer, "8");
}

TEST(Solve, NoRepairNoFallbackLeavesNoAnswerAndEveryStepRecorded) {
  ScriptedBackend model;
  model.add({"nothing", "nothing"});
  auto cfg = config("pot", 2);
  cfg.repair = cfg.fallback = false;
  auto r = reason::solve(model, &shared_sandbox(), "q", cfg);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->answer);
  EXPECT_EQ(r->answered_by, "");
  EXPECT_EQ(r->samples.size(), 2u);
  EXPECT_EQ(model.calls.size(), 1u);
}

TEST(Solve, CotVotesOnExtractedAnswersWithoutASandbox) {
  ScriptedBackend model;
  model.add({"2 + 2 = 4. The answer is 4.", "The answer is 5.", "So 4 in all. The answer is 4."});
  auto r = reason::solve(model, nullptr, "q", config("cot", 3, "wand"));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->answer, "4");
  EXPECT_EQ(model.calls[0].prompt, reason::cot_prompt("q"));
}

TEST(Solve, BadConfigIsAnErrorNamingTheField) {
  ScriptedBackend model;
  auto cfg = config("pot", 0);
  auto r = reason::solve(model, &shared_sandbox(), "q", cfg);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("k 0"), std::string::npos);
  cfg = config("pal", 1);
  EXPECT_FALSE(reason::solve(model, nullptr, "q", cfg));  // programs need a sandbox
  EXPECT_EQ(reason::solve(model, &shared_sandbox(), " \n", config("pot", 1)).error().code, llm::kInvalidRequest);
  cfg.method = "tot";
  EXPECT_NE(reason::solve(model, &shared_sandbox(), "q", cfg).error().message.find("method 'tot'"), std::string::npos);
}

TEST(Solve, PromptFamilyFollowsWhatTheModelSaysItIs) {
  auto shipped = llm::open_backend(std::string("local:") + WAND_MODELS_DIR + "/wand-pot.gguf");
  ASSERT_TRUE(shipped) << shipped.error().message;
  EXPECT_EQ((*shipped)->prompt_format(), "pot");
  EXPECT_EQ(*reason::prompt_family(**shipped), "wand");
  ScriptedBackend other;  // says nothing: a chat model, the default for servers
  EXPECT_EQ(*reason::prompt_family(other), "chat");
  EXPECT_EQ(*reason::prompt_family(other, "completion"), "completion");
  other.format = "cot";
  EXPECT_EQ(*reason::prompt_family(other), "wand");
  EXPECT_EQ(*reason::prompt_family(other, "chat"), "chat");  // what the user asks for wins
  EXPECT_EQ(reason::prompt_family(other, "xml").error().message,
            "prompt style 'xml': expected auto, wand, chat or completion");
}

// --- constrained decoding (--constrain)

TEST(Solve, ABuiltInGrammarMustDescribeWhatThePromptAsksFor) {
  auto check = [](std::string method, std::string family, std::string constrain) {
    auto c = config(std::move(method), 1, std::move(family));
    c.constrain = std::move(constrain);
    return reason::validate(c);
  };
  EXPECT_EQ(check("cot", "wand", "pot").error().message,
            "grammar 'pot' describes programs; method cot writes prose (a grammar file of your own may shape a "
            "rationale)");
  EXPECT_FALSE(check("cot", "chat", "python-block"));
  EXPECT_EQ(check("pot", "wand", "python-block").error().message,
            "grammar 'python-block' writes a ```python block; method pot's wand prompt asks for a bare program (use "
            "--constrain pot)");
  EXPECT_FALSE(check("pot", "completion", "python-block"));
  EXPECT_EQ(check("pal", "chat", "pot").error().message,
            "grammar 'pot' writes bare `name = expression` lines; method pal's chat prompt asks for one ```python "
            "block (use --constrain python-block)");
  EXPECT_EQ(check("pal", "completion", "pot").error().message,
            "grammar 'pot' writes bare `name = expression` lines; method pal's completion prompt asks for a bare `def "
            "solution():` (no built-in grammar fits it; a grammar file of your own may)");
  EXPECT_FALSE(check("pot", "chat", "pot"));
  for (auto [method, family, grammar] : std::vector<std::array<std::string, 3>>{{"pot", "wand", "pot"},
                                                                                {"pot", "completion", "pot"},
                                                                                {"pal", "wand", "pot"},
                                                                                {"pot", "chat", "python-block"},
                                                                                {"pal", "chat", "python-block"},
                                                                                {"cot", "wand", "rationale.gbnf"},
                                                                                {"pal", "completion", "my.gbnf"}})
    EXPECT_TRUE(check(method, family, grammar)) << method << " " << family << " " << grammar;
  auto own = config("pal", 1, "completion");  // the user's own template: theirs to match
  own.constrain = "pot";
  own.prompt = reason::Template{};
  EXPECT_TRUE(reason::validate(own));
}

TEST(Solve, GrammarConstrainsTheProgramsNotTheFallbackAndNeedsABackendThatTakesIt) {
  auto g = llm::Grammar::load("pot");
  ASSERT_TRUE(g) << g.error().message;
  auto cfg = config("pot", 1, "wand");
  cfg.constrain = "pot", cfg.grammar = *g;
  ScriptedBackend remote;  // cannot constrain: refused before any request, as a bad request
  remote.add({"answer = 1"});
  auto r = reason::solve(remote, &shared_sandbox(), "q", cfg);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, llm::kInvalidRequest);
  EXPECT_EQ(r.error().message, "scripted: a decoding grammar (constrain 'pot') needs the embedded engine (local:PATH.gguf)");
  EXPECT_TRUE(remote.calls.empty());

  ScriptedBackend local;
  local.constrains = true;
  local.add({"answer = ("});         // the sample: a syntax error
  local.add({"answer = ("});         // the repair: again
  local.add({"The answer is 3."});   // the CoT fallback
  r = reason::solve(local, &shared_sandbox(), "q", cfg);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(local.calls.size(), 3u);
  EXPECT_EQ(local.calls[0].opt.grammar, *g);
  EXPECT_EQ(local.calls[1].opt.grammar, *g);
  EXPECT_EQ(local.calls[2].opt.grammar, nullptr);
  EXPECT_EQ(r->answered_by, "fallback");
  auto rc = reason::run_config(cfg, "spec", "id", r->prompt_hash);
  EXPECT_EQ(rc.options["constrain"], "pot");
  EXPECT_FALSE(reason::run_config(config("pot", 1), "spec", "id", "").options.contains("constrain"));
}

// The shipped model sampling hot (temperature 1.5) inside grammars/pot.gbnf: every program it
// writes is one Python parses, and they still vote the right answer.
TEST(Solve, ShippedModelConstrainedByPotWritesOnlyParseablePrograms) {
  auto model = llm::open_backend(std::string("local:") + WAND_MODELS_DIR + "/wand-pot.gguf");
  ASSERT_TRUE(model) << model.error().message;
  auto g = llm::Grammar::load("pot");
  ASSERT_TRUE(g);
  auto cfg = config("pot", 8, "wand");
  // Unconstrained, this seed's sample 5 is a syntax error (`wand solve --k 8 --temperature 1.5 --seed 4`).
  cfg.temperature = 1.5f, cfg.seed = 4, cfg.constrain = "pot", cfg.grammar = *g;
  cfg.repair = cfg.fallback = false;
  auto r = reason::solve(**model, &shared_sandbox(),
                         "Ava has 23 apples. She gets 17 more and then gives away 9. How many apples does she have now?", cfg);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->samples.size(), 8u);
  std::vector<std::string> programs;
  for (const auto& s : r->samples) {
    EXPECT_NE(s.outcome, "syntax_error") << s.completion;
    EXPECT_NE(s.outcome, "no_program") << s.completion;
    EXPECT_NE(s.program.find("answer"), std::string::npos) << s.completion;
    programs.push_back(s.program);
  }
  EXPECT_EQ(count_unparsable(programs), 0);
  ASSERT_TRUE(r->answer);
  EXPECT_EQ(*r->answer, "31");
}

// --- the run store

TEST(Solve, RunIsRecordedWithEverySample) {
  ScriptedBackend model;
  model.add({"```python\nanswer = 6\n```", "```python\nanswer = 1/0\n```", "```python\nanswer = 6.0\n```"}, {-0.5, -0.2, -0.3});
  auto cfg = config("pot", 3);
  cfg.seed = 9;
  auto r = reason::solve(model, &shared_sandbox(), "How many?", cfg);
  ASSERT_TRUE(r);
  std::string path = ::testing::TempDir() + "reason_store_" + std::to_string(::getpid()) + ".db";
  std::filesystem::remove(path);
  auto db = store::Store::open(path);
  ASSERT_TRUE(db);
  auto id = (*db)->create_run(reason::run_config(cfg, "scripted:spec", model.id(), r->prompt_hash));
  ASSERT_TRUE(id);
  ASSERT_TRUE((*db)->record_problem(*id, reason::problem_record(0, "How many?", *r)));
  ASSERT_TRUE((*db)->finish_run(*id, {}));
  auto run = (*db)->get_run(*id);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->info.config.method, "pot");
  EXPECT_EQ(run->info.config.prompt_hash, reason::builtin_template("pot", "chat")->hash);
  EXPECT_EQ(run->info.config.options["k"], 3);
  EXPECT_EQ(*run->info.config.seed, 9);
  ASSERT_EQ(run->problems.size(), 1u);
  const auto& p = run->problems[0];
  EXPECT_EQ(*p.answer, "6");
  EXPECT_EQ(p.vote["distribution"][0]["votes"], 2);
  ASSERT_EQ(p.samples.size(), 3u);
  EXPECT_EQ(*p.samples[1].seed, static_cast<int64_t>(llm::sample_seed(9, 1)));
  EXPECT_EQ(p.samples[1].program, "answer = 1/0\n");
  EXPECT_EQ(p.samples[1].verdict["error_class"], "runtime_error");
  EXPECT_EQ(p.samples[0].verdict["error_class"], "none");
  // No label in solve: the answering sample is neither passed nor failed, the crashing one failed.
  EXPECT_TRUE(p.samples[0].verdict["passed"].is_null()) << p.samples[0].verdict.dump();
  EXPECT_TRUE(p.samples[0].verdict["reward"].is_null()) << p.samples[0].verdict.dump();
  EXPECT_EQ(p.samples[1].verdict["passed"], false);
  EXPECT_EQ(reason::to_json(r->samples[0])["verdict"], p.samples[0].verdict) << "printed as recorded";
  EXPECT_EQ(p.samples[1].extra["outcome"], "runtime_error");
  EXPECT_EQ(p.samples[0].exec_result["status"], "ok");
  EXPECT_FALSE(p.samples[1].answer);
  EXPECT_NE(p.samples[0].prompt.find("How many?"), std::string::npos);
  std::filesystem::remove(path);
}

// --- flow: programs that ask the model sub-questions through llm()

TEST(Prompt, FlowTemplatesAskForProgramsThatCallLlm) {
  for (std::string family : {"completion", "chat"}) {
    auto t = reason::builtin_template("flow", family);
    ASSERT_TRUE(t) << family << ": " << t.error().message;
    std::string text = t->chat() ? reason::prompt_text(reason::render(*t, {{"question", "Q?"}})) : t->prompt;
    EXPECT_NE(text.find("float(llm("), std::string::npos) << family;
    EXPECT_NE(text.find("for day in range(3):"), std::string::npos) << family;  // a loop
    EXPECT_NE(text.find("if total > 50:"), std::string::npos) << family;        // a condition
  }
  EXPECT_FALSE(reason::builtin_template("flow", "wand"));  // wand's models know only pot and cot
}

// The top-level reply is a flow program; the sub-questions get canned answers. The executed
// answer combines them, and every call is in the sample and its record.
TEST(Solve, FlowRunsTheProgramWithTheModelInTheLoop) {
  ScriptedBackend model;
  model.add({"```python\n"
             "per_box = float(llm('How many eggs are in one box? Reply with a number only.'))\n"
             "boxes = 0\n"
             "for shelf in range(3):\n"
             "    boxes += 2\n"
             "broken = float(llm('How many eggs broke? Reply with a number only.'))\n"
             "answer = per_box * boxes - broken if broken < per_box else 0\n"
             "```"});
  model.add({"12"});
  model.add({" 5\n"});
  auto cfg = config("flow", 1);
  cfg.flow_tokens = 16;
  auto r = reason::solve(model, &shared_sandbox(), "How many whole eggs are left?", cfg);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->answer) << reason::to_json(*r).dump(2);
  EXPECT_EQ(*r->answer, "67");  // 12 * 6 - 5
  const auto& s = r->samples.at(0);
  EXPECT_EQ(s.method, "flow");
  ASSERT_EQ(s.tool_calls.size(), 2u) << s.tool_calls.dump();
  EXPECT_EQ(s.tool_calls[0]["prompt"], "How many eggs are in one box? Reply with a number only.");
  EXPECT_EQ(s.tool_calls[0]["completion"], "12");
  EXPECT_EQ(s.tool_calls[1]["completion"], " 5\n");
  EXPECT_TRUE(s.tool_calls[1].contains("completion_tokens"));
  // The top-level prompt is the flow template; each sub-call is one user turn, capped at flow_tokens.
  ASSERT_EQ(model.calls.size(), 3u);
  EXPECT_NE(model.calls[0].text().find("llm(prompt)"), std::string::npos);
  EXPECT_EQ(model.calls[1].messages.size(), 1u);
  EXPECT_EQ(model.calls[1].opt.max_tokens, 16);
  EXPECT_EQ(reason::to_json(*r)["samples"][0]["tool_calls"].size(), 2u);
  auto rec = reason::problem_record(0, "How many whole eggs are left?", *r);
  ASSERT_EQ(rec.samples.at(0).extra["tool_calls"].size(), 2u);
  EXPECT_EQ(rec.samples[0].extra["tool_calls"][0]["completion"], "12");
  auto rc = reason::run_config(cfg, "spec", "id", r->prompt_hash);
  EXPECT_EQ(rc.options["flow_calls"], 8);
  EXPECT_EQ(rc.options["flow_tokens"], 16);
  EXPECT_EQ(rc.options["prompt"], "prompts/flow.chat.txt");
}

// A program that loops on llm() is stopped by the budget: it gets ToolError, its sample fails,
// and the other sample still answers.
TEST(Solve, FlowBudgetStopsAProgramThatLoopsOnLlm) {
  ScriptedBackend model;
  model.add({"```python\nanswer = 0\nwhile True:\n    answer += float(llm('One more?'))\n```", "```python\nanswer = 7\n```"});
  for (int i = 0; i < 5; ++i) model.add({"1"});
  auto cfg = config("flow", 2);
  cfg.flow_calls = 3;
  cfg.repair = cfg.fallback = false;
  auto r = reason::solve(model, &shared_sandbox(), "q", cfg);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->answer);
  EXPECT_EQ(*r->answer, "7");
  const auto& looped = r->samples.at(0);
  EXPECT_EQ(looped.outcome, "runtime_error");
  ASSERT_TRUE(looped.exec);
  ASSERT_TRUE(looped.exec->exception);
  EXPECT_EQ(looped.exec->exception->type, "ToolError");
  EXPECT_NE(looped.exec->exception->message.find("at most 3 times"), std::string::npos) << looped.exec->exception->message;
  EXPECT_EQ(looped.tool_calls.size(), 3u);  // the fourth never reached the model
  EXPECT_EQ(model.calls.size(), 4u);        // the top-level request and three sub-questions
  EXPECT_TRUE(r->samples.at(1).tool_calls.empty());
}

TEST(Solve, FlowConfigIsCheckedAndWandModelsAreRefused) {
  ScriptedBackend model;
  auto cfg = config("flow", 1, "wand");
  auto r = reason::solve(model, &shared_sandbox(), "q", cfg);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, llm::kInvalidRequest);
  EXPECT_NE(r.error().message.find("method flow needs a model that writes programs calling llm()"), std::string::npos);
  cfg = config("flow", 1);
  cfg.flow_calls = 0;
  EXPECT_NE(reason::validate(cfg).error().message.find("flow_calls 0"), std::string::npos);
  cfg = config("flow", 1, "completion");
  cfg.flow_tokens = 0;
  EXPECT_NE(reason::validate(cfg).error().message.find("flow_tokens 0"), std::string::npos);
  cfg = config("flow", 1, "completion");
  cfg.constrain = "pot";
  EXPECT_NE(reason::validate(cfg).error().message.find("a bare program with loops and conditions"), std::string::npos);
  EXPECT_TRUE(model.calls.empty());
}

// The real engine in the loop: a flow program asks the shipped model a sub-question in its own
// format (one user turn is the question: it replies with a program) and runs the reply.
class ScriptThenModel : public llm::Backend {
 public:
  ScriptThenModel(std::string program, llm::Backend& model) : program_(std::move(program)), model_(model) {}
  Result<std::vector<llm::Completion>> complete(const std::string&, const llm::GenerateOptions&) override {
    llm::Completion c;
    c.text = program_;
    return std::vector<llm::Completion>{c};
  }
  Result<std::vector<llm::Completion>> chat(const std::vector<llm::Message>& m, const llm::GenerateOptions& o) override {
    return model_.chat(m, o);  // the sub-questions (the top level is the completion prompt)
  }
  std::string id() const override { return model_.id(); }

 private:
  std::string program_;
  llm::Backend& model_;
};

TEST(Solve, FlowAsksTheShippedModelThroughTheRealSandbox) {
  auto model = llm::open_backend(std::string("local:") + WAND_MODELS_DIR + "/wand-pot.gguf");
  ASSERT_TRUE(model) << model.error().message;
  ScriptThenModel top(
      "reply = llm('Ava has 23 apples. She gets 17 more and then gives away 9. How many apples does she have now?')\n"
      "scope = {}\n"
      "exec(reply.split('\\nQuestion:')[0], scope)\n"
      "answer = scope['answer'] * 2\n",
      **model);
  auto cfg = config("flow", 1, "completion");
  cfg.repair = cfg.fallback = false;
  cfg.timeout_s = 60;  // the sub-call generates on the host while the program waits
  auto r = reason::solve(top, &shared_sandbox(), "Ava counts her apples twice. What total does she get?", cfg);
  ASSERT_TRUE(r) << r.error().message;
  const auto& s = r->samples.at(0);
  ASSERT_EQ(s.tool_calls.size(), 1u) << reason::to_json(*r).dump(2);
  EXPECT_NE(s.tool_calls[0].value("completion", "").find("answer"), std::string::npos) << s.tool_calls.dump();
  EXPECT_GT(s.tool_calls[0].value("completion_tokens", 0), 0);
  ASSERT_TRUE(r->answer) << reason::to_json(*r).dump(2);
  EXPECT_EQ(*r->answer, "62");
}

// --- the real engine: the shipped model writes the programs

TEST(Solve, ShippedModelPalKEightAnswersAHeldOutProblem) {
  auto model = llm::open_backend(std::string("local:") + WAND_MODELS_DIR + "/wand-pot.gguf");
  ASSERT_TRUE(model) << model.error().message;
  std::ifstream in(std::string(WAND_MODELS_DIR) + "/heldout-numbers.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  Json p = Json::parse(line);
  auto cfg = config("pal", 8, "wand");
  cfg.seed = 1;
  auto r = reason::solve(**model, &shared_sandbox(), p["question"], cfg);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->answer);
  EXPECT_TRUE(feedback::answers_match(*r->answer, p["answer"].is_string() ? p["answer"].get<std::string>() : p["answer"].dump()))
      << *r->answer << " for " << p.dump();
  EXPECT_EQ(r->samples.size(), 8u);
  int voted = 0;
  for (auto& e : r->vote.distribution) voted += e.votes;
  EXPECT_GE(voted, 5);
}

}  // namespace
}  // namespace wand::test
