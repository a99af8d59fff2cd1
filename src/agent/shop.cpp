// shop: a WebShop-style store. A generated catalogue is served as pages by an in-process web
// environment (search results, item pages, the cart, checkout); the actions are functions and
// the observations are the pages' trimmed HTML.
#include <algorithm>
#include <set>
#include <sstream>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "agent/python_text.h"
#include "agent/worlds.h"
#include "common/html.h"

namespace wand::agent {
namespace {

struct Category {
  const char* name;
  std::vector<std::string> materials;
  bool sized;
};
const Category kCategories[] = {{"shirt", {"cotton", "linen", "wool"}, true},
                                {"sweater", {"wool", "cotton", "cashmere"}, true},
                                {"bag", {"leather", "canvas", "nylon"}, false},
                                {"scarf", {"wool", "silk", "cotton"}, false},
                                {"jacket", {"leather", "denim", "wool"}, true}};
const char* kColors[] = {"blue", "red", "green", "black", "white", "grey"};
const std::vector<std::string> kSizes = {"S", "M", "L"};

struct Product {
  std::string id, category, color, material;
  int cents;
  bool sized;
  std::string title() const {
    std::string t = color + " " + material + " " + category;
    t[0] = static_cast<char>(std::toupper(t[0]));
    return t;
  }
};
std::string dollars(int cents) { return fmt::format("${}.{:02}", cents / 100, cents % 100); }

struct Line {
  std::string id;
  Json options;
};

struct Goal {
  std::string category, color, material, size;  // size "" = the product has none
  int max_cents;
};

class Shop : public Environment {
 public:
  Shop(Task t, std::vector<Product> catalogue, Goal g) : task_(std::move(t)), catalogue_(std::move(catalogue)), goal_(std::move(g)) {}
  const Task& task() const override { return task_; }
  std::string describe() const override {
    return "You shop in a web store. search(query) returns the result page, open_item(id) an item's page, "
           "add_to_cart(id, options) puts an item in the cart (options: {'size': 'M'} for sized items, {} otherwise), "
           "checkout() places the order. Pages are HTML. Buy exactly what the instruction asks, then call "
           "final_answer('done').";
  }
  tools::Registry tools() override {
    tools::Registry reg;
    auto str = [](const char* d) { return Json{{"type", "string"}, {"description", d}}; };
    auto add = [&](std::string name, std::string desc, Json props, Json required, auto fn) {
      tools::Tool t;
      t.name = std::move(name);
      t.description = std::move(desc);
      t.parameters = {{"type", "object"}, {"properties", props}, {"required", required}, {"additionalProperties", false}};
      t.inline_call = true;
      t.source = "environment";
      t.handler = [fn](const Json& a, const tools::CallContext&) -> Result<Json> { return fn(a); };
      (void)reg.add(std::move(t));
    };
    add("search", "Searches the store; returns the result page (at most 10 items).", {{"query", str("words to look for")}},
        {"query"}, [this](const Json& a) { return search(a["query"].get<std::string>()); });
    add("open_item", "Opens an item's page.", {{"id", str("the item id, e.g. 'B104'")}}, {"id"},
        [this](const Json& a) { return open_item(a["id"].get<std::string>()); });
    add("add_to_cart", "Adds an item to the cart with its options; returns the cart page.",
        {{"id", str("the item id")}, {"options", {{"type", "object"}, {"description", "chosen options, e.g. {'size': 'M'}"}}}},
        {"id", "options"}, [this](const Json& a) { return add_to_cart(a["id"].get<std::string>(), a["options"]); });
    add("checkout", "Places the order for what is in the cart; returns the confirmation page.", Json::object(), Json::array(),
        [this](const Json&) { return checkout(); });
    return reg;
  }
  std::string observe() const override { return "<html><h1>wand store</h1><form action=\"/search\"><input name=\"q\"></form></html>"; }
  GoalCheck check(const Json&) const override {
    if (!ordered_) return {false, "no order was placed"};
    if (cart_.size() != 1) return {false, fmt::format("the order has {} items, not 1", cart_.size())};
    const Product& p = *find(cart_[0].id);
    if (p.category != goal_.category || p.color != goal_.color || p.material != goal_.material)
      return {false, fmt::format("the order is a {}, not a {} {} {}", p.title(), goal_.color, goal_.material, goal_.category)};
    if (p.cents >= goal_.max_cents) return {false, fmt::format("{} costs {}, not under {}", p.id, dollars(p.cents), dollars(goal_.max_cents))};
    if (!goal_.size.empty() && cart_[0].options.value("size", "") != goal_.size)
      return {false, fmt::format("the size is {}, not {}", cart_[0].options.value("size", "none"), goal_.size)};
    return {true, ""};
  }
  std::vector<std::string> expert_steps() const override {
    return plan_code(plan(), const_cast<Shop*>(this)->tools(), "done");
  }
  std::vector<Json> expert_calls() const override { return plan_calls(plan(), "done"); }

  // The expert: searches the three attributes, takes the cheapest match under the price, opens
  // it, adds it with the asked size, checks out.
  std::vector<PlannedStep> plan() const {
    std::string q = goal_.color + " " + goal_.material + " " + goal_.category;
    const Product* best = nullptr;
    for (auto* p : matches(q))
      if (p->category == goal_.category && p->color == goal_.color && p->material == goal_.material && p->cents < goal_.max_cents &&
          (!best || p->cents < best->cents))
        best = p;
    Json options = goal_.size.empty() ? Json::object() : Json{{"size", goal_.size}};
    auto call = [](std::string n, Json a) { return Json{{"name", std::move(n)}, {"arguments", std::move(a)}}; };
    return {{"Search for the item.", {call("search", {{"query", q}})}},
            {fmt::format("{} matches and costs under {}; open it.", best->id, dollars(goal_.max_cents)),
             {call("open_item", {{"id", best->id}})}},
            {"Add it to the cart and check out.", {call("add_to_cart", {{"id", best->id}, {"options", options}}), call("checkout", Json::object())}}};
  }

  Task task_;

 private:
  const Product* find(const std::string& id) const {
    for (auto& p : catalogue_) if (p.id == id) return &p;
    return nullptr;
  }
  // Items whose title has every word of the query (a trailing 's' ignored), cheapest first.
  std::vector<const Product*> matches(const std::string& query) const {
    std::vector<std::string> words;
    std::istringstream in(query);
    for (std::string w; in >> w;) {
      std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return std::tolower(c); });
      if (w.size() > 3 && w.back() == 's') w.pop_back();
      words.push_back(w);
    }
    std::vector<const Product*> out;
    for (auto& p : catalogue_) {
      std::string t = p.color + " " + p.material + " " + p.category;
      bool all = !words.empty();
      for (auto& w : words) all &= (" " + t + " ").find(" " + w) != std::string::npos;
      if (all) out.push_back(&p);
    }
    std::stable_sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->cents < b->cents; });
    if (out.size() > 10) out.resize(10);
    return out;
  }
  Result<Json> search(const std::string& q) {
    if (ordered_) return Error{"the order is already placed"};
    auto found = matches(q);
    if (found.empty()) return Json(fmt::format("<ul class=\"results\"></ul><p>No items match '{}'.</p>", html::escape(q)));
    std::string out = "<ul class=\"results\">";
    for (auto* p : found) out += fmt::format("<li id=\"{}\">{} {}</li>", p->id, p->title(), dollars(p->cents));
    return Json(out + "</ul>");
  }
  Result<Json> open_item(const std::string& id) {
    if (ordered_) return Error{"the order is already placed"};
    const Product* p = find(id);
    if (!p) return Error{fmt::format("there is no item '{}'", id)};
    std::string out = fmt::format("<h1>{}</h1><p>{}</p><p>color: {}, material: {}</p>", p->title(), dollars(p->cents), p->color, p->material);
    if (p->sized) out += "<select name=\"size\"><option>S</option><option>M</option><option>L</option></select>";
    return Json(out);
  }
  Result<Json> add_to_cart(const std::string& id, const Json& options) {
    if (ordered_) return Error{"the order is already placed"};
    const Product* p = find(id);
    if (!p) return Error{fmt::format("there is no item '{}'", id)};
    for (auto it = options.begin(); it != options.end(); ++it)
      if (it.key() != "size" || !p->sized) return Error{fmt::format("{} has no option '{}'", id, it.key())};
    if (p->sized) {
      if (!options.contains("size")) return Error{fmt::format("{} needs a size: options={{'size': 'S'|'M'|'L'}}", id)};
      const Json& s = options["size"];
      if (!s.is_string() || std::find(kSizes.begin(), kSizes.end(), s.get<std::string>()) == kSizes.end())
        return Error{fmt::format("{} comes in sizes S, M, L, not {}", id, python_repr(s))};
    }
    cart_.push_back({id, options});
    return Json(cart_page());
  }
  Result<Json> checkout() {
    if (ordered_) return Error{"the order is already placed"};
    if (cart_.empty()) return Error{"the cart is empty"};
    ordered_ = true;
    int total = 0;
    for (auto& l : cart_) total += find(l.id)->cents;
    return Json(fmt::format("<p>Order placed: {} item(s), total {}.</p>", cart_.size(), dollars(total)));
  }
  std::string cart_page() const {
    std::string out = "<ul class=\"cart\">";
    int total = 0;
    for (auto& l : cart_) {
      const Product* p = find(l.id);
      total += p->cents;
      out += fmt::format("<li>{} {}{} {}</li>", p->id, p->title(), l.options.contains("size") ? " size " + l.options["size"].get<std::string>() : "",
                         dollars(p->cents));
    }
    return out + fmt::format("</ul><p>Total: {}</p>", dollars(total));
  }

  std::vector<Product> catalogue_;
  Goal goal_;
  std::vector<Line> cart_;
  bool ordered_ = false;
};

}  // namespace

std::unique_ptr<Environment> make_shop(const std::string& split, int index, std::mt19937_64& rng) {
  auto num = [&](int lo, int hi) { return lo + static_cast<int>(rng() % static_cast<uint64_t>(hi - lo + 1)); };
  for (;;) {
    const Category& c = kCategories[num(0, 4)];
    Goal g{c.name, kColors[num(0, 5)], c.materials[num(0, 2)], c.sized ? kSizes[num(0, 2)] : "", 0};
    if (held_out_combination(fmt::format("shop|{}|{}|{}", g.category, g.color, g.material)) != (split == "held-out")) continue;
    g.max_cents = num(2, 8) * 1000;
    // A catalogue of ~30: one match under the price, near misses (over the price, another colour,
    // another material), and random others. Ids are shuffled so position says nothing.
    std::vector<Product> cat;
    auto make = [&](std::string cat_name, std::string color, std::string material, int cents, bool sized) {
      cat.push_back({"", std::move(cat_name), std::move(color), std::move(material), cents, sized});
    };
    make(g.category, g.color, g.material, num(500, g.max_cents - 100), c.sized);
    make(g.category, g.color, g.material, g.max_cents + num(100, 3000), c.sized);
    for (int k = 0; k < 3; ++k) {
      std::string other;
      do other = kColors[num(0, 5)]; while (other == g.color);
      make(g.category, other, g.material, num(500, 9000), c.sized);
      do other = c.materials[num(0, 2)]; while (other == g.material);
      make(g.category, g.color, other, num(500, 9000), c.sized);
    }
    while (cat.size() < 30) {
      const Category& o = kCategories[num(0, 4)];
      make(o.name, kColors[num(0, 5)], o.materials[num(0, 2)], num(500, 9000), o.sized);
    }
    std::vector<int> ids(cat.size());
    for (std::size_t k = 0; k < ids.size(); ++k) ids[k] = 100 + static_cast<int>(k);
    std::shuffle(ids.begin(), ids.end(), rng);
    for (std::size_t k = 0; k < cat.size(); ++k) cat[k].id = fmt::format("B{}", ids[k]);
    std::string text = fmt::format("Buy a {} {} {} under {} dollars{}.", g.color, g.material, g.category, g.max_cents / 100,
                                   g.size.empty() ? "" : " in size " + g.size);
    Task t{"shop", fmt::format("shop/{}/{}", split, index), split, text, 4};
    return std::make_unique<Shop>(t, std::move(cat), g);
  }
}

}  // namespace wand::agent
