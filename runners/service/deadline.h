// Deadlines and retries of the service's downstream calls. A client may send
// `X-Deadline-Ms: <absolute epoch ms>`; with the deadline propagated, no attempt starts past it,
// each attempt's timeout is capped by the time left, and the header goes downstream. With it
// ignored, every attempt gets the full per-attempt timeout whatever the client still waits for
// (N06's zombie work). Pure functions of the times given: tests need no clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace lab::runners::service {

inline constexpr const char* kDeadlineHeader = "x-deadline-ms";
// The client's deadline forwarded for observation only (the downstream counts work done after
// it); the service never acts on it.
inline constexpr const char* kClientDeadlineHeader = "X-Client-Deadline-Ms";

// Digits only, at most 15 of them (epoch ms until the year 33658); anything else is no deadline.
std::optional<std::int64_t> ParseDeadlineMs(std::string_view value);

struct AttemptPlan {
  bool start = false;                    // false: do not start this attempt
  bool deadline_passed = false;          // why not: the deadline (vs retries used up)
  std::chrono::milliseconds timeout{0};  // of this attempt
};

// Attempt `attempt` (0 = the first call, then retries 1..retries) at `now_ms`.
AttemptPlan PlanAttempt(int attempt, int retries, std::int64_t now_ms,
                        std::optional<std::int64_t> deadline_ms, bool propagate,
                        std::chrono::milliseconds per_attempt_timeout);

// The wait before retry `attempt` (>= 1): backoff x 2^(attempt-1), capped by the time left when
// the deadline is propagated (never negative).
std::chrono::milliseconds RetryBackoff(int attempt, std::chrono::milliseconds backoff,
                                       std::int64_t now_ms, std::optional<std::int64_t> deadline_ms,
                                       bool propagate);

}  // namespace lab::runners::service
