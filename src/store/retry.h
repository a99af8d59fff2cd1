// Retrying a database operation that failed because another connection held a lock. Internal to
// the store and to modules that keep their own tables in its SQLite files (agent/skills.cpp).
#pragma once
#include <chrono>
#include <random>
#include <thread>

namespace wand::store {

// Runs fn until it does not throw an Error whose busy() is true, at most 50 times, sleeping 5-50 ms
// (random, so that racing writers spread out) between tries; any other exception, and the 50th
// busy one, propagates. SQLite's busy_timeout already waits for a lock; this covers the cases it
// reports BUSY without waiting (a snapshot that cannot be upgraded, WAL recovery by another
// connection) and PostgreSQL's serialization failures.
template <class Error, class F>
auto retry_busy(F&& fn) {
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 1;; ++attempt) {
    try {
      return fn();
    } catch (const Error& e) {
      if (!e.busy() || attempt == 50) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(5, 50)(rng)));
    }
  }
}

}  // namespace wand::store
