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

TEST(HumanEvalFormat, DuplicateTaskIdIsRefusedNamingBothLines) {
  std::string path = ::testing::TempDir() + "dup_he.jsonl";
  const char* rec = R"({"task_id": "T/0", "prompt": "def f(x):\n", "canonical_solution": "    return x\n", )"
                    R"("test": "def check(c):\n    assert c(1) == 1\n", "entry_point": "f"})";
  std::ofstream(path) << rec << "\n" << R"({"task_id": "T/1", "prompt": "p", "canonical_solution": "c", "test": "t", )"
                      << R"("entry_point": "g"})" << "\n" << rec << "\n";
  auto r = load_tasks(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, path + " line 3: duplicate task_id 'T/0' (first on line 1)");
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

TEST(Answers, PunctuationAfterANumberIsNotPartOfIt) {
  EXPECT_DOUBLE_EQ(*parse_number("72,"), 72);
  EXPECT_DOUBLE_EQ(*parse_number("1,234.50."), 1234.5);
  EXPECT_DOUBLE_EQ(*parse_number("$-3.50"), -3.5);
  EXPECT_DOUBLE_EQ(*parse_number("\xE2\x88\x92" "5"), -5);  // U+2212 MINUS SIGN
  EXPECT_DOUBLE_EQ(*parse_number("-3/4"), -0.75);
  EXPECT_FALSE(parse_number("72 apples"));
  EXPECT_FALSE(parse_number("1e"));
  EXPECT_TRUE(answers_match("72,", "72"));
}

// The issue's two cases: a rationale whose last number is followed by a comma, and a program
// whose printed answer is a sentence.
TEST(ExtractAnswer, TheIssuesCases) {
  EXPECT_EQ(extract_answer("Leah had 32 and her sister 42, so 32 + 42 = 74. After eating 2, so 72, in total."), "72");
  EXPECT_EQ(extract_answer("The answer is 18.\n"), "18");
  EXPECT_TRUE(answers_match(extract_answer("The answer is 18.\n"), "18"));
}

// Realistic endings of rationales and printed outputs, and the answer each one gives.
TEST(ExtractAnswer, RealisticEndings) {
  const std::pair<std::string, std::string> cases[] = {
      // markers: the last one wins, its number right after it
      {"Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether.\n#### 72", "72"},
      {"Janet sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n#### 18", "18"},
      {"So she has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8.", "8"},
      {"The answer is $1,234.50.", "1234.5"},
      {"The answer is: **18**", "18"},
      {"The final answer is \\boxed{\\frac{3}{4}}.", "0.75"},
      {"So the total is \\boxed{1{,}000}", "1000"},
      {"So \\boxed{2\\sqrt{3}}.", "2\\sqrt{3}"},  // math that is not a number stays whole: not 2
      {"\\boxed{\\text{yes}}", "yes"},
      {"\\boxed{18 apples}", "18"},
      {"Answer: 42", "42"},
      {"**Final Answer:** 17 apples", "17"},
      {"#### -12", "-12"},
      {"The answer is 5 apples and 3 oranges.", "5"},
      {"The answer is 17.\nWait: 20 + 5 = 25, not 17. The answer is 25.", "25"},
      {"The answer is 18.\nDone.\n", "18"},
      {"The answer is yes, because 12 is even.", "yes"},
      {"The answer is twenty.", "twenty"},
      {"#### Step 1\n3 + 4 = 7\n#### Result\nThey have 7 apples.", "7"},  // Markdown headings
      // no marker: the last number on the last non-blank line
      {"Leah had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39 left.", "39"},
      {"Total cost: $1,234.50", "1234.5"},
      {"The balance is -$3.50 now.", "-3.5"},
      {"The temperature fell to \xE2\x88\x92" "5 degrees.", "-5"},
      {"She ate 3/4 of the pie.", "0.75"},
      {"The discount is 20%.", "20"},
      {"It takes 2.5 hours.", "2.5"},
      {"x = 3, y = 4", "4"},
      {"The numbers are 1,2,3", "3"},
      {"There are 1,000,000 grains of rice.", "1000000"},
      {"working...\n18.\n\n  \n", "18"},
      {"step 1: 48 / 2 = 24\r\nstep 2: 48 + 24 = 72\r\n", "72"},
      {"1e-07", "1e-07"},
      {"To answer: first add 3 and 4.\n3 + 4 = 7", "7"},  // "answer:" mid-sentence is no marker
      {"Each friend gets 7.50 dollars.", "7.5"},
      {"He is 5 years older than twice 12, so 5 + 2 * 12 = 29", "29"},
      // no number: the last line as text
      {"Yes.", "Yes"},
      {"The capital is\nNew York", "New York"},
      {"Computing...\nDone", "Done"},
      {"The sum is 5.\nNo idea x2", "No idea x2"},  // "x2" is a word, not a number
      {"", ""},
      {"\n  \n", ""},
  };
  for (auto& [text, answer] : cases) EXPECT_EQ(extract_answer(text), answer) << text;
}

TEST(PassAtK, MeanSaysWhyAKIsNotComputed) {
  std::vector<int> n = {5, 0, 3, 10}, c = {1, 0, 0, 10};  // the task with no samples is skipped
  auto one = mean_pass_at_k(n, c, 1);
  ASSERT_TRUE(one.value);
  EXPECT_NEAR(*one.value, (0.2 + 0 + 1) / 3, 1e-12);
  EXPECT_TRUE(one.why_not.empty());
  auto five = mean_pass_at_k(n, c, 5);
  EXPECT_FALSE(five.value);
  EXPECT_EQ(five.tasks_with_fewer, 1u);
  EXPECT_EQ(five.fewest, 3);
  EXPECT_EQ(five.why_not, "1 of 3 tasks have fewer than 5 samples (fewest: 3)");
  EXPECT_EQ(mean_pass_at_k(n, c, 100).tasks_with_fewer, 3u);
}

TEST(ExtractCode, FencedBlocksAsChatModelsWriteThem) {
  const std::string f = "def f(x):\n    return x\n";
  EXPECT_EQ(extract_code("Here is the solution:\n\n```python\n" + f + "```\n\nIt returns x."), f);
  EXPECT_EQ(extract_code("```\n" + f + "```"), f);                   // untagged
  EXPECT_EQ(extract_code("~~~py\n" + f + "~~~\n"), f);               // tildes, an alias
  EXPECT_EQ(extract_code("Sure!\r\n```Python\r\ndef f(x):\r\n    return x\r\n```\r\n"), f);  // CRLF, any case
  EXPECT_EQ(extract_code("```python\n" + f.substr(0, f.size() - 1)), f);  // cut off by max_tokens
  EXPECT_EQ(extract_code("1. Write it:\n   ```python\n   def f(x):\n       return x\n   ```\n"), f);  // indented
  // Another language's block first: the task's language wins.
  EXPECT_EQ(extract_code("Install:\n```bash\npip install nothing\n```\nThen:\n```python\n" + f + "```"), f);
  // A usage example before the function: the block that defines the tests' function wins.
  std::string two = "```python\nprint(f(3))\n```\n\n```python\n" + f + "```\n";
  EXPECT_EQ(extract_code(two), "print(f(3))\n");
  std::vector<std::string> defines = {"f"};
  EXPECT_EQ(extract_code(two, "python", defines), f);
  // A longer fence holds a shorter one; a line of prose with ``` in it is no fence.
  EXPECT_EQ(extract_code("````\n```python\nx = 1\n```\n````"), "```python\nx = 1\n```\n");
  EXPECT_EQ(extract_code("Use ```f(x)``` to call it.\n" + f), "Use ```f(x)``` to call it.\n" + f);
  EXPECT_EQ(extract_code(f), f);  // no fences: as it is
  // Only other languages' blocks: the first.
  EXPECT_EQ(extract_code("```text\n42\n```"), "42\n");
  EXPECT_EQ(extract_code("```cpp\nint main() {}\n```\n```python\nx\n```", "cpp"), "int main() {}\n");
}

TEST(ExtractCode, HumanEvalWholeFunctionReplacesTheStubMbppPrefersTheTestedFunction) {
  Task he;
  he.format = "humaneval", he.entry_point = "add", he.prompt = "import math\n\ndef add(a, b):\n    \"\"\"Add.\"\"\"\n";
  std::string whole = "def add(a, b):\n    return a + b\n";
  EXPECT_EQ(code_from_completion(he, "Here:\n```python\n" + whole + "```"), "\n" + whole);
  EXPECT_EQ(code_from_completion(he, "```python\n    return a + b\n```"), "    return a + b\n");  // a body
  he.prompt = "def add(a, b):";  // a stub with no docstring gets a body before the block
  EXPECT_EQ(code_from_completion(he, "```python\n" + whole + "```"), "\n    pass\n\n" + whole);
  Task mbpp;
  mbpp.format = "mbpp", mbpp.test_list = {"assert remove_Occ(\"hello\",\"l\") == \"heo\""};
  std::string fn = "def remove_Occ(s, ch):\n    return s\n";
  EXPECT_EQ(code_from_completion(mbpp, "```python\nremove_Occ('a', 'b')\n```\n```python\n" + fn + "```"), fn);
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

namespace wand::feedback {
namespace {

// One record as `wand mcp`'s evaluate tool receives it: the format from its fields, errors naming them.
TEST(TaskFromJson, RecognisesTheFormatAndNamesTheProblem) {
  auto gsm = task_from_json({{"question", "q"}, {"answer", "so #### 42"}});
  ASSERT_TRUE(gsm) << gsm.error().message;
  EXPECT_EQ(gsm->format, "gsm8k");
  EXPECT_EQ(gsm->expected, "42");
  EXPECT_EQ(gsm->task_id, "0");
  auto mbpp = task_from_json({{"task_id", 7}, {"text", "t"}, {"code", "c"}, {"test_list", Json::array()}}, "argument 'task'");
  ASSERT_FALSE(mbpp);
  EXPECT_EQ(mbpp.error().message, "argument 'task': field 'test_list' must be a non-empty array of assert statements");
  auto unknown = task_from_json({{"prompt", "p"}}, "argument 'task'");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message.rfind("argument 'task': unrecognised record; expected one of: HumanEval", 0), 0u)
      << unknown.error().message;
  auto not_object = task_from_json(Json::array(), "argument 'task'");
  ASSERT_FALSE(not_object);
  EXPECT_EQ(not_object.error().message, "argument 'task': must be a JSON object (a dataset record)");
}

}  // namespace
}  // namespace wand::feedback

namespace wand::feedback {
namespace {

// task_json writes a task so that reading it gives the same task: a subset of any dataset can be
// written as a dataset again (wand improve's pools from --pool-file).
TEST(TaskJson, EveryFormatReadsBackAsTheSameTask) {
  std::vector<Json> records = {
      {{"task_id", "HE/1"}, {"prompt", "def f(x):\n"}, {"canonical_solution", "    return x\n"},
       {"test", "def check(c):\n    assert c(1) == 1\n"}, {"entry_point", "f"}},
      {{"task_id", 601}, {"text", "Write f."}, {"code", "def f(): return 1"}, {"test_list", {"assert f() == 1"}},
       {"test_setup_code", "import math"}},
      {{"task_id", "s1"}, {"question", "Echo."}, {"inputs", {"a\n", "b\n"}}, {"outputs", {"a\n", "b\n"}},
       {"solution", "print(input())"}},
      {{"question", "How many?"}, {"answer", "So 6 + 6 = 12.\n#### 12"}},
      {{"input", "Half of 9?"}, {"target", 4.5}},
      {{"ID", "chal-3"}, {"Body", "Ann has 3 pens. "}, {"Question", "How many pens?"}, {"Answer", 3.0}},
      {{"task_id", 2}, {"prompt", "Write g."}, {"code", "def g(): return 2"}, {"test_list", {"assert g() == 2"}}},  // sanitized MBPP
  };
  for (auto& r : records) {
    auto t = task_from_json(r);
    ASSERT_TRUE(t) << t.error().message;
    auto back = task_from_json(task_json(*t));
    ASSERT_TRUE(back) << r.dump() << ": " << back.error().message;
    EXPECT_EQ(back->task_id, t->task_id);
    EXPECT_EQ(back->kind, t->kind);
    EXPECT_EQ(back->prompt, t->prompt);
    EXPECT_EQ(back->reference, t->reference) << r.dump();
    EXPECT_EQ(back->test, t->test);
    EXPECT_EQ(back->entry_point, t->entry_point);
    EXPECT_EQ(back->test_list, t->test_list);
    EXPECT_EQ(back->setup, t->setup);
    EXPECT_EQ(back->io, t->io);
    EXPECT_EQ(back->expected, t->expected);
    EXPECT_EQ(back->format, t->kind == TaskKind::answer ? "gsm8k" : t->format);
    EXPECT_FALSE(back->prompt.empty()) << r.dump();  // sanitized MBPP's "prompt" is its description
  }
}

}  // namespace
}  // namespace wand::feedback
