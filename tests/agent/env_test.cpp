// The environments an agent acts in (src/agent): kitchen, data, shop. Every primitive's
// preconditions, reproducible instances, splits that differ in what they combine, and the
// experts solving every held-out instance and a sample of train ones in the real sandbox.
#include <gtest/gtest.h>

#include <set>

#include "agent/agent.h"
#include "agent/env.h"
#include "agent/env_session.h"
#include "agent/expert.h"
#include "agent/python_text.h"
#include "agent/worlds.h"
#include "llm/llm.h"
#include "sandbox/sandbox.h"
#include "train/corpus.h"

using namespace wand;
using namespace wand::agent;

namespace {

Result<Json> act(Environment& env, tools::Registry& reg, const std::string& name, Json args = Json::object()) {
  const auto* t = reg.find(name);
  if (!t) return Error{"no tool " + name};
  return tools::call(*t, args);
}

// The message of a call that must fail.
std::string fails(Environment& env, tools::Registry& reg, const std::string& name, Json args = Json::object()) {
  auto r = act(env, reg, name, std::move(args));
  EXPECT_FALSE(r.ok()) << name << " succeeded: " << (r.ok() ? r.value().dump() : "");
  if (r.ok()) return "";
  // tools::call names the tool; the primitive's own message follows.
  std::string prefix = "tool '" + name + "': ";
  const std::string& m = r.error().message;
  return m.rfind(prefix, 0) == 0 ? m.substr(prefix.size()) : m;
}

std::string ok(Environment& env, tools::Registry& reg, const std::string& name, Json args = Json::object()) {
  auto r = act(env, reg, name, std::move(args));
  EXPECT_TRUE(r.ok()) << name << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? (r.value().is_string() ? r.value().get<std::string>() : r.value().dump()) : "";
}

std::unique_ptr<Environment> kitchen(Json spec) { return make_kitchen_state(spec); }

const Json kHotMilk = {{"room", "pantry"},
                       {"items",
                        {{{"name", "milk"}, {"place", "fridge"}},
                         {{"name", "mug"}, {"place", "counter"}, {"clean", false}},
                         {{"name", "plate"}, {"place", "cabinet"}},
                         {{"name", "apple"}, {"place", "shelf"}}}},
                       {"goal", {{"kind", "hot_drink"}, {"item", "mug"}, {"drink", "milk"}, {"place", "table"}}}};

}  // namespace

TEST(AgentEnv, NamesSizesAndBadArguments) {
  EXPECT_EQ(environment_names(), (std::vector<std::string>{"kitchen", "data", "shop"}));
  for (auto& n : environment_names()) {
    auto s = split_size(n, "held-out");
    ASSERT_TRUE(s.ok());
    EXPECT_GE(*s, 200) << n;
  }
  auto e = make_environment("garden", "train", 0);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, "unknown environment 'garden' (environments: kitchen, data, shop)");
  e = make_environment("kitchen", "test", 0);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, "unknown split 'test' (splits: train, held-out)");
  e = make_environment("kitchen", "held-out", 297);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, "kitchen held-out: task 297 is out of range (0..296)");
  EXPECT_FALSE(make_environment("shop", "held-out", -1).ok());
}

TEST(AgentEnv, InstancesAreReproducibleAndDependOnTheSeed) {
  for (auto& n : environment_names()) {
    auto a = make_environment(n, "held-out", 7), b = make_environment(n, "held-out", 7), c = make_environment(n, "held-out", 7, 2);
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    EXPECT_EQ((*a)->task().instruction, (*b)->task().instruction);
    EXPECT_EQ((*a)->task().id, n + "/held-out/7");
    EXPECT_EQ((*a)->observe(), (*b)->observe());
    EXPECT_EQ((*a)->expert_steps(), (*b)->expert_steps());
    EXPECT_TRUE((*a)->expert_steps() != (*c)->expert_steps() || (*a)->observe() != (*c)->observe()) << n;
  }
}

// Held-out instances combine task kind, objects, places (and the kitchen's starting room)
// in ways train instances never do.
TEST(AgentEnv, HeldOutCombinationsNeverAppearInTrain) {
  auto kitchen_key = [](Environment& e) {
    auto obs = e.observe();
    return e.task().instruction + "|" + obs.substr(0, obs.find('\n'));
  };
  for (auto& n : environment_names()) {
    std::set<std::string> held;
    for (int i = 0; i < *split_size(n, "held-out"); ++i) {
      auto e = make_environment(n, "held-out", i);
      ASSERT_TRUE(e.ok());
      EXPECT_EQ((*e)->task().split, "held-out");
      held.insert(n == "kitchen" ? kitchen_key(**e) : (*e)->task().instruction);
    }
    int overlap = 0;
    for (int i = 0; i < 1000; ++i) {
      auto e = make_environment(n, "train", i);
      ASSERT_TRUE(e.ok());
      std::string key = n == "kitchen" ? kitchen_key(**e) : (*e)->task().instruction;
      overlap += held.count(key);
    }
    // Kitchen keys are the instruction and the starting room; data and shop instructions name
    // their kind and entities (and numbers drawn per instance), so equal ones share a combination.
    EXPECT_EQ(overlap, 0) << n;
  }
}

TEST(AgentEnv, KitchenObservationIsPythonReprs) {
  auto env = kitchen(kHotMilk);
  EXPECT_EQ(env->observe(),
            "Agent(room='pantry', holding=None)\n"
            "kitchen: Fridge(open=False, contents=['milk']), Counter(contents=['mug']), Microwave(open=False, contents=[]), "
            "Sink(contents=[])\n"
            "dining_room: Table(contents=[])\n"
            "pantry: Cabinet(open=False, contents=['plate']), Shelf(contents=['apple'])\n"
            "Milk(temp='cold'), Mug(temp='room', clean=False, filled=None), Plate(temp='room', clean=True), Apple(temp='room')");
  auto reg = env->tools();
  EXPECT_EQ(ok(*env, reg, "look"), env->observe());
  EXPECT_EQ(tools_summary(reg), "close(x), go(room), heat(obj), look(), open(x), pour(src, dst), put(obj, place), take(obj), wash(obj)");
}

TEST(AgentEnv, KitchenPrimitivesCheckTheirPreconditions) {
  auto env = kitchen(kHotMilk);
  auto reg = env->tools();
  // go
  EXPECT_EQ(fails(*env, reg, "go", {{"room", "garage"}}), "there is no room 'garage' (rooms: kitchen, dining_room, pantry)");
  // open / close
  EXPECT_EQ(fails(*env, reg, "open", {{"x", "fridge"}}), "the fridge is in the kitchen; you are in the pantry (go('kitchen') first)");
  EXPECT_EQ(fails(*env, reg, "open", {{"x", "oven"}}),
            "there is no place 'oven' (places: fridge, counter, microwave, sink, table, cabinet, shelf)");
  EXPECT_EQ(fails(*env, reg, "open", {{"x", "shelf"}}), "the shelf cannot be opened");
  EXPECT_EQ(fails(*env, reg, "close", {{"x", "cabinet"}}), "the cabinet is already closed");
  EXPECT_EQ(ok(*env, reg, "open", {{"x", "cabinet"}}), "Cabinet(open=True, contents=['plate'])");
  EXPECT_EQ(fails(*env, reg, "open", {{"x", "cabinet"}}), "the cabinet is already open");
  // take
  EXPECT_EQ(fails(*env, reg, "take", {{"obj", "milk"}}), "the milk is in the fridge in the kitchen; you are in the pantry");
  EXPECT_EQ(fails(*env, reg, "take", {{"obj", "pear"}}), "there is no item 'pear' (items: milk, mug, plate, apple)");
  EXPECT_EQ(ok(*env, reg, "take", {{"obj", "apple"}}), "Agent(room='pantry', holding='apple')");
  EXPECT_EQ(fails(*env, reg, "take", {{"obj", "apple"}}), "you already hold the apple");
  EXPECT_EQ(fails(*env, reg, "take", {{"obj", "plate"}}), "your hands are full: you hold the apple (put it somewhere first)");
  // put
  EXPECT_EQ(fails(*env, reg, "put", {{"obj", "plate"}, {"place", "shelf"}}), "you are not holding the plate");
  EXPECT_EQ(fails(*env, reg, "put", {{"obj", "apple"}, {"place", "table"}}),
            "the table is in the dining_room; you are in the pantry (go('dining_room') first)");
  ASSERT_EQ(ok(*env, reg, "close", {{"x", "cabinet"}}), "Cabinet(open=False, contents=['plate'])");
  EXPECT_EQ(fails(*env, reg, "put", {{"obj", "apple"}, {"place", "cabinet"}}), "the cabinet is closed (open('cabinet') first)");
  // heat
  EXPECT_EQ(fails(*env, reg, "heat", {{"obj", "apple"}}),
            "the apple is not in the microwave (put it in the microwave and close it first)");
  ok(*env, reg, "go", {{"room", "kitchen"}});
  ok(*env, reg, "open", {{"x", "microwave"}});
  EXPECT_EQ(ok(*env, reg, "put", {{"obj", "apple"}, {"place", "microwave"}}), "Microwave(open=True, contents=['apple'])");
  EXPECT_EQ(fails(*env, reg, "heat", {{"obj", "apple"}}), "the microwave is open (close('microwave') first)");
  ok(*env, reg, "close", {{"x", "microwave"}});
  EXPECT_EQ(fails(*env, reg, "take", {{"obj", "apple"}}), "the microwave is closed (open('microwave') first)");
  ok(*env, reg, "go", {{"room", "pantry"}});
  EXPECT_EQ(fails(*env, reg, "heat", {{"obj", "apple"}}), "the microwave is in the kitchen; you are in the pantry");
  ok(*env, reg, "go", {{"room", "kitchen"}});
  EXPECT_EQ(ok(*env, reg, "heat", {{"obj", "apple"}}), "Apple(temp='hot')");
  // wash
  EXPECT_EQ(fails(*env, reg, "wash", {{"obj", "mug"}}), "you are not holding the mug (take it to the sink)");
  EXPECT_EQ(fails(*env, reg, "wash", {{"obj", "milk"}}), "the milk cannot be washed");
  ok(*env, reg, "take", {{"obj", "mug"}});
  ok(*env, reg, "go", {{"room", "dining_room"}});
  EXPECT_EQ(fails(*env, reg, "wash", {{"obj", "mug"}}), "the sink is in the kitchen; you are in the dining_room");
  ok(*env, reg, "go", {{"room", "kitchen"}});
  EXPECT_EQ(ok(*env, reg, "wash", {{"obj", "mug"}}), "Mug(temp='room', clean=True, filled=None)");
  // pour
  EXPECT_EQ(fails(*env, reg, "pour", {{"src", "milk"}, {"dst", "mug"}}), "you are not holding the milk");
  EXPECT_EQ(fails(*env, reg, "pour", {{"src", "mug"}, {"dst", "milk"}}), "the mug has nothing to pour");
  ok(*env, reg, "put", {{"obj", "mug"}, {"place", "counter"}});
  ok(*env, reg, "open", {{"x", "fridge"}});
  ok(*env, reg, "take", {{"obj", "milk"}});
  EXPECT_EQ(fails(*env, reg, "pour", {{"src", "milk"}, {"dst", "plate"}}), "you cannot pour into the plate");
  EXPECT_EQ(ok(*env, reg, "pour", {{"src", "milk"}, {"dst", "mug"}}), "Mug(temp='cold', clean=True, filled='milk')");
  EXPECT_EQ(fails(*env, reg, "pour", {{"src", "milk"}, {"dst", "mug"}}), "the mug already holds milk");
  // Arguments are checked against the schema before a primitive runs.
  EXPECT_NE(fails(*env, reg, "go", Json::object()).find("missing required parameter 'room'"), std::string::npos);
  EXPECT_NE(fails(*env, reg, "go", {{"room", 3}}).find("parameter 'room'"), std::string::npos);
}

TEST(AgentEnv, KitchenGoalsSayWhatIsStillWrong) {
  auto env = kitchen(kHotMilk);
  auto reg = env->tools();
  EXPECT_EQ(env->check(nullptr).reason, "the mug is room, not hot");
  for (auto& call : env->expert_calls())
    if (call["name"] != "final_answer") {
      ASSERT_TRUE(act(*env, reg, call["name"], call["arguments"]).ok()) << call.dump();
    }
  EXPECT_TRUE(env->check("done").success) << env->check("done").reason;
  auto fresh = kitchen(kHotMilk);
  EXPECT_EQ(fresh->expert_steps().front(),
            "# Fill the mug with milk.\ngo('kitchen')\nopen('fridge')\ntake('milk')\nprint(pour('milk', 'mug'))\n");
  EXPECT_EQ(fresh->expert_steps().back(),
            "# Put the mug on the table.\ntake('mug')\ngo('dining_room')\nput('mug', 'table')\nfinal_answer('done')\n");
}

TEST(AgentEnv, ShopActionsCheckTheirArguments) {
  auto env = make_environment("shop", "held-out", 3);
  ASSERT_TRUE(env.ok());
  auto& e = **env;
  auto reg = e.tools();
  EXPECT_EQ(fails(e, reg, "checkout"), "the cart is empty");
  EXPECT_EQ(fails(e, reg, "open_item", {{"id", "B999"}}), "there is no item 'B999'");
  EXPECT_EQ(fails(e, reg, "add_to_cart", {{"id", "B999"}, {"options", Json::object()}}), "there is no item 'B999'");
  auto calls = e.expert_calls();
  ASSERT_EQ(calls.size(), 5u);
  std::string id = calls[1]["arguments"]["id"];
  std::string page = ok(e, reg, "search", calls[0]["arguments"]);
  EXPECT_EQ(page.rfind("<ul class=\"results\">", 0), 0u) << page;
  EXPECT_NE(page.find("<li id=\"" + id + "\">"), std::string::npos);
  EXPECT_NE(ok(e, reg, "open_item", {{"id", id}}).find("<h1>"), std::string::npos);
  EXPECT_EQ(fails(e, reg, "add_to_cart", {{"id", id}, {"options", {{"colour", "red"}}}}), id + " has no option 'colour'");
  EXPECT_FALSE(e.check("done").success);
  EXPECT_EQ(e.check("done").reason, "no order was placed");
  ASSERT_TRUE(act(e, reg, "add_to_cart", calls[2]["arguments"]).ok());
  EXPECT_NE(ok(e, reg, "checkout").find("Order placed: 1 item(s)"), std::string::npos);
  EXPECT_EQ(fails(e, reg, "search", {{"query", "shirt"}}), "the order is already placed");
  EXPECT_TRUE(e.check("done").success) << e.check("done").reason;
}

TEST(AgentEnv, ShopSizesAreChecked) {
  // A sized item: a held-out instance whose instruction asks for a size.
  for (int i = 0; i < 200; ++i) {
    auto env = make_environment("shop", "held-out", i);
    ASSERT_TRUE(env.ok());
    if ((*env)->task().instruction.find("in size") == std::string::npos) continue;
    auto reg = (*env)->tools();
    std::string id = (*env)->expert_calls()[1]["arguments"]["id"];
    EXPECT_EQ(fails(**env, reg, "add_to_cart", {{"id", id}, {"options", Json::object()}}),
              id + " needs a size: options={'size': 'S'|'M'|'L'}");
    EXPECT_EQ(fails(**env, reg, "add_to_cart", {{"id", id}, {"options", {{"size", "XL"}}}}), id + " comes in sizes S, M, L, not 'XL'");
    return;
  }
  FAIL() << "no sized shop task";
}

TEST(AgentEnv, DataAnswersAreChecked) {
  auto env = make_environment("data", "held-out", 0);  // kind 0: how many orders did X place
  ASSERT_TRUE(env.ok());
  auto& e = **env;
  EXPECT_NE(e.task().instruction.find("How many orders did"), std::string::npos);
  auto calls = e.expert_calls();
  Json answer = calls.back()["arguments"]["answer"];
  ASSERT_TRUE(answer.is_number_integer());
  EXPECT_TRUE(e.check(answer).success);
  EXPECT_TRUE(e.check(std::to_string(answer.get<int>())).success);
  EXPECT_EQ(e.check(answer.get<int>() + 1).reason, "the answer " + std::to_string(answer.get<int>() + 1) + " is wrong");
  EXPECT_EQ(e.check(nullptr).reason, "no final answer");
  EXPECT_EQ(e.check("many").reason, "the answer \"many\" is not a number");
  // The tools are the built-ins, confined to the instance's own folder.
  auto reg = e.tools();
  EXPECT_EQ(tools_summary(reg), "fs.list(path), fs.read(path), search(query, k), sql(query, params)");
  EXPECT_NE(ok(e, reg, "fs.read", {{"path", "customers.csv"}}).find("name,city,age\n"), std::string::npos);
  EXPECT_FALSE(act(e, reg, "fs.read", {{"path", "../customers.csv"}}).ok());
  EXPECT_FALSE(act(e, reg, "sql", {{"query", "DELETE FROM orders"}}).ok());
}

// What the corpus writes: the expert's trajectory in the loop's compact format, with the
// observations the loop shows.
TEST(AgentEnv, ExpertDocumentsAreTheLoopFormat) {
  auto env = kitchen(kHotMilk);
  auto doc = expert_document(*env, false);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  // The lean prompt: no rules or tools; the task again before every step.
  EXPECT_EQ(doc->rfind("Task: hot_drink\nState:\nAgent(room='pantry', holding=None)\n", 0), 0u) << *doc;
  EXPECT_EQ(doc->find("Rules:"), std::string::npos) << *doc;
  EXPECT_NE(doc->find("\n\nTask: hot_drink\nThought: Fill the mug with milk.\nCode:\ngo('kitchen')\nopen('fridge')\ntake('milk')\nprint(pour('milk', "
                      "'mug'))\nObservation:\nMug(temp='cold', clean=False, filled='milk')\n\nTask: hot_drink\nThought: Heat the mug"),
            std::string::npos)
      << *doc;
  EXPECT_TRUE(doc->ends_with("put('mug', 'table')\nfinal_answer('done')\nObservation:\nFinal answer: \"done\"\n\n")) << *doc;
  auto fresh = kitchen(kHotMilk);
  auto json = expert_document(*fresh, true);
  ASSERT_TRUE(json.ok());
  EXPECT_NE(json->find("\n\nTask: hot_drink\nThought: Fill the mug with milk.\nAction: {\"arguments\":{\"room\":\"kitchen\"},\"name\":\"go\"}\n"
                       "Observation:\nAgent(room='kitchen', holding=None)\n\nTask: hot_drink\nAction: {\"arguments\":{\"x\":\"fridge\"},\"name\":\"open\"}\n"),
            std::string::npos)
      << *json;
  EXPECT_TRUE(json->ends_with("Action: {\"arguments\":{\"answer\":\"done\"},\"name\":\"final_answer\"}\nObservation:\nFinal answer: \"done\"\n\n"))
      << *json;
  std::string key;
  EXPECT_EQ(train::agent_document(1, 0, false, key), train::agent_document(1, 0, false, key));
  EXPECT_EQ(key, "kitchen/train/0");
  train::agent_document(1, 3, true, key);
  EXPECT_EQ(key, "data/train/0");
}

// A mistake: a later call of a step made first (a skipped precondition), its real error, then
// the expert's step; the same in both formats, and the environment is as the expert left it.
TEST(AgentEnv, ExpertDocumentsWithAMistakeShowTheErrorThenTheRecovery) {
  auto fresh = [] { return kitchen(kHotMilk); };
  auto m = find_mistake(fresh, 0);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->step, 0u);
  // In the pantry with the fridge closed: open('fridge') is the first call that fails.
  EXPECT_EQ(m->call, Json({{"name", "open"}, {"arguments", {{"x", "fridge"}}}}));
  auto env = fresh();
  auto doc = expert_document(*env, false, &*m);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  EXPECT_NE(doc->find("\n\nTask: hot_drink\nThought: Fill the mug with milk.\nCode:\nopen('fridge')\nObservation:\n"
                      "Error: ToolError raised at line 1: `open('fridge')`: tool 'open': the fridge is in the kitchen; you are in the "
                      "pantry (go('kitchen') first).\n\nTask: hot_drink\nThought: Fill the mug with milk.\nCode:\ngo('kitchen')\n"),
            std::string::npos)
      << *doc;
  EXPECT_TRUE(env->check("done").success);
  auto json_env = fresh();
  auto json = expert_document(*json_env, true, &*m);
  ASSERT_TRUE(json.ok()) << json.error().message;
  EXPECT_NE(json->find("Task: hot_drink\nThought: Fill the mug with milk.\nAction: {\"arguments\":{\"x\":\"fridge\"},\"name\":\"open\"}\n"
                       "Observation:\nError: tool 'open': the fridge is in the kitchen; you are in the pantry (go('kitchen') first)\n\n"
                       "Task: hot_drink\nThought: Fill the mug with milk.\nAction: {\"arguments\":{\"room\":\"kitchen\"},\"name\":\"go\"}"),
            std::string::npos)
      << *json;
  EXPECT_TRUE(json_env->check("done").success);
  // pick chooses the step to start from; a one-call task has none.
  auto later = find_mistake(fresh, 1);
  ASSERT_TRUE(later);
  EXPECT_EQ(later->step, 1u);
  EXPECT_FALSE(find_mistake([] { return kitchen({{"room", "kitchen"}, {"items", {{{"name", "mug"}, {"place", "counter"}}}},
                                                 {"goal", {{"kind", "open"}, {"place", "fridge"}}}}); }, 0));
  // The corpus: kitchen documents n with n / 5 % 3 == 1 may carry one (not a one-call task),
  // the others never.
  std::string key;
  int with = 0, without = 0;
  for (long long n = 0; n < 300; ++n) {
    if (n % 5 > 2) continue;  // data and shop
    bool error = train::agent_document(1, n, false, key).find("Error: ToolError") != std::string::npos;
    EXPECT_EQ(train::agent_document(1, n, true, key).find("Error: ") != std::string::npos, error) << n;
    if (n / 5 % 3 == 1) with += error;
    else without += error;
  }
  EXPECT_GE(with, 30);
  EXPECT_EQ(without, 0);
}

TEST(AgentEnv, PythonText) {
  EXPECT_EQ(python_repr(Json{{"b", 1.5}, {"a", {true, nullptr, "it's"}}}), "{'a': [True, None, \"it's\"], 'b': 1.5}");
  EXPECT_EQ(python_repr(2.0), "2.0");
  EXPECT_EQ(python_print("x"), "x\n");
  EXPECT_EQ(python_print(Json::array({1, "a"})), "[1, 'a']\n");
}

namespace {

// Runs the expert's blocks of `env` in a sandboxed session; returns "" on success, else what
// went wrong. With `expected`, each block's stdout must be the observation the corpus writes.
std::string run_expert(sandbox::Sandbox& sb, Environment& env, const std::vector<ExpertStep>* expected) {
  auto s = EnvSession::open(sb, env);
  if (!s) return "open: " + s.error().message;
  auto steps = env.expert_steps();
  for (std::size_t i = 0; i < steps.size(); ++i) {
    auto step = (*s)->run(steps[i]);
    if (step.result.status != sandbox::Status::ok) return "step " + std::to_string(i) + ": " + step.observation + step.result.stderr_data;
    if (expected && step.result.stdout_data != (*expected)[i].stdout_text)
      return "step " + std::to_string(i) + " printed " + step.result.stdout_data + " but the corpus says " + (*expected)[i].stdout_text;
  }
  if (!(*s)->answered()) return "no final_answer";
  auto c = env.check((*s)->answer());
  return c.success ? "" : "goal: " + c.reason;
}

std::unique_ptr<sandbox::Sandbox> make_sandbox() {
  sandbox::Options o;
  o.cells = 1;
  o.preload = {};
  auto sb = sandbox::Sandbox::create(o);
  EXPECT_TRUE(sb.ok()) << (sb.ok() ? "" : sb.error().message);
  return sb.ok() ? std::move(sb.value()) : nullptr;
}

void expert_solves(const std::string& name, const std::string& split, int from, int to) {
  auto sb = make_sandbox();
  ASSERT_TRUE(sb);
  int short_tasks = 0;
  for (int i = from; i < to; ++i) {
    auto env = make_environment(name, split, i);
    ASSERT_TRUE(env.ok());
    auto twin = make_environment(name, split, i);
    auto traj = expert_trajectory(**twin);
    ASSERT_TRUE(traj.ok()) << (*env)->task().id << ": " << traj.error().message;
    EXPECT_TRUE((*twin)->check((*twin)->expert_calls().back()["arguments"]["answer"]).success) << (*env)->task().id;
    EXPECT_EQ(run_expert(*sb, **env, &traj.value()), "") << (*env)->task().id << ": " << (*env)->task().instruction;
    short_tasks += (*env)->task().min_steps <= 3;
  }
  if (split == "held-out" && name == "kitchen") {
    EXPECT_GE(short_tasks, 60);  // 1-3-action tasks are measured too
  }
}

}  // namespace

TEST(AgentExpert, SolvesEveryHeldOutKitchenTask) { expert_solves("kitchen", "held-out", 0, *split_size("kitchen", "held-out")); }
TEST(AgentExpert, SolvesEveryHeldOutDataTask) { expert_solves("data", "held-out", 0, *split_size("data", "held-out")); }
TEST(AgentExpert, SolvesEveryHeldOutShopTask) { expert_solves("shop", "held-out", 0, *split_size("shop", "held-out")); }
TEST(AgentExpert, SolvesASampleOfTrainTasks) {
  for (auto& n : environment_names()) expert_solves(n, "train", 0, 60);
}

// The expert's JSON calls solve the instance too (the agent_json corpus and the comparison).
TEST(AgentExpert, JsonCallsSolveEveryHeldOutTask) {
  for (auto& n : environment_names())
    for (int i = 0; i < *split_size(n, "held-out"); ++i) {
      auto env = make_environment(n, "held-out", i);
      ASSERT_TRUE(env.ok());
      auto t = expert_call_trajectory(**env);
      ASSERT_TRUE(t.ok()) << (*env)->task().id << ": " << t.error().message;
      auto c = (*env)->check(t->back().call["arguments"]["answer"]);
      EXPECT_TRUE(c.success) << (*env)->task().id << ": " << c.reason;
    }
}

// A failed primitive reaches the program as ToolError with the precondition's message.
TEST(AgentExpert, FailedPrimitiveIsAToolErrorInTheSandbox) {
  auto sb = make_sandbox();
  ASSERT_TRUE(sb);
  auto env = kitchen(kHotMilk);
  auto s = EnvSession::open(*sb, *env);
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto step = (*s)->run("take('milk')");
  EXPECT_NE(step.observation.find("the milk is in the fridge in the kitchen; you are in the pantry"), std::string::npos)
      << step.observation;
  EXPECT_NE(step.observation.find("ToolError"), std::string::npos) << step.observation;
  step = (*s)->run("try:\n    take('milk')\nexcept ToolError as e:\n    print('caught', e)\nprint(go('kitchen'))");
  EXPECT_EQ(step.result.stdout_data.substr(step.result.stdout_data.find('\n') + 1), "Agent(room='kitchen', holding=None)\n");
  EXPECT_EQ((*s)->run("x = 1").observation, "(no output)\n");
  EXPECT_FALSE((*s)->answered());
  (*s)->run("final_answer('done')");
  EXPECT_TRUE((*s)->answered());
  EXPECT_EQ((*s)->answer(), "done");
}

// The shipped agent model (models/wand-agent.gguf, trained on the corpus's agent part) acting in
// held-out kitchen instances through the CodeAct loop with the real engine and sandbox: it writes
// steps the loop parses and runs, and the goal is checked. Its success rate is measured by
// bench/agent_eval (models/MODEL_CARD.md); here, that a run works end to end.
TEST(AgentModel, ShippedModelActsInTheKitchen) {
  std::string path = std::string(WAND_MODELS_DIR) + "/wand-agent.gguf";
  auto model = llm::open_backend(path, {.threads = 2});
  ASSERT_TRUE(model.ok()) << model.error().message;
  EXPECT_EQ((*model)->prompt_format(), "agent");
  auto sb = make_sandbox();
  ASSERT_TRUE(sb);
  int solved = 0;
  for (int i = 0; i < 3; ++i) {
    auto env = make_environment("kitchen", "held-out", i);
    ASSERT_TRUE(env.ok());
    auto task = task_from_environment(**env);
    ASSERT_TRUE(task.ok());
    AgentConfig cfg;
    cfg.max_steps = 3;
    cfg.step_tokens = 160;  // the loop fits the prompt and the step into the model's 512-token context
    auto r = run_agent(**model, *sb, *task, cfg, {.env = env->get()});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->end_reason == kEndFinalAnswer || r->end_reason == kEndMaxSteps || r->end_reason == kEndStuck) << r->end_reason << ": " << r->end_detail;
    ASSERT_FALSE(r->steps.empty());
    EXPECT_FALSE(r->steps[0].code.empty()) << r->steps[0].output;
    ASSERT_TRUE(r->check.has_value());
    solved += r->check->success;
  }
  EXPECT_GE(solved, 1);  // held-out task 0, "Open the fridge." from the kitchen, is solved
}
