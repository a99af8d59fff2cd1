// Function tasks, MBPP-like: a one-line description, a Python function, assert tests. The
// expected values are computed here in C++, independently of the Python code, so running the
// tests in the sandbox checks the code against a second implementation.
#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <numeric>
#include <set>

#include "train/corpus.h"
#include "train/draw.h"

namespace wand::train {
namespace {

using ll = long long;
using Ints = std::vector<ll>;

// A value as Python source (for the tests) and as words (for the plain-text rendering).
struct Val {
  std::string py, words;
};

std::string join(const std::vector<std::string>& parts, const std::string& sep, const std::string& last_sep) {
  std::string s;
  for (std::size_t i = 0; i < parts.size(); ++i) s += (i == 0 ? "" : i + 1 == parts.size() ? last_sep : sep) + parts[i];
  return s;
}

Val of(ll v) { return {std::to_string(v), std::to_string(v)}; }
Val of(bool v) { return {v ? "True" : "False", v ? "true" : "false"}; }
Val of(const std::string& s) { return {"'" + s + "'", "\"" + s + "\""}; }  // lowercase words only: no escapes
Val of(const Ints& v) {
  std::vector<std::string> xs;
  for (ll x : v) xs.push_back(std::to_string(x));
  return {"[" + fmt::format("{}", fmt::join(xs, ", ")) + "]", xs.empty() ? "an empty list" : "the list " + join(xs, ", ", " and ")};
}
Val of(const std::vector<std::string>& v) {
  std::vector<std::string> py, words;
  for (auto& s : v) py.push_back("'" + s + "'"), words.push_back("\"" + s + "\"");
  return {"[" + fmt::format("{}", fmt::join(py, ", ")) + "]", words.empty() ? "an empty list" : "the words " + join(words, ", ", " and ")};
}

const char* const kWords[] = {"apple", "river", "stone", "level", "cat", "noon", "garden", "sky", "racecar", "lamp",
                              "moon", "tree", "wind", "radar", "book", "light", "sun", "wave", "kayak", "bird"};

struct Spec {
  std::vector<std::string> names;  // the function's possible names
  std::string params;              // its parameter list
  std::string what;                // "find ..." (the description is "Write a function to <what>.")
  std::string how;                 // the method, in prose
  std::vector<std::string> bodies;  // implementations (indented body lines), one chosen per task
};

using Case = std::pair<std::vector<Val>, Val>;
using Cases = std::vector<Case>;

// How a family draws one test case (args, expected); make() calls it for the task's tests and
// again for the tests part's further cases.
struct CaseDraw {
  std::function<Case()> draw;
};
// Wraps a family's case drawer; make() does the drawing (the family's locals live until it returns).
template <class F>
CaseDraw cases(Draw&, F draw) {
  return {std::function<Case()>(draw)};
}

// Up to `n` cases with distinct arguments (and not among `seen`'s), drawn by `draw`. Families
// with few possible inputs may end with fewer.
Cases distinct_cases(const CaseDraw& draw, int n, std::set<std::string>& seen) {
  Cases c;
  for (int tries = 0; static_cast<int>(c.size()) < n && tries < 20; ++tries) {
    auto one = draw.draw();
    std::string key;
    for (auto& a : one.first) key += a.py + ",";
    if (seen.insert(key).second) c.push_back(std::move(one));
  }
  return c;
}

std::string assert_line(const std::string& name, const Case& c) {
  std::vector<std::string> py;
  for (auto& a : c.first) py.push_back(a.py);
  return fmt::format("assert {}({}) == {}", name, fmt::join(py, ", "), c.second.py);
}

// Builds one task from its spec: three or four test cases (at least one), a name and a body,
// then up to kMoreTests further cases on other inputs for the tests part.
constexpr int kMoreTests = 5;
FunctionTask make(Draw& d, const Spec& s, const CaseDraw& draw) {
  std::set<std::string> seen;
  Cases cases = distinct_cases(draw, d.num(3, 4), seen);
  FunctionTask t;
  t.name = s.names[d.num(0, static_cast<int>(s.names.size()) - 1)];
  t.description = "Write a function to " + s.what + ".";
  t.code = fmt::format("def {}({}):\n{}", t.name, s.params, s.bodies[d.num(0, static_cast<int>(s.bodies.size()) - 1)]);
  std::vector<std::string> examples;
  for (auto& c : cases) {
    std::vector<std::string> words;
    for (auto& a : c.first) words.push_back(a.words);
    t.tests.push_back(assert_line(t.name, c));
    examples.push_back(fmt::format("for {} the result is {}", join(words, ", ", " and "), c.second.words));
  }
  for (auto& c : distinct_cases(draw, kMoreTests, seen)) t.more_tests.push_back(assert_line(t.name, c));
  std::string what = s.what;
  what[0] = static_cast<char>(std::toupper(what[0]));
  t.text = fmt::format("{}: {} For example, {}.", what, s.how, join(examples, "; ", "; and "));
  return t;
}

Ints ints(Draw& d, int lo, int hi, int min_len = 3, int max_len = 7) {
  Ints v(d.num(min_len, max_len));
  for (auto& x : v) x = d.num(lo, hi);
  return v;
}
std::string word(Draw& d) { return d.pick(kWords); }
std::string sentence(Draw& d, int min_n = 2, int max_n = 6) {
  std::vector<std::string> w(d.num(min_n, max_n));
  for (auto& x : w) x = word(d);
  return fmt::format("{}", fmt::join(w, " "));
}

using Family = std::function<FunctionTask(Draw&)>;

std::vector<Family> train_families() {
  return {
      [](Draw& d) {  // sum above a threshold
        int k = d.num(0, 20);
        Spec s{{"sum_above", "sum_greater_than", "total_above"}, "nums",
               fmt::format("return the sum of the numbers in a list that are greater than {}", k),
               fmt::format("go through the list and add up every number above {}.", k),
               {fmt::format("    return sum(x for x in nums if x > {})\n", k),
                fmt::format("    total = 0\n    for x in nums:\n        if x > {}:\n            total += x\n    return total\n", k)}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 0, 40);
                      ll r = 0;
                      for (ll x : v) r += x > k ? x : 0;
                      return std::pair{std::vector<Val>{of(v)}, of(r)};
                    }));
      },
      [](Draw& d) {  // count even or odd numbers
        bool even = d.variant(2);
        std::string kind = even ? "even" : "odd", test = even ? "x % 2 == 0" : "x % 2 == 1";
        Spec s{{"count_" + kind, "number_of_" + kind, kind + "_count"}, "nums",
               fmt::format("count the {} numbers in a list", kind),
               fmt::format("check each number and count those that are {}.", kind),
               {fmt::format("    return sum(1 for x in nums if {})\n", test),
                fmt::format("    count = 0\n    for x in nums:\n        if {}:\n            count += 1\n    return count\n", test)}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 0, 50);
                      ll r = std::count_if(v.begin(), v.end(), [&](ll x) { return (x % 2 == 0) == even; });
                      return std::pair{std::vector<Val>{of(v)}, of(r)};
                    }));
      },
      [](Draw& d) {  // range: max - min
        Spec s{{"list_range", "spread", "max_minus_min"}, "nums",
               "find the difference between the largest and the smallest number in a list",
               "take the largest number and subtract the smallest one.",
               {"    return max(nums) - min(nums)\n", "    ordered = sorted(nums)\n    return ordered[-1] - ordered[0]\n"}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, -20, 60);
                      return std::pair{std::vector<Val>{of(v)}, of(*std::max_element(v.begin(), v.end()) -
                                                                    *std::min_element(v.begin(), v.end()))};
                    }));
      },
      [](Draw& d) {  // multiply every element
        int m = d.num(2, 9);
        Spec s{{"scale", "multiply_all", "times_" + std::to_string(m)}, "nums",
               fmt::format("multiply every number in a list by {}", m),
               fmt::format("make a new list where each number is {} times the old one.", m),
               {fmt::format("    return [x * {} for x in nums]\n", m),
                fmt::format("    out = []\n    for x in nums:\n        out.append(x * {})\n    return out\n", m)}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 0, 30, 2, 5), r = v;
                      for (auto& x : r) x *= m;
                      return std::pair{std::vector<Val>{of(v)}, of(r)};
                    }));
      },
      [](Draw& d) {  // reverse a string
        Spec s{{"reverse_string", "reverse_text", "backwards"}, "s", "reverse a string",
               "read the letters from the last one to the first one.",
               {"    return s[::-1]\n", "    return ''.join(reversed(s))\n"}};
        return make(d, s, cases(d, [&] {
                      std::string w = word(d), r(w.rbegin(), w.rend());
                      return std::pair{std::vector<Val>{of(w)}, of(r)};
                    }));
      },
      [](Draw& d) {  // count a letter
        const char* letters[] = {"a", "e", "o", "r", "n", "t"};
        std::string c = d.pick(letters);
        Spec s{{"count_" + c, "count_letter_" + c, "how_many_" + c}, "s",
               fmt::format("count how many times the letter '{}' appears in a string", c),
               fmt::format("look at every letter and count the ones equal to '{}'.", c),
               {fmt::format("    return s.count('{}')\n", c),
                fmt::format("    n = 0\n    for ch in s:\n        if ch == '{}':\n            n += 1\n    return n\n", c)}};
        return make(d, s, cases(d, [&] {
                      std::string w = sentence(d, 1, 3);
                      return std::pair{std::vector<Val>{of(w)}, of(static_cast<ll>(std::count(w.begin(), w.end(), c[0])))};
                    }));
      },
      [](Draw& d) {  // palindrome
        Spec s{{"is_palindrome", "reads_same_backwards", "palindrome"}, "s",
               "check whether a string reads the same forwards and backwards",
               "compare the string with its reverse.",
               {"    return s == s[::-1]\n", "    return all(s[i] == s[len(s) - 1 - i] for i in range(len(s) // 2))\n"}};
        return make(d, s, cases(d, [&] {
                      std::string w = word(d);
                      return std::pair{std::vector<Val>{of(w)}, of(std::equal(w.begin(), w.end(), w.rbegin()))};
                    }));
      },
      [](Draw& d) {  // factorial
        Spec s{{"factorial", "fact", "product_up_to"}, "n", "compute the factorial of a non-negative integer",
               "multiply together all the whole numbers from 1 up to n.",
               {"    result = 1\n    for i in range(2, n + 1):\n        result *= i\n    return result\n",
                "    if n <= 1:\n        return 1\n    return n * FNAME(n - 1)\n"}};
        FunctionTask t = make(d, s, cases(d, [&] {
                               int n = d.num(0, 12);
                               ll f = 1;
                               for (int i = 2; i <= n; ++i) f *= i;
                               return std::pair{std::vector<Val>{of(static_cast<ll>(n))}, of(f)};
                             }));
        // The recursive body calls itself by the chosen name.
        for (std::size_t p; (p = t.code.find("FNAME")) != std::string::npos;) t.code.replace(p, 5, t.name);
        return t;
      },
      [](Draw& d) {  // digit sum
        Spec s{{"digit_sum", "sum_of_digits", "add_digits"}, "n", "find the sum of the digits of a non-negative integer",
               "add up the digits of the number one by one.",
               {"    return sum(int(c) for c in str(n))\n",
                "    total = 0\n    while n > 0:\n        total += n % 10\n        n //= 10\n    return total\n"}};
        return make(d, s, cases(d, [&] {
                      ll n = d.num(0, 99999), r = 0;
                      for (ll m = n; m > 0; m /= 10) r += m % 10;
                      return std::pair{std::vector<Val>{of(n)}, of(r)};
                    }));
      },
      [](Draw& d) {  // gcd
        Spec s{{"gcd", "greatest_common_divisor", "common_divisor"}, "a, b",
               "find the greatest common divisor of two positive integers",
               "keep replacing the pair by the smaller number and the remainder until the remainder is zero.",
               {"    while b:\n        a, b = b, a % b\n    return a\n", "    import math\n    return math.gcd(a, b)\n"}};
        return make(d, s, cases(d, [&] {
                      ll g = d.num(1, 12), a = g * d.num(1, 20), b = g * d.num(1, 20);
                      return std::pair{std::vector<Val>{of(a), of(b)}, of(std::gcd(a, b))};
                    }));
      },
      [](Draw& d) {  // fibonacci
        Spec s{{"fibonacci", "fib", "nth_fibonacci"}, "n", "return the n-th Fibonacci number, where the 0th is 0 and the 1st is 1",
               "start from 0 and 1 and keep adding the last two numbers.",
               {"    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
                "    seq = [0, 1]\n    while len(seq) <= n:\n        seq.append(seq[-1] + seq[-2])\n    return seq[n]\n"}};
        return make(d, s, cases(d, [&] {
                      int n = d.num(0, 30);
                      ll a = 0, b = 1;
                      for (int i = 0; i < n; ++i) a = std::exchange(b, a + b);
                      return std::pair{std::vector<Val>{of(static_cast<ll>(n))}, of(a)};
                    }));
      },
      [](Draw& d) {  // prime test
        Spec s{{"is_prime", "prime", "check_prime"}, "n", "check whether a number is prime",
               "a number above 1 is prime when no number from 2 up to its square root divides it.",
               {"    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n            return False\n        i += 1\n    return True\n",
                "    return n > 1 and all(n % i for i in range(2, int(n ** 0.5) + 1))\n"}};
        return make(d, s, cases(d, [&] {
                      ll n = d.num(0, 120);
                      bool p = n > 1;
                      for (ll i = 2; i * i <= n && p; ++i) p = n % i != 0;
                      return std::pair{std::vector<Val>{of(n)}, of(p)};
                    }));
      },
      [](Draw& d) {  // remove duplicates
        Spec s{{"remove_duplicates", "unique", "dedupe"}, "nums",
               "remove the duplicates from a list, keeping the first occurrence of each number in order",
               "walk through the list and keep each number the first time it appears.",
               {"    seen = set()\n    out = []\n    for x in nums:\n        if x not in seen:\n            seen.add(x)\n            out.append(x)\n    return out\n",
                "    return list(dict.fromkeys(nums))\n"}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 0, 6, 3, 8), r;
                      std::set<ll> seen;
                      for (ll x : v)
                        if (seen.insert(x).second) r.push_back(x);
                      return std::pair{std::vector<Val>{of(v)}, of(r)};
                    }));
      },
      [](Draw& d) {  // second largest
        Spec s{{"second_largest", "runner_up", "second_max"}, "nums",
               "find the second largest distinct number in a list",
               "drop the repeated values, sort what is left and take the one before the largest.",
               {"    return sorted(set(nums))[-2]\n",
                "    first = max(nums)\n    return max(x for x in nums if x != first)\n"}};
        return make(d, s, cases(d, [&] {
                      Ints v;
                      do v = ints(d, 0, 50, 3, 7);
                      while (std::set<ll>(v.begin(), v.end()).size() < 2);
                      std::set<ll> u(v.begin(), v.end());
                      return std::pair{std::vector<Val>{of(v)}, of(*std::next(u.rbegin()))};
                    }));
      },
      [](Draw& d) {  // count words
        Spec s{{"count_words", "word_count", "number_of_words"}, "text", "count the words in a sentence",
               "split the sentence at the spaces and count the pieces.",
               {"    return len(text.split())\n", "    return sum(1 for w in text.split(' ') if w)\n"}};
        return make(d, s, cases(d, [&] {
                      int n = d.num(1, 7);
                      return std::pair{std::vector<Val>{of(sentence(d, n, n))}, of(static_cast<ll>(n))};
                    }));
      },
      [](Draw& d) {  // product
        Spec s{{"product", "multiply_list", "list_product"}, "nums", "multiply all the numbers in a list together",
               "start from 1 and multiply by each number in turn.",
               {"    result = 1\n    for x in nums:\n        result *= x\n    return result\n",
                "    import math\n    return math.prod(nums)\n"}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 1, 9, 2, 5);
                      return std::pair{std::vector<Val>{of(v)}, of(std::accumulate(v.begin(), v.end(), 1LL, std::multiplies<>()))};
                    }));
      },
      [](Draw& d) {  // sum of squares
        Spec s{{"sum_of_squares", "square_sum", "squares_total"}, "n", "find the sum of the squares of the numbers from 1 to n",
               "square each number from 1 to n and add the squares up.",
               {"    return sum(i * i for i in range(1, n + 1))\n", "    return n * (n + 1) * (2 * n + 1) // 6\n"}};
        return make(d, s, cases(d, [&] {
                      ll n = d.num(0, 40);
                      return std::pair{std::vector<Val>{of(n)}, of(n * (n + 1) * (2 * n + 1) / 6)};
                    }));
      },
      [](Draw& d) {  // long words
        int k = d.num(3, 5);
        Spec s{{"long_words", "words_longer_than", "filter_long"}, "words",
               fmt::format("keep only the words of a list that have more than {} letters", k),
               fmt::format("go through the words and keep those longer than {} letters.", k),
               {fmt::format("    return [w for w in words if len(w) > {}]\n", k),
                fmt::format("    out = []\n    for w in words:\n        if len(w) > {}:\n            out.append(w)\n    return out\n", k)}};
        return make(d, s, cases(d, [&] {
                      std::vector<std::string> w(d.num(2, 5)), r;
                      for (auto& x : w) x = word(d);
                      for (auto& x : w)
                        if (static_cast<int>(x.size()) > k) r.push_back(x);
                      return std::pair{std::vector<Val>{of(w)}, of(r)};
                    }));
      },
  };
}

// Functions the model never sees in training.
std::vector<Family> held_out_families() {
  return {
      [](Draw& d) {  // sum of multiples
        int k = d.num(2, 5);
        Spec s{{"sum_multiples", "sum_divisible"}, "nums", fmt::format("return the sum of the numbers in a list that are divisible by {}", k),
               fmt::format("add up the numbers that leave no remainder when divided by {}.", k),
               {fmt::format("    return sum(x for x in nums if x % {} == 0)\n", k)}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 0, 40);
                      ll r = 0;
                      for (ll x : v) r += x % k == 0 ? x : 0;
                      return std::pair{std::vector<Val>{of(v)}, of(r)};
                    }));
      },
      [](Draw& d) {  // longest word
        Spec s{{"longest_word", "longest"}, "text", "find the first longest word in a sentence",
               "split the sentence into words and keep the first one of the greatest length.",
               {"    return max(text.split(), key=len)\n"}};
        return make(d, s, cases(d, [&] {
                      std::string t = sentence(d, 2, 5);
                      std::string best, w;
                      for (std::size_t i = 0, j; i < t.size(); i = j + 1) {
                        j = std::min(t.find(' ', i), t.size());
                        w = t.substr(i, j - i);
                        if (w.size() > best.size()) best = w;
                      }
                      return std::pair{std::vector<Val>{of(t)}, of(best)};
                    }));
      },
      [](Draw& d) {  // running totals
        Spec s{{"running_total", "cumulative_sum"}, "nums", "return the running totals of a list of numbers",
               "keep a total and write it down after adding each number.",
               {"    out, total = [], 0\n    for x in nums:\n        total += x\n        out.append(total)\n    return out\n"}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 0, 20, 2, 6), r = v;
                      std::partial_sum(v.begin(), v.end(), r.begin());
                      return std::pair{std::vector<Val>{of(v)}, of(r)};
                    }));
      },
      [](Draw& d) {  // number of digits
        Spec s{{"count_digits", "digit_count"}, "n", "count the digits of a non-negative integer",
               "write the number down and count its digits.", {"    return len(str(n))\n"}};
        return make(d, s, cases(d, [&] {
                      ll n = d.num(0, 9999999);
                      return std::pair{std::vector<Val>{of(n)}, of(static_cast<ll>(std::to_string(n).size()))};
                    }));
      },
      // Recombinations of trained pieces (a threshold, a count, a map over a list): a model that
      // learned the pieces rather than the families can write these.
      [](Draw& d) {  // sum below a threshold
        int k = d.num(5, 30);
        Spec s{{"sum_below", "sum_less_than"}, "nums", fmt::format("return the sum of the numbers in a list that are less than {}", k),
               fmt::format("go through the list and add up every number below {}.", k),
               {fmt::format("    return sum(x for x in nums if x < {})\n", k)}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 0, 40);
                      ll r = 0;
                      for (ll x : v) r += x < k ? x : 0;
                      return std::pair{std::vector<Val>{of(v)}, of(r)};
                    }));
      },
      [](Draw& d) {  // count above a threshold
        int k = d.num(0, 20);
        Spec s{{"count_above", "count_greater_than"}, "nums", fmt::format("count the numbers in a list that are greater than {}", k),
               fmt::format("check each number and count those above {}.", k),
               {fmt::format("    return sum(1 for x in nums if x > {})\n", k)}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 0, 40);
                      return std::pair{std::vector<Val>{of(v)}, of(static_cast<ll>(std::count_if(v.begin(), v.end(), [&](ll x) { return x > k; })))};
                    }));
      },
      [](Draw& d) {  // add to every element
        int m = d.num(2, 9);
        Spec s{{"add_to_all", "shift"}, "nums", fmt::format("add {} to every number in a list", m),
               fmt::format("make a new list where each number is {} more than the old one.", m),
               {fmt::format("    return [x + {} for x in nums]\n", m)}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 0, 30, 2, 5), r = v;
                      for (auto& x : r) x += m;
                      return std::pair{std::vector<Val>{of(v)}, of(r)};
                    }));
      },
      [](Draw& d) {  // largest number
        Spec s{{"largest", "max_of_list"}, "nums", "find the largest number in a list",
               "look at every number and keep the biggest one.", {"    return max(nums)\n"}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, -20, 60);
                      return std::pair{std::vector<Val>{of(v)}, of(*std::max_element(v.begin(), v.end()))};
                    }));
      },
      [](Draw& d) {  // count short words
        int k = d.num(3, 5);
        Spec s{{"count_short_words", "short_word_count"}, "words",
               fmt::format("count the words of a list that have at most {} letters", k),
               fmt::format("go through the words and count those with {} letters or fewer.", k),
               {fmt::format("    return sum(1 for w in words if len(w) <= {})\n", k)}};
        return make(d, s, cases(d, [&] {
                      std::vector<std::string> w(d.num(2, 5));
                      for (auto& x : w) x = word(d);
                      ll r = std::count_if(w.begin(), w.end(), [&](auto& x) { return static_cast<int>(x.size()) <= k; });
                      return std::pair{std::vector<Val>{of(w)}, of(r)};
                    }));
      },
      [](Draw& d) {  // square every element
        Spec s{{"square_all", "squares"}, "nums", "square every number in a list",
               "make a new list where each number is multiplied by itself.", {"    return [x * x for x in nums]\n"}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 0, 20, 2, 5), r = v;
                      for (auto& x : r) x *= x;
                      return std::pair{std::vector<Val>{of(v)}, of(r)};
                    }));
      },
  };
}

// Pool families: `wand improve --task code` samples and fine-tunes on these; no corpus has them
// and they are not the held-out (test) families. Recombinations of trained pieces, so that a model
// that learned the pieces can sometimes write them. Three mirror a test family (count_below of
// count_above, subtract_from_all of add_to_all, smallest of largest): they probe whether learning
// one transfers to the other; the other five have no test counterpart.
std::vector<Family> pool_families() {
  return {
      [](Draw& d) {  // sum of the even numbers
        Spec s{{"sum_evens", "sum_of_evens"}, "nums", "return the sum of the even numbers in a list",
               "add up the numbers that are even.", {"    return sum(x for x in nums if x % 2 == 0)\n"}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 0, 40);
                      ll r = 0;
                      for (ll x : v) r += x % 2 == 0 ? x : 0;
                      return std::pair{std::vector<Val>{of(v)}, of(r)};
                    }));
      },
      [](Draw& d) {  // count below a threshold
        int k = d.num(5, 30);
        Spec s{{"count_below", "count_less_than"}, "nums", fmt::format("count the numbers in a list that are less than {}", k),
               fmt::format("check each number and count those below {}.", k),
               {fmt::format("    return sum(1 for x in nums if x < {})\n", k)}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 0, 40);
                      return std::pair{std::vector<Val>{of(v)}, of(static_cast<ll>(std::count_if(v.begin(), v.end(), [&](ll x) { return x < k; })))};
                    }));
      },
      [](Draw& d) {  // subtract from every element
        int m = d.num(2, 9);
        Spec s{{"subtract_from_all", "minus_all"}, "nums", fmt::format("subtract {} from every number in a list", m),
               fmt::format("make a new list where each number is {} less than the old one.", m),
               {fmt::format("    return [x - {} for x in nums]\n", m)}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 0, 30, 2, 5), r = v;
                      for (auto& x : r) x -= m;
                      return std::pair{std::vector<Val>{of(v)}, of(r)};
                    }));
      },
      [](Draw& d) {  // smallest number
        Spec s{{"smallest", "min_of_list"}, "nums", "find the smallest number in a list",
               "look at every number and keep the smallest one.", {"    return min(nums)\n"}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, -20, 60);
                      return std::pair{std::vector<Val>{of(v)}, of(*std::min_element(v.begin(), v.end()))};
                    }));
      },
      [](Draw& d) {  // sum of a list
        Spec s{{"sum_list", "list_total"}, "nums", "add up all the numbers in a list",
               "keep a total and add each number to it.", {"    return sum(nums)\n"}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, 0, 50);
                      return std::pair{std::vector<Val>{of(v)}, of(std::accumulate(v.begin(), v.end(), ll{0}))};
                    }));
      },
      [](Draw& d) {  // length of a string
        Spec s{{"string_length", "text_length"}, "s", "count the characters of a string",
               "count every character, spaces included.", {"    return len(s)\n"}};
        return make(d, s, cases(d, [&] {
                      std::string w = sentence(d, 1, 3);
                      return std::pair{std::vector<Val>{of(w)}, of(static_cast<ll>(w.size()))};
                    }));
      },
      [](Draw& d) {  // last word
        Spec s{{"last_word", "final_word"}, "text", "return the last word of a sentence",
               "split the sentence into words and keep the last one.", {"    return text.split()[-1]\n"}};
        return make(d, s, cases(d, [&] {
                      std::string t = sentence(d, 2, 5);
                      return std::pair{std::vector<Val>{of(t)}, of(t.substr(t.rfind(' ') + 1))};
                    }));
      },
      [](Draw& d) {  // negate every element
        Spec s{{"negate_all", "negatives"}, "nums", "change the sign of every number in a list",
               "make a new list where each number is multiplied by -1.", {"    return [-x for x in nums]\n"}};
        return make(d, s, cases(d, [&] {
                      Ints v = ints(d, -20, 30, 2, 5), r = v;
                      for (auto& x : r) x = -x;
                      return std::pair{std::vector<Val>{of(v)}, of(r)};
                    }));
      },
  };
}

const std::vector<Family>& families(TemplateSet set) {
  static const auto train = train_families(), held = held_out_families();
  return set == TemplateSet::train ? train : held;
}

}  // namespace

int FunctionTaskGenerator::template_count(TemplateSet set) { return static_cast<int>(families(set).size()); }

FunctionTask FunctionTaskGenerator::next(TemplateSet set) { return from_random_template(rng_, families(set), set); }

int FunctionTaskGenerator::pool_count() { return static_cast<int>(pool_families().size()); }

FunctionTask FunctionTaskGenerator::next_pool() {
  static const auto pool = pool_families();
  auto t = from_random_template(rng_, pool, TemplateSet::train);  // ids from 0, moved to the pool's range
  t.template_id += kPoolFamilyBase;
  return t;
}

std::string FunctionTask::tests_text() const {
  std::string s;
  for (auto& t : tests) s += t + "\n";
  return s;
}

Json to_mbpp_json(const FunctionTask& t, long long task_id) {
  return {{"task_id", task_id},   {"text", t.description}, {"code", t.code},
          {"test_list", t.tests}, {"test_setup_code", ""}, {"template", t.template_id}};
}

}  // namespace wand::train
