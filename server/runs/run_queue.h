// The bounded run queue with exclusive resource locks. Runs wait in arrival order; a worker
// takes the oldest run whose exclusive resources are all free, so a run that stops a broker
// never overlaps another that needs the brokers, while unrelated runs overtake it.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

namespace lab::server {

struct QueuedRun {
  std::string id;
  std::string experiment;
  std::vector<std::string> exclusive;  // resource names this run must hold alone
};

class RunQueue {
 public:
  explicit RunQueue(std::size_t capacity) : capacity_(capacity) {}

  // Admission: reserves a place before the run is committed to the store, so the bound holds
  // under concurrent requests. Returns false when the queue is full.
  bool TryReserve();
  void CancelReservation();
  // Enqueues a run that holds a reservation.
  void PushReserved(QueuedRun run);
  // Enqueues without a reservation (recovery after restart may exceed the bound).
  void PushRecovered(QueuedRun run);

  // Blocks until a runnable run exists (locks free, not paused) or stop is requested; the
  // returned run's locks are held until Release.
  std::optional<QueuedRun> PopRunnable(std::stop_token stop);
  void Release(const QueuedRun& run);

  // Removes a queued run (cancel); false when it is not waiting.
  bool Remove(const std::string& id);
  void SetPaused(bool paused);

  std::size_t Depth() const;
  std::size_t capacity() const { return capacity_; }
  std::set<std::string> HeldResources() const;

 private:
  bool Runnable(const QueuedRun& run) const;  // requires mu_

  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;  // signalled on push, release, unpause
  std::deque<QueuedRun> waiting_;   // guarded by mu_
  std::size_t reserved_ = 0;        // guarded by mu_
  std::set<std::string> held_;      // guarded by mu_
  bool paused_ = false;             // guarded by mu_
};

}  // namespace lab::server
