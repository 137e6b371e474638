#include "runners/service/circuit_breaker.h"

#include <cstdio>

namespace lab::runners::service {

std::int64_t EpochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* ToString(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

CircuitBreaker::CircuitBreaker(BreakerOptions options, const MonotonicClock& clock,
                               Listener listener)
    : options_(options), clock_(clock), listener_(std::move(listener)) {}

void CircuitBreaker::MoveTo(BreakerState to, const std::string& reason) {
  BreakerTransition t{clock_.Now(), state_, to, reason};
  state_ = to;
  ++generation_;
  ++transitions_;
  window_.clear();
  trials_.clear();
  probes_given_ = 0;
  if (to == BreakerState::kOpen) opened_at_ = t.at;
  if (listener_) listener_(t);
}

void CircuitBreaker::MaybeHalfOpen() {
  if (state_ == BreakerState::kOpen && clock_.Now() - opened_at_ >= options_.open_wait) {
    MoveTo(BreakerState::kHalfOpen, "open for " + std::to_string(options_.open_wait.count()) +
                                        " ms: trying " + std::to_string(options_.probes) +
                                        " calls");
  }
}

CircuitBreaker::Permit CircuitBreaker::TryAcquire() {
  std::lock_guard lock(mu_);
  MaybeHalfOpen();
  if (state_ == BreakerState::kClosed) return {true, false, generation_};
  if (state_ == BreakerState::kHalfOpen && probes_given_ < options_.probes) {
    ++probes_given_;
    return {true, true, generation_};
  }
  ++short_circuited_;
  return {false, false, generation_};
}

bool CircuitBreaker::TooBad(const std::deque<Outcome>& outcomes, std::string& why) const {
  if (outcomes.empty()) return false;
  int failed = 0;
  int slow = 0;
  for (const auto& o : outcomes) {
    failed += o.failed ? 1 : 0;
    slow += o.slow ? 1 : 0;
  }
  const double n = static_cast<double>(outcomes.size());
  const double failure_rate = 100.0 * failed / n;
  const double slow_rate = 100.0 * slow / n;
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "failure rate %.0f%% (threshold %.0f%%), slow-call rate %.0f%% "
                "(threshold %.0f%%) over %d calls",
                failure_rate, options_.failure_rate_pct, slow_rate, options_.slow_rate_pct,
                static_cast<int>(outcomes.size()));
  why = buf;
  return failure_rate >= options_.failure_rate_pct || slow_rate >= options_.slow_rate_pct;
}

void CircuitBreaker::Record(const Permit& permit, std::chrono::nanoseconds elapsed, bool failed) {
  if (!permit.allowed) return;
  std::lock_guard lock(mu_);
  if (permit.generation != generation_) return;  // judged in a state that has passed
  const Outcome outcome{failed, elapsed >= options_.slow_call};
  std::string why;
  if (state_ == BreakerState::kClosed) {
    window_.push_back(outcome);
    while (static_cast<int>(window_.size()) > options_.window) window_.pop_front();
    if (static_cast<int>(window_.size()) >= options_.min_calls && TooBad(window_, why))
      MoveTo(BreakerState::kOpen, why);
  } else if (state_ == BreakerState::kHalfOpen && permit.probe) {
    trials_.push_back(outcome);
    if (static_cast<int>(trials_.size()) >= options_.probes) {
      const bool bad = TooBad(trials_, why);
      MoveTo(bad ? BreakerState::kOpen : BreakerState::kClosed, "trial calls: " + why);
    }
  }
}

void CircuitBreaker::Cancel(const Permit& permit) {
  if (!permit.allowed || !permit.probe) return;
  std::lock_guard lock(mu_);
  if (permit.generation == generation_ && probes_given_ > 0) --probes_given_;
}

BreakerState CircuitBreaker::State() {
  std::lock_guard lock(mu_);
  MaybeHalfOpen();
  return state_;
}

std::int64_t CircuitBreaker::short_circuited() const {
  std::lock_guard lock(mu_);
  return short_circuited_;
}

std::int64_t CircuitBreaker::transitions() const {
  std::lock_guard lock(mu_);
  return transitions_;
}

}  // namespace lab::runners::service
