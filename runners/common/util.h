// Small helpers shared by runners: monotonic timing, percentiles, names derived from the run's
// namespace, waiting with cancellation, and locating files of the repository at run time.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace lab::runners {

using SteadyClock = std::chrono::steady_clock;

inline double MsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

// q in [0, 1]; nearest-rank on a copy. Empty input -> 0.
double Percentile(std::vector<double> values, double q);

// A name safe for Kafka topics, MySQL identifiers/values and Redis keys: [a-z0-9_].
std::string SafeName(std::string_view text);

// Sleeps up to `duration`, returning false early when `stop` is requested.
bool SleepFor(std::chrono::milliseconds duration, const std::stop_token& stop);

// Polls `done` every `step` until it returns true (-> true), `timeout` passes or stop (-> false).
template <typename Fn>
bool WaitUntil(Fn&& done, std::chrono::milliseconds timeout, const std::stop_token& stop,
               std::chrono::milliseconds step = std::chrono::milliseconds(100)) {
  auto deadline = SteadyClock::now() + timeout;
  while (true) {
    if (done()) return true;
    if (stop.stop_requested() || SteadyClock::now() >= deadline) return false;
    SleepFor(step, stop);
  }
}

// Finds `relative` (e.g. "infra/stack.sh") as given, or under the current directory and its
// parents, or beside this executable and its parents. Absolute paths are returned as they are.
std::optional<std::string> FindRepoPath(const std::string& relative);

// Current wall-clock time in microseconds since the epoch (for commit->projection latency that
// crosses processes).
std::int64_t NowMicros();

}  // namespace lab::runners
