// Internal to agent: the worlds behind make_environment, and what they share.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "agent/env.h"

namespace wand::agent {

// A world's instance `index` of `split` ("train" or "held-out"), drawn from `rng`.
std::unique_ptr<Environment> make_kitchen(const std::string& split, int index, std::mt19937_64& rng);
std::unique_ptr<Environment> make_data_env(const std::string& split, int index, std::mt19937_64& rng);
std::unique_ptr<Environment> make_shop(const std::string& split, int index, std::mt19937_64& rng);

// A kitchen in a given state, for tests: {"room": "pantry", "open": ["fridge"], "items": [{"name":
// "mug", "place": "counter", "clean": false, "temp": "room", "filled": ""}, ...], "goal": {"kind":
// "hot_drink", "item": "mug", "drink": "milk", "place": "table"}}; kinds: open, close, take, move,
// wash, heat_put, fill_put, hot_drink, clean_put.
std::unique_ptr<Environment> make_kitchen_state(const Json& spec);

// Whether a combination of task features (task kind, objects, places, ...) belongs to the
// held-out split: a fixed hash, so held-out instances differ from train ones in what they
// combine, not only in their seed.
bool held_out_combination(const std::string& key);
// The same for an entity drawn from a short list (a kind of question about one of 8 products):
// the quarter of `candidates` (at least one) that ranks first by the hash of "prefix|candidate"
// is held out, so every kind has held-out and train entities.
bool held_out_member(const std::string& prefix, const std::string& entity, const std::vector<std::string>& candidates);

// A tool of one string parameter per name in `params` (all required), bound to a handler that
// takes the arguments in that order. Primitives answer at once (inline_call).
tools::Tool primitive(const std::string& name, const std::string& description,
                      const std::vector<std::pair<std::string, std::string>>& params,
                      std::function<Result<Json>(const std::vector<std::string>&)> fn);

// An expert step: a thought, the calls it makes, and whether it prints the last call's result.
struct PlannedStep {
  std::string thought;
  std::vector<Json> calls;  // {"name", "arguments"}
};
// A call as a line of Python: positional in the tool's parameter order; keywords when the
// registry lacks the tool (a data instance whose files could not be made).
std::string render_call(const tools::Registry& reg, const Json& call);
// The code blocks of a plan: "# thought", one call per line, the last call printed (or, in the
// last step, final_answer(answer) after it). Calls render with `reg`'s parameter order.
std::vector<std::string> plan_code(const std::vector<PlannedStep>& plan, const tools::Registry& reg,
                                   const Json& answer);
// The plan's calls flattened, ending with {"name": "final_answer", "arguments": {"answer": ...}}.
std::vector<Json> plan_calls(const std::vector<PlannedStep>& plan, const Json& answer);

}  // namespace wand::agent
