#include "feedback/report_html.h"

#include <fmt/core.h>

#include <algorithm>

#include "common/html.h"

namespace wand::feedback {

std::string report_html(const EvalReport& report, const std::vector<Task>& tasks) {
  using html::escape;
  // The summary's JSON objects give the order of the rows (the one `wand eval` prints).
  Json summary = report.summary();
  std::string f =
      html::page_head("wand eval: " + report.dataset,
                      "body{font:14px system-ui;margin:2em;max-width:1100px}td,th{padding:2px 8px;text-align:left;"
                      "vertical-align:top}.bar{height:18px;background:#4a7}.bad{background:#c54}pre{margin:0;"
                      "white-space:pre-wrap}");
  f += fmt::format("<h1>wand eval</h1><p>{} — {} samples of {} tasks in {:.1f} s</p>\n<h2>Outcomes</h2><table>",
                   escape(report.dataset), report.results.size(), report.tasks, report.wall_s);
  if (report.interrupted)
    f += fmt::format("<p><b>Interrupted</b>: {} samples were not run; the numbers below cover the judged ones only.</p>\n",
                     report.samples_not_run);
  double n = static_cast<double>(report.results.size());
  for (const auto& [k, v] : report.outcomes)
    f += fmt::format("<tr><td>{}</td><td>{}</td><td style='width:600px'><div class='bar{}' style='width:{:.1f}%'></div>"
                     "</td></tr>",
                     k, v, k == "none" ? "" : " bad", 100 * (v / n));
  f += "</table><p>(none = passed)</p><h2>pass@k</h2><table>";
  for (auto& [k, v] : summary["pass_at_k"].items())
    f += fmt::format("<tr><td>{}</td><td>{:.4f}</td></tr>", k, v.get<double>());
  for (auto& [k, v] : summary["pass_at_k_not_computed"].items())
    f += fmt::format("<tr><td>{}</td><td>not computed: {}</td></tr>", k, escape(v["reason"].get<std::string>()));
  f += "</table><h2>Slowest samples</h2><table><tr><th>task</th><th>seconds</th><th>outcome</th></tr>";
  std::vector<const SampleResult*> by_time;
  for (const auto& r : report.results) by_time.push_back(&r);
  std::sort(by_time.begin(), by_time.end(), [](auto* x, auto* y) { return x->wall_s > y->wall_s; });
  for (std::size_t i = 0; i < std::min<std::size_t>(10, by_time.size()); ++i)
    f += fmt::format("<tr><td>{}</td><td>{:.3f}</td><td>{}</td></tr>", escape(tasks[by_time[i]->task].task_id),
                     by_time[i]->wall_s, to_string(by_time[i]->verdict.error));
  f += "</table><h2>Failing samples</h2><table><tr><th>task</th><th>outcome</th><th>feedback</th></tr>";
  int shown = 0;
  for (const auto& r : report.results) {
    if (r.verdict.passed) continue;
    if (++shown > 200) {
      f += "<tr><td colspan=3>… more in the per-sample results (--out)</td></tr>";
      break;
    }
    f += fmt::format("<tr><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>", escape(tasks[r.task].task_id),
                     to_string(r.verdict.error), escape(r.verdict.feedback));
  }
  return f + "</table>\n";
}

}  // namespace wand::feedback
