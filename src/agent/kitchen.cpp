// kitchen: a deterministic household (three rooms, seven places, a handful of items) whose
// primitives are tools, after Code as Policies / ProgPrompt / SayCan's "physical ends through
// code". Every primitive checks its preconditions and says precisely which one failed.
#include <algorithm>
#include <map>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "agent/python_text.h"
#include "agent/worlds.h"

namespace wand::agent {
namespace {

const std::vector<std::string> kRooms = {"kitchen", "dining_room", "pantry"};

struct Place {
  std::string name, room;
  bool container = false, open = true;
};

// kind: "vessel" (fillable, washable), "dish" (washable), "drink" (a carton that pours), "food".
struct Item {
  std::string name, kind, place;  // place: a place's name, or "hand"
  std::string temp = "room";      // "cold", "room", "hot"
  bool clean = true;
  std::string filled;             // vessels: the drink in it ("" = empty)
};

// The house: seven places in three rooms; containers start closed.
std::vector<Place> house() {
  return {{"fridge", "kitchen", true, false}, {"counter", "kitchen"}, {"microwave", "kitchen", true, false},
          {"sink", "kitchen"},  {"table", "dining_room"},          {"cabinet", "pantry", true, false},
          {"shelf", "pantry"}};
}

struct Draws {
  const char* name;
  const char* kind;
};
const Draws kItems[] = {{"mug", "vessel"}, {"cup", "vessel"}, {"bowl", "vessel"}, {"glass", "vessel"},
                        {"plate", "dish"}, {"milk", "drink"},  {"juice", "drink"}, {"apple", "food"},
                        {"bread", "food"}, {"potato", "food"}, {"egg", "food"}};

std::string title(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}
std::string py_str(const std::string& s) { return python_repr(Json(s)); }

struct World {
  std::string room;
  std::string holding;  // "" = nothing
  std::vector<Place> places;
  std::vector<Item> items;

  Place* place(const std::string& n) {
    for (auto& p : places) if (p.name == n) return &p;
    return nullptr;
  }
  Item* item(const std::string& n) {
    for (auto& i : items) if (i.name == n) return &i;
    return nullptr;
  }
  std::vector<std::string> contents(const std::string& place) const {
    std::vector<std::string> out;
    for (auto& i : items) if (i.place == place) out.push_back(i.name);
    return out;
  }
  std::string repr_agent() const {
    return fmt::format("Agent(room={}, holding={})", py_str(room), holding.empty() ? "None" : py_str(holding));
  }
  std::string repr(const Place& p) const {
    std::vector<std::string> c;
    for (auto& n : contents(p.name)) c.push_back(py_str(n));
    std::string open = p.container ? fmt::format("open={}, ", p.open ? "True" : "False") : "";
    return fmt::format("{}({}contents=[{}])", title(p.name), open, fmt::join(c, ", "));
  }
  std::string repr(const Item& i) const {
    if (i.kind == "vessel")
      return fmt::format("{}(temp={}, clean={}, filled={})", title(i.name), py_str(i.temp), i.clean ? "True" : "False",
                         i.filled.empty() ? "None" : py_str(i.filled));
    if (i.kind == "dish")
      return fmt::format("{}(temp={}, clean={})", title(i.name), py_str(i.temp), i.clean ? "True" : "False");
    return fmt::format("{}(temp={})", title(i.name), py_str(i.temp));
  }
  std::string observe() const {
    std::string out = repr_agent() + "\n";
    for (auto& r : kRooms) {
      std::vector<std::string> ps;
      for (auto& p : places) if (p.room == r) ps.push_back(repr(p));
      out += r + ": " + fmt::format("{}", fmt::join(ps, ", ")) + "\n";
    }
    std::vector<std::string> is;
    for (auto& i : items) is.push_back(repr(i));
    return out + fmt::format("{}", fmt::join(is, ", "));
  }

  // --- the primitives; each returns the repr of what it changed, or the failed precondition ---
  // The thing called `name` in `list`, or an error listing what there is.
  template <class T>
  static Result<T*> named(std::vector<T>& list, const std::string& name, const char* what) {
    std::vector<std::string> names;
    for (auto& x : list) {
      if (x.name == name) return &x;
      names.push_back(x.name);
    }
    return Error{fmt::format("there is no {} '{}' ({}s: {})", what, name, what, fmt::join(names, ", "))};
  }
  Result<Place*> reachable(const std::string& name) {
    auto found = named(places, name, "place");
    if (!found) return found.error();
    Place* p = *found;
    if (p->room != room)
      return Error{fmt::format("the {} is in the {}; you are in the {} (go('{}') first)", name, p->room, room, p->room)};
    return p;
  }
  Result<Item*> known_item(const std::string& name) { return named(items, name, "item"); }
  Result<std::string> go(const std::string& r) {
    if (std::find(kRooms.begin(), kRooms.end(), r) == kRooms.end())
      return Error{fmt::format("there is no room '{}' (rooms: {})", r, fmt::join(kRooms, ", "))};
    room = r;
    return repr_agent();
  }
  Result<std::string> set_open(const std::string& name, bool open) {
    auto p = reachable(name);
    if (!p) return p.error();
    if (!(*p)->container) return Error{fmt::format("the {} cannot be {}", name, open ? "opened" : "closed")};
    if ((*p)->open == open) return Error{fmt::format("the {} is already {}", name, open ? "open" : "closed")};
    (*p)->open = open;
    return repr(**p);
  }
  Result<std::string> take(const std::string& name) {
    auto i = known_item(name);
    if (!i) return i.error();
    if (holding == name) return Error{fmt::format("you already hold the {}", name)};
    if (!holding.empty()) return Error{fmt::format("your hands are full: you hold the {} (put it somewhere first)", holding)};
    Place* p = place((*i)->place);
    if (p->room != room)
      return Error{fmt::format("the {} is in the {} in the {}; you are in the {}", name, p->name, p->room, room)};
    if (!p->open) return Error{fmt::format("the {} is closed (open('{}') first)", p->name, p->name)};
    (*i)->place = "hand";
    holding = name;
    return repr_agent();
  }
  Result<std::string> put(const std::string& name, const std::string& where) {
    auto i = known_item(name);
    if (!i) return i.error();
    if (holding != name) return Error{fmt::format("you are not holding the {}", name)};
    auto p = reachable(where);
    if (!p) return p.error();
    if (!(*p)->open) return Error{fmt::format("the {} is closed (open('{}') first)", where, where)};
    (*i)->place = where;
    holding.clear();
    return repr(**p);
  }
  Result<std::string> heat(const std::string& name) {
    auto i = known_item(name);
    if (!i) return i.error();
    if ((*i)->place != "microwave")
      return Error{fmt::format("the {} is not in the microwave (put it in the microwave and close it first)", name)};
    Place* m = place("microwave");
    if (m->room != room) return Error{fmt::format("the microwave is in the {}; you are in the {}", m->room, room)};
    if (m->open) return Error{"the microwave is open (close('microwave') first)"};
    (*i)->temp = "hot";
    return repr(**i);
  }
  Result<std::string> wash(const std::string& name) {
    auto i = known_item(name);
    if (!i) return i.error();
    if ((*i)->kind != "vessel" && (*i)->kind != "dish") return Error{fmt::format("the {} cannot be washed", name)};
    if (holding != name) return Error{fmt::format("you are not holding the {} (take it to the sink)", name)};
    Place* s = place("sink");
    if (s->room != room) return Error{fmt::format("the sink is in the {}; you are in the {}", s->room, room)};
    if (!(*i)->filled.empty()) return Error{fmt::format("the {} is full of {} (pour it out first)", name, (*i)->filled)};
    (*i)->clean = true;
    return repr(**i);
  }
  Result<std::string> pour(const std::string& src, const std::string& dst) {
    auto s = known_item(src);
    if (!s) return s.error();
    auto d = known_item(dst);
    if (!d) return d.error();
    if (holding != src) return Error{fmt::format("you are not holding the {}", src)};
    if ((*s)->kind != "drink" && (*s)->filled.empty()) return Error{fmt::format("the {} has nothing to pour", src)};
    if ((*d)->kind != "vessel") return Error{fmt::format("you cannot pour into the {}", dst)};
    if (!(*d)->filled.empty()) return Error{fmt::format("the {} already holds {}", dst, (*d)->filled)};
    if (src == dst) return Error{"cannot pour a thing into itself"};
    Place* p = place((*d)->place);
    if (p->room != room)
      return Error{fmt::format("the {} is in the {} in the {}; you are in the {}", dst, p->name, p->room, room)};
    if (!p->open) return Error{fmt::format("the {} is closed (open('{}') first)", p->name, p->name)};
    (*d)->filled = (*s)->kind == "drink" ? src : (*s)->filled;
    (*d)->temp = (*s)->temp;
    if ((*s)->kind != "drink") (*s)->filled.clear();
    return repr(**d);
  }

  Result<std::string> act(const std::string& name, const std::vector<std::string>& a) {
    if (name == "look") return observe();
    if (name == "go") return go(a[0]);
    if (name == "open") return set_open(a[0], true);
    if (name == "close") return set_open(a[0], false);
    if (name == "take") return take(a[0]);
    if (name == "put") return put(a[0], a[1]);
    if (name == "heat") return heat(a[0]);
    if (name == "wash") return wash(a[0]);
    if (name == "pour") return pour(a[0], a[1]);
    return Error{"unknown action " + name};
  }
};

struct Primitive {
  const char* name;
  const char* description;
  std::vector<std::pair<std::string, std::string>> params;
};
const std::vector<Primitive> kPrimitives = {
    {"look", "Shows the whole house: where you are, what you hold, every place and item.", {}},
    {"go", "Goes to a room (kitchen, dining_room, pantry).", {{"room", "the room"}}},
    {"open", "Opens a container (fridge, microwave, cabinet) in this room.", {{"x", "the container"}}},
    {"close", "Closes a container in this room.", {{"x", "the container"}}},
    {"take", "Takes an item from an open place in this room; you hold one item at a time.", {{"obj", "the item"}}},
    {"put", "Puts the item you hold in or on a place in this room.", {{"obj", "the item"}, {"place", "the place"}}},
    {"heat", "Heats an item that is in the closed microwave (you are in its room).", {{"obj", "the item"}}},
    {"wash", "Washes the item you hold; you must be in the room with the sink.", {{"obj", "the item"}}},
    {"pour", "Pours the drink you hold into an empty vessel in this room.", {{"src", "what you hold"}, {"dst", "the vessel"}}},
};

// The expert: plans on a copy of the world with the same primitives, so every call it writes
// is known to succeed, grouped into steps by subgoal.
class Planner {
 public:
  explicit Planner(World w) : w_(std::move(w)) {}
  std::vector<PlannedStep> steps;
  World& world() { return w_; }

  void begin(std::string thought) { steps.push_back({std::move(thought), {}}); }
  void act(const std::string& name, std::vector<std::string> a) {
    auto r = w_.act(name, a);
    if (!r) throw std::logic_error("kitchen expert: " + name + ": " + r.error().message);  // a bug, caught by the tests
    Json args = Json::object();
    for (auto& p : kPrimitives)
      if (p.name == name)
        for (std::size_t k = 0; k < p.params.size(); ++k) args[p.params[k].first] = a[k];
    steps.back().calls.push_back({{"name", name}, {"arguments", args}});
  }
  void go(const std::string& room) {
    if (w_.room != room) act("go", {room});
  }
  void reach(const std::string& place) {
    Place* p = w_.place(place);
    go(p->room);
    if (!p->open) act("open", {place});
  }
  void free_hands() {
    if (w_.holding.empty()) return;
    for (auto& p : w_.places)
      if (p.room == w_.room && !p.container && p.name != "sink") return act("put", {w_.holding, p.name});
  }
  void fetch(const std::string& item) {
    if (w_.holding == item) return;
    free_hands();
    reach(w_.item(item)->place);
    act("take", {item});
  }
  void place(const std::string& item, const std::string& where) {
    fetch(item);
    reach(where);
    act("put", {item, where});
  }
  void heat(const std::string& item) {
    place(item, "microwave");
    act("close", {"microwave"});
    act("heat", {item});
    act("open", {"microwave"});
  }
  void wash(const std::string& item) {
    fetch(item);
    go(w_.place("sink")->room);
    act("wash", {item});
  }
  void fill(const std::string& vessel, const std::string& drink) {
    fetch(drink);
    reach(w_.item(vessel)->place);
    act("pour", {drink, vessel});
  }

 private:
  World w_;
};

enum class Kind { open, close, take, move, wash, heat_put, fill_put, hot_drink, clean_put };
const int kKinds = 9;
const char* kKindNames[] = {"open", "close", "take", "move", "wash", "heat_put", "fill_put", "hot_drink", "clean_put"};

struct Goal {
  Kind kind;
  std::string item, place, drink;
};

std::string on_in(const std::string& place) {
  return place == "fridge" || place == "cabinet" || place == "microwave" || place == "sink" ? "in" : "on";
}

class Kitchen : public Environment {
 public:
  Kitchen(Task task, World w, Goal g) : task_(std::move(task)), start_(w), world_(std::move(w)), goal_(std::move(g)) {}
  const Task& task() const override { return task_; }
  std::string describe() const override {
    return "You act in a house by calling the primitives. You hold one item at a time and act only on places in the "
           "room you are in; closed containers must be opened first. heat(obj) needs obj in the closed microwave. "
           "Each primitive returns the new state of what it changed. Call final_answer('done') when the task is done.";
  }
  tools::Registry tools() override { return registry(&world_); }
  // The primitives bound to `w` (null: unbound, for rendering calls only).
  static tools::Registry registry(World* w) {
    tools::Registry reg;
    for (auto& p : kPrimitives) {
      std::string name = p.name;
      auto added = reg.add(primitive(name, p.description, p.params,
                                     [w, name](const std::vector<std::string>& a) -> Result<Json> {
                                       auto r = w->act(name, a);
                                       if (!r) return r.error();
                                       return Json(r.value());
                                     }));
      (void)added;  // fixed, valid names
    }
    return reg;
  }
  std::string observe() const override { return world_.observe(); }
  GoalCheck check(const Json&) const override { return check_world(world_, goal_); }
  std::vector<std::string> expert_steps() const override {
    return plan_code(plan(), registry(nullptr), "done");
  }
  std::vector<Json> expert_calls() const override { return plan_calls(plan(), "done"); }

  static GoalCheck check_world(World w, const Goal& g) {
    auto fail = [](std::string why) { return GoalCheck{false, std::move(why)}; };
    Item* i = g.item.empty() ? nullptr : w.item(g.item);
    switch (g.kind) {
      case Kind::open: return w.place(g.place)->open ? GoalCheck{true, ""} : fail("the " + g.place + " is closed");
      case Kind::close: return !w.place(g.place)->open ? GoalCheck{true, ""} : fail("the " + g.place + " is open");
      case Kind::take: return w.holding == g.item ? GoalCheck{true, ""} : fail("you do not hold the " + g.item);
      default: break;
    }
    if ((g.kind == Kind::wash || g.kind == Kind::clean_put) && !i->clean) return fail("the " + g.item + " is dirty");
    if ((g.kind == Kind::heat_put || g.kind == Kind::hot_drink) && i->temp != "hot")
      return fail(fmt::format("the {} is {}, not hot", g.item, i->temp));
    if ((g.kind == Kind::fill_put || g.kind == Kind::hot_drink) && i->filled != g.drink)
      return fail(fmt::format("the {} holds {}, not {}", g.item, i->filled.empty() ? "nothing" : i->filled, g.drink));
    if (g.kind != Kind::wash && i->place != g.place)
      return fail(fmt::format("the {} is {}, not {} the {}", g.item, i->place == "hand" ? "in your hand" : on_in(i->place) + " the " + i->place,
                              on_in(g.place), g.place));
    return {true, ""};
  }

  // Planned from the instance's first state, whatever has been done since.
  std::vector<PlannedStep> plan() const {
    Planner p(start_);
    const auto& g = goal_;
    auto as = [&](const std::string& place) { return on_in(place) + " the " + place; };
    switch (g.kind) {
      case Kind::open: p.begin("Open the " + g.place + "."); p.reach(g.place); break;
      case Kind::close:
        p.begin("Close the " + g.place + ".");
        p.go(p.world().place(g.place)->room);
        p.act("close", {g.place});
        break;
      case Kind::take: p.begin("Take the " + g.item + "."); p.fetch(g.item); break;
      case Kind::move: p.begin("Put the " + g.item + " " + as(g.place) + "."); p.place(g.item, g.place); break;
      case Kind::wash: p.begin("Wash the " + g.item + " at the sink."); p.wash(g.item); break;
      case Kind::heat_put:
        p.begin("Heat the " + g.item + " in the microwave.");
        p.heat(g.item);
        p.begin("Put the " + g.item + " " + as(g.place) + ".");
        p.place(g.item, g.place);
        break;
      case Kind::fill_put:
        p.begin("Fill the " + g.item + " with " + g.drink + ".");
        p.fill(g.item, g.drink);
        p.begin("Put the " + g.item + " " + as(g.place) + ".");
        p.place(g.item, g.place);
        break;
      case Kind::hot_drink:
        p.begin("Fill the " + g.item + " with " + g.drink + ".");
        p.fill(g.item, g.drink);
        p.begin("Heat the " + g.item + " in the microwave.");
        p.heat(g.item);
        p.begin("Put the " + g.item + " " + as(g.place) + ".");
        p.place(g.item, g.place);
        break;
      case Kind::clean_put:
        p.begin("Wash the " + g.item + " at the sink.");
        p.wash(g.item);
        p.begin("Put the " + g.item + " " + as(g.place) + ".");
        p.place(g.item, g.place);
        break;
    }
    return p.steps;
  }

  Task task_;

 private:
  World start_, world_;
  Goal goal_;
};

// Draws a world and a task of `kind` whose combination belongs to `split`.
std::unique_ptr<Environment> draw(Kind kind, const std::string& split, int index, std::mt19937_64& rng) {
  auto num = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  for (;;) {
    World w;
    w.places = house();
    for (auto& p : w.places)
      if (p.container) p.open = num(3) == 0;
    w.room = kRooms[num(3)];
    // Five or six items, at places that suit their kind.
    std::vector<int> order(std::size(kItems));
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = static_cast<int>(k);
    std::shuffle(order.begin(), order.end(), rng);
    int n = 5 + num(2);
    for (int k = 0; k < n; ++k) {
      const auto& d = kItems[order[k]];
      Item it{d.name, d.kind, ""};
      static const std::vector<std::string> cold = {"fridge", "fridge", "counter"}, dry = {"counter", "cabinet", "shelf", "table", "sink"},
                                            food = {"fridge", "counter", "cabinet", "shelf"};
      const auto& where = it.kind == "drink" ? cold : it.kind == "food" ? food : dry;
      it.place = where[num(static_cast<int>(where.size()))];
      if (it.place == "fridge") it.temp = "cold";
      if (it.kind == "vessel" || it.kind == "dish") it.clean = it.place == "sink" ? false : num(3) != 0;
      w.items.push_back(it);
    }
    auto pick = [&](std::function<bool(const Item&)> ok) -> Item* {
      std::vector<Item*> c;
      for (auto& i : w.items) if (ok(i)) c.push_back(&i);
      return c.empty() ? nullptr : c[num(static_cast<int>(c.size()))];
    };
    static const std::vector<std::string> targets = {"counter", "table", "shelf", "cabinet", "fridge"};
    Goal g{kind, "", "", ""};
    std::string text;
    Item* i = nullptr;
    Item* d = nullptr;
    switch (kind) {
      case Kind::open:
      case Kind::close: {
        std::vector<Place*> c;
        for (auto& p : w.places) if (p.container && p.open == (kind == Kind::close)) c.push_back(&p);
        if (c.empty()) continue;
        g.place = c[num(static_cast<int>(c.size()))]->name;
        text = fmt::format("{} the {}.", kind == Kind::open ? "Open" : "Close", g.place);
        break;
      }
      case Kind::take:
        i = pick([](const Item&) { return true; });
        text = fmt::format("Pick up the {}.", i->name);
        break;
      case Kind::move:
        i = pick([](const Item&) { return true; });
        do g.place = targets[num(5)]; while (g.place == i->place);
        text = fmt::format("Put the {} {} the {}.", i->name, on_in(g.place), g.place);
        break;
      case Kind::wash:
        i = pick([](const Item& x) { return (x.kind == "vessel" || x.kind == "dish") && !x.clean; });
        if (!i) continue;
        text = fmt::format("Wash the {}.", i->name);
        break;
      case Kind::heat_put:
        i = pick([](const Item& x) { return x.kind == "food" || x.kind == "dish"; });
        if (!i) continue;
        do g.place = targets[num(5)]; while (g.place == "fridge");
        text = fmt::format("Put a hot {} {} the {}.", i->name, on_in(g.place), g.place);
        break;
      case Kind::fill_put:
      case Kind::hot_drink:
        i = pick([](const Item& x) { return x.kind == "vessel"; });
        d = pick([](const Item& x) { return x.kind == "drink"; });
        if (!i || !d) continue;
        g.drink = d->name;
        do g.place = targets[num(5)]; while (g.place == "fridge" && kind == Kind::hot_drink);
        text = fmt::format("Put a {}{} of {} {} the {}.", kind == Kind::hot_drink ? "hot " : "", i->name, d->name,
                           on_in(g.place), g.place);
        break;
      case Kind::clean_put:
        i = pick([](const Item& x) { return (x.kind == "vessel" || x.kind == "dish") && !x.clean; });
        if (!i) continue;
        do g.place = targets[num(5)]; while (g.place == i->place);
        text = fmt::format("Put a clean {} {} the {}.", i->name, on_in(g.place), g.place);
        break;
    }
    if (i) g.item = i->name;
    std::string key = fmt::format("kitchen|{}|{}|{}|{}|{}", kKindNames[static_cast<int>(kind)], g.item, g.drink, g.place, w.room);
    if (held_out_combination(key) != (split == "held-out")) continue;
    Task t{"kitchen", fmt::format("kitchen/{}/{}", split, index), split, text, 1};
    auto env = std::make_unique<Kitchen>(t, w, g);
    if (Kitchen::check_world(w, g).success) continue;  // already done: not a task
    int actions = 0;
    for (auto& s : env->plan()) actions += static_cast<int>(s.calls.size());
    env->task_.min_steps = actions;
    return env;
  }
}

}  // namespace

std::unique_ptr<Environment> make_kitchen_state(const Json& spec) {
  World w;
  w.places = house();
  w.room = spec.value("room", "kitchen");
  for (auto& o : spec.value("open", Json::array())) w.place(o.get<std::string>())->open = true;
  for (auto& i : spec.at("items")) {
    std::string name = i.at("name").get<std::string>(), kind;
    for (auto& d : kItems) if (name == d.name) kind = d.kind;
    Item it{name, kind, i.at("place").get<std::string>()};
    it.temp = i.value("temp", it.place == "fridge" ? "cold" : "room");
    it.clean = i.value("clean", true);
    it.filled = i.value("filled", "");
    if (it.place == "hand") w.holding = name;
    w.items.push_back(it);
  }
  const Json& g = spec.at("goal");
  std::string kind = g.at("kind").get<std::string>();
  int k = 0;
  while (k < kKinds && kind != kKindNames[k]) ++k;
  Goal goal{static_cast<Kind>(k), g.value("item", ""), g.value("place", ""), g.value("drink", "")};
  auto env = std::make_unique<Kitchen>(Task{"kitchen", "kitchen/test/0", "test", spec.value("instruction", kind), 1}, w, goal);
  return env;
}

std::unique_ptr<Environment> make_kitchen(const std::string& split, int index, std::mt19937_64& rng) {
  // Held-out instances cycle through the kinds so every kind is measured evenly; train draws them.
  int k = split == "held-out" ? index % kKinds : static_cast<int>(rng() % kKinds);
  return draw(static_cast<Kind>(k), split, index, rng);
}

}  // namespace wand::agent
