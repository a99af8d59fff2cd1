// Minimal leveled logging to stderr. Level from WAND_LOG (error|warn|info|debug), default warn.
#pragma once
#include <fmt/core.h>

#include <string_view>

namespace wand::log {

enum class Level { error = 0, warn = 1, info = 2, debug = 3 };

Level level();
void set_level(Level l);
void write(Level l, std::string_view msg);

template <class... A>
void error(fmt::format_string<A...> f, A&&... a) {
  if (level() >= Level::error) write(Level::error, fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
void warn(fmt::format_string<A...> f, A&&... a) {
  if (level() >= Level::warn) write(Level::warn, fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
void info(fmt::format_string<A...> f, A&&... a) {
  if (level() >= Level::info) write(Level::info, fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
void debug(fmt::format_string<A...> f, A&&... a) {
  if (level() >= Level::debug) write(Level::debug, fmt::format(f, std::forward<A>(a)...));
}

}  // namespace wand::log
