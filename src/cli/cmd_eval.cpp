// `wand eval`: judges completions (or a dataset's reference solutions) the way the field does,
// every sample isolated in the sandbox, and reports pass@k.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/output.h"
#include "common/progress.h"
#include "feedback/feedback.h"

namespace wand::cli {
namespace {

struct EvalArgs {
  std::string dataset, samples, out, html, k = "1,10,100";
  bool reference = false, json = false;
  std::size_t cells = 0;
  feedback::JudgeOptions judge;
};

struct Sample {
  std::size_t task;  // index into the tasks
  std::string completion;
};

Result<std::vector<Sample>> load_samples(const std::string& path, const std::vector<feedback::Task>& tasks) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < tasks.size(); ++i) index[tasks[i].task_id] = i;
  std::vector<Sample> out;
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

std::string html_escape(std::string_view s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

struct Judged {
  std::size_t sample;
  feedback::Verdict verdict;
  double wall_s;  // all of the sample's runs
};

// One page: outcome bars, pass@k, the slowest samples and the failing tasks with their feedback.
VoidResult write_html(const std::string& path, const EvalArgs& a, const Json& summary, const std::vector<Judged>& judged,
                      const std::vector<Sample>& samples, const std::vector<feedback::Task>& tasks) {
  std::ofstream f(path);
  if (!f) return Error{fmt::format("--html {}: cannot write", path)};
  f << "<!doctype html><meta charset=utf-8><title>wand eval: " << html_escape(a.dataset) << "</title>\n"
    << "<style>body{font:14px system-ui;margin:2em;max-width:1100px}td,th{padding:2px 8px;text-align:left;"
       "vertical-align:top}.bar{height:18px;background:#4a7}.bad{background:#c54}pre{margin:0;white-space:pre-wrap}"
       "</style>\n<h1>wand eval</h1><p>"
    << html_escape(a.dataset) << " — " << summary["samples"] << " samples of " << summary["tasks"] << " tasks in "
    << fmt::format("{:.1f}", summary["wall_time"].get<double>()) << " s</p>\n<h2>Outcomes</h2><table>";
  double n = summary["samples"].get<double>();
  for (auto& [k, v] : summary["outcomes"].items()) {
    double share = v.get<double>() / n;
    f << "<tr><td>" << k << "</td><td>" << v << "</td><td style='width:600px'><div class='bar" << (k == "none" ? "" : " bad")
      << "' style='width:" << fmt::format("{:.1f}", 100 * share) << "%'></div></td></tr>";
  }
  f << "</table><p>(none = passed)</p><h2>pass@k</h2><table>";
  for (auto& [k, v] : summary["pass_at_k"].items()) f << "<tr><td>" << k << "</td><td>" << fmt::format("{:.4f}", v.get<double>()) << "</td></tr>";
  f << "</table><h2>Slowest samples</h2><table><tr><th>task</th><th>seconds</th><th>outcome</th></tr>";
  std::vector<const Judged*> by_time;
  for (auto& j : judged) by_time.push_back(&j);
  std::sort(by_time.begin(), by_time.end(), [](auto* x, auto* y) { return x->wall_s > y->wall_s; });
  for (std::size_t i = 0; i < std::min<std::size_t>(10, by_time.size()); ++i)
    f << "<tr><td>" << html_escape(tasks[samples[by_time[i]->sample].task].task_id) << "</td><td>"
      << fmt::format("{:.3f}", by_time[i]->wall_s) << "</td><td>" << feedback::to_string(by_time[i]->verdict.error)
      << "</td></tr>";
  f << "</table><h2>Failing samples</h2><table><tr><th>task</th><th>outcome</th><th>feedback</th></tr>";
  int shown = 0;
  for (auto& j : judged) {
    if (j.verdict.passed) continue;
    if (++shown > 200) {
      f << "<tr><td colspan=3>… more in the per-sample results (--out)</td></tr>";
      break;
    }
    f << "<tr><td>" << html_escape(tasks[samples[j.sample].task].task_id) << "</td><td>"
      << feedback::to_string(j.verdict.error) << "</td><td><pre>" << html_escape(j.verdict.feedback) << "</pre></td></tr>";
  }
  f << "</table>\n";
  if (auto w = flush_file(f, path); !w) return Error{"--html " + w.error().message};
  return ok_status();
}

int run_eval(const EvalArgs& a) {
  auto tasks = feedback::load_tasks(a.dataset);
  if (!tasks) {
    fmt::print(stderr, "wand eval: {}\n", tasks.error().message);
    return kExitBadInput;
  }
  if (a.reference == !a.samples.empty()) {
    fmt::print(stderr, "wand eval: give exactly one of --samples FILE or --reference\n");
    return kExitBadInput;
  }
  const std::string& ans = a.judge.answer;
  if (!(ans == "auto" || ans == "last-line" || (ans.starts_with("var:") && ans.size() > 4) ||
        (ans.starts_with("call:") && ans.size() > 5))) {
    fmt::print(stderr, "wand eval: --answer '{}': expected auto, last-line, var:NAME or call:NAME\n", ans);
    return kExitBadInput;
  }
  std::vector<Sample> samples;
  if (a.reference) {
    for (std::size_t i = 0; i < tasks->size(); ++i)
      if (!(*tasks)[i].reference.empty()) samples.push_back({i, (*tasks)[i].reference});
    if (samples.empty()) {
      fmt::print(stderr, "wand eval: --reference: {} has no reference solutions ({} format)\n", a.dataset,
                 tasks->front().format);
      return kExitBadInput;
    }
    if (samples.size() < tasks->size())
      fmt::print(stderr, "wand eval: {} of {} tasks have no reference solution; they are skipped\n",
                 tasks->size() - samples.size(), tasks->size());
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
  o.preload = feedback::kEvalPreload;
  auto sb = sandbox::Sandbox::create(o);
  if (!sb) {
    fmt::print(stderr, "wand eval: sandbox unavailable: {}\n", sb.error().message);
    return kExitSandbox;
  }
  // Every sample's requests (several for stdin/stdout tasks) in one batch over the cells.
  std::vector<feedback::Submission> subs;
  std::vector<sandbox::ExecRequest> reqs;
  std::vector<std::size_t> first_req;
  for (const auto& s : samples) {
    subs.push_back(feedback::prepare((*tasks)[s.task], s.completion, a.judge));
    first_req.push_back(reqs.size());
    for (auto& r : subs.back().requests) reqs.push_back(r);
  }
  auto t0 = std::chrono::steady_clock::now();
  Progress progress("eval", reqs.size());
  auto results = (*sb)->run_batch(reqs, [&](std::size_t) { progress.tick(); });
  progress.finish();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::vector<int> n(tasks->size(), 0), c(tasks->size(), 0);
  std::map<std::string, int> classes;
  std::vector<int> index_in_task(tasks->size(), 0);
  std::vector<Judged> judged;
  std::vector<double> times;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    std::span<const sandbox::ExecResult> rs(results.data() + first_req[i], subs[i].requests.size());
    feedback::Verdict v = feedback::judge((*tasks)[samples[i].task], subs[i], rs, a.judge);
    double t = 0;
    for (auto& r : rs) t += r.wall_s;
    times.push_back(t);
    std::size_t task = samples[i].task;
    ++n[task];
    c[task] += v.passed;
    ++classes[feedback::to_string(v.error)];
    if (out) {
      Json j = v.to_json();
      j["task_id"] = (*tasks)[task].task_id;
      j["sample"] = index_in_task[task]++;
      j["status"] = sandbox::to_string(rs[0].status);
      j["wall_time"] = t;
      out << j.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
    }
    judged.push_back({i, std::move(v), t});
  }
  if (out.is_open())
    if (auto w = flush_file(out, a.out); !w) {
      fmt::print(stderr, "wand eval: --out {}\n", w.error().message);
      return kExitOutput;
    }
  std::sort(times.begin(), times.end());
  auto pct = [&](double q) { return times[std::min(times.size() - 1, static_cast<std::size_t>(q * times.size()))]; };
  Json summary = {{"dataset", a.dataset},
                  {"format", tasks->front().format},
                  {"samples", samples.size()},
                  {"wall_time", wall},
                  {"samples_per_s", samples.size() / wall},
                  {"sample_time_p50", pct(0.5)},
                  {"sample_time_p99", pct(0.99)},
                  {"outcomes", classes}};
  std::size_t evaluated = 0, unsolved = 0;
  for (std::size_t t = 0; t < n.size(); ++t) {
    evaluated += n[t] > 0;
    unsolved += n[t] > 0 && c[t] == 0;
  }
  summary["tasks"] = evaluated;
  summary["tasks_unsolved"] = unsolved;
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
  if (!a.html.empty())
    if (auto w = write_html(a.html, a, summary, judged, samples, *tasks); !w) {
      fmt::print(stderr, "wand eval: {}\n", w.error().message);
      return kExitOutput;
    }
  if (a.json) {
    fmt::print("{}\n", summary.dump(2));
  } else {
    fmt::print("{} ({}): {} tasks, {} samples in {:.1f} s ({:.1f} samples/s; per sample p50 {:.0f} ms, p99 {:.0f} ms)\n",
               a.dataset, tasks->front().format, evaluated, samples.size(), wall, samples.size() / wall,
               1e3 * pct(0.5), 1e3 * pct(0.99));
    for (auto& [k, v] : passk.items()) fmt::print("  {:<14} {:.4f}\n", k, v.get<double>());
    fmt::print("  {:<14} {}\n", "tasks unsolved", unsolved);
    fmt::print("  outcomes:\n");
    for (auto& [k, v] : classes) fmt::print("    {:<14} {}\n", k == "none" ? "passed" : k, v);
    if (!a.out.empty()) fmt::print("per-sample results: {}\n", a.out);
    if (!a.html.empty()) fmt::print("report: {}\n", a.html);
  }
  return kExitOk;
}

}  // namespace

Command add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "Judge completions against a code benchmark, in the sandbox");
  cmd->footer(
      "Datasets (JSONL; the format is recognised from the fields):\n"
      "  HumanEval  task_id, prompt, canonical_solution, test, entry_point\n"
      "  MBPP       task_id, text, code, test_list, [test_setup_code]\n"
      "  stdio      inputs + outputs (or APPS' input_output), [solutions]\n"
      "  GSM8K      question, answer ('... #### 18')\n"
      "  PAL        input, target, [code]   (gsm, gsmhardv2, asdiv, ... from PAL's repository)\n"
      "Samples: JSONL of {task_id, completion}, as HumanEval's tooling writes them (tasks without a task_id\n"
      "are numbered from 0). Each assertion is judged on its own; answer tasks compare numbers with\n"
      "tolerance (fractions, percentages, thousands separators). --strict runs the tests in a process that\n"
      "never loads the sample (for rewards a sample must not forge; README: threat model).\n"
      "Exit status: 0 evaluated (whatever passed); 2 bad input; 3 sandbox unavailable; 4 results not written.");
  cmd->add_option("--dataset", a->dataset, "Tasks (HumanEval, MBPP, stdin/stdout, GSM8K or PAL format)")->required();
  cmd->add_option("--samples", a->samples, "Completions to judge");
  cmd->add_flag("--reference", a->reference, "Judge the dataset's own reference solutions");
  cmd->add_option("--k", a->k, "pass@k values, comma-separated (reported where every task has n >= k)")
      ->default_val("1,10,100")
      ->check(integer_list({.lo = 1, .hi = 1e6, .integer = true}));
  cmd->add_option("--timeout", a->judge.timeout_s, "Seconds per run")->default_val(10)->check(number(kSeconds));
  cmd->add_option("--answer", a->judge.answer, "Answer tasks: auto, last-line, var:NAME or call:NAME")
      ->default_val("auto");
  cmd->add_option("--float-tol", a->judge.float_tol, "stdin/stdout tasks: relative tolerance for numbers")
      ->check(number(kProbability));
  cmd->add_flag("--partial-credit", a->judge.partial_credit, "Reward failing samples by the share of tests passed");
  cmd->add_flag("--strict", a->judge.strict,
                "Assert tasks: run the tests in a process that never loads the sample (slower; verdicts it cannot forge)");
  cmd->add_option("--memory", a->judge.memory_mb, "Memory limit per run in MiB")
      ->default_val(a->judge.memory_mb)
      ->check(number(kMemoryMiB));
  cmd->add_option("--max-output", a->judge.max_output_bytes, "Bytes kept per output stream before a run is stopped")
      ->default_val(a->judge.max_output_bytes)
      ->check(number(kOutputBytes));
  cmd->add_option("--html", a->html, "Write a one-page HTML report")->check(writable_file());
  cmd->add_option("--out", a->out, "Per-sample results as JSON lines")->check(writable_file());
  cmd->add_option("--cells", a->cells, "Parallel cells (default: number of cores)")->check(parallel(false));
  cmd->add_flag("--json", a->json, "Print the summary as JSON");
  return [a] { return run_eval(*a); };
}

}  // namespace wand::cli
