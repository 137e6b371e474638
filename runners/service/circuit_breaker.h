// A count-based circuit breaker, the Resilience4j model the seed's valuation engine used:
// CLOSED judges the last `window` calls (once `min_calls` have been recorded) by their failure
// rate and their slow-call rate; either at or over its threshold opens the breaker. OPEN refuses
// every call (short-circuit) until `open_wait` has passed; the next call then moves it to
// HALF_OPEN, which lets `probes` trial calls through and judges them the same way: good enough
// closes it (with an empty window), not good enough opens it again.
// A result is judged only in the state (generation) its permit was given in: a call let through
// while CLOSED that ends after the breaker opened cannot count as a trial call.
// Thread-safe; time comes from the injected clock only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include "runners/service/clock.h"

namespace lab::runners::service {

enum class BreakerState { kClosed, kOpen, kHalfOpen };
const char* ToString(BreakerState state);  // "closed" | "open" | "half_open"

struct BreakerOptions {
  int window = 20;     // calls in the sliding window
  int min_calls = 10;  // calls recorded before the rates are judged
  double failure_rate_pct = 50;
  std::chrono::milliseconds slow_call{200};  // a call at least this long is slow
  double slow_rate_pct = 50;
  std::chrono::milliseconds open_wait{2000};  // OPEN -> HALF_OPEN after this
  int probes = 3;                             // trial calls in HALF_OPEN
};

struct BreakerTransition {
  MonotonicClock::time_point at;
  BreakerState from = BreakerState::kClosed;
  BreakerState to = BreakerState::kClosed;
  std::string reason;  // the rates that decided it
};

class CircuitBreaker {
 public:
  struct Permit {
    bool allowed = false;
    bool probe = false;  // a HALF_OPEN trial call
    std::uint64_t generation = 0;
  };
  // Called under the breaker's lock: it must not call back into the breaker.
  using Listener = std::function<void(const BreakerTransition&)>;

  CircuitBreaker(BreakerOptions options, const MonotonicClock& clock, Listener listener = {});

  // Asks to make a call. Not allowed: short-circuited (counted).
  Permit TryAcquire();
  // The outcome of an allowed call: how long it took and whether it failed.
  void Record(const Permit& permit, std::chrono::nanoseconds elapsed, bool failed);
  // An allowed call that was not made after all (e.g. refused by a bulkhead): gives its trial
  // slot back.
  void Cancel(const Permit& permit);

  BreakerState State();  // applies a due OPEN -> HALF_OPEN first
  std::int64_t short_circuited() const;
  std::int64_t transitions() const;

 private:
  struct Outcome {
    bool failed;
    bool slow;
  };
  void MoveTo(BreakerState to, const std::string& reason);  // holds mu_
  void MaybeHalfOpen();                                     // holds mu_
  // Whether `outcomes` are bad enough to open; `why` gets the rates.
  bool TooBad(const std::deque<Outcome>& outcomes, std::string& why) const;

  const BreakerOptions options_;
  const MonotonicClock& clock_;
  Listener listener_;
  mutable std::mutex mu_;
  BreakerState state_ = BreakerState::kClosed;  // guarded by mu_
  std::uint64_t generation_ = 0;                // guarded by mu_
  std::deque<Outcome> window_;                  // guarded by mu_ (CLOSED: last `window` calls)
  std::deque<Outcome> trials_;                  // guarded by mu_ (HALF_OPEN: trial results)
  int probes_given_ = 0;                        // guarded by mu_
  MonotonicClock::time_point opened_at_{};      // guarded by mu_
  std::int64_t short_circuited_ = 0;            // guarded by mu_
  std::int64_t transitions_ = 0;                // guarded by mu_
};

}  // namespace lab::runners::service
