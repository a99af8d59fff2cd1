// Comparing two bench runs (McNemar) and the HTML report of one or several.
#include <fmt/core.h>

#include <map>

#include "common/html.h"
#include "reason/bench.h"

namespace wand::reason {
namespace {

std::string dataset_hash(const store::RunInfo& r) {
  return r.config.extra.is_object() ? r.config.extra.value("dataset_sha256", "") : "";
}

// "pot k=8 on heldout-numbers.jsonl (wand-pot)": how a run is named in a chart or table.
std::string run_label(const store::RunInfo& r) {
  std::string k = r.config.options.is_object() ? r.config.options.value("k", Json(1)).dump() : "1";
  std::string file = r.config.dataset.substr(r.config.dataset.find_last_of('/') + 1);
  return fmt::format("{} k={} on {}", r.config.method, k, file);
}

}  // namespace

Result<Comparison> compare_runs(const store::Run& a, const store::Run& b) {
  for (auto* r : {&a, &b})
    if (r->info.config.kind != "bench")
      return Error{fmt::format("run {} is a {} run, not a bench run", r->info.id, r->info.config.kind)};
  std::string ha = dataset_hash(a.info), hb = dataset_hash(b.info);
  if (ha.empty() || ha != hb)
    return Error{fmt::format("runs {} and {} are over different datasets ({} and {}{}): their problems cannot be paired",
                             a.info.id, b.info.id, a.info.config.dataset, b.info.config.dataset,
                             ha.empty() || hb.empty() ? "" : ", whose contents differ")};
  Comparison c;
  c.a = a.info, c.b = b.info;
  std::map<int, const store::ProblemRecord*> in_b;
  for (auto& p : b.problems) in_b[p.index] = &p;
  int only_a = 0, only_b = 0;
  for (auto& pa : a.problems) {
    auto it = in_b.find(pa.index);
    if (it == in_b.end()) continue;
    const auto& pb = *it->second;
    if (pa.input != pb.input)
      return Error{fmt::format("problem {} differs between runs {} and {}", pa.index + 1, a.info.id, b.info.id)};
    ++c.common;
    bool ra = pa.correct.value_or(false), rb = pb.correct.value_or(false);
    c.correct_a += ra, c.correct_b += rb;
    if (ra == rb) continue;
    (ra ? only_a : only_b)++;
    c.differing.push_back({pa.index, pa.problem_id, pa.input, pa.expected, pa.answer, pb.answer, ra, rb});
  }
  if (c.common == 0) return Error{fmt::format("runs {} and {} have no recorded problem in common", a.info.id, b.info.id)};
  c.test = mcnemar(only_a, only_b);
  return c;
}

Json Comparison::to_json() const {
  Json diff = Json::array();
  auto opt = [](const std::optional<std::string>& v) { return v ? Json(*v) : Json(nullptr); };
  for (auto& d : differing)
    diff.push_back({{"index", d.index}, {"id", d.id}, {"question", d.question}, {"expected", d.expected},
                    {"answer_a", opt(d.answer_a)}, {"answer_b", opt(d.answer_b)}, {"correct_a", d.correct_a},
                    {"correct_b", d.correct_b}});
  return {{"run_a", a.id},
          {"run_b", b.id},
          {"common", common},
          {"correct_a", correct_a},
          {"correct_b", correct_b},
          {"only_a", test.only_a},
          {"only_b", test.only_b},
          {"test", test.test},
          {"statistic", test.statistic},
          {"p_value", test.p_value},
          {"differing", diff}};
}

std::string html_report(std::span<const store::Run> runs, int max_failures) {
  // html::bar_chart has no whiskers; the chart below draws each run's interval too.
  std::string h = html::page_head("wand bench",
                                  "body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse}"
                                  "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}"
                                  "pre{background:#f6f6f6;padding:.4em;white-space:pre-wrap;margin:.2em 0}.bad{color:#b00}") +
                  "<h1>wand bench</h1>\n";
  // The chart: one bar per run, its Wilson 95% interval as a whisker.
  constexpr int kRow = 28, kLeft = 320, kWidth = 400;
  int height = kRow * static_cast<int>(runs.size()) + 30;
  h += fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" "
                   "aria-label=\"accuracy per run\">\n",
                   kLeft + kWidth + 70, height);
  for (int t = 0; t <= 100; t += 25)
    h += fmt::format("<line x1=\"{0}\" x2=\"{0}\" y1=\"0\" y2=\"{1}\" stroke=\"#ddd\"/><text x=\"{0}\" y=\"{2}\" "
                     "font-size=\"11\" text-anchor=\"middle\">{3}%</text>\n",
                     kLeft + kWidth * t / 100, height - 18, height - 4, t);
  std::vector<BenchSummary> summaries;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    auto s = summarize(runs[i].problems);
    summaries.push_back(s);
    int y = static_cast<int>(i) * kRow + 4;
    auto x = [&](double v) { return kLeft + v * kWidth; };
    h += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\">{} ({})</text>\n", kLeft - 6, y + 15,
                     html::escape(run_label(runs[i].info)), html::escape(runs[i].info.id));
    h += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"18\" fill=\"#4a7ab7\"/>\n", kLeft, y,
                     x(s.accuracy) - kLeft);
    h += fmt::format("<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{}\" y2=\"{}\" stroke=\"#000\"/>\n", x(s.ci.lo), x(s.ci.hi),
                     y + 9, y + 9);
    h += fmt::format("<text x=\"{:.1f}\" y=\"{}\" font-size=\"12\">{:.1f}%</text>\n", x(s.ci.hi) + 4, y + 14,
                     100 * s.accuracy);
  }
  h += "</svg>\n<table><tr><th>run</th><th>model</th><th>method</th><th>dataset</th><th>problems</th><th>accuracy "
       "(95% CI)</th><th>coverage</th><th>tokens</th><th>model s</th><th>sandbox s</th><th>status</th></tr>\n";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    auto& r = runs[i].info;
    auto& s = summaries[i];
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1f}% ({:.1f}&ndash;{:.1f})</td>"
        "<td>{:.1f}%</td><td>{}</td><td>{:.1f}</td><td>{:.1f}</td><td>{}</td></tr>\n",
        html::escape(r.id), html::escape(r.config.model_id.empty() ? r.config.model_spec : r.config.model_id),
        html::escape(run_label(r)), html::escape(r.config.dataset), s.problems, 100 * s.accuracy, 100 * s.ci.lo,
        100 * s.ci.hi, 100 * s.coverage, s.prompt_tokens + s.completion_tokens, s.generate_s, s.execute_s,
        html::escape(r.status));
  }
  h += "</table>\n";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    int failing = summaries[i].problems - summaries[i].correct;
    h += fmt::format("<h2>Failing problems of {} ({} of {})</h2>\n", html::escape(run_label(runs[i].info)), failing,
                     summaries[i].problems);
    if (!failing) continue;
    h += "<table><tr><th>#</th><th>question</th><th>expected</th><th>answer</th><th>program and output</th></tr>\n";
    int shown = 0;
    for (auto& p : runs[i].problems) {
      if (p.correct.value_or(false)) continue;
      if (shown++ == max_failures) break;
      Json l = problem_line(p);
      std::string answer = l["answer"].is_null() ? "(none: " + p.outcome + ")" : l["answer"].get<std::string>();
      h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"bad\">{}</td><td><pre>{}</pre>{}</td></tr>\n",
                       p.index + 1, html::escape(p.input), html::escape(p.expected), html::escape(answer),
                       html::escape(l["program"].get<std::string>()),
                       l["output"].get<std::string>().empty()
                           ? ""
                           : "output:<pre>" + html::escape(l["output"].get<std::string>()) + "</pre>");
    }
    h += "</table>\n";
    if (failing > max_failures) h += fmt::format("<p>and {} more</p>\n", failing - max_failures);
  }
  return h;
}

}  // namespace wand::reason
