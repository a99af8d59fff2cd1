// Progress of long work on stderr: count, rate, ETA. Draws only when stderr is a terminal,
// so logs and CI output stay clean; with `lines`, a run that is not on a terminal gets a plain
// line every 10 seconds instead (a log then shows the work advancing).
#pragma once
#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>

namespace wand {

class Progress {
 public:
  Progress(std::string label, std::size_t total, bool enabled = true, bool lines = false);
  ~Progress();  // finishes the line
  void tick(std::size_t n = 1);
  // Text shown after the count from the next draw on ("accuracy 81.0%").
  void note(std::string text);
  void finish();
  bool drawing() const { return draw_; }

 private:
  void draw(bool final);
  std::string label_, note_;
  std::size_t total_;
  std::atomic<std::size_t> done_{0};
  bool draw_, lines_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_;
  std::mutex mu_;
};

}  // namespace wand
