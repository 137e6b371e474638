// The service's request executor: `workers` threads and room for `queue` waiting tasks, like a
// Java ThreadPoolExecutor with a bounded queue. A task is accepted while fewer than
// workers + queue tasks are running or waiting; beyond that the rejection policy decides:
//   kAbort       refuses it (the caller answers 503 at once);
//   kCallerRuns  runs it on the submitting thread before Submit returns: that thread (the
//                service's acceptor) does nothing else meanwhile — the anti-pattern of N03.
// Shutdown() stops accepting, lets the queued tasks finish and joins the workers.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "runners/service/clock.h"

namespace lab::runners::service {

enum class RejectionPolicy { kAbort, kCallerRuns };

class BoundedExecutor {
 public:
  enum class Submitted { kQueued, kRejected, kRanOnCaller };
  struct Stats {
    std::int64_t busy = 0;    // workers running a task now
    std::int64_t queued = 0;  // tasks waiting now
    std::int64_t rejected = 0;
    std::int64_t caller_runs = 0;
    double caller_run_ms = 0;  // time submitting threads spent running tasks
    std::int64_t completed = 0;
  };

  BoundedExecutor(int workers, int queue, RejectionPolicy policy, const MonotonicClock& clock);
  ~BoundedExecutor();
  BoundedExecutor(const BoundedExecutor&) = delete;
  BoundedExecutor& operator=(const BoundedExecutor&) = delete;

  Submitted Submit(std::function<void()> task);
  void Shutdown();
  Stats stats() const;

 private:
  void Work();

  const int workers_;
  const int queue_;
  const RejectionPolicy policy_;
  const MonotonicClock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  Stats stats_;                              // guarded by mu_
  std::vector<std::thread> threads_;         // joined by Shutdown
};

// At most `limit` concurrent users of one dependency (0: no limit); a full bulkhead refuses at
// once instead of making the caller wait.
class Bulkhead {
 public:
  explicit Bulkhead(int limit) : limit_(limit) {}
  bool TryEnter();
  void Leave();
  std::int64_t rejected() const;
  std::int64_t inside() const;

 private:
  const int limit_;
  mutable std::mutex mu_;
  std::int64_t inside_ = 0;    // guarded by mu_
  std::int64_t rejected_ = 0;  // guarded by mu_
};

}  // namespace lab::runners::service
