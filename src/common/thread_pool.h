// A fixed pool of worker threads and parallel_for over an index range.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace wand {

class ThreadPool {
 public:
  explicit ThreadPool(std::size_t threads = std::thread::hardware_concurrency());
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void submit(std::function<void()> task);
  void wait_idle();  // blocks until the queue is empty and no task runs
  std::size_t size() const { return workers_.size(); }

 private:
  void loop();
  std::vector<std::thread> workers_;
  std::deque<std::function<void()>> queue_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::size_t busy_ = 0;
  bool stop_ = false;
};

// Runs fn(i) for i in [0, n) on `workers` threads; fn(worker, i) variant gives the worker index,
// so callers can keep per-worker state (a sandbox cell, a model context) without locking.
void parallel_for(std::size_t n, std::size_t workers,
                  const std::function<void(std::size_t worker, std::size_t i)>& fn);

}  // namespace wand
