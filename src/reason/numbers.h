// Number mapping: every number in a question becomes a name (n0, n1, ... in order of first
// appearance) before a model reads it; the model writes a program over the names, and the
// sandbox runs the program with the names bound to the values. The device of neural
// math-word-problem solvers (Wang et al., 2017, "Deep Neural Solver for Math Word Problems";
// GTS, Graph2Tree): a small model no longer copies digits out of free text, it only chooses the
// operations. Shared by the corpus (train: documents in this format) and solve (reason: prompts
// and bindings for a model whose GGUF records wand.prompt_format = pot-numbers).
//
// What counts as a number in the question:
//   - digits, with thousands commas and a decimal part: "1,200" -> 1200, "3.5" -> 3.5,
//     "2.50" -> 2.5 (values are canonical decimal text: no commas, no trailing zeros);
//   - the digits of "$5" and "25%" (the sign stays in the text: "$n0", "n0%"); a literal equal to
//     a percentage over 100 (0.25 for "25%") becomes `(n0 / 100)` in a training program;
//   - a fraction "1/2" is two numbers, "n0/n1": the program divides them itself;
//   - the number words two to twenty and the tens ("three", "Twenty-five" -> 25): the grammar
//     writes numbers as words too, and a word is a value the model would otherwise have to know.
// What stays text: ordinals ("5th", "2nd"), digits inside a word ("H2O", "x3"), "one" (mostly a
// pronoun or article: "one of them"), and words of an operation rather than a value ("twice",
// "half", "double", "a dozen", "two-thirds"): the model learns them as it learns "more" or "each".
// A value that appears twice keeps its first name (under Reading::delexicalized each mention has
// a name of its own, and a training program's k-th literal of such a value is its k-th mention).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wand::reason {

// The prompt formats (wand.prompt_format) of models trained on mapped questions.
inline constexpr std::string_view kNumbersFormat = "pot-numbers";
inline constexpr std::string_view kDelexFormat = "pot-delex";

// How a model trained on mapped questions reads one. numbers: the numbers are names (above).
// delexicalized: also every mention of a number has a name of its own, and every word outside a
// closed list of function words and words of quantity and change becomes a placeholder w0, w1,
// ... (delexicalize below), and the training programs' variables are v0, v1, ... (rename_variables):
// the model reads the story's structure ("had n0 w1. gave away n1 ... how many ... left?") and
// never a noun it has not seen, the entity anonymization of reading-comprehension models
// (Hermann et al., 2015) applied to word problems.
enum class Reading { numbers, delexicalized };
// The reading of a prompt format: pot-numbers, pot-delex; nullopt for any other.
std::optional<Reading> reading_of(std::string_view prompt_format);
std::string_view format_of(Reading r);

struct NumberMap {
  std::string text;                 // the question, each number replaced by its name
  std::vector<std::string> values;  // values[i]: name n{i}'s value, canonical decimal text
  std::vector<bool> percent;        // percent[i]: n{i} was written with "%"

  static std::string name(std::size_t i);  // "n0", "n1", ...
  // Python assignments binding each name to its value, one a line: "n0 = 11\nn1 = 9\n".
  std::string bindings() const;
  // A training program over the names: every numeric literal whose value equals a mapped value
  // becomes that name (a percentage's value / 100 becomes `(nK / 100)`); literals the question
  // does not give (100, 60, 7 days) stay. A value with a name per mention: the program's k-th
  // literal of it is the k-th mention in `text`, and literals after the last mention's are the
  // last. bindings() + the result computes what `program` did.
  std::string name_program(std::string_view program) const;
};

// Maps the numbers of `question` (see above). A question without numbers maps to itself.
// names_seed 0: names in order of first appearance (n0 is the first number). Otherwise the same
// names in an order drawn from the seed (name_order): the i-th value gets n{name_order(count,
// seed)[i]}, so "covers 230 km in 5 hours" may read "covers n1 km in n0 hours". Trained on such
// shuffles, a model cannot tie a name to a role by its position; it has to read the words around
// it. Sampled under several shuffles, a model's samples read different inputs, so their votes
// are less alike (solve's shuffle_names).
NumberMap map_numbers(std::string_view question, uint64_t names_seed = 0, bool name_each_mention = false);

// The question as a model of reading `r` reads it: map_numbers, and under delexicalized a name per
// mention and delexicalize(text).
NumberMap map_question(std::string_view question, Reading r, uint64_t names_seed = 0);

// `text` with every word outside the closed list (pronouns, articles, prepositions, auxiliaries,
// question words, quantity words such as "each", "more", "left", "twice", "dozen", verbs of
// having, gaining and losing, time and money units) replaced by wK, K by first appearance in
// lower case with a plural's final "s"/"es"/"ies" dropped ("Apples" and "apple" are one
// placeholder). Number names nK, punctuation and spacing stay.
std::string delexicalize(std::string_view text);

// `program` over a delexicalized question's names, as its model writes it: a variable assigned once
// (counting `+=` and the like) with a number name, a literal or another such variable ("cookies =
// n0", "total = start") is replaced by that value; a last line `answer = v`, v assigned once on the
// line before and used nowhere else, becomes that line's `answer = ...`; every other variable it
// assigns (a name at a line's start before " = ", other than `answer`) is renamed v0, v1, ... in
// order of first assignment; string literals are copied as they are. A delexicalized
// question shows no nouns to name variables by, and a short program has fewer tokens to get wrong.
std::string rename_variables(std::string_view program);

// The order of `count` names for a seed: a permutation of 0..count-1 (the identity for seed 0),
// the same on every platform.
std::vector<int> name_order(std::size_t count, uint64_t seed);

// `program` with every name nI (a whole identifier, I < order.size()) renamed n{order[I]};
// string literals are copied as they are. A named training program follows its question's shuffle:
// rename_names(canonical.name_program(p), name_order(n, seed)) is map_numbers(q, seed).name_program(p).
std::string rename_names(std::string_view program, const std::vector<int>& order);

}  // namespace wand::reason
