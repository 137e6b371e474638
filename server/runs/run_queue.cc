#include "server/runs/run_queue.h"

#include <algorithm>

namespace lab::server {

bool RunQueue::TryReserve() {
  std::lock_guard lock(mu_);
  if (waiting_.size() + reserved_ >= capacity_) return false;
  ++reserved_;
  return true;
}

void RunQueue::CancelReservation() {
  std::lock_guard lock(mu_);
  if (reserved_ > 0) --reserved_;
}

void RunQueue::PushReserved(QueuedRun run) {
  {
    std::lock_guard lock(mu_);
    if (reserved_ > 0) --reserved_;
    waiting_.push_back(std::move(run));
  }
  cv_.notify_all();
}

void RunQueue::PushRecovered(QueuedRun run) {
  {
    std::lock_guard lock(mu_);
    waiting_.push_back(std::move(run));
  }
  cv_.notify_all();
}

bool RunQueue::Runnable(const QueuedRun& run) const {
  return std::none_of(run.exclusive.begin(), run.exclusive.end(),
                      [&](const std::string& r) { return held_.count(r) > 0; });
}

std::optional<QueuedRun> RunQueue::PopRunnable(std::stop_token stop) {
  std::unique_lock lock(mu_);
  std::optional<QueuedRun> taken;
  cv_.wait(lock, stop, [&] {
    if (paused_) return false;
    auto it = std::find_if(waiting_.begin(), waiting_.end(),
                           [&](const QueuedRun& r) { return Runnable(r); });
    if (it == waiting_.end()) return false;
    taken = std::move(*it);
    waiting_.erase(it);
    return true;
  });
  if (taken) held_.insert(taken->exclusive.begin(), taken->exclusive.end());
  return taken;
}

void RunQueue::Release(const QueuedRun& run) {
  {
    std::lock_guard lock(mu_);
    for (const auto& r : run.exclusive) held_.erase(r);
  }
  cv_.notify_all();
}

bool RunQueue::Remove(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(waiting_.begin(), waiting_.end(),
                         [&](const QueuedRun& r) { return r.id == id; });
  if (it == waiting_.end()) return false;
  waiting_.erase(it);
  return true;
}

void RunQueue::SetPaused(bool paused) {
  {
    std::lock_guard lock(mu_);
    paused_ = paused;
  }
  cv_.notify_all();
}

std::size_t RunQueue::Depth() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

std::set<std::string> RunQueue::HeldResources() const {
  std::lock_guard lock(mu_);
  return held_;
}

}  // namespace lab::server
