// The bounded run queue with resource locks (domain/run_locks.h). A run holds the locks of the
// parts it faults exclusively and those of the parts it only uses shared; an exclusive holder
// never overlaps any other holder of the same lock. Runs wait in arrival order: a worker takes
// the oldest run whose locks are free and that conflicts with no run queued before it, so a run
// waiting for an exclusive lock is not starved by later shared ones, while unrelated runs still
// overtake. A waiting run is told (once per change) what it waits for.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
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
  std::vector<std::string> exclusive;  // locks this run must hold alone
  std::vector<std::string> shared;     // locks it holds together with other shared holders
};

// Told what a waiting run waits for, whenever that changes; called with the queue's mutex held,
// so it must not call back into the queue.
using WaitNotifier = std::function<void(const std::string& id, const std::string& reason)>;

class RunQueue {
 public:
  explicit RunQueue(std::size_t capacity, WaitNotifier on_wait = {})
      : capacity_(capacity), on_wait_(std::move(on_wait)) {}

  // Admission: reserves a place before the run is committed to the store, so the bound holds
  // under concurrent requests. Returns false when the queue is full.
  bool TryReserve();
  void CancelReservation();
  // Enqueues a run that holds a reservation.
  void PushReserved(QueuedRun run);
  // Enqueues without a reservation (recovery after restart may exceed the bound).
  void PushRecovered(QueuedRun run);

  // Blocks until a runnable run exists (locks free, not paused) or stop is requested; the
  // returned run's locks are held until Release. `on_taken` runs under the queue's lock as the
  // run leaves it, so whoever takes the run can register it before anyone can see it gone
  // (RunExecutor::Claim: a run is always either waiting here or claimed, and so cancellable).
  std::optional<QueuedRun> PopRunnable(std::stop_token stop,
                                       const std::function<void(const QueuedRun&)>& on_taken = {});
  void Release(const QueuedRun& run);

  // Removes a queued run (cancel); false when it is not waiting.
  bool Remove(const std::string& id);
  void SetPaused(bool paused);

  std::size_t Depth() const;
  std::size_t capacity() const { return capacity_; }
  std::set<std::string> HeldResources() const;  // every lock held, shared or exclusive
  // What the waiting run `id` waits for ("" when it could run now or is not waiting).
  std::string WaitReason(const std::string& id) const;

 private:
  struct Holders {
    std::string exclusive;            // the run holding it alone, or ""
    std::vector<std::string> shared;  // the runs sharing it
  };
  // Why `run` cannot start, given the runs queued before it; "" when it can. Requires mu_.
  std::string Blocker(const QueuedRun& run, std::size_t position) const;
  void Acquire(const QueuedRun& run);  // requires mu_
  void AnnounceWaits();                // requires mu_

  const std::size_t capacity_;
  const WaitNotifier on_wait_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;           // signalled on push, release, unpause
  std::deque<QueuedRun> waiting_;            // guarded by mu_
  std::size_t reserved_ = 0;                 // guarded by mu_
  std::map<std::string, Holders> held_;      // guarded by mu_
  std::map<std::string, std::string> told_;  // guarded by mu_: run id -> reason last told
  bool paused_ = false;                      // guarded by mu_
};

}  // namespace lab::server
