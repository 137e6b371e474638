#include "runners/service/bounded_executor.h"

namespace lab::runners::service {

BoundedExecutor::BoundedExecutor(int workers, int queue, RejectionPolicy policy,
                                 const MonotonicClock& clock)
    : workers_(workers < 1 ? 1 : workers),
      queue_(queue < 0 ? 0 : queue),
      policy_(policy),
      clock_(clock) {
  for (int i = 0; i < workers_; ++i) threads_.emplace_back([this] { Work(); });
}

BoundedExecutor::~BoundedExecutor() { Shutdown(); }

BoundedExecutor::Submitted BoundedExecutor::Submit(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && stats_.busy + static_cast<std::int64_t>(tasks_.size()) < workers_ + queue_) {
      tasks_.push_back(std::move(task));
      stats_.queued = static_cast<std::int64_t>(tasks_.size());
      cv_.notify_one();
      return Submitted::kQueued;
    }
    if (stopping_ || policy_ == RejectionPolicy::kAbort) {
      ++stats_.rejected;
      return Submitted::kRejected;
    }
    ++stats_.caller_runs;
  }
  const auto start = clock_.Now();
  task();
  const double ms = std::chrono::duration<double, std::milli>(clock_.Now() - start).count();
  std::lock_guard lock(mu_);
  stats_.caller_run_ms += ms;
  return Submitted::kRanOnCaller;
}

void BoundedExecutor::Work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping and drained
      task = std::move(tasks_.front());
      tasks_.pop_front();
      stats_.queued = static_cast<std::int64_t>(tasks_.size());
      ++stats_.busy;
    }
    task();
    std::lock_guard lock(mu_);
    --stats_.busy;
    ++stats_.completed;
  }
}

void BoundedExecutor::Shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

BoundedExecutor::Stats BoundedExecutor::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool Bulkhead::TryEnter() {
  std::lock_guard lock(mu_);
  if (limit_ > 0 && inside_ >= limit_) {
    ++rejected_;
    return false;
  }
  ++inside_;
  return true;
}

void Bulkhead::Leave() {
  std::lock_guard lock(mu_);
  if (inside_ > 0) --inside_;
}

std::int64_t Bulkhead::rejected() const {
  std::lock_guard lock(mu_);
  return rejected_;
}

std::int64_t Bulkhead::inside() const {
  std::lock_guard lock(mu_);
  return inside_;
}

}  // namespace lab::runners::service
