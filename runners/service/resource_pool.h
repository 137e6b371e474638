// A bounded pool of connections (HikariCP's shape): at most `max` open, handed out exclusively,
// opened lazily by the factory; Acquire waits up to its timeout for one to come back and then
// gives up (a pool timeout). Counts the waits, the time spent waiting (injected clock) and the
// timeouts — N04's evidence. A lease gives its connection back when destroyed; a broken one is
// discarded (Discard) and a new one opened on demand.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "domain/result.h"
#include "runners/service/clock.h"

namespace lab::runners::service {

template <typename T>
class ResourcePool {
 public:
  using Factory = std::function<domain::Result<std::unique_ptr<T>>()>;
  struct Stats {
    std::int64_t open = 0;
    std::int64_t in_use = 0;
    std::int64_t max_in_use = 0;
    std::int64_t waits = 0;     // acquires that found no free connection and waited
    double wait_ms_total = 0;   // time those waited (until served or timed out)
    std::int64_t timeouts = 0;  // acquires that gave up
  };

  class Lease {
   public:
    Lease() = default;
    Lease(ResourcePool* pool, std::unique_ptr<T> item) : pool_(pool), item_(std::move(item)) {}
    Lease(Lease&& other) noexcept : pool_(other.pool_), item_(std::move(other.item_)) {}
    Lease& operator=(Lease&& other) noexcept {
      Release();
      pool_ = other.pool_;
      item_ = std::move(other.item_);
      return *this;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { Release(); }
    T* operator->() const { return item_.get(); }
    T& operator*() const { return *item_; }
    explicit operator bool() const { return item_ != nullptr; }
    // The connection is unusable: close it instead of giving it back.
    void Discard() {
      if (pool_ != nullptr && item_) pool_->Return(nullptr);
      item_.reset();
      pool_ = nullptr;
    }

   private:
    void Release() {
      if (pool_ != nullptr && item_) pool_->Return(std::move(item_));
      pool_ = nullptr;
    }
    ResourcePool* pool_ = nullptr;
    std::unique_ptr<T> item_;
  };

  ResourcePool(std::size_t max, Factory factory, const MonotonicClock& clock)
      : max_(max == 0 ? 1 : max), factory_(std::move(factory)), clock_(clock) {}

  // A connection, or kTimeout after `timeout` without one (kUnavailable: the factory failed).
  domain::Result<Lease> Acquire(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    bool waited = false;
    const auto started = clock_.Now();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (!idle_.empty()) {
        auto item = std::move(idle_.back());
        idle_.pop_back();
        Served(waited, started);
        return Lease(this, std::move(item));
      }
      if (stats_.open < static_cast<std::int64_t>(max_)) {
        ++stats_.open;
        Served(waited, started);
        lock.unlock();
        auto made = factory_();
        if (made) return Lease(this, std::move(*made));
        Return(nullptr);
        return made.error();
      }
      if (!waited) {
        waited = true;
        ++stats_.waits;
      }
      if (timeout.count() <= 0 || cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
        if (!idle_.empty() || stats_.open < static_cast<std::int64_t>(max_)) continue;
        ++stats_.timeouts;
        stats_.wait_ms_total += Ms(clock_.Now() - started);
        return domain::MakeError(domain::ErrorCode::kTimeout,
                                 "no connection free within " + std::to_string(timeout.count()) +
                                     " ms (pool of " + std::to_string(max_) + ")");
      }
    }
  }

  Stats stats() const {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  static double Ms(std::chrono::steady_clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
  }
  void Served(bool waited, MonotonicClock::time_point started) {  // holds mu_
    if (waited) stats_.wait_ms_total += Ms(clock_.Now() - started);
    ++stats_.in_use;
    if (stats_.in_use > stats_.max_in_use) stats_.max_in_use = stats_.in_use;
  }
  // nullptr: the connection is gone (discarded, or the factory failed).
  void Return(std::unique_ptr<T> item) {
    {
      std::lock_guard lock(mu_);
      --stats_.in_use;
      if (item) {
        idle_.push_back(std::move(item));
      } else {
        --stats_.open;
      }
    }
    cv_.notify_one();
  }

  const std::size_t max_;
  Factory factory_;
  const MonotonicClock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<T>> idle_;  // guarded by mu_
  Stats stats_;                           // guarded by mu_
};

}  // namespace lab::runners::service
