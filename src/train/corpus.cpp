#include "train/corpus.h"

#include <functional>

#include <fmt/core.h>

#include "agent/expert.h"
#include "train/draw.h"

namespace wand::train {
namespace {

const char* kThings[] = {"apples", "marbles", "stickers", "books", "pencils", "cookies", "stamps", "shells", "cards", "eggs",
                         "toys", "oranges", "coins", "beads", "flowers", "candles"};
const char* kVehicles[] = {"car", "bus", "train", "truck"};
const char* kItems[] = {"notebook", "pen", "ticket", "sandwich", "toy car", "plant", "mug", "ball", "hat", "kite"};

// Builds the three renderings together so they cannot drift apart.
struct Build {
  std::string question;
  std::vector<std::string> code, steps;
  long long answer = 0;
  Problem done(int steps_n) {
    Problem p;
    p.question = question;
    for (auto& c : code) p.program += c + "\n";
    for (auto& s : steps) p.rationale += s + " ";
    p.answer = std::to_string(answer);
    p.rationale += fmt::format("The answer is {}.", answer);
    p.steps = steps_n;
    return p;
  }
};

using Template = std::function<Problem(Draw&)>;

std::vector<Template> train_templates() {
  return {
      // 0: buy more, give away (2 steps)
      [](Draw& d) {
        auto n = d.name();
        std::string t = d.pick(kThings);
        int a = d.num(5, 90), b = d.num(2, 60), c = d.num(1, a + b);
        Build B;
        B.question = d.variant(2) ? fmt::format("{} has {} {}. {} gets {} more and then gives away {}. How many {} does {} have now?", n, a, t, n, b, c, t, n)
                                  : fmt::format("{} had {} {}, found {} more, and gave {} to a friend. How many {} are left?", n, a, t, b, c, t);
        B.code = {fmt::format("start = {}", a), fmt::format("found = {}", b), fmt::format("given = {}", c),
                  "answer = start + found - given"};
        B.steps = {fmt::format("{} + {} = {}.", a, b, a + b), fmt::format("{} - {} = {}.", a + b, c, a + b - c)};
        B.answer = a + b - c;
        return B.done(2);
      },
      // 1: groups (1 step)
      [](Draw& d) {
        auto n = d.name();
        std::string t = d.pick(kThings);
        int a = d.num(2, 30), b = d.num(2, 25);
        Build B;
        B.question = d.variant(2) ? fmt::format("{} has {} boxes with {} {} in each box. How many {} does {} have in all?", n, a, b, t, t, n)
                                  : fmt::format("There are {} bags and each bag holds {} {}. How many {} are there altogether?", a, b, t, t);
        B.code = {fmt::format("groups = {}", a), fmt::format("per_group = {}", b), "answer = groups * per_group"};
        B.steps = {fmt::format("{} * {} = {}.", a, b, a * b)};
        B.answer = a * b;
        return B.done(1);
      },
      // 2: distance = speed * time (1 step)
      [](Draw& d) {
        int s = d.num(20, 120), h = d.num(2, 9);
        Build B;
        std::string v = d.pick(kVehicles);
        B.question = fmt::format("A {} travels at {} kilometers per hour for {} hours. How many kilometers does it travel?", v, s, h);
        B.code = {fmt::format("speed = {}", s), fmt::format("hours = {}", h), "answer = speed * hours"};
        B.steps = {fmt::format("{} * {} = {}.", s, h, s * h)};
        B.answer = s * h;
        return B.done(1);
      },
      // 3: change from a bill (2 steps)
      [](Draw& d) {
        auto n = d.name();
        std::string item = d.pick(kItems);
        int q = d.num(2, 9), p = d.num(2, 15);
        int bill = q * p <= 20 ? 20 : q * p <= 50 ? 50 : q * p <= 100 ? 100 : 200;
        Build B;
        B.question = fmt::format("{} buys {} {}s for ${} each and pays with a ${} bill. How much change does {} get?", n, q, item, p, bill, n);
        B.code = {fmt::format("quantity = {}", q), fmt::format("price = {}", p), fmt::format("paid = {}", bill),
                  "cost = quantity * price", "answer = paid - cost"};
        B.steps = {fmt::format("The cost is {} * {} = {}.", q, p, q * p), fmt::format("{} - {} = {}.", bill, q * p, bill - q * p)};
        B.answer = bill - q * p;
        return B.done(2);
      },
      // 4: percent off (2 steps)
      [](Draw& d) {
        std::string item = d.pick(kItems);
        int price = d.num(2, 40) * 20, pct = d.num(1, 9) * 5;
        Build B;
        B.question = d.variant(2) ? fmt::format("A {} costs ${}. It is on sale for {}% off. What is the sale price in dollars?", item, price, pct)
                                  : fmt::format("The price of a {} is ${}, and the store takes {}% off. How many dollars does it cost now?", item, price, pct);
        long long off = price * pct / 100;
        B.code = {fmt::format("price = {}", price), fmt::format("percent_off = {}", pct),
                  "discount = price * percent_off // 100", "answer = price - discount"};
        B.steps = {fmt::format("The discount is {} * {} / 100 = {}.", price, pct, off), fmt::format("{} - {} = {}.", price, off, price - off)};
        B.answer = price - off;
        return B.done(2);
      },
      // 5: fraction given away (2 steps)
      [](Draw& d) {
        auto [n, m] = d.two_names();
        std::string t = d.pick(kThings);
        int den = d.num(2, 6), num = d.num(1, den - 1), a = den * d.num(2, 15);
        long long given = a / den * num;
        Build B;
        B.question = fmt::format("{} has {} {}. {} gives {}/{} of them to {}. How many {} does {} have left?", n, a, t, n, num, den, m, t, n);
        B.code = {fmt::format("total = {}", a), fmt::format("given = total * {} // {}", num, den), "answer = total - given"};
        B.steps = {fmt::format("{}/{} of {} is {}.", num, den, a, given), fmt::format("{} - {} = {}.", a, given, a - given)};
        B.answer = a - given;
        return B.done(2);
      },
      // 6: hours per day to minutes (2 steps)
      [](Draw& d) {
        auto n = d.name();
        int h = d.num(1, 8), days = d.num(2, 7);
        Build B;
        B.question = fmt::format("{} practices piano {} hours a day for {} days. How many minutes does {} practice in total?", n, h, days, n);
        B.code = {fmt::format("hours_per_day = {}", h), fmt::format("days = {}", days), "hours = hours_per_day * days",
                  "answer = hours * 60"};
        B.steps = {fmt::format("{} * {} = {} hours.", h, days, h * days), fmt::format("{} * 60 = {} minutes.", h * days, h * days * 60)};
        B.answer = h * days * 60;
        return B.done(2);
      },
      // 7: unit conversion (1 step)
      [](Draw& d) {
        int a = d.num(2, 95);
        int k = d.variant(3);
        const char* from[] = {"meters", "kilograms", "liters"};
        const char* to[] = {"centimeters", "grams", "milliliters"};
        int f[] = {100, 1000, 1000};
        std::string obj = k == 0 ? "rope" : k == 1 ? "bag of rice" : "tank";
        Build B;
        B.question = fmt::format("A {} measures {} {}. How many {} is that?", obj, a, from[k], to[k]);
        B.code = {fmt::format("amount = {}", a), fmt::format("answer = amount * {}", f[k])};
        B.steps = {fmt::format("1 {} is {} {}, so {} * {} = {}.", std::string(from[k]).substr(0, std::string(from[k]).size() - 1), f[k], to[k], a, f[k], a * f[k])};
        B.answer = static_cast<long long>(a) * f[k];
        return B.done(1);
      },
      // 8: how many more (1 step)
      [](Draw& d) {
        auto [n, m] = d.two_names();
        std::string t = d.pick(kThings);
        int b = d.num(3, 60), a = b + d.num(1, 60);
        Build B;
        B.question = fmt::format("{} has {} {} and {} has {} {}. How many more {} does {} have than {}?", n, a, t, m, b, t, t, n, m);
        B.code = {fmt::format("first = {}", a), fmt::format("second = {}", b), "answer = first - second"};
        B.steps = {fmt::format("{} - {} = {}.", a, b, a - b)};
        B.answer = a - b;
        return B.done(1);
      },
      // 9: share equally (1 step)
      [](Draw& d) {
        std::string t = d.pick(kThings);
        int k = d.num(2, 12), each = d.num(2, 20);
        Build B;
        B.question = fmt::format("{} {} are shared equally among {} friends. How many {} does each friend get?", k * each, t, k, t);
        B.code = {fmt::format("total = {}", k * each), fmt::format("friends = {}", k), "answer = total // friends"};
        B.steps = {fmt::format("{} / {} = {}.", k * each, k, each)};
        B.answer = each;
        return B.done(1);
      },
      // 10: wage over two days (2 steps)
      [](Draw& d) {
        auto n = d.name();
        int rate = d.num(8, 30), a = d.num(2, 9), b = d.num(2, 9);
        Build B;
        B.question = fmt::format("{} earns ${} per hour. {} works {} hours on Monday and {} hours on Tuesday. How many dollars does {} earn in total?", n, rate, n, a, b, n);
        B.code = {fmt::format("rate = {}", rate), fmt::format("monday = {}", a), fmt::format("tuesday = {}", b),
                  "hours = monday + tuesday", "answer = rate * hours"};
        B.steps = {fmt::format("{} + {} = {} hours.", a, b, a + b), fmt::format("{} * {} = {}.", rate, a + b, rate * (a + b))};
        B.answer = rate * (a + b);
        return B.done(2);
      },
      // 11: average of three (2 steps)
      [](Draw& d) {
        auto n = d.name();
        int a = d.num(50, 100), b = d.num(50, 100), c = d.num(50, 100);
        c += (3 - (a + b + c) % 3) % 3;
        Build B;
        B.question = fmt::format("{} scored {}, {} and {} on three tests. What is the average score?", n, a, b, c);
        B.code = {fmt::format("scores = [{}, {}, {}]", a, b, c), "answer = sum(scores) // len(scores)"};
        B.steps = {fmt::format("{} + {} + {} = {}.", a, b, c, a + b + c), fmt::format("{} / 3 = {}.", a + b + c, (a + b + c) / 3)};
        B.answer = (a + b + c) / 3;
        return B.done(2);
      },
      // 12: weeks of saving (1 step)
      [](Draw& d) {
        auto n = d.name();
        std::string item = d.pick(kItems);
        int per = d.num(3, 25), weeks = d.num(2, 20);
        Build B;
        B.question = fmt::format("{} saves ${} each week to buy a {} that costs ${}. How many weeks does {} need to save?", n, per, item, per * weeks, n);
        B.code = {fmt::format("cost = {}", per * weeks), fmt::format("per_week = {}", per), "answer = cost // per_week"};
        B.steps = {fmt::format("{} / {} = {}.", per * weeks, per, weeks)};
        B.answer = weeks;
        return B.done(1);
      },
      // 13: rectangle area and fence (1-2 steps)
      [](Draw& d) {
        int a = d.num(3, 40), b = d.num(2, 30);
        Build B;
        if (d.variant(2)) {
          B.question = fmt::format("A garden is {} meters long and {} meters wide. What is its area in square meters?", a, b);
          B.code = {fmt::format("length = {}", a), fmt::format("width = {}", b), "answer = length * width"};
          B.steps = {fmt::format("{} * {} = {}.", a, b, a * b)};
          B.answer = a * b;
          return B.done(1);
        }
        B.question = fmt::format("A field is {} meters long and {} meters wide. How many meters of fence go around it?", a, b);
        B.code = {fmt::format("length = {}", a), fmt::format("width = {}", b), "answer = 2 * (length + width)"};
        B.steps = {fmt::format("{} + {} = {}.", a, b, a + b), fmt::format("2 * {} = {}.", a + b, 2 * (a + b))};
        B.answer = 2 * (a + b);
        return B.done(2);
      },
      // 14: bakery, 5 steps
      [](Draw& d) {
        int trays = d.num(2, 9), per = d.num(6, 24), bag = d.num(2, 6);
        int total = trays * per, morning = d.num(1, total / 3), afternoon = d.num(0, total / 3);
        int rest = total - morning - afternoon;
        rest -= rest % bag;
        afternoon = total - morning - rest;
        Build B;
        B.question = fmt::format("A bakery bakes {} trays of {} cookies. It sells {} cookies in the morning and {} in the afternoon. The rest are packed in bags of {}. How many bags are filled?", trays, per, morning, afternoon, bag);
        B.code = {fmt::format("trays = {}", trays), fmt::format("per_tray = {}", per), "baked = trays * per_tray",
                  fmt::format("sold = {} + {}", morning, afternoon), "left = baked - sold", fmt::format("answer = left // {}", bag)};
        B.steps = {fmt::format("{} * {} = {} cookies.", trays, per, total), fmt::format("{} + {} = {} sold.", morning, afternoon, morning + afternoon),
                   fmt::format("{} - {} = {} left.", total, morning + afternoon, rest), fmt::format("{} / {} = {}.", rest, bag, rest / bag)};
        B.answer = rest / bag;
        return B.done(4);
      },
      // 15: three purchases (3 steps)
      [](Draw& d) {
        auto n = d.name();
        int a = d.num(2, 6), pa = d.num(2, 12), b = d.num(2, 6), pb = d.num(2, 12), budget = a * pa + b * pb + d.num(0, 50);
        std::string x = d.pick(kItems), y;
        do y = d.pick(kItems); while (y == x);
        Build B;
        B.question = fmt::format("{} has ${}. {} buys {} {}s at ${} each and {} {}s at ${} each. How much money is left?", n, budget, n, a, x, pa, b, y, pb);
        B.code = {fmt::format("money = {}", budget), fmt::format("first = {} * {}", a, pa), fmt::format("second = {} * {}", b, pb),
                  "answer = money - first - second"};
        B.steps = {fmt::format("{} * {} = {}.", a, pa, a * pa), fmt::format("{} * {} = {}.", b, pb, b * pb),
                   fmt::format("{} - {} - {} = {}.", budget, a * pa, b * pb, budget - a * pa - b * pb)};
        B.answer = budget - a * pa - b * pb;
        return B.done(3);
      },
  };
}

// Phrasings and structures the model never sees in training.
std::vector<Template> held_out_templates() {
  return {
      // percent increase
      [](Draw& d) {
        std::string item = d.pick(kItems);
        int price = d.num(2, 40) * 20, pct = d.num(1, 9) * 5;
        long long up = price * pct / 100;
        Build B;
        B.question = fmt::format("A {} used to cost ${}. Its price went up by {}%. What does it cost now?", item, price, pct);
        B.code = {fmt::format("price = {}", price), fmt::format("percent_up = {}", pct), "increase = price * percent_up // 100",
                  "answer = price + increase"};
        B.steps = {fmt::format("The increase is {} * {} / 100 = {}.", price, pct, up), fmt::format("{} + {} = {}.", price, up, price + up)};
        B.answer = price + up;
        return B.done(2);
      },
      // speed from distance and time
      [](Draw& d) {
        int s = d.num(20, 120), h = d.num(2, 9);
        Build B;
        B.question = fmt::format("A cyclist covers {} kilometers in {} hours at a steady pace. What is the speed in kilometers per hour?", s * h, h);
        B.code = {fmt::format("distance = {}", s * h), fmt::format("hours = {}", h), "answer = distance // hours"};
        B.steps = {fmt::format("{} / {} = {}.", s * h, h, s)};
        B.answer = s;
        return B.done(1);
      },
      // ages
      [](Draw& d) {
        auto [n, m] = d.two_names();
        int a = d.num(3, 30), b = d.num(1, 20);
        Build B;
        B.question = fmt::format("{} is {} years old. {} is {} years older than twice {}'s age. How old is {}?", n, a, m, b, n, m);
        B.code = {fmt::format("age = {}", a), "twice = 2 * age", fmt::format("answer = twice + {}", b)};
        B.steps = {fmt::format("2 * {} = {}.", a, 2 * a), fmt::format("{} + {} = {}.", 2 * a, b, 2 * a + b)};
        B.answer = 2 * a + b;
        return B.done(2);
      },
      // spend a percent and a fixed amount
      [](Draw& d) {
        auto n = d.name();
        int money = d.num(2, 30) * 20, pct = d.num(1, 5) * 10, book = d.num(1, 10);
        long long food = money * pct / 100;
        Build B;
        B.question = fmt::format("{} has ${}. {} spends {}% of it on food and ${} on a book. How many dollars are left?", n, money, n, pct, book);
        B.code = {fmt::format("money = {}", money), fmt::format("food = money * {} // 100", pct), fmt::format("book = {}", book),
                  "answer = money - food - book"};
        B.steps = {fmt::format("{}% of {} is {}.", pct, money, food), fmt::format("{} - {} - {} = {}.", money, food, book, money - food - book)};
        B.answer = money - food - book;
        return B.done(2);
      },
  };
}

const std::vector<Template>& templates(TemplateSet set) {
  static const auto train = train_templates(), held = held_out_templates();
  return set == TemplateSet::train ? train : held;
}

}  // namespace

int ProblemGenerator::template_count(TemplateSet set) { return static_cast<int>(templates(set).size()); }

Problem ProblemGenerator::next(TemplateSet set) { return from_random_template(rng_, templates(set), set); }

Json to_json(const Problem& p) {
  return {{"question", p.question}, {"program", p.program},   {"rationale", p.rationale},
          {"answer", p.answer},     {"template", p.template_id}, {"steps", p.steps}};
}


std::string agent_document(uint64_t seed, long long n, bool json_calls, std::string& key) {
  static const char* const kEnvs[] = {"kitchen", "kitchen", "kitchen", "data", "shop"};
  const char* env_name = kEnvs[n % 5];
  int index = static_cast<int>((n / 5) % 1'000'000);
  auto env = agent::make_environment(env_name, "train", index, seed);
  key = env ? env.value()->task().id : env_name;
  // One kitchen document in three shows a mistake (a skipped precondition), its real error and
  // the recovery, so the model has seen errors before it meets its own; the same ones in the
  // CodeAct and JSON parts.
  std::optional<agent::Mistake> mistake;
  if (env && env_name == std::string("kitchen") && (n / 5) % 3 == 1)
    mistake = agent::find_mistake([&] { return std::move(agent::make_environment(env_name, "train", index, seed).value()); },
                                  static_cast<uint64_t>(n / 15));
  auto doc = env ? agent::expert_document(**env, json_calls, mistake ? &*mistake : nullptr) : Result<std::string>(env.error());
  // The experts solve every instance (tests/agent); a failure here is a bug worth stopping for.
  if (!doc) throw std::logic_error("agent corpus: " + key + ": " + doc.error().message);
  return doc.value();
}

}  // namespace wand::train
