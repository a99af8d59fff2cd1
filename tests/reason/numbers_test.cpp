// reason/numbers.h: number mapping of questions and training programs.
#include <gtest/gtest.h>

#include <algorithm>

#include "llm/llm.h"
#include "reason/numbers.h"

namespace wand::test {
namespace {

using reason::map_numbers;

TEST(Numbers, NamesEachNumberInOrderAndBindsItsValue) {
  auto m = map_numbers("Tom has 11 apples and buys 9 more. How many apples?");
  EXPECT_EQ(m.text, "Tom has n0 apples and buys n1 more. How many apples?");
  EXPECT_EQ(m.values, (std::vector<std::string>{"11", "9"}));
  EXPECT_EQ(m.bindings(), "n0 = 11\nn1 = 9\n");
}

TEST(Numbers, ThousandsCommasDecimalsMoneyAndPercent) {
  auto m = map_numbers("A car costs $1,200.50, a bike 3.5 times less, tax is 25%, and 2.50 dollars, 1,2,3.");
  EXPECT_EQ(m.text, "A car costs $n0, a bike n1 times less, tax is n2%, and n3 dollars, n4,n5,n6.");
  EXPECT_EQ(m.values, (std::vector<std::string>{"1200.5", "3.5", "25", "2.5", "1", "2", "3"}));
  EXPECT_EQ(m.percent, (std::vector<bool>{false, false, true, false, false, false, false}));
  EXPECT_TRUE(map_numbers("a 40 percent discount").percent.at(0));
}

TEST(Numbers, FractionIsTwoNumbersAndRepeatedValueKeepsItsName) {
  auto m = map_numbers("She ate 1/2 of the 12 pies, then 12 more and 2 cakes.");
  EXPECT_EQ(m.text, "She ate n0/n1 of the n2 pies, then n2 more and n1 cakes.");
  EXPECT_EQ(m.values, (std::vector<std::string>{"1", "2", "12"}));
  // 12 and 12.0 are one value.
  EXPECT_EQ(map_numbers("12 and 12.0").text, "n0 and n0");
}

TEST(Numbers, NumberWordsAreValuesOperationWordsStayWords) {
  auto m = map_numbers("Three boys and twenty-five girls; one of them has twice as many, half, a dozen, two-thirds.");
  EXPECT_EQ(m.text, "n0 boys and n1 girls; one of them has twice as many, half, a dozen, two-thirds.");
  EXPECT_EQ(m.values, (std::vector<std::string>{"3", "25"}));
  // A word that only contains a number word is not one: "often", "tent", "seventh".
  EXPECT_EQ(map_numbers("often a tent, the seventh").text, "often a tent, the seventh");
}

TEST(Numbers, OrdinalsAndDigitsInWordsStayText) {
  auto m = map_numbers("On the 5th day, H2O and 2nd place cost 7kg.");
  EXPECT_EQ(m.text, "On the 5th day, H2O and 2nd place cost n0kg.");
  EXPECT_EQ(m.values, (std::vector<std::string>{"7"}));
  EXPECT_EQ(map_numbers("No numbers here.").text, "No numbers here.");
  EXPECT_TRUE(map_numbers("No numbers here.").values.empty());
}

TEST(Numbers, ProgramLiteralsBecomeNamesOthersStay) {
  auto m = map_numbers("Ann reads 20 pages a day for 3 weeks; 25% of the pages are pictures and 1,200 words.");
  EXPECT_EQ(m.name_program("pages = 20 * 7 * 3\npics = pages * 0.25\nwords = 1200.0 + step3 + 100\nanswer = pics\n"),
            "pages = n0 * 7 * n1\npics = pages * (n2 / 100)\nwords = n3 + step3 + 100\nanswer = pics\n");
  // Strings, exponents and identifiers keep their digits.
  EXPECT_EQ(m.name_program("s = '20'\nx = 3e2 + n_3 + x20\n"), "s = '20'\nx = 3e2 + n_3 + x20\n");
}

// A shuffle renames the same values (each keeps its percent mark), binds each name to the value
// it stands for in the shuffled text, and a training program renamed by the same order computes
// the same as the program named under the shuffle; seed 0 is the order of appearance.
TEST(Numbers, ShuffledNamesBindTheSameValues) {
  const std::string q = "A cyclist covers 230 km in 5 hours, 20% of it uphill, then 5 more hours and 9 km.";
  auto canonical = map_numbers(q), zero = map_numbers(q, 0);
  EXPECT_EQ(zero.text, canonical.text);
  EXPECT_EQ(reason::name_order(4, 0), (std::vector<int>{0, 1, 2, 3}));
  int differing = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    auto m = map_numbers(q, seed);
    const auto order = reason::name_order(canonical.values.size(), seed);
    std::vector<int> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    ASSERT_EQ(sorted, (std::vector<int>{0, 1, 2, 3}));
    differing += m.text != canonical.text;
    for (std::size_t i = 0; i < order.size(); ++i) {
      EXPECT_EQ(m.values[order[i]], canonical.values[i]);
      EXPECT_EQ(m.percent[order[i]], canonical.percent[i]);
    }
    // The same text with the names renamed, and the repeated 5 one name both times.
    EXPECT_EQ(reason::rename_names(canonical.text, order), m.text);
    const std::string name5 = reason::NumberMap::name(order[1]);
    EXPECT_NE(m.text.find("in " + name5 + " hours, "), std::string::npos) << m.text;
    EXPECT_NE(m.text.find("then " + name5 + " more"), std::string::npos) << m.text;
    const std::string program = "speed = 230 / 5\nuphill = 230 * 0.2\nanswer = speed + 9\n";
    EXPECT_EQ(reason::rename_names(canonical.name_program(program), order), m.name_program(program));
  }
  EXPECT_GT(differing, 15);  // 24 orders of 4 names: nearly every seed draws another
  // Only whole names are renamed: not n_0, x.n1, n01, strings or a name past the question's.
  EXPECT_EQ(reason::rename_names("a = n1 + n_0 + x.n1 + n01 + 'n0' + n9\n", {1, 0}),
            "a = n0 + n_0 + x.n1 + n01 + 'n0' + n9\n");
}

// The format a GGUF records (wand export --prompt-format pot-numbers): the pot prompt around the
// mapped question, which solve() writes; an unknown format's error lists it.
TEST(Numbers, PotNumbersIsAPromptFormat) {
  EXPECT_EQ(*llm::format_question(reason::kNumbersFormat, "n0 boxes of n1 eggs?"), "Question: n0 boxes of n1 eggs?\nProgram:\n");
  auto bad = llm::format_question("pot-names", "q");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("pot-numbers"), std::string::npos);
}

// Delexicalization (pot-delex): a name per mention, content words as placeholders by first
// appearance (a plural shares its singular's), function and quantity words kept, possessives
// and contractions handled, the format's reading found from its name.
TEST(Numbers, DelexicalizedReadingKeepsTheStructureAndHidesTheNouns) {
  auto m = reason::map_question("Faye had 34 coloring books. If she gave away 3 of them, but then bought 34 more "
                                "books, how many books would Faye's sister have if she didn't sell any?",
                                reason::Reading::delexicalized);
  EXPECT_EQ(m.text, "w0 had n0 w1 w2. If she gave away n1 of them, but then bought n2 more w2, how many w2 would "
                    "w0's w3 have if she didn't sell any?");
  EXPECT_EQ(m.values, (std::vector<std::string>{"34", "3", "34"}));  // 34 twice: two names
  // The program's k-th literal of a value is its k-th mention; any after the last mention's is the last.
  EXPECT_EQ(m.name_program("answer = 34 - 3 + 34\n"), "answer = n0 - n1 + n2\n");
  EXPECT_EQ(m.name_program("answer = 34 + 34 + 34 - 3 - 3\n"), "answer = n0 + n2 + n2 - n1 - n1\n");
  // Under a shuffle the mentions keep their order in the text, so the names follow the shuffle.
  for (uint64_t seed : {3u, 7u, 11u}) {
    auto shuffled = reason::map_question("Faye had 34 books. She gave away 3, then bought 34 more.",
                                         reason::Reading::delexicalized, seed);
    EXPECT_EQ(shuffled.name_program("answer = 34 - 3 + 34\n"),
              reason::rename_names("answer = n0 - n1 + n2\n", reason::name_order(3, seed)))
        << seed;
  }
  EXPECT_EQ(reason::delexicalize("The boxes and a box; cookies, a cookie. Each n12 costs $n3."),
            "The w0 and a w0; w1, a w1. Each n12 costs $n3.");
  EXPECT_EQ(reason::reading_of("pot-delex"), reason::Reading::delexicalized);
  EXPECT_EQ(reason::reading_of("pot-numbers"), reason::Reading::numbers);
  EXPECT_FALSE(reason::reading_of("pot"));
  EXPECT_EQ(*llm::format_question(reason::kDelexFormat, "w0 had n0 w1."), "Question: w0 had n0 w1.\nProgram:\n");
  // The numbers reading is as it was: a repeated value keeps one name, the words stay.
  auto n = reason::map_question("Faye had 34 books and 34 pens.", reason::Reading::numbers);
  EXPECT_EQ(n.text, "Faye had n0 books and n0 pens.");
}

// The training programs' variables become v0, v1, ... by first assignment; answer, number names,
// calls, attributes, strings and comparisons stay.
TEST(Numbers, RenameVariablesNamesWhatTheProgramAssigns) {
  EXPECT_EQ(reason::rename_variables("cookies = n0 * n1\nleft = cookies - n2\nanswer = round(left / 2)\n"),
            "v0 = n0 * n1\nv1 = v0 - n2\nanswer = round(v1 / 2)\n");
  EXPECT_EQ(reason::rename_variables("total = n0\ntotal = total + 1\nx.total = 'total'\nanswer = total == 3\n"),
            "v0 = n0\nv0 = v0 + 1\nx.total = 'total'\nanswer = v0 == 3\n");
  // A variable that only names a number (once) is the number.
  EXPECT_EQ(reason::rename_variables("start = n0\ndays = 7\nsold = n1\nrest = start - sold\nanswer = rest * days\n"),
            "v0 = n0 - n1\nanswer = v0 * 7\n");
  // An alias of such a variable is it too; "v = ...; answer = v" is "answer = ...".
  EXPECT_EQ(reason::rename_variables("start = n0 * n1\ntotal = start\nanswer = total + n2\n"), "v0 = n0 * n1\nanswer = v0 + n2\n");
  EXPECT_EQ(reason::rename_variables("first = n0\nsecond = first + n1\nanswer = second"), "answer = n0 + n1");
  // Not when the variable changes again or is used twice.
  EXPECT_EQ(reason::rename_variables("a = n0\na += n1\nb = a\nanswer = b\n"), "v0 = n0\nv0 += n1\nanswer = v0\n");
  EXPECT_EQ(reason::rename_variables("s = n0 + n1\nanswer = s * s\n"), "v0 = n0 + n1\nanswer = v0 * v0\n");
}

}  // namespace
}  // namespace wand::test
