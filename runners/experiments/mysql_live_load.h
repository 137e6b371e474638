// What the MySQL bulk-work experiments (E-014 retention, E-022 backfill) share: a paced live
// load that measures its own latency from outside the bulk work it competes with, the InnoDB
// row-lock counters of the server, and a portable generator of row numbers for seeding.
//
// The load: `clients` threads, each on its own connection (opened before the clock starts),
// run one operation every `interval` until stopped. Latency is measured from when an operation
// was due, not when it was sent, so an operation stuck behind a lock counts the whole wait and
// the ones queued behind it count theirs (no coordinated omission). A failed operation (lock
// wait timeout, …) is a sample too, with the time it took to fail.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "domain/result.h"
#include "runners/common/util.h"
#include "runners/mysql/mysql_client.h"

namespace lab::runners {

// One operation of the live load: when it was due and when it ended (ms since the load's
// start), and whether it succeeded.
struct LiveSample {
  double due_ms = 0;
  double done_ms = 0;
  bool ok = false;
  double latency_ms() const { return done_ms - due_ms; }
};

// Latency of the samples of one window.
struct LiveWindow {
  std::int64_t ops = 0;
  std::int64_t errors = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

class LiveLoad {
 public:
  // Runs on the client's own thread and connection; `seq` counts the client's operations.
  using Op = std::function<domain::Status(mysql::Connection& conn, int client, std::int64_t seq)>;

  LiveLoad(mysql::MysqlConfig config, int clients, std::chrono::microseconds interval, Op op)
      : config_(std::move(config)),
        clients_(std::max(1, clients)),
        interval_(std::max(std::chrono::microseconds(100), interval)),
        op_(std::move(op)) {}
  LiveLoad(const LiveLoad&) = delete;
  LiveLoad& operator=(const LiveLoad&) = delete;
  ~LiveLoad() { Stop(); }

  // Opens the connections, then starts the clients; the load runs until Stop, `max_duration`
  // or `stop` (the run's cancellation), whichever comes first.
  domain::Status Start(std::chrono::milliseconds max_duration, std::stop_token stop) {
    std::vector<std::unique_ptr<mysql::Connection>> conns;
    for (int c = 0; c < clients_; ++c) {
      auto conn = mysql::Connection::Open(config_);
      if (!conn) return conn.error();
      conns.push_back(std::move(*conn));
    }
    start_ = SteadyClock::now() + std::chrono::milliseconds(20);
    for (int c = 0; c < clients_; ++c) {
      threads_.emplace_back(
          [this, c, max_duration, stop, conn = std::move(conns[c])](std::stop_token own) mutable {
            Client(c, std::move(conn), max_duration, own, stop);
          });
    }
    return {};
  }

  // Stops the clients and joins them (an operation in flight finishes first).
  void Stop() {
    for (auto& t : threads_) t.request_stop();
    threads_.clear();  // joins
  }

  // Milliseconds since the load's start, on the clock its samples use.
  double NowMs() const {
    return std::chrono::duration<double, std::milli>(SteadyClock::now() - start_).count();
  }

  // After Stop: every operation, in no particular order.
  std::vector<LiveSample> Samples() const {
    std::lock_guard lock(mu_);
    return samples_;
  }
  std::int64_t ReconnectFailures() const { return reconnect_failures_.load(); }

  // Operations that ended before `before_ms`, or (during) whose [due, done] overlaps
  // [from_ms, to_ms]: an operation that was waiting when the work started counts as during.
  static LiveWindow Before(const std::vector<LiveSample>& samples, double before_ms) {
    std::vector<double> latencies;
    LiveWindow w;
    for (const auto& s : samples) {
      if (s.done_ms > before_ms) continue;
      latencies.push_back(s.latency_ms());
      w.errors += s.ok ? 0 : 1;
    }
    return Summarize(std::move(latencies), w);
  }
  static LiveWindow During(const std::vector<LiveSample>& samples, double from_ms, double to_ms) {
    std::vector<double> latencies;
    LiveWindow w;
    for (const auto& s : samples) {
      if (s.done_ms < from_ms || s.due_ms > to_ms) continue;
      latencies.push_back(s.latency_ms());
      w.errors += s.ok ? 0 : 1;
    }
    return Summarize(std::move(latencies), w);
  }

  // p99 and counts per `bucket_ms` of due time, for the chart.
  static nlohmann::json Series(const std::vector<LiveSample>& samples, double bucket_ms = 250) {
    std::map<int, std::vector<double>> buckets;
    std::map<int, int> errors;
    for (const auto& s : samples) {
      const int b = static_cast<int>(s.due_ms / bucket_ms);
      buckets[b].push_back(s.latency_ms());
      if (!s.ok) ++errors[b];
    }
    nlohmann::json series = nlohmann::json::array();
    for (auto& [b, values] : buckets) {
      const auto n = values.size();
      series.push_back({{"t_s", b * bucket_ms / 1000.0},
                        {"ops", n},
                        {"errors", errors[b]},
                        {"p99_ms", Percentile(std::move(values), 0.99)}});
    }
    return series;
  }

 private:
  static LiveWindow Summarize(std::vector<double> latencies, LiveWindow w) {
    w.ops = static_cast<std::int64_t>(latencies.size());
    if (latencies.empty()) return w;
    w.p50_ms = Percentile(latencies, 0.50);
    w.p99_ms = Percentile(latencies, 0.99);
    w.max_ms = Percentile(std::move(latencies), 1.0);
    return w;
  }

  void Client(int client, std::unique_ptr<mysql::Connection> conn,
              std::chrono::milliseconds max_duration, const std::stop_token& own,
              const std::stop_token& run) {
    std::vector<LiveSample> mine;
    for (std::int64_t seq = 0; !own.stop_requested() && !run.stop_requested(); ++seq) {
      // Clients are spread over the interval, so the offered load is even.
      const auto due = start_ + seq * interval_ + client * interval_ / clients_;
      if (due - start_ >= max_duration) break;
      std::this_thread::sleep_until(due);
      if (own.stop_requested()) break;
      if (conn == nullptr || conn->broken()) {
        auto again = mysql::Connection::Open(config_);
        if (!again) {
          reconnect_failures_.fetch_add(1);
          conn.reset();
          mine.push_back({Ms(due), NowMs(), false});
          continue;
        }
        conn = std::move(*again);
      }
      const bool ok = static_cast<bool>(op_(*conn, client, seq));
      mine.push_back({Ms(due), NowMs(), ok});
    }
    std::lock_guard lock(mu_);
    samples_.insert(samples_.end(), mine.begin(), mine.end());
  }

  double Ms(SteadyClock::time_point t) const {
    return std::chrono::duration<double, std::milli>(t - start_).count();
  }

  mysql::MysqlConfig config_;
  int clients_;
  std::chrono::microseconds interval_;
  Op op_;
  SteadyClock::time_point start_ = SteadyClock::now();
  std::atomic<std::int64_t> reconnect_failures_{0};
  mutable std::mutex mu_;
  std::vector<LiveSample> samples_;  // guarded by mu_
  std::vector<std::jthread> threads_;
};

// The server's row-lock counters (SHOW GLOBAL STATUS): server-wide, so the delta over a window
// counts every session's waits, not only the experiment's.
struct RowLockCounters {
  std::int64_t waits = 0;    // Innodb_row_lock_waits
  std::int64_t time_ms = 0;  // Innodb_row_lock_time
};

inline domain::Result<RowLockCounters> ReadRowLockCounters(mysql::Connection& conn) {
  auto rows = conn.Query("SHOW GLOBAL STATUS LIKE 'Innodb_row_lock%'");
  if (!rows) return rows.error();
  RowLockCounters c;
  int found = 0;
  for (const auto& row : rows->rows) {
    if (row.size() < 2 || !row[0] || !row[1]) continue;
    if (*row[0] == "Innodb_row_lock_waits") {
      c.waits = std::stoll(*row[1]);
      ++found;
    } else if (*row[0] == "Innodb_row_lock_time") {
      c.time_ms = std::stoll(*row[1]);
      ++found;
    }
  }
  if (found != 2) {
    return domain::MakeError(domain::ErrorCode::kInternal,
                             "SHOW GLOBAL STATUS has no Innodb_row_lock_waits/_time");
  }
  return c;
}

// A derived table `(…) AS seq` of the integers 0..9999 in column n: four cross-joined digit
// tables, portable to MySQL 8 (whose recursive CTEs stop at 1000 rows by default). Seeding
// inserts `base + n` for n < min(count, 10000), one statement per 10,000 rows.
inline std::string TenThousandRows() {
  std::string digits = "(SELECT 0 AS d";
  for (int i = 1; i <= 9; ++i) digits += " UNION ALL SELECT " + std::to_string(i);
  digits += ")";
  return "(SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d AS n FROM " + digits + " a CROSS JOIN " +
         digits + " b CROSS JOIN " + digits + " c CROSS JOIN " + digits + " e) AS seq";
}
inline constexpr std::int64_t kSeedChunk = 10000;

}  // namespace lab::runners
