// `wand eval`: judges completions (or a dataset's reference solutions) the way the field does,
// every sample isolated in the sandbox, and reports pass@k.
#include <fmt/core.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

#include "cli/commands.h"
#include "common/progress.h"
#include "feedback/feedback.h"

namespace wand::cli {
namespace {

struct EvalArgs {
  std::string dataset, samples, out, k = "1,10,100";
  bool reference = false, json = false;
  double timeout = 10;
  std::size_t cells = 0;
};

struct Sample {
  std::size_t task;  // index into the tasks
  std::string completion;
};

Result<std::vector<Sample>> load_samples(const std::string& path, const std::vector<feedback::AssertTask>& tasks) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < tasks.size(); ++i) index[tasks[i].task_id] = i;
  std::vector<Sample> out;
  auto read = for_each_json_line(path, [&](int n, const Json& j) -> VoidResult {
    if (!j.is_object() || !j.contains("task_id") || !j["task_id"].is_string() || !j.contains("completion") ||
        !j["completion"].is_string())
      return Error{fmt::format("{} line {}: a sample needs string fields task_id and completion", path, n)};
    auto it = index.find(j["task_id"].get<std::string>());
    if (it == index.end())
      return Error{fmt::format("{} line {}: task_id '{}' is not in the dataset", path, n, j["task_id"].get<std::string>())};
    out.push_back({it->second, j["completion"].get<std::string>()});
    return ok_status();
  });
  if (!read) return read.error();
  return out;
}

int run_eval(const EvalArgs& a) {
  auto tasks = feedback::load_humaneval(a.dataset);
  if (!tasks) {
    fmt::print(stderr, "wand eval: {}\n", tasks.error().message);
    return kExitBadInput;
  }
  if (a.reference == !a.samples.empty()) {
    fmt::print(stderr, "wand eval: give exactly one of --samples FILE or --reference\n");
    return kExitBadInput;
  }
  std::vector<Sample> samples;
  if (a.reference) {
    for (std::size_t i = 0; i < tasks->size(); ++i) samples.push_back({i, (*tasks)[i].canonical_solution});
  } else {
    auto s = load_samples(a.samples, *tasks);
    if (!s) {
      fmt::print(stderr, "wand eval: {}\n", s.error().message);
      return kExitBadInput;
    }
    samples = std::move(s.value());
  }
  std::vector<int> ks;
  std::istringstream kin(a.k);
  for (std::string t; std::getline(kin, t, ',');) {
    int k = std::atoi(t.c_str());
    if (k <= 0) {
      fmt::print(stderr, "wand eval: --k: '{}' is not a positive integer\n", t);
      return kExitBadInput;
    }
    ks.push_back(k);
  }
  std::ofstream out;
  if (!a.out.empty()) {
    out.open(a.out);
    if (!out) {
      fmt::print(stderr, "wand eval: --out {}: cannot write\n", a.out);
      return kExitBadInput;
    }
  }

  sandbox::Options o;
  o.cells = a.cells;
  o.preload = {};  // benchmark programs use the standard library; lean cells fork faster
  auto sb = sandbox::Sandbox::create(o);
  if (!sb) {
    fmt::print(stderr, "wand eval: sandbox unavailable: {}\n", sb.error().message);
    return kExitSandbox;
  }
  std::vector<std::string> programs;
  std::vector<sandbox::ExecRequest> reqs;
  for (const auto& s : samples) {
    programs.push_back(feedback::humaneval_program((*tasks)[s.task], s.completion));
    sandbox::ExecRequest r;
    r.code = programs.back();
    r.limits.timeout_s = a.timeout;
    reqs.push_back(std::move(r));
  }
  auto t0 = std::chrono::steady_clock::now();
  Progress progress("eval", reqs.size());
  auto results = (*sb)->run_batch(reqs, [&](std::size_t) { progress.tick(); });
  progress.finish();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::vector<int> n(tasks->size(), 0), c(tasks->size(), 0);
  std::map<std::string, int> classes;
  std::vector<int> index_in_task(tasks->size(), 0);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    feedback::Verdict v = feedback::judge_asserts(results[i], programs[i]);
    std::size_t t = samples[i].task;
    ++n[t];
    c[t] += v.passed;
    ++classes[feedback::to_string(v.error)];
    if (out) {
      Json j = v.to_json();
      j["task_id"] = (*tasks)[t].task_id;
      j["sample"] = index_in_task[t]++;
      j["status"] = sandbox::to_string(results[i].status);
      j["wall_time"] = results[i].wall_s;
      out << j.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
    }
  }
  Json summary = {{"dataset", a.dataset}, {"samples", samples.size()}, {"wall_time", wall},
                  {"samples_per_s", samples.size() / wall}, {"outcomes", classes}};
  std::size_t evaluated = 0;
  for (int x : n) evaluated += x > 0;
  summary["tasks"] = evaluated;
  Json passk = Json::object();
  for (int k : ks) {
    double sum = 0;
    std::size_t m = 0;
    bool all = true;
    for (std::size_t t = 0; t < n.size(); ++t) {
      if (!n[t]) continue;
      if (n[t] < k) all = false;
      sum += feedback::pass_at_k(n[t], c[t], k);
      ++m;
    }
    if (all && m) passk[fmt::format("pass@{}", k)] = sum / m;  // only where every task has n >= k
  }
  summary["pass_at_k"] = passk;
  if (a.json) {
    fmt::print("{}\n", summary.dump(2));
  } else {
    fmt::print("tasks {}  samples {}  time {:.1f} s ({:.1f} samples/s)\n", evaluated, samples.size(), wall,
               samples.size() / wall);
    for (auto& [k, v] : passk.items()) fmt::print("{:<10} {:.4f}\n", k, v.get<double>());
    for (auto& [k, v] : classes) fmt::print("  {:<14} {}\n", k, v);
    if (!a.out.empty()) fmt::print("per-sample results: {}\n", a.out);
  }
  return kExitOk;
}

}  // namespace

Command add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "Judge completions against a code benchmark, in the sandbox");
  cmd->footer(
      "Dataset: HumanEval's JSONL (task_id, prompt, canonical_solution, test, entry_point).\n"
      "Samples: JSONL of {task_id, completion}, as HumanEval's own tooling writes them.\n"
      "Exit status: 0 evaluated (whatever passed); 2 bad input; 3 sandbox unavailable.");
  cmd->add_option("--dataset", a->dataset, "Tasks (HumanEval format)")->required();
  cmd->add_option("--samples", a->samples, "Completions to judge");
  cmd->add_flag("--reference", a->reference, "Judge the dataset's own reference solutions");
  cmd->add_option("--k", a->k, "pass@k values, comma-separated (reported where every task has n >= k)")
      ->default_val("1,10,100");
  cmd->add_option("--timeout", a->timeout, "Seconds per sample")->default_val(10)->check(CLI::PositiveNumber);
  cmd->add_option("--out", a->out, "Per-sample results as JSON lines");
  cmd->add_option("--cells", a->cells, "Parallel cells (default: number of cores)");
  cmd->add_flag("--json", a->json, "Print the summary as JSON");
  return [a] { return run_eval(*a); };
}

}  // namespace wand::cli
