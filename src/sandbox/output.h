// Capture of one output stream of a run: the first `cap` bytes, a truncation flag, and the
// last few KiB (a Python traceback lives at the end, even of output that overflowed).
#pragma once
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace wand::sandbox {

struct Capture {
  explicit Capture(std::size_t cap) : cap(cap) {}
  std::size_t cap;
  std::string data;
  std::string tail;
  bool truncated = false;
  static constexpr std::size_t kTail = 8192;

  // Reads what is available from a non-blocking fd; false at end of stream.
  bool drain(int fd) {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        add(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      return n < 0 && errno == EAGAIN;
    }
  }

  void add(const char* p, std::size_t n) {
    total += n;
    if (data.size() < cap) data.append(p, std::min(n, cap - data.size()));
    if (total <= cap) return;
    truncated = true;
    tail.append(p, n);
    if (tail.size() > 2 * kTail) tail.erase(0, tail.size() - kTail);
  }

  // The end of the stream as written, whether or not it overflowed.
  std::string last() const {
    if (!truncated) return data;
    if (tail.size() >= kTail) return tail;
    return data.substr(data.size() - std::min(data.size(), kTail - tail.size())) + tail;
  }

  std::size_t total = 0;
};

}  // namespace wand::sandbox
