// src/codegen: visible tests, assert parsing, CodeT's dual agreement, each method's control flow
// (a scripted backend, the real sandbox), --dataset samples read back by `wand eval`, the run
// store's records and the training data exported from them.
#include <sys/wait.h>

#include <filesystem>
#include <functional>
#include <set>

#include <fmt/core.h>

#include "codegen/codegen.h"
#include "codegen/export.h"
#include "store/store.h"
#include "scripted_backend.h"
#include "support.h"

namespace wand::test {
namespace {

std::string fenced(const std::string& code) {
  return "Here you go:\n```python\n" + code + (code.ends_with("\n") ? "" : "\n") + "```\n";
}

const std::string kAddRight = "def add(a, b):\n    return a + b\n";
const std::string kAddWrong = "def add(a, b):\n    return a - b\n";
const std::string kAddBroken = "def add(a, b)\n    return a + b\n";

codegen::Problem add_problem() {
  return codegen::problem_from_description("Return the sum of a and b.\n>>> add(2, 3)\n5\n", {"assert add(2, 3) == 5",
                                                                                           "assert add(-1, 1) == 0"});
}

codegen::CodeConfig config(std::string method, int k = 1, int rounds = 3) {
  codegen::CodeConfig c;
  c.method = std::move(method);
  c.k = k;
  c.rounds = rounds;
  c.family = "chat";
  c.seed = 7;
  return c;
}

int coder_steps(const codegen::CodeResult& r) {
  return static_cast<int>(std::count_if(r.steps.begin(), r.steps.end(), [](auto& s) { return s.role == "coder"; }));
}

// --- visible tests and asserts

TEST(Codegen, DocstringExamplesOfHumanEvalBecomeAsserts) {
  auto tasks = feedback::load_tasks(std::string(WAND_SHARED_DATA) + "/humaneval/HumanEval.jsonl");
  ASSERT_TRUE(tasks) << tasks.error().message;
  auto p0 = codegen::problem_from_task((*tasks)[0]);
  EXPECT_EQ(p0.entry, "has_close_elements");
  ASSERT_EQ(p0.visible.size(), 2u);
  EXPECT_EQ(p0.visible[0], "assert has_close_elements([1.0, 2.0, 3.0], 0.5) == False");
  EXPECT_EQ(p0.visible[1], "assert has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) == True");
  // The reference solution passes its own examples; a wrong one does not.
  auto& sb = shared_sandbox();
  std::vector<std::string> progs = {codegen::program_of(p0, (*tasks)[0].reference), codegen::program_of(p0, "    return True\n")};
  auto v = codegen::run_tests(sb, p0, progs, p0.visible, {}, 10);
  EXPECT_TRUE(v[0].passed) << v[0].feedback;
  EXPECT_FALSE(v[1].passed);
  EXPECT_EQ(v[1].tests.size(), 2u);
  // The examples kept from every HumanEval prompt are ones its reference passes, but for two
  // docstrings that are wrong in the dataset itself: HumanEval/47's median example (15.0; the
  // reference, and the tests, say 8.0) and HumanEval/148's `bf(...) ==> ("Venus")`, a string where
  // the function returns a tuple.
  std::set<std::string> wrong_in_dataset = {"HumanEval/47", "HumanEval/148"};
  int with_examples = 0;
  for (auto& t : *tasks) {
    auto p = codegen::problem_from_task(t);
    auto ok = codegen::parseable_asserts(sb, p.visible, 10, p.entry);
    if (ok.empty()) continue;
    ++with_examples;
    auto r = codegen::run_tests(sb, p, {codegen::program_of(p, t.reference)}, ok, {}, 10);
    EXPECT_EQ(r[0].passed, !wrong_in_dataset.contains(t.task_id)) << t.task_id << ": " << r[0].feedback;
  }
  EXPECT_GE(with_examples, 120);  // `>>>` examples and `f(x) ==> y` forms
}

TEST(Codegen, DocstringArrowForms) {
  auto a = codegen::docstring_examples("For example:\n    f(3) ==> 9\n    f([1, 2]) ➞ 2\n  - f('a') -> 'b'.\n"
                                       "The result of f(4) is large.\n    g(1) == 2\n",
                                       "f");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0], "assert f(3) == 9");
  EXPECT_EQ(a[1], "assert f([1, 2]) == 2");
  EXPECT_EQ(a[2], "assert f('a') == 'b'");
}

TEST(Codegen, MbppVisibleTestIsTheFirstListed) {
  auto tasks = feedback::load_tasks(std::string(WAND_SHARED_DATA) + "/mbpp/mbpp.jsonl");
  ASSERT_TRUE(tasks);
  auto p = codegen::problem_from_task((*tasks)[10]);  // task 11
  EXPECT_EQ(p.task.task_id, "11");
  EXPECT_EQ(p.entry, "remove_Occ");
  ASSERT_EQ(p.visible.size(), 1u);
  EXPECT_EQ(p.visible[0], (*tasks)[10].test_list[0]);
  // The entry point is the first call that is neither a builtin nor an attribute.
  EXPECT_EQ(codegen::problem_from_task((*tasks)[1]).entry, "similar_elements");  // assert set(similar_elements(...)) == ...
  EXPECT_EQ(codegen::problem_from_description("x", {"assert math.isclose(area(2), 12.5, rel_tol=0.001)"}).entry, "area");
  // A first test that calls nothing: a later test names the function.
  feedback::Task later = (*tasks)[10];
  later.test_list.insert(later.test_list.begin(), "assert True");
  EXPECT_EQ(codegen::problem_from_task(later).entry, "remove_Occ");
  // Every MBPP task's entry point is a function its reference defines.
  for (auto& t : *tasks) {
    auto e = codegen::problem_from_task(t).entry;
    EXPECT_NE(t.reference.find("def " + e), std::string::npos) << t.task_id << ": " << e;
  }
}

TEST(Codegen, StdioVisibleTestIsTheFirstCase) {
  feedback::Task t;
  t.format = "stdio";
  t.kind = feedback::TaskKind::stdio;
  t.prompt = "Print the sum of two numbers.";
  t.io = {{"1 2\n", "3\n"}, {"5 5\n", "10\n"}};
  auto p = codegen::problem_from_task(t);
  ASSERT_EQ(p.visible_io.size(), 1u);
  EXPECT_EQ(p.visible_io[0].first, "1 2\n");
  EXPECT_TRUE(p.visible.empty());
}

TEST(Codegen, ParsesAssertsOutOfModelOutput) {
  std::string out =
      "Sure! Here are the tests:\n```python\nassert add(1, 2) == 3\nassert add(\n    [1],\n    [2]) == [1, 2]\n"
      ">>> add(0, 0)\n0\nprint('x')\nassert add(1, 2) ==  3\nassert other(1) == 1\n```\nAnd one more:\n```\nassert add(5, 5) == 10\n```\n";
  auto a = codegen::parse_asserts(out, "add");
  ASSERT_EQ(a.size(), 4u) << Json(a).dump();
  EXPECT_EQ(a[0], "assert add(1, 2) == 3");
  EXPECT_EQ(a[1], "assert add( [1], [2]) == [1, 2]");
  EXPECT_EQ(a[2], "assert add(0, 0) == 0");
  EXPECT_EQ(a[3], "assert add(5, 5) == 10");
  // Bare text, a REPL session, and an assert cut off by max_tokens (dropped by the parse check).
  auto b = codegen::parse_asserts(">>> assert add(1, 1) == 2\nassert add(2, 2) == 4\nassert add((1, 2", "add");
  ASSERT_EQ(b.size(), 3u);
  auto ok = codegen::parseable_asserts(shared_sandbox(), b);
  EXPECT_EQ(ok, (std::vector<std::string>{"assert add(1, 1) == 2", "assert add(2, 2) == 4"}));
  EXPECT_TRUE(codegen::parse_asserts("no tests here", "add").empty());
}

// --- CodeT's dual agreement on hand-built pass matrices

TEST(Codegen, DualAgreementPicksTheLargestConsensus) {
  // Programs 1, 3 and 4 pass tests {0, 1} (score 3 x 2 = 6); program 0 passes {0, 1, 2} alone
  // (1 x 3 = 3); program 2 passes nothing (0).
  std::vector<std::vector<bool>> pass = {{true, true, true}, {true, true, false}, {false, false, false},
                                         {true, true, false}, {true, true, false}};
  auto a = codegen::dual_agreement(pass);
  EXPECT_EQ(a.pick, 1);
  EXPECT_EQ(a.group, (std::vector<int>{1, 3, 4}));
  EXPECT_EQ(a.tests_passed, 2);
  EXPECT_EQ(a.score, 6);
  EXPECT_EQ(a.groups, 3);
}

TEST(Codegen, DualAgreementTiesAreDeterministic) {
  // Scores tie at 2: {0,1} x 1 program (program 2) and {0} x 2 programs (0, 1): more tests wins.
  auto a = codegen::dual_agreement({{true, false}, {true, false}, {true, true}});
  EXPECT_EQ(a.pick, 2);
  // Same score and tests: {0} by programs 1, 2 vs {1} by programs 0, 3: the group whose first
  // program comes first.
  auto b = codegen::dual_agreement({{false, true}, {true, false}, {true, false}, {false, true}});
  EXPECT_EQ(b.pick, 0);
  EXPECT_EQ(b.group, (std::vector<int>{0, 3}));
  // No tests: one group, program 0.
  auto c = codegen::dual_agreement({{}, {}, {}});
  EXPECT_EQ(c.pick, 0);
  EXPECT_EQ(c.score, 0);
}

// --- the methods' control flow, with the real sandbox

TEST(Codegen, SelfDebugStopsOnSuccess) {
  ScriptedBackend m;
  m.add({fenced(kAddWrong)});
  m.add({fenced(kAddRight)});
  m.add({fenced(kAddWrong)});
  auto r = codegen::generate(m, shared_sandbox(), add_problem(), config("self-debug"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(m.calls.size(), 2u);  // the first program, one round, then it stopped
  EXPECT_EQ(coder_steps(*r), 2);
  EXPECT_EQ(r->steps[r->chosen_step].round, 1);
  EXPECT_TRUE(r->steps[0].visible && !r->steps[0].visible->passed);
  EXPECT_TRUE(r->hidden && r->hidden->passed);
  EXPECT_EQ(r->program, kAddRight);
  // Unit feedback: the second call continues the chat with the failing test, expected vs got.
  const auto& turns = m.calls[1].messages;
  ASSERT_GE(turns.size(), 2u);
  EXPECT_EQ(turns[turns.size() - 2].role, "assistant");
  EXPECT_NE(turns.back().content.find("expected 5, got -1"), std::string::npos) << turns.back().content;
  EXPECT_NE(r->how.find("after 1 round"), std::string::npos) << r->how;
}

TEST(Codegen, SelfDebugRoundLimitHolds) {
  ScriptedBackend m;
  for (int i = 0; i < 10; ++i) m.add({fenced(kAddWrong)});
  auto r = codegen::generate(m, shared_sandbox(), add_problem(), config("self-debug", 1, 2));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(m.calls.size(), 3u);  // 1 + R
  EXPECT_EQ(coder_steps(*r), 3);
  EXPECT_EQ(r->steps[r->chosen_step].round, 2);
  EXPECT_FALSE(r->hidden->passed);
  // R = 0: the first program only.
  ScriptedBackend z;
  z.add({fenced(kAddWrong)});
  auto r0 = codegen::generate(z, shared_sandbox(), add_problem(), config("self-debug", 1, 0));
  ASSERT_TRUE(r0);
  EXPECT_EQ(z.calls.size(), 1u);
}

Error too_long() { return Error{"the prompt has 300 tokens; the model's context holds 256", std::string(llm::kContextLengthExceeded)}; }

TEST(Codegen, AFeedbackRoundThatOutgrowsTheContextEndsTheChain) {
  ScriptedBackend m;
  m.add({fenced(kAddWrong)});
  m.errors[1] = too_long();
  auto r = codegen::generate(m, shared_sandbox(), add_problem(), config("self-debug"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(m.calls.size(), 2u);
  EXPECT_EQ(coder_steps(*r), 1);
  EXPECT_EQ(r->program, kAddWrong);
  EXPECT_NE(r->how.find("1 chain(s) stopped early"), std::string::npos) << r->how;
  // Another error of the backend is the run's error.
  ScriptedBackend n;
  n.add({fenced(kAddWrong)});
  n.errors[1] = Error{"connection refused"};
  auto e = codegen::generate(n, shared_sandbox(), add_problem(), config("self-debug"));
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message, "connection refused");
}

TEST(Codegen, SelfDebugFeedbackLevels) {
  for (std::string level : {"simple", "explain"}) {
    ScriptedBackend m;
    m.add({fenced(kAddWrong)});
    if (level == "explain") m.add({"It subtracts b from a."});
    m.add({fenced(kAddRight)});
    auto c = config("self-debug");
    c.feedback = level;
    auto r = codegen::generate(m, shared_sandbox(), add_problem(), c);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r->hidden->passed) << level;
    std::string last = m.calls.back().messages.back().content;
    if (level == "simple") {
      EXPECT_NE(last.find("is wrong"), std::string::npos) << last;
      EXPECT_EQ(last.find("expected"), std::string::npos) << last;  // no test details at this level
    } else {
      ASSERT_EQ(m.calls.size(), 3u);
      EXPECT_EQ(r->steps[1].role, "explainer");
      // The model explained its program before it saw the verdict, and that turn stays in the chat.
      EXPECT_NE(m.calls[1].messages.back().content.find("line by line"), std::string::npos);
      EXPECT_NE(m.calls[2].text().find("It subtracts b from a."), std::string::npos);
      EXPECT_NE(last.find("expected 5, got -1"), std::string::npos) << last;
    }
  }
}

feedback::Task sum_stdio_task() {
  feedback::Task t;
  t.task_id = "sum";
  t.format = "stdio";
  t.kind = feedback::TaskKind::stdio;
  t.prompt = "Read two integers and print their sum.";
  t.io = {{"1 2\n", "3\n"}, {"10 -4\n", "6\n"}};
  return t;
}

const std::string kSumRight = "a, b = map(int, input().split())\nprint(a + b)\n";
const std::string kSumWrong = "a, b = map(int, input().split())\nprint(a * b)\n";

TEST(Codegen, SelfDebugOnStdioRunsTheFirstCaseOnly) {
  auto p = codegen::problem_from_task(sum_stdio_task());
  ScriptedBackend m;
  m.add({fenced(kSumWrong)});
  m.add({fenced(kSumRight)});
  auto r = codegen::generate(m, shared_sandbox(), p, config("self-debug"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(m.calls.size(), 2u);
  EXPECT_EQ(r->steps[0].visible->tests.size(), 1u);  // the first case only
  EXPECT_NE(m.calls[0].text().find("Input:\n1 2\nOutput:\n3\n"), std::string::npos) << m.calls[0].text();
  EXPECT_NE(m.calls[1].text().find("expected `3"), std::string::npos) << m.calls[1].text();
  EXPECT_TRUE(r->hidden->passed);
  EXPECT_EQ(r->hidden->tests.size(), 2u);  // judged on every case
}

TEST(Codegen, CompletionModelsGetHumanEvalAndMbppPromptShapes) {
  auto he = feedback::load_tasks(std::string(WAND_SHARED_DATA) + "/humaneval/HumanEval.jsonl");
  auto mb = feedback::load_tasks(std::string(WAND_SHARED_DATA) + "/mbpp/mbpp.jsonl");
  ASSERT_TRUE(he && mb);
  auto c = config("sample");
  c.family = "completion";
  // HumanEval: the prompt itself, continued with the body; stops end the function.
  ScriptedBackend m;
  m.add({(*he)[0].reference});
  auto p = codegen::problem_from_task((*he)[0]);
  auto r = codegen::generate(m, shared_sandbox(), p, c);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(m.calls[0].prompt, (*he)[0].prompt);
  EXPECT_NE(std::find(m.calls[0].opt.stop.begin(), m.calls[0].opt.stop.end(), "\ndef "), m.calls[0].opt.stop.end());
  EXPECT_EQ(r->completion, (*he)[0].reference);
  EXPECT_TRUE(r->hidden->passed) << r->hidden->feedback;
  // MBPP: the description and its first test, the code between [BEGIN] and [DONE].
  ScriptedBackend n;
  n.add({(*mb)[10].reference + "\n"});
  auto q = codegen::problem_from_task((*mb)[10]);
  auto s = codegen::generate(n, shared_sandbox(), q, c);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_NE(n.calls[0].prompt.find((*mb)[10].prompt), std::string::npos);
  EXPECT_NE(n.calls[0].prompt.find((*mb)[10].test_list[0] + "\n"), std::string::npos);
  EXPECT_EQ(n.calls[0].prompt.find((*mb)[10].test_list[1]), std::string::npos);  // the other tests stay hidden
  EXPECT_TRUE(n.calls[0].prompt.ends_with("[BEGIN]\n")) << n.calls[0].prompt;
  EXPECT_EQ(n.calls[0].opt.stop, std::vector<std::string>{"[DONE]"});
  EXPECT_TRUE(s->hidden->passed) << s->hidden->feedback;
}

TEST(Codegen, SelfDebugNeedsVisibleTests) {
  ScriptedBackend m;
  auto p = codegen::problem_from_description("Return the sum of a and b.", {}, "add");
  auto r = codegen::generate(m, shared_sandbox(), p, config("self-debug"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, llm::kInvalidRequest);
  EXPECT_NE(r.error().message.find("visible tests"), std::string::npos);
  EXPECT_TRUE(m.calls.empty());
  // A dataset record whose prompt shows no runnable example: its first program stands.
  auto tasks = feedback::load_tasks(std::string(WAND_SHARED_DATA) + "/humaneval/HumanEval.jsonl");
  ASSERT_TRUE(tasks);
  auto he38 = codegen::problem_from_task((*tasks)[38]);
  ScriptedBackend d;
  d.add({fenced("def decode_cyclic(s):\n    return s\n")});
  auto r38 = codegen::generate(d, shared_sandbox(), he38, config("self-debug"));
  ASSERT_TRUE(r38) << r38.error().message;
  EXPECT_EQ(d.calls.size(), 1u);
  EXPECT_NE(r38->how.find("no examples to run"), std::string::npos) << r38->how;
  EXPECT_FALSE(r38->hidden->passed);
}

TEST(Codegen, CodetPicksByDualAgreement) {
  ScriptedBackend m;
  // Programs: 0 wrong, 1 right, 2 broken, 3 right (another way), 4 wrong. Tests: three right,
  // one wrong (add(1, 1) == 3), one that does not parse. Right programs pass 3 tests each (group
  // of 2: score 6); wrong ones pass the wrong test and add(0, 0) == 0 (group of 2: 2 x 2 = 4).
  m.add({fenced(kAddWrong), fenced(kAddRight), fenced(kAddBroken), fenced("def add(a, b):\n    return sum([a, b])\n"),
         fenced(kAddWrong)});
  m.add({"```python\nassert add(2, 2) == 4\nassert add(1, 1) == 3\nassert add(0, 0) == 0\nassert add(\n```",
         "assert add(3, 4) == 7\nassert add(2, 2) == 4", "nothing"});
  auto c = config("codet", 5);
  c.temperature = 0.8f;
  auto p = codegen::problem_from_description("Return the sum of a and b.", {"assert add(10, 5) == 15"}, "add");
  auto r = codegen::generate(m, shared_sandbox(), p, c);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(m.calls.size(), 2u);  // programs in one call (n = 5), tests in one (3 samples)
  EXPECT_EQ(m.calls[0].opt.n, 5);
  EXPECT_EQ(m.calls[1].opt.n, 3);
  EXPECT_EQ(r->tests, (std::vector<std::string>{"assert add(2, 2) == 4", "assert add(1, 1) == 3", "assert add(0, 0) == 0",
                                                "assert add(3, 4) == 7"}));
  ASSERT_TRUE(r->agreement);
  EXPECT_EQ(r->agreement->pick, 1);
  EXPECT_EQ(r->agreement->group, (std::vector<int>{1, 3}));
  EXPECT_EQ(r->agreement->tests_passed, 3);
  EXPECT_EQ(r->agreement->score, 6);
  EXPECT_TRUE(r->hidden->passed);
  ASSERT_TRUE(r->random_pick_pass);
  EXPECT_DOUBLE_EQ(*r->random_pick_pass, 0.4);  // 2 of 5 programs pass the hidden test
  EXPECT_EQ(r->finals.size(), 1u);
  // The tester never saw a program.
  EXPECT_EQ(m.calls[1].text().find("return a"), std::string::npos);
}

TEST(Codegen, RolesDiscardAContradictingTestAndFeedFailuresBack) {
  ScriptedBackend m;
  m.add({"```python\nassert add(2, 3) == 6\nassert add(2,3) == 5.0\nassert add(1, 1) == 2\nassert add(0, 7) == 7\n"
         "assert add( 2, 3 ) == (6), \"a message, with a comma\"\n```"});
  m.add({fenced("def add(a, b):\n    return a * b + 1\n")});
  m.add({fenced(kAddRight)});
  auto p = codegen::problem_from_description("Return the sum of a and b.\n>>> add(2, 3)\n5\n", {}, "");
  EXPECT_EQ(p.entry, "add");
  EXPECT_EQ(p.visible, (std::vector<std::string>{"assert add(2, 3) == 5"}));
  auto r = codegen::generate(m, shared_sandbox(), p, config("roles"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->discarded, (std::vector<std::string>{"assert add(2, 3) == 6", "assert add( 2, 3 ) == (6), \"a message, with a comma\""}));
  EXPECT_EQ(r->tests, (std::vector<std::string>{"assert add(2, 3) == 5", "assert add(2,3) == 5.0", "assert add(1, 1) == 2",
                                                "assert add(0, 7) == 7"}));
  ASSERT_EQ(m.calls.size(), 3u);
  EXPECT_EQ(r->steps[0].role, "tester");
  // The tester's own asserts reach the coder only as feedback: the first prompt shows the examples.
  EXPECT_EQ(m.calls[1].text().find("add(0, 7)"), std::string::npos);
  EXPECT_NE(m.calls[2].text().find("`assert add(0, 7) == 7`: expected 7, got 1"), std::string::npos) << m.calls[2].text();
  const auto& chosen = r->steps[r->chosen_step];
  EXPECT_EQ(chosen.round, 1);
  EXPECT_TRUE(chosen.visible->passed);
  EXPECT_EQ(chosen.visible->tests.size(), 4u);
}

TEST(Codegen, RolesWithoutAnyTestKeepTheCodersFirstProgram) {
  ScriptedBackend m;
  m.add({"I cannot write tests."});
  m.add({fenced(kAddRight)});
  auto p = codegen::problem_from_description("Return the sum of a and b.", {}, "add");
  auto r = codegen::generate(m, shared_sandbox(), p, config("roles"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(m.calls.size(), 2u);
  EXPECT_TRUE(r->tests.empty());
  EXPECT_EQ(r->program, kAddRight);
  EXPECT_NE(r->how.find("wrote no usable asserts"), std::string::npos) << r->how;
}

TEST(Codegen, ParsesIoCasesOutOfModelOutput) {
  std::string out =
      "Here are the cases:\n```\nInput:\n1 2\nOutput:\n3\n\nInput: 5 5\nOutput: 10\n```\nCase three:\nInput:\n2\n3 4\n"
      "Output:\n7\nInput:\n1 2\nOutput:\n3\n\nInput:\n9 9\nThat is all.\n";
  auto c = codegen::parse_io_cases(out);
  // The repeated first case and the last block (no Output:) are dropped; a label's own line counts.
  ASSERT_EQ(c.size(), 3u) << Json(c).dump();
  EXPECT_EQ(c[0], (std::pair<std::string, std::string>{"1 2\n", "3\n"}));
  EXPECT_EQ(c[1], (std::pair<std::string, std::string>{"5 5\n", "10\n"}));
  EXPECT_EQ(c[2], (std::pair<std::string, std::string>{"2\n3 4\n", "7\n"}));
  EXPECT_EQ(codegen::case_text(c[0]), "Input:\n1 2\nOutput:\n3\n");
  EXPECT_TRUE(codegen::parse_io_cases("no cases here").empty());
}

// CodeT on a stdin/stdout task: the tester writes input/output cases, every program runs against
// every case, and dual agreement picks as it does with asserts.
TEST(Codegen, CodetOnStdioRunsProgramsAgainstGeneratedCases) {
  ScriptedBackend m;
  // Programs 0 and 2 multiply (they pass only `2 2 -> 4`: group of 2 x 1 case = 2); programs 1 and 3
  // add (they pass the three right cases: 2 x 3 = 6).
  m.add({fenced(kSumWrong), fenced(kSumRight), fenced(kSumWrong), fenced("import sys\nprint(sum(map(int, sys.stdin.read().split())))\n")});
  m.add({"Input:\n2 2\nOutput:\n4\n\nInput:\n3 4\nOutput:\n7\n", "```\nInput:\n0 5\nOutput:\n5\n```", "no cases"});
  auto c = config("codet", 4);
  c.temperature = 0.8f;
  auto r = codegen::generate(m, shared_sandbox(), codegen::problem_from_task(sum_stdio_task()), c);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(m.calls.size(), 2u);
  EXPECT_NE(m.calls[1].text().find("standard input"), std::string::npos) << m.calls[1].text();  // prompts/tests_io.chat.txt
  EXPECT_EQ(r->tests, (std::vector<std::string>{"Input:\n2 2\nOutput:\n4\n", "Input:\n3 4\nOutput:\n7\n",
                                                "Input:\n0 5\nOutput:\n5\n"}));
  ASSERT_TRUE(r->agreement);
  EXPECT_EQ(r->agreement->pick, 1);
  EXPECT_EQ(r->agreement->group, (std::vector<int>{1, 3}));
  EXPECT_EQ(r->agreement->tests_passed, 3);
  EXPECT_EQ(r->agreement->score, 6);
  EXPECT_EQ(r->steps[r->chosen_step].visible->tests.size(), 3u);  // a result per case
  EXPECT_TRUE(r->hidden->passed);
  EXPECT_DOUBLE_EQ(*r->random_pick_pass, 0.5);
}

// The roles loop on a stdin/stdout task: a case whose input is the example's and whose output is
// not is discarded; the rest, with the example, judge the coder's programs and go back as feedback.
TEST(Codegen, RolesOnStdioDiscardAContradictingCase) {
  ScriptedBackend m;
  m.add({"Input:\n1 2\nOutput:\n4\n\nInput:\n 1  2 \nOutput:\n3\n\nInput:\n0 7\nOutput:\n7\n"});
  m.add({fenced(kSumWrong)});
  m.add({fenced(kSumRight)});
  auto r = codegen::generate(m, shared_sandbox(), codegen::problem_from_task(sum_stdio_task()), config("roles"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->discarded, (std::vector<std::string>{"Input:\n1 2\nOutput:\n4\n"}));
  EXPECT_EQ(r->tests, (std::vector<std::string>{"Input:\n1 2\nOutput:\n3\n", "Input:\n 1  2 \nOutput:\n3\n",
                                                "Input:\n0 7\nOutput:\n7\n"}));
  ASSERT_EQ(m.calls.size(), 3u);
  EXPECT_EQ(r->steps[0].role, "tester");
  EXPECT_EQ(m.calls[1].text().find("0 7"), std::string::npos);  // the tester's cases reach the coder as feedback only
  EXPECT_NE(m.calls[2].text().find("expected `3"), std::string::npos) << m.calls[2].text();
  const auto& chosen = r->steps[r->chosen_step];
  EXPECT_EQ(chosen.round, 1);
  EXPECT_TRUE(chosen.visible->passed);
  EXPECT_EQ(chosen.visible->tests.size(), 3u);
  EXPECT_TRUE(r->hidden->passed);
}

TEST(Codegen, CodetAndRolesNeedAFunction) {
  ScriptedBackend m;
  auto p = codegen::problem_from_description("Print hello.", {});
  for (std::string method : {"codet", "roles"}) {
    auto r = codegen::generate(m, shared_sandbox(), p, config(method));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("entry point"), std::string::npos) << r.error().message;
  }
  EXPECT_TRUE(m.calls.empty());
}

TEST(Codegen, ConfigIsValidatedNamingTheField) {
  auto bad = [](auto edit) {
    auto c = config("sample");
    edit(c);
    auto v = codegen::validate(c);
    return v ? std::string() : v.error().message;
  };
  EXPECT_NE(bad([](auto& c) { c.method = "magic"; }).find("method 'magic'"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.feedback = "loud"; }).find("feedback 'loud'"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.k = 0; }).find("k 0"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.rounds = 21; }).find("rounds 21"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.temperature = std::nanf(""); }).find("temperature"), std::string::npos);
  EXPECT_EQ(bad([](auto&) {}), "");
}

// --- a dataset: samples that `wand eval` reads unchanged

// Runs a shell command; its standard output, and its exit status in *rc.
std::string run_command(const std::string& cmd, int* rc) {
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  *rc = WEXITSTATUS(::pclose(p));
  return out;
}

struct Evaluated {
  int rc;
  Json summary;
};
Evaluated wand_eval(const std::string& dataset, const std::string& samples) {
  int rc = 0;
  auto out = run_command(fmt::format("{} eval --dataset {} --samples {} --json", WAND_BINARY, dataset, samples), &rc);
  auto j = parse_json(out, "wand eval's output");
  return {rc, j ? *j : Json()};
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "wand_codegen_" + name + "_" + std::to_string(::getpid());
}

TEST(Codegen, DatasetSamplesRoundTripThroughWandEval) {
  for (std::string which : {"humaneval/HumanEval.jsonl", "mbpp/mbpp.jsonl"}) {
    auto all = feedback::load_tasks(std::string(WAND_SHARED_DATA) + "/" + which);
    ASSERT_TRUE(all);
    // HumanEval's first three; MBPP's first three of the test split (ids 11-13).
    std::vector<feedback::Task> tasks(all->begin() + (which.starts_with("mbpp") ? 10 : 0),
                                      all->begin() + (which.starts_with("mbpp") ? 13 : 3));
    std::string dataset = temp_path("dataset.jsonl");
    {
      std::ofstream d(dataset);
      std::ifstream in(std::string(WAND_SHARED_DATA) + "/" + which);
      std::string line;
      for (int i = 0; std::getline(in, line); ++i)
        if (i >= (which.starts_with("mbpp") ? 10 : 0) && i < (which.starts_with("mbpp") ? 13 : 3)) d << line << "\n";
    }
    // The scripted model answers each task with its reference, whole, in a fence (as chat models
    // write it), then a wrong one.
    ScriptedBackend m;
    std::vector<codegen::Problem> problems;
    for (auto& t : tasks) {
      problems.push_back(codegen::problem_from_task(t));
      std::string right = t.format == "humaneval" ? t.prompt + t.reference : t.reference;
      m.add({fenced(right), fenced("def nothing():\n    pass\n")});
    }
    auto c = config("sample", 2);
    c.temperature = 0.8f;
    std::string samples = temp_path("samples.jsonl");
    std::ofstream out(samples);
    int seen = 0;
    auto s = codegen::run_dataset(m, shared_sandbox(), problems, c, out, [&](int i, const codegen::CodeResult& r) {
      EXPECT_EQ(i, seen++);
      EXPECT_EQ(r.finals.size(), 2u);
      return ok_status();
    });
    out.close();
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ((*s)["samples"], 6);
    EXPECT_DOUBLE_EQ((*s)["pass_at_1"].get<double>(), 0.5);
    auto lines = slurp(samples);
    EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 6);
    auto e = wand_eval(dataset, samples);
    ASSERT_EQ(e.rc, 0) << which;
    EXPECT_EQ(e.summary["tasks"], 3) << e.summary.dump();
    EXPECT_EQ(e.summary["samples"], 6) << e.summary.dump();
    EXPECT_DOUBLE_EQ(e.summary["pass_at_k"]["pass@1"].get<double>(), 0.5) << e.summary.dump();
    std::filesystem::remove(dataset);
    std::filesystem::remove(samples);
  }
}

TEST(Codegen, DatasetTaskWithAPromptTooLongGetsEmptySamplesAndTheRunGoesOn) {
  ScriptedBackend m;
  m.errors[0] = too_long();
  m.add({fenced(kAddRight)});
  std::vector<codegen::Problem> problems = {add_problem(), add_problem()};
  problems[0].task.task_id = "long", problems[1].task.task_id = "short";
  std::stringstream out;
  std::vector<std::string> outcomes;
  auto s = codegen::run_dataset(m, shared_sandbox(), problems, config("sample"), out, [&](int i, const codegen::CodeResult& r) {
    outcomes.push_back(codegen::problem_record(i, problems[i], r).outcome);
    return ok_status();
  });
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ((*s)["too_long"], 1);
  EXPECT_EQ((*s)["samples"], 2);
  EXPECT_DOUBLE_EQ((*s)["pass_at_1"].get<double>(), 0.5);
  // 1 of 2 chosen programs passed: Wilson's 95% interval is [0.0945, 0.9055].
  EXPECT_DOUBLE_EQ((*s)["chosen_pass_rate"].get<double>(), 0.5);
  EXPECT_NEAR((*s)["chosen_ci95"][0].get<double>(), 0.0945, 1e-4);
  EXPECT_NEAR((*s)["chosen_ci95"][1].get<double>(), 0.9055, 1e-4);
  EXPECT_EQ(outcomes, (std::vector<std::string>{"context_length_exceeded", "none"}));
  EXPECT_EQ(out.str(), "{\"completion\":\"\",\"task_id\":\"long\"}\n{\"completion\":\"def add(a, b):\\n    return a + b\\n\",\"task_id\":\"short\"}\n");
}

// --- the run store and training data

store::Run recorded(const codegen::CodeConfig& c, const codegen::Problem& p, const codegen::CodeResult& r,
                    const std::string& path) {
  auto db = store::Store::open(path);
  EXPECT_TRUE(db);
  auto id = (*db)->create_run(codegen::run_config(c, "", "scripted", "scripted", r.prompt_hash));
  EXPECT_TRUE(id);
  EXPECT_TRUE((*db)->record_problem(*id, codegen::problem_record(0, p, r)));
  auto run = (*db)->get_run(*id);
  EXPECT_TRUE(run);
  return *run;
}

std::vector<Json> rows_of(const store::Run& run, codegen::ExportOptions o, codegen::ExportStats* stats = nullptr) {
  std::stringstream out;
  auto s = codegen::export_training_data(run, o, out);
  EXPECT_TRUE(s) << s.error().message;
  if (stats && s) *stats = *s;
  std::vector<Json> rows;
  for (std::string line; std::getline(out, line);) rows.push_back(Json::parse(line));
  return rows;
}

TEST(Codegen, EveryRoundIsRecordedAndExportsInTheDocumentedShapes) {
  ScriptedBackend m;
  // Four samples of one prompt: right, wrong, right again (a duplicate after normalisation), broken.
  m.add({fenced(kAddRight), fenced(kAddWrong), fenced("# the sum\ndef add(a, b):\n\n    return a + b   \n"),
               fenced(kAddBroken)});
  auto c = config("sample", 4);
  c.temperature = 0.8f;
  auto p = add_problem();
  auto r = codegen::generate(m, shared_sandbox(), p, c);
  ASSERT_TRUE(r) << r.error().message;
  std::string path = temp_path("store.db");
  auto run = recorded(c, p, *r, path);
  EXPECT_EQ(run.info.config.kind, "code");
  ASSERT_EQ(run.problems.size(), 1u);
  const auto& pr = run.problems[0];
  ASSERT_EQ(pr.samples.size(), 4u);
  EXPECT_EQ(pr.correct, std::optional<bool>(true));
  EXPECT_EQ(pr.samples[1].extra["role"], "coder");
  EXPECT_EQ(pr.samples[1].extra["verified_by"], "tests");
  EXPECT_EQ(pr.samples[1].verdict["passed"], false);
  EXPECT_EQ(pr.samples[3].verdict["error_class"], "syntax_error");

  codegen::ExportStats st;
  auto sft = rows_of(run, {.format = "sft"}, &st);
  ASSERT_EQ(sft.size(), 1u);  // the two right programs are one after normalisation
  EXPECT_EQ(st.duplicates, 1);
  // Chat prompts: TRL's conversational prompt-completion.
  EXPECT_TRUE(sft[0]["prompt"].is_array());
  EXPECT_EQ(sft[0]["prompt"].back()["role"], "user");
  EXPECT_EQ(sft[0]["completion"][0]["role"], "assistant");
  EXPECT_EQ(sft[0]["completion"][0]["content"], fenced(kAddRight));
  EXPECT_EQ(sft[0]["run_id"], run.info.id);
  EXPECT_EQ(sft[0]["task_id"], "0");
  EXPECT_EQ(sft[0]["verdict"]["passed"], true);
  EXPECT_EQ(sft[0]["verdict"]["verified_by"], "tests");

  auto msgs = rows_of(run, {.format = "sft", .shape = "messages"});
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0]["messages"][0]["role"], "system");
  EXPECT_EQ(msgs[0]["messages"].back()["role"], "assistant");
  EXPECT_FALSE(msgs[0].contains("prompt"));

  auto dpo = rows_of(run, {.format = "dpo"});
  ASSERT_EQ(dpo.size(), 2u);  // each failing program with the passing one
  for (auto& row : dpo) {
    EXPECT_EQ(row["chosen"][0]["content"], fenced(kAddRight));
    EXPECT_EQ(row["verdict"]["chosen"]["passed"], true);
    EXPECT_EQ(row["verdict"]["rejected"]["passed"], false);
    EXPECT_EQ(row["run_id"], run.info.id);
  }
  EXPECT_EQ(dpo[0]["rejected"][0]["content"], fenced(kAddWrong));
  EXPECT_EQ(dpo[1]["rejected"][0]["content"], fenced(kAddBroken));
  auto capped = rows_of(run, {.format = "dpo", .per_task = 1}, &st);
  EXPECT_EQ(capped.size(), 1u);
  EXPECT_EQ(st.capped, 1);

  auto rw = rows_of(run, {.format = "rewards", .per_task = 0});
  ASSERT_EQ(rw.size(), 3u);
  EXPECT_EQ(rw[0]["reward"], 1.0);
  EXPECT_EQ(rw[0]["tests_passed"], 2);
  EXPECT_EQ(rw[0]["tests_total"], 2);
  EXPECT_EQ(rw[1]["reward"], -0.3);
  EXPECT_EQ(rw[1]["error_class"], "wrong_answer");
  EXPECT_EQ(rw[1]["tests_passed"], 0);  // a - b: -1 for add(2, 3), -2 for add(-1, 1)
  EXPECT_EQ(rw[2]["reward"], -1.0);
  EXPECT_EQ(rw[2]["error_class"], "syntax_error");
  for (auto& row : rw)
    for (const char* k : {"prompt", "completion", "reward", "error_class", "tests_passed", "tests_total", "run_id", "verdict"})
      EXPECT_TRUE(row.contains(k)) << k;
  std::filesystem::remove(path);
}

// One program judged passing once and failing once (it reads a random number or the clock) is
// verified by nothing: no sft row, no pair with it on both sides, no reward row; it is counted.
TEST(Codegen, AProgramJudgedBothWaysIsLeftOutOfEveryExport) {
  ScriptedBackend m;
  m.add({fenced(kAddRight), fenced(kAddRight), fenced(kAddWrong)});
  auto c = config("sample", 3);
  c.temperature = 0.8f;
  auto p = add_problem();
  auto r = codegen::generate(m, shared_sandbox(), p, c);
  ASSERT_TRUE(r) << r.error().message;
  std::string path = temp_path("flaky.db");
  auto run = recorded(c, p, *r, path);
  ASSERT_EQ(run.problems[0].samples.size(), 3u);
  auto& second = run.problems[0].samples[1].verdict;  // as a flaky program's second run would be judged
  ASSERT_EQ(second["passed"], true);
  second["passed"] = false, second["error_class"] = "wrong_answer";
  codegen::ExportStats st;
  EXPECT_TRUE(rows_of(run, {.format = "sft"}, &st).empty());
  EXPECT_EQ(st.flaky, 1);
  EXPECT_TRUE(rows_of(run, {.format = "dpo"}).empty()) << "the only passing program is the flaky one";
  auto rw = rows_of(run, {.format = "rewards", .per_task = 0});
  ASSERT_EQ(rw.size(), 1u);
  EXPECT_EQ(rw[0]["completion"][0]["content"], fenced(kAddWrong));
  std::filesystem::remove(path);
}

// A reasoning run, as `wand bench` records one, in a new store at `path`.
struct ReasoningRun {
  std::unique_ptr<store::Store> db;
  std::string id;
};
ReasoningRun reasoning_run(const std::string& path) {
  auto db = store::Store::open(path);
  EXPECT_TRUE(db);
  store::RunConfig rc;
  rc.kind = "bench";
  rc.method = "pot";
  auto id = (*db)->create_run(rc);
  EXPECT_TRUE(id);
  return {std::move(*db), *id};
}

TEST(Codegen, ReasoningRunsExportProgramsWhoseAnswerMatchedTheLabel) {
  std::string path = temp_path("reason.db");
  auto [db, id] = reasoning_run(path);
  auto sample = [](int i, std::string program, std::optional<std::string> answer, std::string error_class) {
    store::SampleRecord s;
    s.index = i;
    s.prompt = "Question: 2 + 3?\nProgram:\n";
    s.completion = program;
    s.program = program;
    s.answer = answer;
    s.verdict = {{"passed", error_class == "none"}, {"error_class", error_class}, {"reward", error_class == "none" ? 1.0 : -0.6}};
    s.extra = {{"method", "pot"}};
    return s;
  };
  store::ProblemRecord labelled;
  labelled.index = 0;
  labelled.input = "2 + 3?";
  labelled.expected = "5";
  labelled.samples = {sample(0, "answer = 2 + 3\n", "5", "none"), sample(1, "answer = 2 * 3\n", "6", "none"),
                      sample(2, "answer = 2 +\n", std::nullopt, "syntax_error"), sample(3, "answer = 5.0\n", "5.0", "none")};
  store::ProblemRecord unlabelled = labelled;
  unlabelled.index = 1;
  unlabelled.expected = "";
  ASSERT_TRUE(db->record_problem(id, labelled));
  ASSERT_TRUE(db->record_problem(id, unlabelled));
  auto run = db->get_run(id);
  ASSERT_TRUE(run);
  codegen::ExportStats st;
  auto sft = rows_of(*run, {.format = "sft"}, &st);
  ASSERT_EQ(sft.size(), 2u);  // answers 5 and 5.0 match the label
  EXPECT_EQ(sft[0]["prompt"], "Question: 2 + 3?\nProgram:\n");
  EXPECT_EQ(sft[0]["completion"], "answer = 2 + 3\n");
  EXPECT_EQ(sft[0]["verdict"]["verified_by"], "label");
  EXPECT_EQ(st.unlabelled, 1);
  auto rw = rows_of(*run, {.format = "rewards"});
  ASSERT_EQ(rw.size(), 4u);
  EXPECT_EQ(rw[1]["error_class"], "wrong_answer");
  EXPECT_EQ(rw[1]["reward"], -0.3);
  EXPECT_EQ(rw[2]["error_class"], "syntax_error");
  EXPECT_EQ(rw[2]["reward"], -0.6);  // as recorded
  auto dpo = rows_of(*run, {.format = "dpo"});
  ASSERT_EQ(dpo.size(), 2u);
  EXPECT_EQ(dpo[0]["prompt"], "Question: 2 + 3?\nProgram:\n");
  EXPECT_EQ(dpo[0]["chosen"], "answer = 2 + 3\n");
  EXPECT_EQ(dpo[0]["rejected"], "answer = 2 * 3\n");
  EXPECT_EQ(dpo[1]["chosen"], "answer = 5.0\n");  // the passing ones in turn
  // An outcome verifier's rows: every program that answered, labelled by its answer.
  auto ver = rows_of(*run, {.format = "verifier", .per_task = 0});
  ASSERT_EQ(ver.size(), 3u);  // the syntax error answered nothing
  EXPECT_EQ(ver[0]["prompt"], "Question: 2 + 3?\nProgram:\nanswer = 2 + 3\nAnswer: 5\nRight: ");
  EXPECT_EQ(ver[0]["completion"], "1");
  EXPECT_EQ(ver[1]["prompt"], "Question: 2 + 3?\nProgram:\nanswer = 2 * 3\nAnswer: 6\nRight: ");
  EXPECT_EQ(ver[1]["completion"], "0");
  EXPECT_EQ(ver[2]["completion"], "1");
  EXPECT_EQ(ver[2]["answer"], "5.0");
  EXPECT_EQ(codegen::document_of(ver[1]), "Question: 2 + 3?\nProgram:\nanswer = 2 * 3\nAnswer: 6\nRight: 0");
  // Balanced: as many wrong rows as right (here one wrong, both right), tasks without both labels left out.
  auto bal = rows_of(*run, {.format = "verifier", .per_task = 0, .balanced = true});
  ASSERT_EQ(bal.size(), 3u);
  EXPECT_EQ(bal[1]["completion"], "0");
  store::ProblemRecord all_right = labelled;
  all_right.index = 2;
  all_right.samples = {sample(0, "answer = 2 + 3\n", "5", "none")};
  ASSERT_TRUE(db->record_problem(id, all_right));
  EXPECT_EQ(rows_of(*db->get_run(id), {.format = "verifier", .per_task = 0, .balanced = true}).size(), 3u);
  EXPECT_EQ(rows_of(*db->get_run(id), {.format = "verifier", .per_task = 0}).size(), 4u);
  EXPECT_EQ(codegen::validate({.format = "sft", .balanced = true}).error().message, "--balanced is an option of --format verifier");
  std::filesystem::remove(path);
}

// The loop inside wand: a run's verified programs -> `wand export --corpus` -> `wand-train --init`.

// The loss wand-train logged first and last ("done: first logged loss X, last Y").
std::pair<double, double> losses(const std::string& log) {
  auto at = log.find("first logged loss ");
  if (at == std::string::npos) return {-1, -1};
  double first = std::atof(log.c_str() + at + 18);
  auto last = log.find(", last ", at);
  return {first, std::atof(log.c_str() + last + 7)};
}

TEST(Codegen, ExportedProgramsFineTuneACheckpoint) {
  namespace fs = std::filesystem;
  fs::path dir = temp_path("loop");
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string store = (dir / "runs.db").string();
  {
    auto [db, id] = reasoning_run(store);
    for (int i = 0; i < 80; ++i) {  // labelled problems, one right and one wrong program each
      store::ProblemRecord p;
      p.index = i;
      p.expected = std::to_string(i + 7);
      for (int k = 0; k < 2; ++k) {
        store::SampleRecord s;
        s.index = k;
        s.prompt = fmt::format("Question: Ann has {} pens and buys 7 more. How many pens does she have?\nProgram:\n", i);
        s.program = s.completion = fmt::format("pens = {}\nbought = 7\nanswer = pens {} bought\n", i, k ? "-" : "+");
        s.answer = std::to_string(k ? i - 7 : i + 7);
        s.verdict = {{"passed", true}, {"error_class", "none"}, {"reward", 1.0}};
        p.samples.push_back(s);
      }
      ASSERT_TRUE(db->record_problem(id, p));
    }
  }
  std::string model = std::string(WAND_MODELS_DIR) + "/wand-pot.gguf", corpus = (dir / "sft").string(), out;
  int rc = 0;
  out = run_command(fmt::format("{} runs list --json --store {}", WAND_BINARY, store), &rc);  // stdout only: JSON
  ASSERT_EQ(rc, 0) << out;
  std::string id = Json::parse(out)[0]["id"];
  out = run_command(fmt::format("{} export --run {} --store {} --format sft --corpus {} --tokenizer {} --out {} 2>&1", WAND_BINARY, id,
                                store, corpus, model, (dir / "sft.jsonl").string()),
                    &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("wrote 80 documents"), std::string::npos) << out;
  auto manifest = Json::parse(slurp(corpus + "/manifest.json"));
  EXPECT_EQ(manifest["documents"], 80);
  EXPECT_EQ(manifest["source"]["run_id"], id);
  EXPECT_TRUE(fs::exists(corpus + "/train.bin") && fs::exists(corpus + "/tokenizer.gguf"));
  auto rows = slurp((dir / "sft.jsonl").string());
  EXPECT_EQ(std::count(rows.begin(), rows.end(), '\n'), 80);
  EXPECT_EQ(rows.find("answer = pens - bought"), std::string::npos);  // the wrong programs stay out
  // Exported again into its own folder: replaced, not refused as a foreign corpus.
  out = run_command(fmt::format("{} export --run {} --store {} --format sft --corpus {} --tokenizer {} 2>&1", WAND_BINARY, id,
                                store, corpus, model),
                    &rc);
  EXPECT_EQ(rc, 0) << out;

  if (!fs::exists(WAND_TRAIN_BINARY)) GTEST_SKIP() << "wand-train was not built (libtorch-dev missing)";
  // A small base model on the same tokens, then a fine-tune that starts from its checkpoint:
  // it starts at the base's loss, not at a fresh model's.
  std::string size = "--dim 32 --layers 1 --heads 2 --kv-heads 1 --ffn 64 --seq 32 --batch 8 --threads 1 --log-every 1";
  auto base = run_command(fmt::format("{} --data {} --out {} --steps 60 --warmup 5 --lr 0.01 {} 2>&1", WAND_TRAIN_BINARY, corpus,
                                      (dir / "base").string(), size), &rc);
  ASSERT_EQ(rc, 0) << base;
  auto tuned = run_command(fmt::format("{} --init {} --data {} --out {} --steps 3 --warmup 1 --lr 0.001 --threads 1 --batch 8 "
                                       "--log-every 1 2>&1", WAND_TRAIN_BINARY, (dir / "base" / "checkpoint.wckpt").string(), corpus,
                                       (dir / "tuned").string()),
                           &rc);
  ASSERT_EQ(rc, 0) << tuned;
  auto [b0, b1] = losses(base);
  auto [t0, t1] = losses(tuned);
  EXPECT_LT(b1, b0 * 0.7) << base;
  EXPECT_LT(t0, b0 * 0.7) << tuned;  // the checkpoint's weights, not a fresh model's
  EXPECT_TRUE(fs::exists(dir / "tuned" / "checkpoint.wckpt"));
  // The shipped model itself, made a checkpoint by `wand export --model`, continues from where it
  // is on a corpus of its own kind written with its tokenizer, and the checkpoint exported back
  // answers as the model does.
  std::string shipped = (dir / "shipped.wckpt").string(), back = (dir / "back.gguf").string(), own = (dir / "own").string();
  out = run_command(fmt::format("{} export --model {} --out {} 2>&1", WAND_BINARY, model, shipped), &rc);
  ASSERT_EQ(rc, 0) << out;
  out = run_command(fmt::format("{} corpus --out {} --mix pot=1 --tokens 5000 --verify 0 --seed 3 --tokenizer {} 2>&1",
                                WAND_BINARY, own, model), &rc);
  ASSERT_EQ(rc, 0) << out;
  auto from_shipped = run_command(fmt::format("{} --init {} --data {} --out {} --steps 2 --warmup 1 --lr 0.0001 --threads 1 "
                                              "--batch 4 --seq 64 --log-every 1 2>&1",
                                              WAND_TRAIN_BINARY, shipped, own, (dir / "from_shipped").string()),
                                  &rc);
  ASSERT_EQ(rc, 0) << from_shipped;
  EXPECT_LT(losses(from_shipped).first, 1.0) << from_shipped;  // a fresh model starts near ln 512 = 6.2
  out = run_command(fmt::format("{} export --checkpoint {} --tokenizer {} --out {} --prompt-format pot 2>&1", WAND_BINARY,
                                shipped, model, back),
                    &rc);
  ASSERT_EQ(rc, 0) << out;
  auto completion = [&](const std::string& m) {
    auto r = run_command(fmt::format("{} solve --no-store --json --method pal -m local:{} \"Ann has 5 pens and buys 7 more. "
                                     "How many pens does she have?\"", WAND_BINARY, m), &rc);
    return rc == 0 ? Json::parse(r)["samples"][0]["completion"].get<std::string>() : "exit " + std::to_string(rc);
  };
  EXPECT_EQ(completion(back), completion(model));
  // A checkpoint for another vocabulary is refused, naming both sizes.
  auto bad = run_command(fmt::format("{} --init {} --data {} --out {} 2>&1", WAND_TRAIN_BINARY, (dir / "sft.jsonl").string(), corpus,
                                     (dir / "bad").string()), &rc);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(bad.find("not a wand-train checkpoint"), std::string::npos) << bad;
  fs::remove_all(dir);
}

TEST(Codegen, ExportOptionsAreValidated) {
  EXPECT_FALSE(codegen::validate(codegen::ExportOptions{.format = "ppo"}));
  EXPECT_FALSE(codegen::validate(codegen::ExportOptions{.format = "dpo", .shape = "messages"}));
  EXPECT_FALSE(codegen::validate(codegen::ExportOptions{.per_task = -1}));
  EXPECT_TRUE(codegen::validate(codegen::ExportOptions{}));
  EXPECT_EQ(codegen::normalize_program("# c\r\nx = 1  \r\n\n  # indented comment\ny = 2\n"), "x = 1\ny = 2\n");
}

}  // namespace
}  // namespace wand::test
