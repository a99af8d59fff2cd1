#include "common/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace wand::log {
namespace {
Level from_env() {
  const char* e = std::getenv("WAND_LOG");
  if (!e) return Level::warn;
  if (!std::strcmp(e, "error")) return Level::error;
  if (!std::strcmp(e, "info")) return Level::info;
  if (!std::strcmp(e, "debug")) return Level::debug;
  return Level::warn;
}
std::atomic<Level> g_level{from_env()};
std::mutex g_mu;
}  // namespace

Level level() { return g_level.load(std::memory_order_relaxed); }
void set_level(Level l) { g_level = l; }

void write(Level l, std::string_view msg) {
  static const char* names[] = {"error", "warning", "info", "debug"};
  std::lock_guard lk(g_mu);
  std::fprintf(stderr, "wand: %s: %.*s\n", names[static_cast<int>(l)], static_cast<int>(msg.size()),
               msg.data());
}

}  // namespace wand::log
