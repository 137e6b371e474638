#include "server/runs/run_queue.h"

#include <algorithm>
#include <utility>

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
    AnnounceWaits();
  }
  cv_.notify_all();
}

void RunQueue::PushRecovered(QueuedRun run) {
  {
    std::lock_guard lock(mu_);
    waiting_.push_back(std::move(run));
    AnnounceWaits();
  }
  cv_.notify_all();
}

namespace {

bool Has(const std::vector<std::string>& locks, const std::string& lock) {
  return std::find(locks.begin(), locks.end(), lock) != locks.end();
}

// A lock both runs want where at least one of them wants it alone; "" when they can overlap.
std::string Conflict(const QueuedRun& a, const QueuedRun& b) {
  for (const auto& lock : a.exclusive)
    if (Has(b.exclusive, lock) || Has(b.shared, lock)) return lock;
  for (const auto& lock : a.shared)
    if (Has(b.exclusive, lock)) return lock;
  return "";
}

}  // namespace

std::string RunQueue::Blocker(const QueuedRun& run, std::size_t position) const {
  for (const auto& lock : run.exclusive) {
    auto it = held_.find(lock);
    if (it == held_.end()) continue;
    const auto& h = it->second;
    const std::string& by = h.exclusive.empty() ? h.shared.front() : h.exclusive;
    return "waits for " + lock + ", held by run " + by;
  }
  for (const auto& lock : run.shared) {
    auto it = held_.find(lock);
    if (it != held_.end() && !it->second.exclusive.empty())
      return "waits for " + lock + ", held exclusively by run " + it->second.exclusive;
  }
  for (std::size_t i = 0; i < position; ++i) {
    if (std::string lock = Conflict(run, waiting_[i]); !lock.empty())
      return "waits for " + lock + " behind run " + waiting_[i].id + ", queued before it";
  }
  return "";
}

void RunQueue::Acquire(const QueuedRun& run) {
  for (const auto& lock : run.exclusive) held_[lock].exclusive = run.id;
  for (const auto& lock : run.shared) held_[lock].shared.push_back(run.id);
}

void RunQueue::AnnounceWaits() {
  std::map<std::string, std::string> told;
  for (std::size_t i = 0; i < waiting_.size(); ++i) {
    const std::string& id = waiting_[i].id;
    std::string reason = Blocker(waiting_[i], i);
    auto before = told_.find(id);
    if (!reason.empty() && on_wait_ && (before == told_.end() || before->second != reason))
      on_wait_(id, reason);
    if (!reason.empty()) told[id] = std::move(reason);
  }
  told_ = std::move(told);
}

std::string RunQueue::WaitReason(const std::string& id) const {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < waiting_.size(); ++i)
    if (waiting_[i].id == id) return Blocker(waiting_[i], i);
  return "";
}

std::optional<QueuedRun> RunQueue::PopRunnable(
    std::stop_token stop, const std::function<void(const QueuedRun&)>& on_taken) {
  std::unique_lock lock(mu_);
  std::optional<QueuedRun> taken;
  cv_.wait(lock, stop, [&] {
    if (paused_) return false;
    for (std::size_t i = 0; i < waiting_.size(); ++i) {
      if (!Blocker(waiting_[i], i).empty()) continue;
      taken = std::move(waiting_[i]);
      waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(i));
      return true;
    }
    return false;
  });
  if (taken) {
    if (on_taken) on_taken(*taken);
    Acquire(*taken);
    AnnounceWaits();
  }
  return taken;
}

void RunQueue::Release(const QueuedRun& run) {
  {
    std::lock_guard lock(mu_);
    for (const auto& lock_name : run.exclusive) {
      auto it = held_.find(lock_name);
      if (it != held_.end() && it->second.exclusive == run.id) it->second.exclusive.clear();
    }
    for (const auto& lock_name : run.shared) {
      auto it = held_.find(lock_name);
      if (it == held_.end()) continue;
      auto& sharers = it->second.shared;
      if (auto pos = std::find(sharers.begin(), sharers.end(), run.id); pos != sharers.end())
        sharers.erase(pos);
    }
    std::erase_if(held_, [](const auto& kv) {
      return kv.second.exclusive.empty() && kv.second.shared.empty();
    });
    AnnounceWaits();
  }
  cv_.notify_all();
}

bool RunQueue::Remove(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(waiting_.begin(), waiting_.end(),
                         [&](const QueuedRun& r) { return r.id == id; });
  if (it == waiting_.end()) return false;
  waiting_.erase(it);
  AnnounceWaits();
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
  std::set<std::string> names;
  for (const auto& [name, holders] : held_) names.insert(name);
  return names;
}

}  // namespace lab::server
