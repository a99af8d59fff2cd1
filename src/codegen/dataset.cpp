// A method over a dataset: samples in HumanEval's format, and the pass rates of what was chosen.
#include <fmt/core.h>

#include <cmath>
#include <ostream>

#include "codegen/codegen.h"
#include "reason/bench.h"

namespace wand::codegen {

Result<Json> run_dataset(llm::Backend& model, sandbox::Sandbox& sb, const std::vector<Problem>& problems,
                         const CodeConfig& c, std::ostream& samples,
                         const std::function<VoidResult(int, const CodeResult&)>& on_task,
                         const std::atomic<bool>* stop) {
  int lines = 0, judged = 0, chosen_passed = 0, random_tasks = 0, too_long = 0, done = 0;
  double random_sum = 0;
  std::vector<int> n, passed;  // per task: samples written, of them passing the hidden tests
  auto stopped = [&] { return stop && stop->load(); };
  for (int i = 0; i < static_cast<int>(problems.size()) && !stopped(); ++i) {
    CodeConfig ci = c;
    ci.seed = llm::sample_seed(c.seed, i);  // each task its own stream, the same whatever ran before it
    auto r = generate(model, sb, problems[i], ci);
    if (stopped()) break;
    if (!r && r.error().code == llm::kContextLengthExceeded) {
      // One long prompt does not end the run: the task's samples are empty (they fail).
      CodeResult none;
      none.error = std::string(llm::kContextLengthExceeded);
      none.how = r.error().message;
      ++too_long;
      r = std::move(none);
    }
    if (!r) return Error{fmt::format("task {}: {}", problems[i].task.task_id, r.error().message), r.error().code};
    int task_passed = 0;
    std::vector<std::string> completions;
    for (int id : r->finals) {
      completions.push_back(r->steps[id].code);
      task_passed += r->steps[id].hidden && r->steps[id].hidden->passed;
    }
    if (!r->error.empty()) completions.assign(c.method == "codet" ? 1 : c.k, "");
    for (auto& completion : completions) {
      Json line = {{"task_id", problems[i].task.task_id}, {"completion", completion}};
      samples << dump_text(line) << '\n';
      ++lines;
    }
    if (!samples) return Error{"writing the samples failed"};
    n.push_back(static_cast<int>(completions.size()));
    passed.push_back(task_passed);
    if (r->hidden) ++judged, chosen_passed += r->hidden->passed;
    else if (!r->error.empty() && problems[i].has_hidden) ++judged;  // no program: it failed
    if (r->random_pick_pass) ++random_tasks, random_sum += *r->random_pick_pass;
    if (on_task)
      if (auto w = on_task(i, *r); !w) return w.error();
    ++done;
  }
  auto p1 = feedback::mean_pass_at_k(n, passed, 1);
  Json s = {{"method", c.method}, {"tasks", problems.size()}, {"samples", lines}, {"judged", judged}, {"too_long", too_long}};
  if (done < static_cast<int>(problems.size())) s["interrupted"] = true, s["tasks_done"] = done;
  s["pass_at_1"] = p1.value && judged ? Json(*p1.value) : Json(nullptr);
  s["chosen_pass_rate"] = judged ? Json(static_cast<double>(chosen_passed) / judged) : Json(nullptr);
  auto ci = reason::wilson_interval(chosen_passed, judged);
  s["chosen_ci95"] = judged ? Json::array({ci.lo, ci.hi}) : Json(nullptr);
  if (c.method == "codet") {
    s["random_pick_pass_rate"] = random_tasks ? Json(random_sum / random_tasks) : Json(nullptr);
    // A random pick passes task i with probability p_i; Wilson's interval at the mean is
    // conservative for a sum of independent Bernoulli(p_i) (its variance is at most n p(1-p)).
    auto r = reason::wilson_interval(static_cast<int>(std::lround(random_sum)), random_tasks);
    s["random_pick_ci95"] = random_tasks ? Json::array({r.lo, r.hi}) : Json(nullptr);
  }
  return s;
}

}  // namespace wand::codegen
