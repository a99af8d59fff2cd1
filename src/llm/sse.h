// Server-sent events, as OpenAI-compatible servers stream them: events are separated by a blank
// line; each `data:` line of an event adds to its payload (joined by "\n"); comments (":") and
// other fields are ignored. Bytes arrive in arbitrary pieces, so the parser buffers across feeds.
#pragma once
#include <functional>
#include <string>
#include <string_view>

namespace wand::llm {

class SseParser {
 public:
  // on_data receives each event's payload; returning false stops parsing (feed returns false).
  explicit SseParser(std::function<bool(std::string_view)> on_data) : on_data_(std::move(on_data)) {}

  bool feed(std::string_view bytes) {
    buffer_ += bytes;
    std::size_t start = 0;
    for (std::size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(buffer_.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) {
        if (!dispatch()) {
          buffer_.erase(0, nl + 1);
          return false;
        }
      } else if (line.starts_with("data:")) {
        line.remove_prefix(5);
        if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        if (has_data_) data_ += '\n';
        data_ += line;
        has_data_ = true;
      }
    }
    buffer_.erase(0, start);
    return true;
  }

  // The stream ended: an event not followed by a blank line still counts.
  bool finish() {
    if (!buffer_.empty()) feed("\n");
    return dispatch();
  }

 private:
  bool dispatch() {
    if (!has_data_) return true;
    has_data_ = false;
    std::string payload = std::move(data_);
    data_.clear();
    return on_data_(payload);
  }

  std::function<bool(std::string_view)> on_data_;
  std::string buffer_, data_;
  bool has_data_ = false;
};

}  // namespace wand::llm
