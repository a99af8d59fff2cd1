// The HTML report helpers (common/html.h) and `wand eval --html`'s page (feedback/report_html.h):
// whatever a dataset or a sample holds arrives in the page as text, never as markup.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>

#include "common/html.h"
#include "common/output.h"
#include "feedback/report_html.h"

namespace wand {
namespace {

TEST(Html, EscapesTheFiveSpecialCharactersOnly) {
  EXPECT_EQ(html::escape("<a href=\"x\">&'é</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;'é&lt;/a&gt;");
  EXPECT_EQ(html::escape(""), "");
  EXPECT_EQ(html::page_head("a<b", "p{x:1}"),
            "<!doctype html><meta charset=utf-8><title>a&lt;b</title>\n<style>p{x:1}</style>\n");
}

TEST(Html, BarChartScalesToTheLargestAndEscapesLabels) {
  std::string svg = html::bar_chart({{"<pot>", 50, ""}, {"cot", 100, "#c54"}}, 0, "{:.0f}%", 460);
  EXPECT_TRUE(svg.starts_with("<svg xmlns='http://www.w3.org/2000/svg' width='460' height='44'")) << svg;
  EXPECT_TRUE(svg.ends_with("</svg>"));
  EXPECT_NE(svg.find("&lt;pot&gt;"), std::string::npos) << svg;
  EXPECT_EQ(svg.find("<pot>"), std::string::npos) << svg;
  // 460 - 160 label - 70 value = 230 px for the largest bar; 50 of 100 is half of it.
  EXPECT_NE(svg.find("width='115.0' height='16' fill='#4a7'"), std::string::npos) << svg;
  EXPECT_NE(svg.find("width='230.0' height='16' fill='#c54'"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">50%</text>"), std::string::npos) << svg;
  // A fixed maximum caps the bar; NaN, infinite and negative values draw none but are printed.
  svg = html::bar_chart({{"a", 300, ""}, {"b", std::nan(""), ""}, {"c", -1, ""},
                         {"d", std::numeric_limits<double>::infinity(), ""}},
                        100, "{}", 460);
  EXPECT_NE(svg.find("width='230.0'"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">nan</text>"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">inf</text>"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">-1</text>"), std::string::npos) << svg;
  int empty = 0;
  for (std::size_t at = 0; (at = svg.find("width='0.0'", at)) != std::string::npos; ++at) ++empty;
  EXPECT_EQ(empty, 3) << svg;
  EXPECT_EQ(html::bar_chart({}), "<svg xmlns='http://www.w3.org/2000/svg' width='600' height='0' font-size='12' "
                                 "font-family='system-ui'></svg>");
}

// A task id and a completion written to break out of the page: both arrive escaped, in the
// slowest-samples and failing-samples tables alike, and the page has no markup they brought.
TEST(EvalReportHtml, HostileTaskIdsAndCompletionsAreEscaped) {
  std::vector<feedback::Task> tasks(2);
  tasks[0].task_id = "<script>alert(1)</script>";
  tasks[1].task_id = "ok&\"fine\"";
  feedback::EvalReport rep;
  rep.dataset = "</title><script>x()</script>.jsonl";
  rep.wall_s = 1.25;
  rep.tasks = 2;
  feedback::SampleResult bad{.sample = 0, .task = 0, .index_in_task = 0};
  bad.verdict.error = feedback::ErrorClass::wrong_answer;
  bad.verdict.feedback = "got `</pre><img src=x onerror=alert(1)>`";
  bad.wall_s = 0.5;
  feedback::SampleResult good{.sample = 1, .task = 1, .index_in_task = 0};
  good.verdict.passed = true;
  good.wall_s = 0.25;
  rep.results = {bad, good};
  rep.outcomes = {{"none", 1}, {"wrong_answer", 1}};
  rep.pass_at_k[1] = feedback::mean_pass_at_k(std::vector<int>{1, 1}, std::vector<int>{0, 1}, 1);
  rep.pass_at_k[10] = feedback::mean_pass_at_k(std::vector<int>{1, 1}, std::vector<int>{0, 1}, 10);
  std::string page = feedback::report_html(rep, tasks);

  EXPECT_TRUE(page.starts_with("<!doctype html><meta charset=utf-8><title>wand eval: &lt;/title&gt;&lt;script&gt;x()"
                               "&lt;/script&gt;.jsonl</title>\n"))
      << page;
  EXPECT_EQ(page.find("<script"), std::string::npos) << page;
  EXPECT_EQ(page.find("<img"), std::string::npos) << page;
  EXPECT_EQ(page.find("</title><script"), std::string::npos);
  // The id twice (slowest and failing), the feedback once, each escaped.
  std::string id = "&lt;script&gt;alert(1)&lt;/script&gt;";
  EXPECT_NE(page.find("<tr><td>" + id + "</td><td>0.500</td><td>wrong_answer</td></tr>"), std::string::npos) << page;
  EXPECT_NE(page.find("<tr><td>" + id + "</td><td>wrong_answer</td><td><pre>got `&lt;/pre&gt;&lt;img src=x "
                                        "onerror=alert(1)&gt;`</pre></td></tr>"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("<tr><td>ok&amp;&quot;fine&quot;</td><td>0.250</td><td>none</td></tr>"), std::string::npos);
  EXPECT_NE(page.find("2 samples of 2 tasks in 1.2 s"), std::string::npos) << page;
  EXPECT_NE(page.find("<tr><td>pass@1</td><td>0.5000</td></tr>"), std::string::npos) << page;
  EXPECT_NE(page.find("<tr><td>pass@10</td><td>not computed: 2 of 2 tasks have fewer than 10 samples (fewest: 1)"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("<div class='bar bad' style='width:50.0%'>"), std::string::npos) << page;
  EXPECT_TRUE(page.ends_with("</table>\n"));
}

// A page larger than the stream's buffer is written straight to the file, so a full disk fails
// that write, not the flush: the reason must still be the disk's, not a generic I/O error.
TEST(EvalReportHtml, APageLargerThanTheBufferOnAFullDiskSaysTheDiskIsFull) {
  std::ofstream f("/dev/full");
  ASSERT_TRUE(f);
  f << std::string(1 << 20, 'x');
  auto w = flush_file(f, "/dev/full");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().message, "/dev/full: write failed: No space left on device");
}

}  // namespace
}  // namespace wand
