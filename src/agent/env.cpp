#include "agent/env.h"

#include <algorithm>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "agent/python_text.h"
#include "agent/worlds.h"

namespace wand::agent {
namespace {

struct World {
  const char* name;
  int held_out;  // instances in the held-out split
  std::unique_ptr<Environment> (*make)(const std::string&, int, std::mt19937_64&);
};
// Train splits are as large as anyone will draw; held-out ones are what the benchmarks measure.
constexpr int kTrainSize = 1'000'000;
const World kWorlds[] = {{"kitchen", 297, make_kitchen}, {"data", 200, make_data_env}, {"shop", 200, make_shop}};

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

Result<const World*> find_world(const std::string& name) {
  for (auto& w : kWorlds)
    if (name == w.name) return &w;
  return Error{fmt::format("unknown environment '{}' (environments: {})", name, fmt::join(environment_names(), ", "))};
}

}  // namespace

std::string render_call(const tools::Registry& reg, const Json& call) {
  const auto name = call["name"].get<std::string>();
  if (const auto* t = reg.find(name)) return python_call(*t, call["arguments"]);
  std::string out = name + "(";
  for (auto it = call["arguments"].begin(); it != call["arguments"].end(); ++it)
    out += (it == call["arguments"].begin() ? "" : ", ") + it.key() + "=" + python_repr(it.value());
  return out + ")";
}

std::vector<std::string> environment_names() {
  std::vector<std::string> out;
  for (auto& w : kWorlds) out.push_back(w.name);
  return out;
}

Result<int> split_size(const std::string& name, const std::string& split) {
  auto w = find_world(name);
  if (!w) return w.error();
  if (split == "train") return kTrainSize;
  if (split == "held-out") return (*w)->held_out;
  return Error{fmt::format("unknown split '{}' (splits: train, held-out)", split)};
}

Result<std::unique_ptr<Environment>> make_environment(const std::string& name, const std::string& split, int index,
                                                      uint64_t seed) {
  auto size = split_size(name, split);
  if (!size) return size.error();
  if (index < 0 || index >= *size)
    return Error{fmt::format("{} {}: task {} is out of range (0..{})", name, split, index, *size - 1)};
  std::mt19937_64 rng(fnv1a(fmt::format("{}|{}|{}|{}", name, split, index, seed)));
  return (*find_world(name))->make(split, index, rng);
}

bool held_out_combination(const std::string& key) { return fnv1a(key) % 4 == 0; }

bool held_out_member(const std::string& prefix, const std::string& entity, const std::vector<std::string>& candidates) {
  std::vector<std::pair<uint64_t, std::string>> ranked;
  for (auto& c : candidates) ranked.emplace_back(fnv1a(prefix + "|" + c), c);
  std::sort(ranked.begin(), ranked.end());
  std::size_t held = std::max<std::size_t>(1, candidates.size() / 4);
  for (std::size_t i = 0; i < held && i < ranked.size(); ++i)
    if (ranked[i].second == entity) return true;
  return false;
}

tools::Tool primitive(const std::string& name, const std::string& description,
                      const std::vector<std::pair<std::string, std::string>>& params,
                      std::function<Result<Json>(const std::vector<std::string>&)> fn) {
  Json props = Json::object(), required = Json::array();
  std::vector<std::string> names;
  for (auto& [p, d] : params) {
    props[p] = {{"type", "string"}, {"description", d}};
    required.push_back(p);
    names.push_back(p);
  }
  tools::Tool t;
  t.name = name;
  t.description = description;
  t.parameters = {{"type", "object"}, {"properties", props}, {"required", required}, {"additionalProperties", false}};
  t.inline_call = true;
  t.source = "environment";
  t.handler = [fn = std::move(fn), names](const Json& args, const tools::CallContext&) -> Result<Json> {
    std::vector<std::string> a;
    for (auto& n : names) a.push_back(args.at(n).get<std::string>());
    return fn(a);
  };
  return t;
}

std::vector<std::string> plan_code(const std::vector<PlannedStep>& plan, const tools::Registry& reg, const Json& answer) {
  std::vector<std::string> out;
  for (std::size_t s = 0; s < plan.size(); ++s) {
    const auto& step = plan[s];
    bool last = s + 1 == plan.size();
    std::string code = "# " + step.thought + "\n";
    for (std::size_t c = 0; c < step.calls.size(); ++c) {
      const auto& call = step.calls[c];
      std::string line = render_call(reg, call);
      code += (!last && c + 1 == step.calls.size() ? "print(" + line + ")" : line) + "\n";
    }
    if (last) code += "final_answer(" + python_repr(answer) + ")\n";
    out.push_back(code);
  }
  return out;
}

std::vector<Json> plan_calls(const std::vector<PlannedStep>& plan, const Json& answer) {
  std::vector<Json> out;
  for (auto& step : plan)
    for (auto& c : step.calls) out.push_back(c);
  out.push_back({{"name", "final_answer"}, {"arguments", {{"answer", answer}}}});
  return out;
}

}  // namespace wand::agent
