// The time source of the service's resilience logic (breaker, executor, pool, deadlines): the
// logic reads time only through it, so unit tests drive it with a fake and never sleep.
#pragma once

#include <chrono>
#include <cstdint>

namespace lab::runners::service {

class MonotonicClock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~MonotonicClock() = default;
  virtual time_point Now() const = 0;
};

class SteadyClock final : public MonotonicClock {
 public:
  time_point Now() const override { return std::chrono::steady_clock::now(); }
};

// Epoch milliseconds of the wall clock (the X-Deadline-Ms header's clock, shared across
// processes on one machine).
std::int64_t EpochMs();

}  // namespace lab::runners::service
