#include "common/progress.h"

#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>

namespace wand {

Progress::Progress(std::string label, std::size_t total, bool enabled, bool lines)
    : label_(std::move(label)),
      total_(total),
      draw_(enabled && isatty(STDERR_FILENO)),
      lines_(enabled && lines && !draw_),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

Progress::~Progress() { finish(); }

void Progress::tick(std::size_t n) {
  done_.fetch_add(n, std::memory_order_relaxed);
  if (!draw_ && !lines_) return;
  auto now = std::chrono::steady_clock::now();
  std::unique_lock lk(mu_, std::try_to_lock);
  if (!lk || now - last_ < (draw_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(10000))) return;
  last_ = now;
  draw(false);
}

void Progress::note(std::string text) {
  std::lock_guard lk(mu_);
  note_ = std::move(text);
}

void Progress::finish() {
  std::lock_guard lk(mu_);
  if (finished_) return;
  finished_ = true;
  if (draw_ || lines_) draw(true);
}

void Progress::draw(bool final) {
  using namespace std::chrono;
  std::size_t d = done_.load();
  double secs = duration<double>(steady_clock::now() - start_).count();
  double rate = secs > 0 ? d / secs : 0;
  std::string eta = (rate > 0 && total_ > d) ? fmt::format(" ETA {:.0f}s", (total_ - d) / rate) : "";
  std::string note = note_.empty() ? "" : "  " + note_;
  // A terminal redraws one line in place; a log gets a line per draw.
  std::fprintf(stderr, "%s%s %zu/%zu%s  %.1f/s%s%s", draw_ ? "\r\033[K" : "", label_.c_str(), d, total_, note.c_str(),
               rate, eta.c_str(), final || lines_ ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace wand
