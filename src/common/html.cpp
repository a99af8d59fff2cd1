#include "common/html.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace wand::html {

std::string escape(std::string_view s) {
  std::string o;
  o.reserve(s.size());
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

std::string page_head(std::string_view title, std::string_view css) {
  return fmt::format("<!doctype html><meta charset=utf-8><title>{}</title>\n<style>{}</style>\n", escape(title), css);
}

std::string bar_chart(const std::vector<Bar>& bars, double max, std::string_view value_format, int width) {
  constexpr int kRow = 22, kBar = 16, kLabel = 160, kValue = 70;
  auto drawable = [](double v) { return std::isfinite(v) && v > 0; };
  if (!(max > 0) || !std::isfinite(max)) {
    max = 0;
    for (const auto& b : bars)
      if (drawable(b.value)) max = std::max(max, b.value);
  }
  int span = std::max(1, width - kLabel - kValue);
  std::string s = fmt::format("<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-size='12' "
                              "font-family='system-ui'>",
                              width, kRow * static_cast<int>(bars.size()));
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    int y = kRow * static_cast<int>(i);
    double len = drawable(b.value) && max > 0 ? span * std::min(1.0, b.value / max) : 0;
    std::string value = fmt::format(fmt::runtime(value_format), b.value);
    s += fmt::format("<text x='{}' y='{}' text-anchor='end'>{}</text>", kLabel - 6, y + 14, escape(b.label));
    s += fmt::format("<rect x='{}' y='{}' width='{:.1f}' height='{}' fill='{}'/>", kLabel, y + 3, len, kBar,
                     escape(b.color.empty() ? "#4a7" : b.color));
    s += fmt::format("<text x='{:.1f}' y='{}'>{}</text>", kLabel + len + 4, y + 14, escape(value));
  }
  return s + "</svg>";
}

}  // namespace wand::html
