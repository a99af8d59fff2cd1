// A compositional grammar of word problems (GrammarGenerator, corpus.h). A production is a
// story shape (a sequence of gains and losses, a comparison, equal groups, sharing, shopping, a
// rate over time, parts of a whole, several people's totals, and chains that compose a start, gains
// and losses and a last step freely); each is filled from independent
// choices: names, objects and their units ("a dozen eggs"), verbs of gain and loss, numbers as
// digits or words, relations ("twice as many", "half as many", "5 fewer"), distractor sentences
// with numbers that do not matter, the order of independent facts, and where the question goes
// (last, first, or folded into an "If ..., how many ...?"). Every problem is rendered as a
// program, a rationale and an answer built together, so they cannot disagree; `wand corpus`
// runs a sample of the programs in the sandbox (--verify).
//
// The split is by production: the productions of held_out_productions() never reach a
// training corpus (they are the grammar's own held-out set, heldout-grammar.jsonl), so a model
// is measured on story shapes it never saw, not only on new names and numbers. Written from
// general knowledge of grade-school problems, never from a test set.
#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <set>
#include <string_view>

#include "train/corpus.h"
#include "train/draw.h"

namespace wand::train {
namespace {

using ll = long long;

struct Thing {
  const char* one;
  const char* many;
  const char* container;  // what groups of them come in
  const char* containers;
};
const Thing kThingsWithUnits[] = {
    {"apple", "apples", "bag", "bags"},
    {"egg", "eggs", "carton", "cartons"},
    {"marble", "marbles", "jar", "jars"},
    {"sticker", "stickers", "sheet", "sheets"},
    {"pencil", "pencils", "box", "boxes"},
    {"cookie", "cookies", "tray", "trays"},
    {"card", "cards", "pack", "packs"},
    {"shell", "shells", "bucket", "buckets"},
    {"muffin", "muffins", "basket", "baskets"},
    {"flower", "flowers", "vase", "vases"},
    {"book", "books", "shelf", "shelves"},
    {"bottle", "bottles", "crate", "crates"},
    {"candle", "candles", "box", "boxes"},
    {"balloon", "balloons", "bunch", "bunches"},
    {"stamp", "stamps", "album", "albums"},
    {"orange", "oranges", "sack", "sacks"},
    {"toy car", "toy cars", "bin", "bins"},
    {"cupcake", "cupcakes", "box", "boxes"},
    {"pebble", "pebbles", "pail", "pails"},
    {"button", "buttons", "tin", "tins"},
};

// Verbs in the past tense: a gain and a loss, each with how the program names the amount.
struct Verb {
  const char* text;  // "found {n} more" — {n} is the number, {t} the things
  const char* var;
};
const Verb kGains[] = {{"found {n} more", "found"},         {"bought {n} more", "bought"},
                       {"was given {n} more", "received"},  {"picked {n} more", "picked"},
                       {"won {n} {t} in a game", "won"},    {"got {n} {t} from a friend", "received"},
                       {"collected {n} more {t}", "collected"}, {"made {n} more {t}", "made"}};
const Verb kLosses[] = {{"gave away {n}", "given_away"},  {"lost {n} of them", "lost"},
                        {"sold {n}", "sold"},             {"used {n}", "used"},
                        {"gave {n} to a neighbor", "given"}, {"shared {n} with a classmate", "shared"},
                        {"threw away {n} broken ones", "thrown_away"}, {"traded {n} away", "traded"}};

const char* const kNumberWords[] = {"zero",  "one",     "two",     "three",    "four",     "five",    "six",
                                    "seven", "eight",   "nine",    "ten",      "eleven",   "twelve",  "thirteen",
                                    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"};

// A number in a story's text until the story is done: kNumber digits kEnd, or kNumberCapital
// digits kEnd at a sentence's start (Story::n, resolve).
constexpr char kNumber = '\x01', kNumberCapital = '\x03', kEnd = '\x02';

std::string capitalize(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  if (!s.empty() && s[0] == kNumber) s[0] = kNumberCapital;
  return s;
}
std::string lower_first(std::string s) {
  // Keeps names capitalized: only a sentence that starts with a common word is lowered.
  static const char* const kCommon[] = {"There", "The", "Each", "A", "An", "Every", "In", "On", "After", "Then"};
  for (const char* w : kCommon)
    if (s.rfind(std::string(w) + " ", 0) == 0) return static_cast<char>(s[0] - 'A' + 'a') + s.substr(1);
  return s;
}
std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}
// `form` with each {key} replaced by its value: fill("{w} had {n}.", {{"{w}", who}, {"{n}", n}}).
std::string fill(std::string form, std::initializer_list<std::pair<std::string_view, std::string_view>> values) {
  for (auto& [key, value] : values) form = replace_all(std::move(form), key, value);
  return form;
}

// The pronouns of a name: subject, object, possessive.
struct Pronouns {
  const char *subject, *object, *possessive;
};
Pronouns pronouns_of(std::string_view name) {
  static const std::set<std::string_view> kHe = {"Ben",   "Dan",    "Finn", "Hugo",  "Jack",  "Leo",  "Noah",
                                                 "Paul",  "Sam",    "Vik",  "Amir",  "Carlos", "Gus", "Igor",
                                                 "Jonas", "Mateo",  "Omar", "Ravi",  "Theo",  "Kofi"};
  return kHe.contains(name) ? Pronouns{"he", "him", "his"} : Pronouns{"she", "her", "her"};
}

// `text` with every mention of `name` after its first one a pronoun, in the case its place asks
// for: "Ava's" -> "her", after a preposition or a verb of giving -> "her", else "she" ("She" at
// a sentence's start). Words that only look like the name ("Avalon") are left as they are.
std::string pronominalize(const std::string& text, const std::string& name) {
  static const std::set<std::string_view> kObjectAfter = {"to", "for", "with", "from", "than", "by", "of",
                                                          "gave", "gives", "give", "paid", "pays", "told", "asked"};
  const Pronouns p = pronouns_of(name);
  auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  std::string out;
  bool seen = false;
  std::size_t from = 0;
  for (std::size_t at; (at = text.find(name, from)) != std::string::npos; from = at + name.size()) {
    const std::size_t end = at + name.size();
    const bool whole = (at == 0 || !word_char(text[at - 1])) && (end == text.size() || !word_char(text[end]));
    out += text.substr(from, at - from);
    if (!whole || !seen) {
      seen = seen || whole;
      out += name;
      continue;
    }
    std::string_view before = out;  // the word before this mention ("" at the text's start)
    before = before.substr(0, before.find_last_not_of(' ') + 1);
    before = before.substr(before.find_last_of(' ') + 1);
    const bool starts = before.empty() || before.back() == '.' || before.back() == '?' || before.back() == '!';
    const bool possessive = text.compare(end, 2, "'s") == 0;
    if (possessive) at += 2;  // "Ava's" -> "her"
    std::string pronoun = possessive ? p.possessive : kObjectAfter.contains(before) ? p.object : p.subject;
    out += starts ? capitalize(pronoun) : pronoun;
  }
  return out + text.substr(from);
}

// One story being built: its facts (sentences), the question, and the program and steps that
// answer it.
struct Story {
  Draw& d;
  std::vector<std::string> facts;   // in story order
  std::vector<bool> movable;        // a fact whose place does not matter (set-up, distractors)
  std::string question;             // "How many apples does Ava have now?"
  std::string if_fact, if_question;  // optional: "Ava gives away 3" + "how many apples does she have left?"
  std::vector<std::string> code, steps;
  ll answer = 0;

  // A number in the text: words for small ones some of the time, digits otherwise. n() marks the
  // number and resolve() draws how it is written when the story is done, in text order: two n()
  // in one expression (whose order C++ leaves to the compiler) would otherwise make the corpus
  // depend on the compiler.
  static std::string n(ll v) { return kNumber + std::to_string(v) + kEnd; }
  void resolve(std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] != kNumber && text[i] != kNumberCapital) {
        out += text[i];
        continue;
      }
      const std::size_t end = text.find(kEnd, i);
      const std::string digits = text.substr(i + 1, end - i - 1);
      const ll v = std::stoll(digits);
      if (v >= 0 && v <= 20 && d.num(0, 3) == 0)
        out += text[i] == kNumberCapital ? capitalize(kNumberWords[v]) : std::string(kNumberWords[v]);
      else
        out += digits;
      i = end;
    }
    text = std::move(out);
  }
  std::vector<std::string> people;  // everyone person() drew, in order
  std::string person() {
    people.push_back(d.num(0, 1) ? d.name() : kMoreNames[d.num(0, std::size(kMoreNames) - 1)]);
    return people.back();
  }
  std::pair<std::string, std::string> two_people() {  // two different people
    std::string a = person(), b;
    do b = person(); while (b == a);
    return {a, b};
  }
  const Thing& thing() { return kThingsWithUnits[d.num(0, std::size(kThingsWithUnits) - 1)]; }
  void fact(std::string s, bool can_move = false) {
    facts.push_back(std::move(s));
    movable.push_back(can_move);
  }
  void distractor(const std::string& who) {
    static const char* const kForms[] = {"{w} is {n} years old.", "{w}'s house is {n} minutes from school.",
                                         "The weather was sunny for {n} days that week.",
                                         "{w} has a dog that weighs {n} kilograms.",
                                         "There are {n} students in {w}'s class.",
                                         "{w}'s favorite number is {n}."};
    std::string s = kForms[d.num(0, std::size(kForms) - 1)];
    fact(fill(s, {{"{w}", who}, {"{n}", std::to_string(d.num(3, 40))}}), true);
  }

  Problem done(int steps_n) {
    for (auto& f : facts) resolve(f);
    for (auto* t : {&if_fact, &question, &if_question}) resolve(*t);
    // People write a name once and a pronoun after it; a story of one person does so 2 times in 3.
    const bool pronouns = people.size() == 1 && d.num(0, 2) != 0;
    if (d.num(0, 2) == 0) distractor(person());
    // Movable facts may swap with their neighbours that are movable too.
    for (std::size_t i = 0; i + 1 < facts.size(); ++i)
      if (movable[i] && movable[i + 1] && d.num(0, 1)) std::swap(facts[i], facts[i + 1]);
    std::string text;
    int place = d.num(0, 5);
    auto body = [&] {
      std::string s;
      for (auto& f : facts) s += (s.empty() ? "" : " ") + f;
      return s;
    };
    if (!if_fact.empty() && place <= 1) {  // "Facts. If Ava gives away 3, how many ... ?"
      text = body() + " If " + lower_first(if_fact) + ", " + if_question;
    } else {
      if (!if_fact.empty()) fact(capitalize(if_fact) + ".");
      text = place == 5 ? question + " " + body() : body() + " " + question;
    }
    Problem p;
    p.question = pronouns ? pronominalize(text, people.front()) : text;  // the distractor's person comes after
    for (auto& c : code) p.program += c + "\n";
    for (auto& s : steps) p.rationale += s + " ";
    p.rationale += fmt::format("The answer is {}.", answer);
    p.answer = std::to_string(answer);
    p.steps = steps_n;
    return p;
  }
};

std::string verb_text(const Verb& v, const std::string& n, const Thing& t) {
  return fill(v.text, {{"{n}", n}, {"{t}", t.many}});
}

using Production = std::function<Problem(Draw&)>;

// A chain, the shape most grade-school problems take: a start (one amount, two kinds put
// together, or full containers), one or two gains and losses in many wordings (a loss may be
// "3 of them were broken" with the things as its subject), and maybe a last step that shares,
// packs or prices what is there. The parts compose freely, so a model sees each wording in many
// shapes rather than one.
enum class Start { one_amount, two_kinds, containers };
Problem chain(Draw& d, Start start) {
  struct Change {
    bool gain;
    const char* text;  // {w} the person, {n} the amount, {t} the things
    const char* var;
  };
  static const Change kChanges[] = {
      {true, "{w} found {n} more", "found"},       {true, "{w} bought {n} more {t}", "bought"},
      {true, "{w} got {n} more from a friend", "got"}, {true, "{w} received {n} more {t}", "received"},
      {true, "{w} picked {n} more", "picked"},     {true, "{w} won {n} more {t}", "won"},
      {true, "{w} made {n} more", "made"},         {true, "{w} downloaded {n} more {t}", "downloaded"},
      {true, "{w} added {n} more {t}", "added"},   {true, "{w} was given {n} more {t}", "given"},
      {false, "{w} gave away {n}", "gave_away"},   {false, "{w} lost {n} of them", "lost"},
      {false, "{w} sold {n} {t}", "sold"},         {false, "{w} used {n} of the {t}", "used"},
      {false, "{w} ate {n}", "ate"},               {false, "{w} deleted {n} {t}", "deleted"},
      {false, "{w} gave {n} to a friend", "gave"}, {false, "{w} threw away {n}", "threw_away"},
      {false, "{n} of them were broken", "broken"}, {false, "{n} of the {t} were rotten", "rotten"},
      {false, "{n} of them did not work", "bad"},  {false, "{n} of the {t} went missing", "missing"},
      {false, "{n} of them were bad", "bad"},      {false, "{w} donated {n} {t}", "donated"}};
  static const char* const kThen[] = {"", "Then ", "Later, ", "After that, ", "The next day, "};
  Story s{d};
  auto who = s.person();
  const Thing& t = s.thing();
  // The last step: 0 none, 1 shared among people, 2 packed so many to a container, 3 a price each.
  int last = d.num(0, 3);
  if (start == Start::containers && (last == 1 || last == 2)) last = 0;  // a product then a division: too easy a cancel
  int changes = d.num(last == 0 && start == Start::one_amount ? 1 : 0, 2);
  ll have = 0, groups = d.num(2, 9), per = d.num(2, 12), first = 0, second = 0, k = 1;
  std::vector<std::pair<const Change*, ll>> events;
  for (int tries = 0;; ++tries) {  // draw until the amount divides where the last step divides
    have = start == Start::containers ? groups * per : d.num(6, 60);
    if (start == Start::two_kinds) first = d.num(1, have - 1), second = have - first;
    events.clear();
    ll x = have;
    for (int e = 0; e < changes; ++e) {
      const Change& c = kChanges[d.num(0, std::size(kChanges) - 1)];
      ll n = c.gain ? d.num(2, 30) : x > 2 ? d.num(1, x - 2) : 0;
      if (n == 0) continue;
      x += c.gain ? n : -n;
      events.push_back({&c, n});
    }
    k = last == 1 ? d.num(2, 8) : last == 2 ? d.num(2, 12) : 1;
    if (x % k == 0 && x / k >= 1) break;
    if (tries == 50) last = 0;  // keeps the loop finite whatever the draws
  }
  const std::string things = t.many;
  if (start == Start::one_amount) {
    static const char* const kHad[] = {"{w} had {n} {t}.", "{w} has {n} {t}.", "{w} collected {n} {t}.",
                                       "There were {n} {t} in {w}'s room."};
    s.fact(fill(kHad[d.num(0, std::size(kHad) - 1)], {{"{w}", who}, {"{n}", s.n(have)}, {"{t}", things}}));
    s.code = {fmt::format("start = {}", have)};
  } else if (start == Start::two_kinds) {
    static const char* const kKinds[][2] = {{"big", "small"}, {"red", "blue"}, {"old", "new"}, {"green", "yellow"}};
    int kind = d.num(0, std::size(kKinds) - 1);
    s.fact(fmt::format("{} had {} {} {} and {} {} {}.", who, s.n(first), kKinds[kind][0], things, s.n(second), kKinds[kind][1], things));
    s.code = {fmt::format("first = {}", first), fmt::format("second = {}", second), "start = first + second"};
    s.steps = {fmt::format("{} + {} = {}.", first, second, have)};
  } else {
    s.fact(d.num(0, 1) ? fmt::format("{} bought {} {} of {}. Each {} had {} {}.", who, s.n(groups), t.containers, things,
                                     t.container, s.n(per), things)
                       : fmt::format("{} has {} {} with {} {} in each.", who, s.n(groups), t.containers, s.n(per), things));
    s.code = {fmt::format("{} = {}", t.containers, groups), fmt::format("per_{} = {}", t.container, per),
              fmt::format("start = {} * per_{}", t.containers, t.container)};
    s.steps = {fmt::format("{} * {} = {}.", groups, per, have)};
  }
  std::string expr = "start";
  ll x = have;
  for (std::size_t e = 0; e < events.size(); ++e) {
    auto [c, n] = events[e];
    std::string sentence = fill(c->text, {{"{w}", who}, {"{n}", s.n(n)}, {"{t}", things}});
    const bool same_subject = e == 1 && std::string_view(c->text).starts_with("{w} ") &&
                              std::string_view(events[0].first->text).starts_with("{w} ");
    if (same_subject && d.num(0, 1) == 0) {  // "Ava sold 5 and then bought 12 more."
      s.facts.back().pop_back();
      s.facts.back() += (d.num(0, 1) ? " and then " : " and ") + sentence.substr(who.size() + 1) + ".";
    } else {
      s.fact(capitalize(std::string(e == 0 ? "" : kThen[d.num(0, std::size(kThen) - 1)]) + sentence) + ".");
    }
    std::string var = c->var + (e == 1 && events[0].first->var == std::string(c->var) ? std::string("_again") : "");
    s.code.push_back(fmt::format("{} = {}", var, n));
    expr += (c->gain ? " + " : " - ") + var;
    s.steps.push_back(fmt::format("{} {} {} = {}.", x, c->gain ? "+" : "-", n, x + (c->gain ? n : -n)));
    x += c->gain ? n : -n;
  }
  s.code.push_back((last == 0 ? "answer = " : "total = ") + expr);
  const bool lost_last = !events.empty() && !events.back().first->gain;
  if (last == 0) {
    static const char* const kAsk[] = {"How many {t} does {w} have now?", "How many {t} does {w} have in all?",
                                       "How many {t} are there now?", "How many {t} does {w} have left?"};
    s.question = fill(kAsk[d.num(0, lost_last ? 3 : 2)], {{"{w}", who}, {"{t}", things}});
    s.answer = x;
    return s.done(std::max(1, static_cast<int>(events.size()) + (start == Start::one_amount ? 0 : 1)));
  }
  std::string them = events.empty() ? "them" : lost_last && d.num(0, 1) ? "the rest" : "all of them";
  const int steps = static_cast<int>(events.size()) + (start == Start::one_amount ? 1 : 2);
  if (last == 1) {
    static const char* const kShare[] = {"{w} shared {r} equally among {k} friends.", "{w} split {r} evenly between {k} people.",
                                         "{w} divided {r} equally into {k} groups."};
    int form = d.num(0, std::size(kShare) - 1);
    s.fact(fill(kShare[form], {{"{w}", who}, {"{r}", them}, {"{k}", s.n(k)}}));
    s.question = form == 2 ? fmt::format("How many {} are in each group?", things) : fmt::format("How many {} did each get?", things);
    s.code.push_back(fmt::format("people = {}", k));
    s.code.push_back("answer = total // people");
    s.steps.push_back(fmt::format("{} / {} = {}.", x, k, x / k));
    s.answer = x / k;
  } else if (last == 2) {
    s.fact(d.num(0, 1) ? fmt::format("{} put {} into {} of {}.", who, them, t.containers, s.n(k))
                       : fmt::format("{} packed {} into {}, {} in each {}.", who, them, t.containers, s.n(k), t.container));
    s.question = fmt::format("How many {} did {} fill?", t.containers, who);
    s.code.push_back(fmt::format("per_{} = {}", t.container, k));
    s.code.push_back(fmt::format("answer = total // per_{}", t.container));
    s.steps.push_back(fmt::format("{} / {} = {}.", x, k, x / k));
    s.answer = x / k;
  } else {
    ll price = d.num(2, 15);
    bool money = d.num(0, 1);
    s.if_fact = money ? fmt::format("{} sells {} for ${} each", who, them, price)
                      : fmt::format("each {} is worth {} points", t.one, s.n(price));
    s.if_question = money ? fmt::format("how much money does {} make?", who) : fmt::format("how many points does {} have?", who);
    s.question = money ? fmt::format("How many dollars does {} make?", who) : std::string("How many points is that in all?");
    s.code.push_back(fmt::format("price = {}", price));
    s.code.push_back("answer = total * price");
    s.steps.push_back(fmt::format("{} * {} = {}.", x, price, x * price));
    s.answer = x * price;
  }
  return s.done(steps);
}

std::vector<Production> train_productions() {
  return {
      // A start, then one to three gains and losses.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        const Thing& t = s.thing();
        ll have = d.num(10, 80);
        bool dozen = d.num(0, 4) == 0;
        if (dozen) {
          ll k = d.num(1, 4);
          have = 12 * k;
          s.fact(fmt::format("{} had {} of {}.", who, k == 1 ? "a dozen" : s.n(k) + " dozen", t.many));
          s.code = {fmt::format("start = {} * 12", k)};
          s.steps = {fmt::format("{} dozen is {} * 12 = {}.", k, k, have)};
        } else {
          s.fact(fmt::format("{} had {} {}.", who, s.n(have), t.many));
          s.code = {fmt::format("start = {}", have)};
        }
        std::string expr = "start";
        int events = d.num(1, 3);
        std::vector<std::string> used;
        for (int e = 0; e < events; ++e) {
          bool gain = have < 5 || d.num(0, 1);
          const Verb& v = gain ? kGains[d.num(0, std::size(kGains) - 1)] : kLosses[d.num(0, std::size(kLosses) - 1)];
          ll x = gain ? d.num(2, 40) : d.num(1, have - 1);
          std::string var = v.var;
          while (std::count(used.begin(), used.end(), var)) var += "_again";
          used.push_back(var);
          std::string sentence = fmt::format("{} {}", e == 0 ? who : (d.num(0, 1) ? "Then " + who : "After that, " + who),
                                             verb_text(v, s.n(x), t));
          if (e + 1 == events && d.num(0, 1)) {  // the last event may become the question's "if"
            s.if_fact = replace_all(sentence, "Then ", "");
            s.if_fact = replace_all(s.if_fact, "After that, ", "");
          } else {
            s.fact(sentence + ".");
          }
          s.code.push_back(fmt::format("{} = {}", var, x));
          ll before = have;
          have += gain ? x : -x;
          expr += (gain ? " + " : " - ") + var;
          s.steps.push_back(fmt::format("{} {} {} = {}.", before, gain ? "+" : "-", x, have));
        }
        s.code.push_back("answer = " + expr);
        s.answer = have;
        s.question = fmt::format("How many {} does {} have now?", t.many, who);
        s.if_question = fmt::format("how many {} does {} have then?", t.many, who);
        return s.done(events + (dozen ? 1 : 0));
      },
      // A comparison: B has k more / fewer / twice / half as many as A; B's amount or both.
      [](Draw& d) {
        Story s{d};
        auto [a, b] = s.two_people();
        const Thing& t = s.thing();
        int rel = d.num(0, 3);
        ll x = d.num(4, 60);
        if (rel == 3 && x % 2) ++x;
        ll k = d.num(2, 25), y = 0;
        std::string relation, line, step;
        switch (rel) {
          case 0: y = x + k, relation = fmt::format("{} more {} than {}", s.n(k), t.many, a), line = fmt::format("second = first + {}", k), step = fmt::format("{} + {} = {}.", x, k, y); break;
          case 1: k = std::min(k, x - 1), y = x - k, relation = fmt::format("{} fewer {} than {}", s.n(k), t.many, a), line = fmt::format("second = first - {}", k), step = fmt::format("{} - {} = {}.", x, k, y); break;
          case 2: y = 2 * x, relation = fmt::format("twice as many {} as {}", t.many, a), line = "second = first * 2", step = fmt::format("2 * {} = {}.", x, y); break;
          default: y = x / 2, relation = fmt::format("half as many {} as {}", t.many, a), line = "second = first // 2", step = fmt::format("{} / 2 = {}.", x, y); break;
        }
        s.fact(fmt::format("{} has {} {}.", a, s.n(x), t.many), true);
        s.fact(fmt::format("{} has {}.", b, relation));
        s.code = {fmt::format("first = {}", x), line};
        s.steps = {step};
        if (d.num(0, 1)) {
          s.question = fmt::format("How many {} do {} and {} have together?", t.many, a, b);
          s.code.push_back("answer = first + second");
          s.steps.push_back(fmt::format("{} + {} = {}.", x, y, x + y));
          s.answer = x + y;
          return s.done(2);
        }
        s.question = fmt::format("How many {} does {} have?", t.many, b);
        s.code.push_back("answer = second");
        s.answer = y;
        return s.done(1);
      },
      // Equal groups, in the things' own containers, maybe some taken out.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        const Thing& t = s.thing();
        ll groups = d.num(2, 12), per = d.num(0, 3) == 0 ? 12 : d.num(3, 20);
        std::string per_text = per == 12 && d.num(0, 1) ? "a dozen" : s.n(per);
        s.fact(fmt::format("{} has {} {} with {} {} in each {}.", who, s.n(groups), t.containers, per_text, t.many, t.container));
        s.code = {fmt::format("{} = {}", t.containers, groups), fmt::format("per_{} = {}", t.container, per),
                  fmt::format("total = {} * per_{}", t.containers, t.container)};
        s.steps = {fmt::format("{} * {} = {}.", groups, per, groups * per)};
        s.answer = groups * per;
        if (d.num(0, 1)) {
          ll used = d.num(1, groups * per - 1);
          const Verb& v = kLosses[d.num(0, std::size(kLosses) - 1)];
          s.if_fact = fmt::format("{} {}", who, verb_text(v, s.n(used), t));
          s.code.push_back(fmt::format("{} = {}", v.var, used));
          s.code.push_back(fmt::format("answer = total - {}", v.var));
          s.steps.push_back(fmt::format("{} - {} = {}.", groups * per, used, groups * per - used));
          s.answer -= used;
          s.question = fmt::format("How many {} are left?", t.many);
          s.if_question = fmt::format("how many {} are left?", t.many);
          return s.done(2);
        }
        s.code.push_back("answer = total");
        s.question = fmt::format("How many {} does {} have in all?", t.many, who);
        return s.done(1);
      },
      // Sharing equally, maybe with some left over.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        const Thing& t = s.thing();
        ll people = d.num(2, 9), each = d.num(2, 15), extra = d.num(0, 1) ? d.num(1, people - 1) : 0;
        ll total = people * each + extra;
        s.fact(fmt::format("{} has {} {}.", who, s.n(total), t.many), true);
        s.fact(fmt::format("{} shares them equally among {} friends{}.", who, s.n(people),
                           extra ? " and keeps the ones left over" : ""));
        s.code = {fmt::format("total = {}", total), fmt::format("friends = {}", people)};
        if (extra && d.num(0, 1)) {
          s.question = fmt::format("How many {} does {} keep?", t.many, who);
          s.code.push_back("answer = total % friends");
          s.steps = {fmt::format("{} = {} * {} + {}.", total, people, each, extra)};
          s.answer = extra;
          return s.done(1);
        }
        s.question = fmt::format("How many {} does each friend get?", t.many);
        s.code.push_back("answer = total // friends");
        s.steps = {fmt::format("{} / {} = {}{}.", total, people, each, extra ? " with some left over" : "")};
        s.answer = each;
        return s.done(1);
      },
      // Shopping: items at a price, maybe a second kind, a total or the change.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        const Thing& t = s.thing();
        ll q = d.num(2, 9), p = d.num(1, 12), q2 = d.num(1, 6), p2 = d.num(2, 20);
        const Thing& t2 = s.thing();
        bool second = &t2 != &t && d.num(0, 1);
        s.fact(fmt::format("{} buys {} {} for ${} each.", who, s.n(q), t.many, p));
        s.code = {fmt::format("cost = {} * {}", q, p)};
        s.steps = {fmt::format("{} * {} = {}.", q, p, q * p)};
        ll cost = q * p;
        if (second) {
          s.fact(fmt::format("{} also buys {} {} that cost ${} each.", who, s.n(q2), q2 == 1 ? t2.one : t2.many, p2));
          s.code.push_back(fmt::format("cost = cost + {} * {}", q2, p2));
          s.steps.push_back(fmt::format("{} + {} * {} = {}.", cost, q2, p2, cost + q2 * p2));
          cost += q2 * p2;
        }
        if (d.num(0, 1)) {
          ll paid = cost <= 20 ? 20 : cost <= 50 ? 50 : cost <= 100 ? 100 : 200;
          s.fact(fmt::format("{} pays with a ${} bill.", who, paid));
          s.code.push_back(fmt::format("answer = {} - cost", paid));
          s.steps.push_back(fmt::format("{} - {} = {}.", paid, cost, paid - cost));
          s.question = fmt::format("How much change does {} get in dollars?", who);
          s.answer = paid - cost;
          return s.done(second ? 3 : 2);
        }
        s.code.push_back("answer = cost");
        s.question = d.num(0, 1) ? fmt::format("How much does {} spend in dollars?", who) : "How many dollars is that in total?";
        s.answer = cost;
        return s.done(second ? 2 : 1);
      },
      // A rate over time: so many a day (or an hour) for some days, maybe minus a day off.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        static const char* const kActs[] = {"reads {n} pages", "walks {n} kilometers", "drinks {n} glasses of water",
                                            "writes {n} lines of code", "saves {n} dollars", "plants {n} seeds"};
        static const char* const kUnits[] = {"pages", "kilometers", "glasses of water", "lines of code", "dollars", "seeds"};
        static const char* const kVerbs[] = {"read", "walk", "drink", "write", "save", "plant"};
        int a = d.num(0, std::size(kActs) - 1);
        ll rate = d.num(2, 30), days = d.num(2, 14);
        bool week = d.num(0, 3) == 0;
        if (week) days = 7;
        s.fact(fmt::format("{} {} every day.", who, replace_all(kActs[a], "{n}", s.n(rate))));
        s.code = {fmt::format("per_day = {}", rate), fmt::format("days = {}", days), "answer = per_day * days"};
        s.steps = {fmt::format("{} * {} = {}.", rate, days, rate * days)};
        s.answer = rate * days;
        s.question = week ? fmt::format("How many {} does {} {} in a week?", kUnits[a], who, kVerbs[a])
                          : fmt::format("How many {} does {} {} in {} days?", kUnits[a], who, kVerbs[a], s.n(days));
        return s.done(1);
      },
      // Parts of a whole: so many are red and so many blue; the rest are another colour.
      [](Draw& d) {
        Story s{d};
        const Thing& t = s.thing();
        static const char* const kColors[] = {"red", "blue", "green", "yellow", "white", "purple"};
        int c1 = d.num(0, 5), c2 = (c1 + d.num(1, 5)) % 6;
        ll total = d.num(12, 90), a = d.num(1, total / 2), b = d.num(1, total - a - 1);
        std::string where = fmt::format("There are {} {} in a {}.", s.n(total), t.many, t.container);
        s.fact(where);
        s.fact(fmt::format("{} of them are {}{}.", capitalize(s.n(a)), kColors[c1],
                           d.num(0, 1) ? fmt::format(" and {} are {}", s.n(b), kColors[c2]) : fmt::format(". {} are {}", capitalize(s.n(b)), kColors[c2])));
        s.code = {fmt::format("total = {}", total), fmt::format("{} = {}", kColors[c1], a), fmt::format("{} = {}", kColors[c2], b),
                  fmt::format("answer = total - {} - {}", kColors[c1], kColors[c2])};
        s.steps = {fmt::format("{} + {} = {}.", a, b, a + b), fmt::format("{} - {} = {}.", total, a + b, total - a - b)};
        s.answer = total - a - b;
        s.question = fmt::format("The rest are striped. How many {} are striped?", t.many);
        return s.done(2);
      },
      // Several people's amounts: the total, or how many more they need for a goal.
      [](Draw& d) {
        Story s{d};
        const Thing& t = s.thing();
        int people = d.num(2, 3);
        std::vector<std::string> who;
        while (static_cast<int>(who.size()) < people) {
          auto w = s.person();
          if (std::find(who.begin(), who.end(), w) == who.end()) who.push_back(w);
        }
        ll sum = 0;
        std::string expr;
        for (int i = 0; i < people; ++i) {
          ll x = d.num(3, 50);
          s.fact(fmt::format("{} collected {} {}.", who[i], s.n(x), t.many), true);
          std::string var = fmt::format("person_{}", i + 1);
          s.code.push_back(fmt::format("{} = {}", var, x));
          expr += (i ? " + " : "") + var;
          sum += x;
        }
        s.steps.push_back(fmt::format("Together they have {}.", sum));
        if (d.num(0, 1)) {
          ll goal = sum + d.num(1, 60);
          s.fact(fmt::format("They want {} {} in all.", goal, t.many));
          s.code.push_back(fmt::format("answer = {} - ({})", goal, expr));
          s.steps.push_back(fmt::format("{} - {} = {}.", goal, sum, goal - sum));
          s.question = fmt::format("How many more {} do they need?", t.many);
          s.answer = goal - sum;
          return s.done(2);
        }
        s.code.push_back("answer = " + expr);
        s.question = fmt::format("How many {} did they collect in all?", t.many);
        s.answer = sum;
        return s.done(1);
      },
      // Two owners' (or two kinds') amounts put together, then some of them gone.
      [](Draw& d) {
        Story s{d};
        const Thing& t = s.thing();
        static const Verb kTheyLose[] = {{"ate {n} of them", "eaten"},  {"sold {n}", "sold"},
                                         {"gave away {n}", "given_away"}, {"lost {n}", "lost"},
                                         {"used {n} of them", "used"},  {"shared {n} with their friends", "shared"}};
        ll x = d.num(3, 60), y = d.num(3, 60), z = d.num(1, x + y - 1);
        const Verb& v = kTheyLose[d.num(0, std::size(kTheyLose) - 1)];
        std::string owner;
        if (d.num(0, 1)) {
          auto [a, b] = s.two_people();
          s.fact(fmt::format("{} had {} {}.", a, s.n(x), t.many), true);
          s.fact(fmt::format("{} had {}{}.", b, s.n(y), d.num(0, 1) ? "" : " " + std::string(t.many)), true);
          s.code = {fmt::format("{} = {}", "first", x), fmt::format("{} = {}", "second", y)};
          owner = "they";
        } else {
          static const char* const kKinds[][2] = {{"big", "small"}, {"red", "green"}, {"old", "new"}, {"plain", "striped"}};
          int k = d.num(0, std::size(kKinds) - 1);
          auto who = s.person();
          s.fact(fmt::format("{} had {} {} {} and {} {} {}.", who, s.n(x), kKinds[k][0], t.many, s.n(y), kKinds[k][1], t.many));
          s.code = {fmt::format("{} = {}", kKinds[k][0], x), fmt::format("{} = {}", kKinds[k][1], y)};
          owner = who;
        }
        std::string subject = owner == "they" ? "They" : owner;
        std::string first = s.code[0].substr(0, s.code[0].find(' ')), second = s.code[1].substr(0, s.code[1].find(' '));
        s.code.push_back(fmt::format("{} = {}", v.var, z));
        s.code.push_back(fmt::format("answer = {} + {} - {}", first, second, v.var));
        s.steps = {fmt::format("{} + {} = {}.", x, y, x + y), fmt::format("{} - {} = {}.", x + y, z, x + y - z)};
        s.answer = x + y - z;
        std::string verb = replace_all(v.text, "{n}", s.n(z));
        std::string has = owner == "they" ? "do they" : "does " + owner;
        if (d.num(0, 1)) {
          s.if_fact = subject + " " + verb;
          s.if_question = fmt::format("how many {} {} have left?", t.many, has);
        } else {
          s.fact(fmt::format("{} {}.", subject, verb));
        }
        s.question = fmt::format("How many {} {} have left?", t.many, has);
        return s.done(2);
      },
      // A difference: how many more (or fewer) one has than another, or still needs for a goal.
      [](Draw& d) {
        Story s{d};
        auto [a, b] = s.two_people();
        const Thing& t = s.thing();
        ll x = d.num(2, 60), y = x + d.num(1, 40);
        if (d.num(0, 2) == 0) {  // a goal
          static const char* const kWhy[] = {"for a party", "for a school project", "to fill a display", "for a fair"};
          s.fact(fmt::format("{} needs {} {} {}.", a, s.n(y), t.many, kWhy[d.num(0, std::size(kWhy) - 1)]));
          s.fact(fmt::format("{} already has {}{}.", a, s.n(x), d.num(0, 1) ? "" : " " + std::string(t.many)));
          s.code = {fmt::format("needed = {}", y), fmt::format("has = {}", x), "answer = needed - has"};
          s.question = fmt::format("How many more {} does {} need?", t.many, a);
        } else {
          s.fact(fmt::format("{} has {} {}.", a, s.n(x), t.many), true);
          s.fact(fmt::format("{} has {} {}.", b, s.n(y), t.many), true);
          s.code = {fmt::format("first = {}", x), fmt::format("second = {}", y), "answer = second - first"};
          s.question = d.num(0, 1) ? fmt::format("How many more {} does {} have than {}?", t.many, b, a)
                                   : fmt::format("How many fewer {} does {} have than {}?", t.many, a, b);
        }
        s.steps = {fmt::format("{} - {} = {}.", y, x, y - x)};
        s.answer = y - x;
        return s.done(1);
      },
      // The start is unknown: what is there now and what changed are given.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        const Thing& t = s.thing();
        bool gain = d.num(0, 1);
        const Verb& v = gain ? kGains[d.num(0, std::size(kGains) - 1)] : kLosses[d.num(0, std::size(kLosses) - 1)];
        ll x = d.num(2, 40), now = d.num(gain ? x + 1 : 1, gain ? x + 60 : 60);
        s.fact(fmt::format("{} had some {}.", who, t.many));
        s.fact(fmt::format("{} {}.", who, verb_text(v, s.n(x), t)));
        s.fact(fmt::format("Now {} has {} {}.", who, s.n(now), t.many));
        s.code = {fmt::format("now = {}", now), fmt::format("{} = {}", v.var, x),
                  fmt::format("answer = now {} {}", gain ? "-" : "+", v.var)};
        s.steps = {fmt::format("{} {} {} = {}.", now, gain ? "-" : "+", x, gain ? now - x : now + x)};
        s.answer = gain ? now - x : now + x;
        s.question = fmt::format("How many {} did {} have at first?", t.many, who);
        return s.done(1);
      },
      // Selling: some (or the rest) sold at a price each; the money made.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        const Thing& t = s.thing();
        ll n = d.num(6, 60), k = d.num(1, n - 1), p = d.num(2, 15);
        s.fact(fmt::format("{} had {} {} to sell.", who, s.n(n), t.many));
        s.code = {fmt::format("total = {}", n), fmt::format("price = {}", p)};
        if (d.num(0, 1)) {  // the rest sell
          static const char* const kGone[] = {"{n} of them broke", "{w} kept {n} for a friend", "{w} ate {n} of them",
                                              "{n} were lost on the way"};
          s.fact(capitalize(fill(kGone[d.num(0, std::size(kGone) - 1)], {{"{n}", s.n(k)}, {"{w}", who}})) + ".");
          s.fact(fmt::format("{} sold the rest for ${} each.", who, p));
          s.code.insert(s.code.begin() + 1, fmt::format("not_sold = {}", k));
          s.code.push_back("answer = (total - not_sold) * price");
          s.steps = {fmt::format("{} - {} = {}.", n, k, n - k), fmt::format("{} * {} = {}.", n - k, p, (n - k) * p)};
          s.answer = (n - k) * p;
        } else {
          s.fact(fmt::format("Each {} sells for ${}.", t.one, p), true);
          s.fact(fmt::format("{} sold {} of them.", who, s.n(k)));
          s.code.push_back(fmt::format("sold = {}", k));
          s.code.push_back("answer = sold * price");
          s.steps = {fmt::format("{} * {} = {}.", k, p, k * p)};
          s.answer = k * p;
        }
        s.question = d.num(0, 1) ? fmt::format("How much money did {} make?", who)
                                 : fmt::format("How many dollars did {} earn from the {}?", who, t.many);
        return s.done(static_cast<int>(s.steps.size()));
      },
      // A total changed, then put equally into containers (or containers filled with so many each).
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        const Thing& t = s.thing();
        ll groups = d.num(2, 9), each = d.num(2, 12), total = groups * each;
        bool gain = d.num(0, 1);
        ll x = d.num(1, total - 1), start = gain ? total - x : total + x;
        const Verb& v = gain ? kGains[d.num(0, std::size(kGains) - 1)] : kLosses[d.num(0, std::size(kLosses) - 1)];
        s.fact(fmt::format("{} had {} {}.", who, s.n(start), t.many));
        s.fact(fmt::format("{} {}.", who, verb_text(v, s.n(x), t)));
        s.code = {fmt::format("start = {}", start), fmt::format("{} = {}", v.var, x),
                  fmt::format("total = start {} {}", gain ? "+" : "-", v.var)};
        s.steps = {fmt::format("{} {} {} = {}.", start, gain ? "+" : "-", x, total)};
        if (d.num(0, 1)) {
          s.fact(fmt::format("{} put them equally into {} {}.", who, s.n(groups), t.containers));
          s.code.push_back(fmt::format("{} = {}", t.containers, groups));
          s.code.push_back(fmt::format("answer = total // {}", t.containers));
          s.steps.push_back(fmt::format("{} / {} = {}.", total, groups, each));
          s.answer = each;
          s.question = fmt::format("How many {} are in each {}?", t.many, t.container);
        } else {
          s.fact(fmt::format("{} put {} {} in each {}.", who, s.n(each), t.many, t.container));
          s.code.push_back(fmt::format("per_{} = {}", t.container, each));
          s.code.push_back(fmt::format("answer = total // per_{}", t.container));
          s.steps.push_back(fmt::format("{} / {} = {}.", total, each, groups));
          s.answer = groups;
          s.question = fmt::format("How many {} did {} fill?", t.containers, who);
        }
        return s.done(2);
      },
      // Full containers and some loose ones; or pay per hour over two days.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        if (d.num(0, 1)) {
          const Thing& t = s.thing();
          ll g = d.num(2, 12), p = d.num(3, 15), e = d.num(1, p - 1);
          s.fact(fmt::format("{} has {} {} of {}.", who, s.n(g), t.containers, t.many));
          s.fact(fmt::format("Each {} holds {} {}.", t.container, s.n(p), t.many));
          s.fact(fmt::format("{} also has {} loose {}.", who, s.n(e), e == 1 ? t.one : t.many), true);
          s.code = {fmt::format("{} = {}", t.containers, g), fmt::format("per_{} = {}", t.container, p),
                    fmt::format("loose = {}", e), fmt::format("answer = {} * per_{} + loose", t.containers, t.container)};
          s.steps = {fmt::format("{} * {} = {}.", g, p, g * p), fmt::format("{} + {} = {}.", g * p, e, g * p + e)};
          s.answer = g * p + e;
          s.question = fmt::format("How many {} does {} have in all?", t.many, who);
          return s.done(2);
        }
        static const char* const kDays[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
        int d1 = d.num(0, 4), d2 = d.num(d1 + 1, 5);
        ll rate = d.num(5, 20), h1 = d.num(2, 9), h2 = d.num(2, 9);
        s.fact(fmt::format("{} earns ${} an hour {}.", who, rate, d.num(0, 1) ? "babysitting" : "at a cafe"), true);
        s.fact(fmt::format("{} worked {} hours on {} and {} hours on {}.", who, s.n(h1), kDays[d1], s.n(h2), kDays[d2]));
        s.code = {fmt::format("per_hour = {}", rate), fmt::format("hours = {} + {}", h1, h2), "answer = per_hour * hours"};
        s.steps = {fmt::format("{} + {} = {}.", h1, h2, h1 + h2), fmt::format("{} * {} = {}.", rate, h1 + h2, rate * (h1 + h2))};
        s.answer = rate * (h1 + h2);
        s.question = fmt::format("How much money did {} earn?", who);
        return s.done(2);
      },
      // Two amounts put together, then split equally or packed so many to a container.
      [](Draw& d) {
        Story s{d};
        const Thing& t = s.thing();
        ll z = d.num(2, 9), total = z * d.num(2, 12), x = d.num(1, total - 1), y = total - x;
        std::string they = "They";
        if (d.num(0, 1)) {
          auto [a, b] = s.two_people();
          static const char* const kGot[] = {"picked", "collected", "found", "brought", "made", "bought"};
          const char* got = kGot[d.num(0, std::size(kGot) - 1)];
          s.fact(fmt::format("{} {} {} {}.", a, got, s.n(x), t.many), true);
          s.fact(fmt::format("{} {} {}{}.", b, got, s.n(y), d.num(0, 1) ? "" : " " + std::string(t.many)), true);
        } else {
          static const char* const kKinds[][2] = {{"big", "small"}, {"red", "blue"}, {"chocolate", "vanilla"}, {"old", "new"}};
          int k = d.num(0, std::size(kKinds) - 1);
          they = s.person();
          s.fact(fmt::format("{} had {} {} {} and {} {} {}.", they, s.n(x), kKinds[k][0], t.many, s.n(y),
                             kKinds[k][1], t.many));
        }
        s.code = {fmt::format("first = {}", x), fmt::format("second = {}", y), "total = first + second"};
        s.steps = {fmt::format("{} + {} = {}.", x, y, total)};
        if (d.num(0, 1)) {
          static const char* const kSplit[] = {"{w} shared them equally among {n} friends.",
                                               "{w} split them evenly between {n} people.",
                                               "The {t} were divided equally into {n} groups."};
          s.fact(fill(kSplit[d.num(0, std::size(kSplit) - 1)], {{"{n}", s.n(z)}, {"{t}", t.many}, {"{w}", they}}));
          s.question = d.num(0, 1) ? fmt::format("How many {} did each get?", t.many)
                                   : fmt::format("How many {} are in each group?", t.many);
          s.code.push_back(fmt::format("groups = {}", z));
          s.code.push_back("answer = total // groups");
          s.steps.push_back(fmt::format("{} / {} = {}.", total, z, total / z));
          s.answer = total / z;
        } else {
          s.fact(fmt::format("{} put the {} into {} with {} in each {}.", they, t.many, t.containers, s.n(total / z), t.container));
          s.question = fmt::format("How many {} did {} use?", t.containers, they == "They" ? "they" : they);
          s.code.push_back(fmt::format("per_{} = {}", t.container, total / z));
          s.code.push_back(fmt::format("answer = total // per_{}", t.container));
          s.steps.push_back(fmt::format("{} / {} = {}.", total, total / z, z));
          s.answer = z;
        }
        return s.done(2);
      },
      // Some gone, then the rest each worth (or holding) so many.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        const Thing& t = s.thing();
        ll x = d.num(4, 40), y = d.num(1, x - 1), z = d.num(2, 12);
        const Verb& v = kLosses[d.num(0, std::size(kLosses) - 1)];
        s.fact(fmt::format("{} had {} {}.", who, s.n(x), t.containers));
        s.fact(fmt::format("{} {}.", who, verb_text(v, s.n(y), t)));
        s.code = {fmt::format("{} = {}", t.containers, x), fmt::format("{} = {}", v.var, y),
                  fmt::format("rest = {} - {}", t.containers, v.var), fmt::format("per_{} = {}", t.container, z),
                  fmt::format("answer = rest * per_{}", t.container)};
        s.steps = {fmt::format("{} - {} = {}.", x, y, x - y), fmt::format("{} * {} = {}.", x - y, z, (x - y) * z)};
        s.answer = (x - y) * z;
        if (d.num(0, 1)) {
          s.fact(fmt::format("Each {} has {} {} in it.", t.container, s.n(z), t.many), true);
          s.question = fmt::format("How many {} does {} have now?", t.many, who);
        } else {
          s.if_fact = fmt::format("each {} holds {} {}", t.container, s.n(z), t.many);
          s.if_question = fmt::format("how many {} are in the {} {} still has?", t.many, t.containers, who);
          s.question = fmt::format("How many {} are in the {} that are left?", t.many, t.containers);
        }
        return s.done(2);
      },
      // Points (or pay) for each one, over two rounds or kinds.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        const Thing& t = s.thing();
        ll p = d.num(2, 15), x = d.num(1, 12), y = d.num(1, 12);
        static const char* const kEach[] = {"In a game, each {o} {w} finds is worth {p} points.",
                                            "{w} gets {p} points for every {o} collected.",
                                            "A shop pays {w} ${p} for each {o}."};
        int form = d.num(0, std::size(kEach) - 1);
        s.fact(fill(kEach[form], {{"{o}", t.one}, {"{w}", who}, {"{p}", s.n(p)}}), true);
        bool rounds = d.num(0, 1);
        s.fact(rounds ? fmt::format("{} got {} {} in the first round and {} in the second round.", who, s.n(x), t.many, s.n(y))
                      : fmt::format("{} brought {} {} on Monday and {} on Tuesday.", who, s.n(x), t.many, s.n(y)));
        s.code = {fmt::format("per_one = {}", p), fmt::format("first = {}", x), fmt::format("second = {}", y),
                  "answer = (first + second) * per_one"};
        s.steps = {fmt::format("{} + {} = {}.", x, y, x + y), fmt::format("{} * {} = {}.", x + y, p, (x + y) * p)};
        s.answer = (x + y) * p;
        s.question = form == 2 ? fmt::format("How many dollars did {} get in all?", who)
                               : fmt::format("How many points did {} score in all?", who);
        return s.done(2);
      },
      // Chains (above) from each kind of start.
      [](Draw& d) { return chain(d, Start::one_amount); },
      [](Draw& d) { return chain(d, Start::two_kinds); },
      [](Draw& d) { return chain(d, Start::containers); },
  };
}

// Story shapes no training corpus has: the grammar's held-out productions.
std::vector<Production> held_out_productions() {
  return {
      // A fraction of what is left after a loss ("half of the rest").
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        const Thing& t = s.thing();
        ll half = d.num(3, 30), lost = d.num(1, 30);
        ll start = 2 * half + lost;
        const Verb& v = kLosses[d.num(0, std::size(kLosses) - 1)];
        s.fact(fmt::format("{} had {} {}.", who, s.n(start), t.many));
        s.fact(fmt::format("{} {}.", who, verb_text(v, s.n(lost), t)));
        s.fact(fmt::format("Then {} gave half of the rest to a sister.", who));
        s.code = {fmt::format("start = {}", start), fmt::format("{} = {}", v.var, lost), fmt::format("rest = start - {}", v.var),
                  "answer = rest - rest // 2"};
        s.steps = {fmt::format("{} - {} = {}.", start, lost, 2 * half), fmt::format("Half of {} is {}, so {} are left.", 2 * half, half, half)};
        s.answer = half;
        s.question = fmt::format("How many {} does {} have left?", t.many, who);
        return s.done(2);
      },
      // Three times as many, then the difference.
      [](Draw& d) {
        Story s{d};
        auto [a, b] = s.two_people();
        const Thing& t = s.thing();
        ll x = d.num(2, 30);
        s.fact(fmt::format("{} has {} {}.", a, s.n(x), t.many), true);
        s.fact(fmt::format("{} has three times as many {} as {}.", b, t.many, a));
        s.code = {fmt::format("first = {}", x), "second = first * 3", "answer = second - first"};
        s.steps = {fmt::format("3 * {} = {}.", x, 3 * x), fmt::format("{} - {} = {}.", 3 * x, x, 2 * x)};
        s.answer = 2 * x;
        s.question = fmt::format("How many more {} does {} have than {}?", t.many, b, a);
        return s.done(2);
      },
  };
}

// The loop's pool (`wand improve --task pot`): story shapes in no training corpus and none of the
// held-out test templates (models/heldout-templates.jsonl): everyday kinds of operation (percent
// change, rates and speeds, ages, unit prices, money in and out, groups), some in the training
// data in other wordings, each in phrasings of its own. Only their questions and answers are used: the programs
// below exist so that tests can check the answers in the sandbox, never to train on.
std::vector<Production> pool_productions() {
  static const char* const kMembers[][2] = {{"club", "members"}, {"school", "students"}, {"office", "workers"},
                                            {"choir", "singers"}, {"team", "players"}};
  static const char* const kHobbies[] = {"play chess", "ride a bike to it", "wear glasses", "have a pet", "speak French"};
  static const char* const kNots[] = {"do not play chess", "do not ride a bike to it", "do not wear glasses",
                                      "have no pet", "do not speak French"};
  return {
      // A percent of a group, or the rest of it.
      [](Draw& d) {
        Story s{d};
        int g = d.num(0, std::size(kMembers) - 1), h = d.num(0, std::size(kHobbies) - 1);
        ll total = 20 * d.num(2, 15), pct = 5 * d.num(2, 18), part = total * pct / 100;
        s.fact(fmt::format("A {} has {} {}.", kMembers[g][0], total, kMembers[g][1]));
        s.fact(fmt::format("Of them, {}% {}.", pct, kHobbies[h]));
        s.code = {fmt::format("total = {}", total), fmt::format("part = total * {} // 100", pct)};
        s.steps = {fmt::format("{}% of {} is {}.", pct, total, part)};
        if (d.num(0, 1)) {
          s.code.push_back("answer = total - part");
          s.steps.push_back(fmt::format("{} - {} = {}.", total, part, total - part));
          s.answer = total - part;
          s.question = fmt::format("How many {} {}?", kMembers[g][1], kNots[h]);
          return s.done(2);
        }
        s.code.push_back("answer = part");
        s.answer = part;
        s.question = fmt::format("How many {} {}?", kMembers[g][1], kHobbies[h]);
        return s.done(1);
      },
      // Growth by a percent: a flock, a town, a salary.
      [](Draw& d) {
        Story s{d};
        ll base = 20 * d.num(2, 30), pct = 5 * d.num(1, 12), more = base * pct / 100;
        s.code = {fmt::format("before = {}", base), fmt::format("growth = before * {} // 100", pct), "answer = before + growth"};
        s.steps = {fmt::format("{}% of {} is {}.", pct, base, more), fmt::format("{} + {} = {}.", base, more, base + more)};
        s.answer = base + more;
        switch (d.num(0, 2)) {
          case 0:
            s.fact(fmt::format("A farm kept {} sheep last spring.", base));
            s.fact(fmt::format("Since then the flock has grown by {}%.", pct));
            s.question = "How many sheep does the farm keep now?";
            break;
          case 1: {
            auto who = s.person();
            s.fact(fmt::format("{} was paid ${} a month.", who, base));
            s.fact(fmt::format("Then {} got a raise of {}%.", who, pct));
            s.question = fmt::format("How many dollars a month is {} paid after the raise?", who);
            break;
          }
          default:
            s.fact(fmt::format("A village had {} people ten years ago.", base));
            s.fact(fmt::format("Its population is {}% larger today.", pct));
            s.question = "How many people live in the village today?";
        }
        return s.done(2);
      },
      // A part used up by a percent; what remains.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        ll base = 20 * d.num(2, 25), pct = 5 * d.num(1, 18), used = base * pct / 100;
        bool money = d.num(0, 1);
        s.fact(money ? fmt::format("{} saved ${} for a holiday.", who, base)
                     : fmt::format("A tank on {}'s farm holds {} liters of water.", who, base));
        s.fact(money ? fmt::format("The train tickets took {}% of the savings.", pct)
                     : fmt::format("The animals drank {}% of the water.", pct));
        s.code = {fmt::format("full = {}", base), fmt::format("used = full * {} // 100", pct), "answer = full - used"};
        s.steps = {fmt::format("{}% of {} is {}.", pct, base, used), fmt::format("{} - {} = {}.", base, used, base - used)};
        s.answer = base - used;
        s.question = money ? "How many dollars of the savings are left?" : "How many liters are still in the tank?";
        return s.done(2);
      },
      // The same speed for another time.
      [](Draw& d) {
        Story s{d};
        static const char* const kMovers[][2] = {{"A train", "kilometers"}, {"A ship", "miles"}, {"A truck", "kilometers"},
                                                 {"A hiker", "miles"}};
        int m = d.num(0, std::size(kMovers) - 1);
        ll speed = d.num(3, 60), hours = d.num(2, 8), later = d.num(2, 9);
        if (later == hours) ++later;
        s.fact(fmt::format("{} goes {} {} in {} hours.", kMovers[m][0], speed * hours, kMovers[m][1], s.n(hours)));
        s.code = {fmt::format("distance = {}", speed * hours), fmt::format("hours = {}", hours), "per_hour = distance // hours",
                  fmt::format("answer = per_hour * {}", later)};
        s.steps = {fmt::format("{} / {} = {}.", speed * hours, hours, speed), fmt::format("{} * {} = {}.", speed, later, speed * later)};
        s.answer = speed * later;
        s.question = fmt::format("Keeping the same pace, how many {} does it go in {} hours?", kMovers[m][1], s.n(later));
        return s.done(2);
      },
      // Work at a rate: how long a job takes.
      [](Draw& d) {
        Story s{d};
        static const char* const kJobs[][3] = {{"A pump moves {n} liters of water each minute.", "liters", "to move"},
                                               {"A printer prints {n} pages each minute.", "pages", "to print"},
                                               {"A machine fills {n} bottles each minute.", "bottles", "to fill"}};
        int j = d.num(0, std::size(kJobs) - 1);
        ll rate = d.num(3, 40), minutes = d.num(2, 30);
        s.fact(replace_all(kJobs[j][0], "{n}", std::to_string(rate)));
        s.code = {fmt::format("per_minute = {}", rate), fmt::format("amount = {}", rate * minutes), "answer = amount // per_minute"};
        s.steps = {fmt::format("{} / {} = {}.", rate * minutes, rate, minutes)};
        s.answer = minutes;
        s.question = fmt::format("How many minutes does it need {} {} {}?", kJobs[j][2], rate * minutes, kJobs[j][1]);
        return s.done(1);
      },
      // Distance and time given; how far each hour.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        ll speed = d.num(4, 30), hours = d.num(2, 9);
        static const char* const kHow[] = {"rode a bike", "rowed a boat", "walked"};
        s.fact(fmt::format("{} {} for {} hours without changing pace and went {} miles in all.", who,
                           kHow[d.num(0, std::size(kHow) - 1)], s.n(hours), speed * hours));
        s.code = {fmt::format("miles = {}", speed * hours), fmt::format("hours = {}", hours), "answer = miles // hours"};
        s.steps = {fmt::format("{} / {} = {}.", speed * hours, hours, speed)};
        s.answer = speed;
        s.question = fmt::format("How many miles did {} go in each hour?", who);
        return s.done(1);
      },
      // Ages: older by some years, then a number of years later.
      [](Draw& d) {
        Story s{d};
        auto [a, b] = s.two_people();
        ll x = d.num(3, 40), y = d.num(2, 30), z = d.num(2, 15);
        s.fact(fmt::format("{} is {} years old.", a, x), true);
        s.fact(fmt::format("{} was born {} years before {}.", b, y, a), true);
        s.code = {fmt::format("first = {}", x), fmt::format("second = first + {}", y), fmt::format("answer = second + {}", z)};
        s.steps = {fmt::format("{} + {} = {}.", x, y, x + y), fmt::format("{} + {} = {}.", x + y, z, x + y + z)};
        s.answer = x + y + z;
        s.question = fmt::format("How old will {} be {} years from now?", b, z);
        return s.done(2);
      },
      // Ages: so many times as old, some years ago or ahead.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        static const char* const kTimes[] = {"", "", "twice", "three times", "four times"};
        static const char* const kKin[] = {"mother", "father", "aunt", "grandmother", "uncle"};
        ll k = d.num(2, 4), x = d.num(4, 20), z = d.num(1, 10);
        const char* kin = kKin[d.num(0, std::size(kKin) - 1)];
        bool ago = d.num(0, 1);
        s.fact(fmt::format("{} is {} years old.", who, x), true);
        s.fact(fmt::format("{}'s {} is {} as old as {}.", who, kin, kTimes[k], who), true);
        s.code = {fmt::format("age = {}", x), fmt::format("elder = age * {}", k),
                  fmt::format("answer = elder {} {}", ago ? "-" : "+", z)};
        s.steps = {fmt::format("{} * {} = {}.", x, k, k * x), fmt::format("{} {} {} = {}.", k * x, ago ? "-" : "+", z, ago ? k * x - z : k * x + z)};
        s.answer = ago ? k * x - z : k * x + z;
        s.question = ago ? fmt::format("How old was the {} {} years ago?", kin, s.n(z))
                         : fmt::format("How old will the {} be in {} years?", kin, s.n(z));
        return s.done(2);
      },
      // A unit price from a total, then another quantity.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        const Thing& t = s.thing();
        ll q = d.num(2, 9), p = d.num(2, 15), m = d.num(2, 12);
        if (m == q) ++m;
        s.fact(fmt::format("{} paid ${} for {} {}, all at one price.", who, q * p, s.n(q), t.many));
        s.code = {fmt::format("total = {}", q * p), fmt::format("count = {}", q), "each = total // count", fmt::format("answer = each * {}", m)};
        s.steps = {fmt::format("{} / {} = {}.", q * p, q, p), fmt::format("{} * {} = {}.", p, m, p * m)};
        s.answer = p * m;
        s.question = fmt::format("At that price, how many dollars would {} {} cost?", s.n(m), t.many);
        return s.done(2);
      },
      // Two kinds of ticket at their prices.
      [](Draw& d) {
        Story s{d};
        ll pa = d.num(5, 25), pc = d.num(2, pa - 1), a = d.num(1, 6), c = d.num(1, 8);
        static const char* const kPlaces[] = {"the zoo", "a museum", "the cinema", "a water park"};
        s.fact(fmt::format("At {}, an adult ticket is ${} and a child ticket is ${}.", kPlaces[d.num(0, std::size(kPlaces) - 1)], pa, pc));
        s.fact(fmt::format("A family buys {} adult tickets and {} child tickets.", a, c));
        s.code = {fmt::format("adults = {} * {}", a, pa), fmt::format("children = {} * {}", c, pc), "answer = adults + children"};
        s.steps = {fmt::format("{} * {} = {}.", a, pa, a * pa), fmt::format("{} * {} = {}.", c, pc, c * pc),
                   fmt::format("{} + {} = {}.", a * pa, c * pc, a * pa + c * pc)};
        s.answer = a * pa + c * pc;
        s.question = "How much does the family pay in dollars?";
        return s.done(3);
      },
      // Money in and out over a day.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        ll x = d.num(5, 60), y = d.num(5, 40), z = d.num(1, (x + y) / 2), w = d.num(1, x + y - z - 1);
        static const char* const kEarn[] = {"mowing a lawn", "walking a neighbor's dog", "selling lemonade"};
        s.fact(fmt::format("{} started the day with ${}.", who, x));
        s.fact(fmt::format("{} earned ${} {}, paid ${} for lunch, and then ${} for a comic book.", who, y,
                           kEarn[d.num(0, std::size(kEarn) - 1)], z, w));
        s.code = {fmt::format("money = {}", x), fmt::format("money = money + {}", y), fmt::format("money = money - {}", z),
                  fmt::format("answer = money - {}", w)};
        s.steps = {fmt::format("{} + {} = {}.", x, y, x + y), fmt::format("{} - {} - {} = {}.", x + y, z, w, x + y - z - w)};
        s.answer = x + y - z - w;
        s.question = fmt::format("How many dollars did {} have at the end of the day?", who);
        return s.done(3);
      },
      // Saving the same amount each week, then taking some out.
      [](Draw& d) {
        Story s{d};
        auto who = s.person();
        ll r = d.num(2, 25), weeks = d.num(3, 12), out = d.num(1, r * weeks - 1);
        s.fact(fmt::format("Every week for {} weeks, {} put ${} into a piggy bank.", weeks, who, r));
        s.fact(fmt::format("After that, {} took out ${} to buy a present.", who, out));
        s.code = {fmt::format("saved = {} * {}", r, weeks), fmt::format("answer = saved - {}", out)};
        s.steps = {fmt::format("{} * {} = {}.", r, weeks, r * weeks), fmt::format("{} - {} = {}.", r * weeks, out, r * weeks - out)};
        s.answer = r * weeks - out;
        s.question = "How many dollars are in the piggy bank now?";
        return s.done(2);
      },
      // People into vans, or teams with some waiting.
      [](Draw& d) {
        Story s{d};
        ll k = d.num(3, 12), groups = d.num(2, 10), total = k * groups;
        if (d.num(0, 1)) {
          s.fact(fmt::format("{} students are going on a trip.", total));
          s.fact(fmt::format("Every van seats {} students and all the vans are full.", k));
          s.code = {fmt::format("students = {}", total), fmt::format("per_van = {}", k), "answer = students // per_van"};
          s.steps = {fmt::format("{} / {} = {}.", total, k, groups)};
          s.answer = groups;
          s.question = "How many vans do they take?";
          return s.done(1);
        }
        ll playing = d.num(1, groups - 1);
        s.fact(fmt::format("At a tournament, {} players form teams of {}.", total, k));
        s.fact(fmt::format("Only {} of the teams are on the field.", s.n(playing)));
        s.code = {fmt::format("players = {}", total), fmt::format("on_field = {} * {}", playing, k), "answer = players - on_field"};
        s.steps = {fmt::format("{} * {} = {}.", playing, k, playing * k), fmt::format("{} - {} = {}.", total, playing * k, total - playing * k)};
        s.answer = total - playing * k;
        s.question = "How many players are waiting off the field?";
        return s.done(2);
      },
      // Classes of a size, regrouped.
      [](Draw& d) {
        Story s{d};
        ll g = d.num(2, 8), groups_per = d.num(2, 6), classes = d.num(2, 6), size = g * groups_per;
        s.fact(fmt::format("A school has {} classes of {} children each.", s.n(classes), size));
        s.fact(fmt::format("For a game, all the children are put into groups of {}.", s.n(g)));
        s.code = {fmt::format("children = {} * {}", classes, size), fmt::format("answer = children // {}", g)};
        s.steps = {fmt::format("{} * {} = {}.", classes, size, classes * size), fmt::format("{} / {} = {}.", classes * size, g, classes * groups_per)};
        s.answer = classes * groups_per;
        s.question = "How many groups are there?";
        return s.done(2);
      },
      // Stock sold by a percent one day and by a number the next.
      [](Draw& d) {
        Story s{d};
        const Thing& t = s.thing();
        ll total = 20 * d.num(2, 20), pct = 5 * d.num(1, 10), first = total * pct / 100, next = d.num(1, total - first - 1);
        s.fact(fmt::format("A market stall had {} {} in the morning.", total, t.many));
        s.fact(fmt::format("By noon {}% of them were sold, and {} more were sold in the afternoon.", pct, next));
        s.code = {fmt::format("stock = {}", total), fmt::format("morning = stock * {} // 100", pct), fmt::format("answer = stock - morning - {}", next)};
        s.steps = {fmt::format("{}% of {} is {}.", pct, total, first), fmt::format("{} - {} - {} = {}.", total, first, next, total - first - next)};
        s.answer = total - first - next;
        s.question = fmt::format("How many {} did the stall have at the end of the day?", t.many);
        return s.done(2);
      },
  };
}

const std::vector<Production>& productions(TemplateSet set) {
  static const auto train = train_productions(), held = held_out_productions();
  return set == TemplateSet::train ? train : held;
}

}  // namespace

int GrammarGenerator::production_count(TemplateSet set) { return static_cast<int>(productions(set).size()); }

int GrammarGenerator::pool_count() {
  static const auto pool = pool_productions();
  return static_cast<int>(pool.size());
}

Problem GrammarGenerator::next_pool() {
  static const auto pool = pool_productions();
  Problem p = from_random_template(rng_, pool, TemplateSet::train);
  p.template_id += kGrammarPoolBase;
  return p;
}

Problem GrammarGenerator::next(TemplateSet set) {
  Problem p = from_random_template(rng_, productions(set), set);
  p.template_id += kGrammarTemplateBase;
  return p;
}

}  // namespace wand::train
