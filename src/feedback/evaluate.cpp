#include "feedback/evaluate.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>

namespace wand::feedback {

Result<std::vector<EvalSample>> load_samples(const std::string& path, const std::vector<Task>& tasks) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < tasks.size(); ++i) index[tasks[i].task_id] = i;
  std::vector<EvalSample> out;
  auto read = for_each_json_line(path, [&](int n, const Json& j) -> VoidResult {
    if (!j.is_object() || !j.contains("task_id") || !j.contains("completion") || !j["completion"].is_string())
      return Error{fmt::format("{} line {}: a sample needs fields task_id and completion (a string)", path, n)};
    std::string id = j["task_id"].is_string() ? j["task_id"].get<std::string>() : j["task_id"].dump();
    auto it = index.find(id);
    if (it == index.end()) return Error{fmt::format("{} line {}: task_id '{}' is not in the dataset", path, n, id)};
    out.push_back({it->second, j["completion"].get<std::string>()});
    return ok_status();
  });
  if (!read) return read.error();
  if (out.empty()) return Error{fmt::format("{}: no samples", path)};
  return out;
}

std::vector<EvalSample> reference_samples(const std::vector<Task>& tasks) {
  std::vector<EvalSample> out;
  for (std::size_t i = 0; i < tasks.size(); ++i)
    if (!tasks[i].reference.empty()) out.push_back({i, tasks[i].reference});
  return out;
}

VoidResult validate(const EvalOptions& opt) {
  const std::string& ans = opt.judge.answer;
  if (!(ans == "auto" || ans == "last-line" || (ans.starts_with("var:") && ans.size() > 4) ||
        (ans.starts_with("call:") && ans.size() > 5)))
    return Error{fmt::format("--answer '{}': expected auto, last-line, var:NAME or call:NAME", ans)};
  for (int k : opt.ks)
    if (k <= 0) return Error{fmt::format("--k: '{}' is not a positive integer", k)};
  return ok_status();
}

std::size_t run_count(const std::vector<Task>& tasks, const std::vector<EvalSample>& samples) {
  std::size_t n = 0;
  for (const auto& s : samples) n += tasks[s.task].kind == TaskKind::stdio ? tasks[s.task].io.size() : 1;
  return n;
}

EvalReport evaluate(sandbox::Sandbox& sb, const std::string& dataset, const std::vector<Task>& tasks,
                    const std::vector<EvalSample>& samples, const EvalOptions& opt, const std::function<void()>& on_run) {
  BatchRunner local = [&sb](const auto& reqs, const auto& on_done) { return sb.run_batch(reqs, on_done); };
  return evaluate(local, dataset, tasks, samples, opt, on_run);
}

EvalReport evaluate(const BatchRunner& run_batch, const std::string& dataset, const std::vector<Task>& tasks,
                    const std::vector<EvalSample>& samples, const EvalOptions& opt, const std::function<void()>& on_run) {
  EvalReport rep;
  rep.dataset = dataset;
  rep.format = tasks.empty() ? "" : tasks.front().format;
  std::vector<int> n(tasks.size(), 0), c(tasks.size(), 0);
  std::vector<double> times;
  std::size_t batch = opt.batch_samples ? opt.batch_samples : std::max<std::size_t>(1, samples.size());
  for (std::size_t lo = 0; lo < samples.size(); lo += batch) {
    std::size_t hi = std::min(samples.size(), lo + batch);
    // Every sample's requests (several for stdin/stdout tasks) in one batch over the cells.
    std::vector<Submission> subs;
    std::vector<sandbox::ExecRequest> reqs;
    std::vector<std::size_t> first_req;
    for (std::size_t i = lo; i < hi; ++i) {
      const Task& task = tasks[samples[i].task];
      const std::string& completion = samples[i].completion;
      subs.push_back(prepare(task, opt.extract_code ? code_from_completion(task, completion) : completion, opt.judge));
      first_req.push_back(reqs.size());
      for (auto& r : subs.back().requests) reqs.push_back(r);
    }
    auto t0 = std::chrono::steady_clock::now();
    auto results = run_batch(reqs, [&](std::size_t) {
      if (on_run) on_run();
    });
    rep.wall_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (std::size_t i = lo; i < hi; ++i) {
      const Submission& sub = subs[i - lo];
      std::span<const sandbox::ExecResult> rs(results.data() + first_req[i - lo], sub.requests.size());
      std::size_t task = samples[i].task;
      SampleResult r{.sample = i, .task = task, .index_in_task = n[task]};
      r.verdict = judge(tasks[task], sub, rs, opt.judge);
      r.status = rs.empty() ? sandbox::Status::ok : rs[0].status;
      for (auto& e : rs) r.wall_s += e.wall_s;
      times.push_back(r.wall_s);
      ++n[task];
      c[task] += r.verdict.passed;
      ++rep.outcomes[to_string(r.verdict.error)];
      rep.results.push_back(std::move(r));
    }
  }
  if (!times.empty()) {
    std::sort(times.begin(), times.end());
    auto pct = [&](double q) { return times[std::min(times.size() - 1, static_cast<std::size_t>(q * times.size()))]; };
    rep.sample_time_p50 = pct(0.5), rep.sample_time_p99 = pct(0.99);
  }
  for (std::size_t t = 0; t < n.size(); ++t) {
    rep.tasks += n[t] > 0;
    rep.tasks_unsolved += n[t] > 0 && c[t] == 0;
  }
  for (int k : opt.ks) rep.pass_at_k[k] = mean_pass_at_k(n, c, k);
  return rep;
}

Json EvalReport::summary() const {
  Json j = {{"dataset", dataset},
            {"format", format},
            {"samples", results.size()},
            {"wall_time", wall_s},
            {"samples_per_s", results.size() / wall_s},
            {"sample_time_p50", sample_time_p50},
            {"sample_time_p99", sample_time_p99},
            {"outcomes", outcomes},
            {"tasks", tasks},
            {"tasks_unsolved", tasks_unsolved}};
  Json passk = Json::object(), not_computed = Json::object();
  for (const auto& [k, p] : pass_at_k) {
    std::string name = fmt::format("pass@{}", k);
    if (p.value)
      passk[name] = *p.value;
    else if (p.tasks_with_fewer)
      not_computed[name] = {{"reason", p.why_not}, {"tasks_with_fewer_samples", p.tasks_with_fewer},
                            {"fewest_samples", p.fewest}};
  }
  j["pass_at_k_not_computed"] = not_computed;
  j["pass_at_k"] = passk;
  return j;
}

Json sample_json(const SampleResult& r, const std::vector<Task>& tasks) {
  Json j = r.verdict.to_json();
  j["task_id"] = tasks[r.task].task_id;
  j["sample"] = r.index_in_task;
  j["status"] = sandbox::to_string(r.status);
  j["wall_time"] = r.wall_s;
  return j;
}

}  // namespace wand::feedback
