// Small helpers for the one-page HTML reports wand writes (`wand eval --html`, `wand bench`):
// escaping, the page's head, and an inline SVG bar chart, so every report is one self-contained
// file (no scripts, no external resources) that opens anywhere.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace wand::html {

// Text as HTML text or a double-quoted attribute value: & < > " escaped (HTML 5, 13.1.4).
std::string escape(std::string_view s);

// The start of a page: doctype, UTF-8, `<title>` (escaped here) and a `<style>` block holding
// `css` as it is, each of the last two ending its line.
std::string page_head(std::string_view title, std::string_view css);

// One bar of bar_chart: a label, its value and an optional CSS colour ("" = the default green).
struct Bar {
  std::string label;
  double value = 0;
  std::string color;
};

// A horizontal bar chart as inline SVG: one row per bar, the label on the left, the bar scaled
// to the largest value (or to `max` when > 0), its value printed after it with `value_format`
// ("{:.1f}", "{:.0f}%": fmt syntax). Labels are escaped; `width` is the SVG's width in px.
// Negative, NaN and infinite values draw no bar (the value is still printed).
std::string bar_chart(const std::vector<Bar>& bars, double max = 0, std::string_view value_format = "{:.3g}",
                      int width = 600);

}  // namespace wand::html
