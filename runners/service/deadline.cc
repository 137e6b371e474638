#include "runners/service/deadline.h"

#include <algorithm>

namespace lab::runners::service {

std::optional<std::int64_t> ParseDeadlineMs(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r'))
    value.remove_suffix(1);
  if (value.empty() || value.size() > 15) return std::nullopt;
  std::int64_t v = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

AttemptPlan PlanAttempt(int attempt, int retries, std::int64_t now_ms,
                        std::optional<std::int64_t> deadline_ms, bool propagate,
                        std::chrono::milliseconds per_attempt_timeout) {
  AttemptPlan plan;
  if (attempt > retries) return plan;
  plan.timeout = per_attempt_timeout;
  if (propagate && deadline_ms) {
    const std::int64_t left = *deadline_ms - now_ms;
    if (left <= 0) {
      plan.deadline_passed = true;
      return plan;
    }
    plan.timeout = std::min(per_attempt_timeout, std::chrono::milliseconds(left));
  }
  plan.start = true;
  return plan;
}

std::chrono::milliseconds RetryBackoff(int attempt, std::chrono::milliseconds backoff,
                                       std::int64_t now_ms, std::optional<std::int64_t> deadline_ms,
                                       bool propagate) {
  if (attempt < 1) return std::chrono::milliseconds(0);
  const int shift = std::min(attempt - 1, 16);
  std::chrono::milliseconds wait = backoff * (std::int64_t{1} << shift);
  if (propagate && deadline_ms) {
    wait =
        std::min(wait, std::chrono::milliseconds(std::max<std::int64_t>(0, *deadline_ms - now_ms)));
  }
  return wait;
}

}  // namespace lab::runners::service
