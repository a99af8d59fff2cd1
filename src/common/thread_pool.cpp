#include "common/thread_pool.h"

#include <atomic>

namespace wand {

ThreadPool::ThreadPool(std::size_t threads) {
  if (threads == 0) threads = 1;
  for (std::size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::submit(std::function<void()> task) {
  {
    std::lock_guard lk(mu_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void ThreadPool::wait_idle() {
  std::unique_lock lk(mu_);
  idle_cv_.wait(lk, [this] { return queue_.empty() && busy_ == 0; });
}

void ThreadPool::loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
      if (stop_ && queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    task();
    {
      std::lock_guard lk(mu_);
      --busy_;
      if (queue_.empty() && busy_ == 0) idle_cv_.notify_all();
    }
  }
}

void parallel_for(std::size_t n, std::size_t workers,
                  const std::function<void(std::size_t, std::size_t)>& fn) {
  if (workers == 0) workers = 1;
  if (workers > n) workers = n;
  std::atomic<std::size_t> next{0};
  auto body = [&](std::size_t w) {
    for (std::size_t i; (i = next.fetch_add(1)) < n;) fn(w, i);
  };
  std::vector<std::thread> ts;
  for (std::size_t w = 1; w < workers; ++w) ts.emplace_back(body, w);
  if (workers > 0) body(0);
  for (auto& t : ts) t.join();
}

}  // namespace wand
