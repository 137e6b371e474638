// N19's timeline arithmetic, apart from the stack so it is tested without one: what the
// experiment's sampler saw every few hundred milliseconds (how many brokers accepted a TCP
// connection, how many outbox rows were pending and since when) and what follows from it — the
// window in which every broker refused connections, the backlog's peak and the time it took to
// reach zero once a broker was back.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace lab::runners {

struct OutageSample {
  double t_ms = 0;            // since the mode started (steady clock)
  std::int64_t wall_us = 0;   // the same moment on the wall clock (compared with created_at_us)
  int brokers = 0;            // brokers probed
  int accepting = 0;          // brokers that accepted a TCP connection
  int refused = 0;            // brokers whose port refused it (ECONNREFUSED): really down
  std::int64_t pending = -1;  // outbox rows with published_at_us = 0; -1: not measured
  std::int64_t oldest_age_ms = 0;  // age of the oldest pending row (0 when none)
  std::int64_t committed = -1;     // orders rows so far; -1: not measured
};

struct OutageSummary {
  bool all_down_seen = false;  // a sample in which every probed broker refused
  double all_down_start_ms = 0;
  double all_down_end_ms = 0;  // first later sample in which a broker accepted (or the last)
  double all_down_ms = 0;
  std::int64_t all_down_start_us = 0;
  std::int64_t all_down_end_us = 0;
  bool back_seen = false;  // a broker accepted again after the window
  std::int64_t peak_backlog = 0;
  double peak_at_ms = 0;
  double oldest_age_at_peak_s = 0;
  double max_oldest_age_s = 0;
  // From the first sample after the window with a broker accepting, to the first sample from
  // then on with nothing pending; negative when the backlog never reached zero in the samples.
  double time_to_zero_ms = -1;
};

// Reads the samples in order. The all-down window is the first run of samples in which every
// probed broker refused; the backlog's peak and time to zero come from the pending counts.
OutageSummary SummarizeOutage(const std::vector<OutageSample>& samples);

// At most `max_points` samples, evenly spread, first and last kept: the timeline the run page
// charts (backlog and brokers up over time).
nlohmann::json TimelineJson(const std::vector<OutageSample>& samples, std::size_t max_points);

}  // namespace lab::runners
