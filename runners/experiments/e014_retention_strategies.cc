// E-014: processed_event retention strategies differ in cost. A comparison, not a contest: one
// mode, "check", runs three strategies one after the other, each on its own freshly seeded
// dedup table under the same steady insert load, and the table of their costs is the finding.
// Seeded per strategy: `rows` eligible rows (processed 1 to 5 hours ago, older than the
// cut-off = 1 hour before the seeding) and `keep_rows` younger ones; meanwhile the live load
// inserts new dedup rows (processed now) from `clients` threads at `insert_rate` rows/s,
// latency measured from when each insert was due.
// Each strategy works on tables of the run (kArtifactMysqlTable, dropped by cleanup) shaped like
// a real dedup table: PRIMARY KEY (consumer, event_id) and an index on processed_at_us. Not on
// shared tables keyed by run_ns: with run_ns in front of both keys MariaDB plans the DELETE
// below as a range of the primary key plus a filesort, locking every row of the run in each
// statement — a plan the real table would not get, so it would measure the namespace, not the
// strategy.
//   delete    - DELETE … WHERE processed_at_us < cutoff ORDER BY processed_at_us LIMIT `batch`,
//               again until nothing is left.
//   archive   - per batch, one transaction: INSERT INTO <archive> SELECT … ORDER BY
//               processed_at_us LIMIT `batch`, then DELETE the rows of that batch (a join with
//               the archive on the key), until a batch is empty.
//   partition - the table RANGE-partitioned on processed_at_us (`partitions` partitions below
//               the cut-off, one above; its primary key must then contain processed_at_us); the
//               job reads the partitions from information_schema and drops every one whose
//               upper bound is <= the cut-off (ALTER TABLE … DROP PARTITION).
//               partition_boundary=grid lays the partitions on a grid the cut-off falls inside
//               (half a partition off): the real mistake of a retention period that is not a
//               whole number of partitions.
// Evidence per strategy (suffix _delete, _archive, _partition): duration, rows removed, eligible
// rows left, rows wrongly removed (seeded young rows or acknowledged live inserts missing), live
// inserts lost (acknowledged by the inserter, absent on read-back), insert p50/p99 before and
// during, InnoDB row-lock waits and wait time (server-wide deltas). Confirmed when every strategy
// removes exactly the eligible rows and loses no live insert.
#include <set>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/experiments/mysql_live_load.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr std::int64_t kHourUs = 3600LL * 1000 * 1000;
constexpr auto kTail = 300ms;  // the live load goes on this long after the strategy ends
constexpr const char* kConsumer = "retention";
constexpr int kMaxRetries = 5;  // a statement that hit a deadlock or lock wait timeout

enum class Strategy { kDelete, kArchive, kPartition };

struct Variant {
  Strategy strategy;
  std::string key;  // metric and table suffix
  std::string what;
};

const std::vector<Variant>& Variants() {
  static const std::vector<Variant> v = {
      {Strategy::kDelete, "delete", "batched DELETE … ORDER BY processed_at_us LIMIT batch"},
      {Strategy::kArchive, "archive",
       "archive-and-delete: INSERT … SELECT into an archive table, then DELETE, per batch"},
      {Strategy::kPartition, "partition",
       "DROP PARTITION of every partition entirely older than the cut-off"}};
  return v;
}

struct Settings {
  std::int64_t rows = 0;
  std::int64_t keep_rows = 0;
  std::int64_t batch = 0;
  int clients = 0;
  std::int64_t insert_rate = 0;
  std::int64_t partitions = 0;
  bool grid = false;
  std::int64_t baseline_ms = 0;
};

// Where one strategy's rows live, and the times that place them.
struct Layout {
  std::string table;    // the run's dedup table for this strategy
  std::string archive;  // archive: the run's archive table
  std::int64_t oldest_us = 0;
  std::int64_t cutoff_us = 0;
  std::vector<std::int64_t> bounds;  // partition: upper bounds below MAXVALUE
};

// What a strategy did, as it saw it.
struct StrategyRun {
  std::string failed;
  std::int64_t statements = 0;
  std::int64_t removed_reported = -1;  // affected rows it was told (-1: DDL says nothing)
  Json dropped = Json::array();
};

bool Retryable(const mysql::Connection& c) {
  return c.last_errno() == mysql::kErrDeadlock || c.last_errno() == mysql::kErrLockWaitTimeout;
}

constexpr const char* kDedupColumns =
    "consumer VARCHAR(64) NOT NULL, event_id VARCHAR(96) NOT NULL, "
    "processed_at_us BIGINT NOT NULL";

class RetentionStrategies final : public ExperimentBase {
 public:
  explicit RetentionStrategies(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-014"; }

  std::string ConfigurationJson() const override {
    return Json({{"dedup_table",
                  "PRIMARY KEY (consumer, event_id), KEY (processed_at_us); partitioned: "
                  "PRIMARY KEY (consumer, event_id, processed_at_us), PARTITION BY RANGE "
                  "(processed_at_us)"},
                 {"cutoff", "1 hour before the seeding; eligible rows 1-5 hours old"},
                 {"live_insert",
                  "INSERT INTO <table> (consumer, event_id, processed_at_us) VALUES (…, now) "
                  "(autocommit)"},
                 {"server", "innodb_lock_wait_timeout=5, REPEATABLE READ, sync_binlog=1"}})
        .dump();
  }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    Settings s;
    s.rows = domain::GetInt(ctx.params, "rows");
    s.keep_rows = domain::GetInt(ctx.params, "keep_rows");
    s.batch = domain::GetInt(ctx.params, "batch");
    s.clients = static_cast<int>(domain::GetInt(ctx.params, "clients"));
    s.insert_rate = domain::GetInt(ctx.params, "insert_rate");
    s.partitions = domain::GetInt(ctx.params, "partitions");
    s.grid = domain::GetString(ctx.params, "partition_boundary") == "grid";
    s.baseline_ms = domain::GetInt(ctx.params, "baseline_ms");

    auto conn = OpenMysqlWithSchema();
    if (!conn) return Inconclusive(std::move(result), "mysql: " + conn.error().message);
    Json costs = Json::array();
    Json provenance = Json::object();
    Json layouts = Json::object();
    double done = 0;
    for (const auto& v : Variants()) {
      if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
      auto why = RunVariant(ctx, mode, result, **conn, v, s, costs, provenance, layouts);
      if (!why.empty()) return Inconclusive(std::move(result), v.key + ": " + why);
      done += 1;
      Progress(ctx, 100 * done / static_cast<double>(Variants().size()));
    }
    result.details_json =
        Json({{"costs", costs},
              {"layouts", layouts},
              {"provenance", provenance},
              {"note",
               "a comparison under the same load, no winner assumed. Latency is the live "
               "inserter's own (client clock, from when each insert was due); an insert that was "
               "waiting when a strategy started or ended counts as during. row_lock_waits and "
               "row_lock_time_ms are deltas of the server-wide Innodb_row_lock_waits / "
               "Innodb_row_lock_time over the strategy: every session's waits (the run holds the "
               "mysql-server lock, so no other run's). The partitioned table's primary key must "
               "contain processed_at_us (MariaDB and MySQL require the partitioning column in "
               "every unique key), so it no longer enforces event_id alone: a cost of that "
               "strategy the numbers do not show."}})
            .dump();
    return result;
  }

 private:
  // Creates and seeds, loads, runs the strategy, reads back; adds the metrics. Returns why it
  // could not.
  std::string RunVariant(const domain::RunContext& ctx, const std::string& mode,
                         domain::ModeResult& result, mysql::Connection& conn, const Variant& v,
                         const Settings& s, Json& costs, Json& provenance, Json& layouts) const {
    Layout lay;
    lay.cutoff_us = NowMicros() - kHourUs;
    lay.oldest_us = lay.cutoff_us - 4 * kHourUs;
    lay.table = "ret_" + RunNs(ctx, mode) + "_" + v.key;
    if (v.strategy == Strategy::kArchive) lay.archive = "arc_" + RunNs(ctx, mode);
    if (auto st = CreateTables(ctx, mode, result, conn, s, v, lay); !st) {
      return "mysql: creating the tables: " + st.error().message;
    }
    if (auto st = Seed(ctx, conn, s, lay); !st) return "mysql: seeding: " + st.error().message;
    if (ctx.stop.stop_requested()) return "cancelled";
    const std::int64_t eligible_before =
        Count(result, conn, "SELECT COUNT(*) FROM " + lay.table + " WHERE processed_at_us < ?",
              {lay.cutoff_us});
    const std::int64_t keep_seeded = CountKept(conn, lay);
    if (eligible_before < 0 || keep_seeded < 0) return "mysql: counting the seeded rows failed";
    Step(ctx, mode + " " + v.key + ": " + std::to_string(eligible_before) + " eligible and " +
                  std::to_string(keep_seeded) + " younger rows in " + lay.table);

    // The live inserter: new dedup rows (processed now), each id remembered once acknowledged.
    std::mutex acked_mu;
    std::set<std::string> acked;  // guarded by acked_mu
    const std::string insert =
        "INSERT INTO " + lay.table + " (consumer, event_id, processed_at_us) VALUES (?, ?, ?)";
    LiveLoad load(
        MysqlSettings(), s.clients,
        std::chrono::microseconds(1000000LL * s.clients / std::max<std::int64_t>(1, s.insert_rate)),
        [&](mysql::Connection& c, int client, std::int64_t seq) -> domain::Status {
          const std::string id = "live-" + std::to_string(client) + "-" + std::to_string(seq);
          auto n = c.Exec(insert, {std::string(kConsumer), id, NowMicros()});
          if (!n) return n.error();
          std::lock_guard lock(acked_mu);
          acked.insert(id);
          return {};
        });
    const auto bound = std::chrono::milliseconds(s.baseline_ms) + RoleWait(s.rows) + 30s;
    if (auto st = load.Start(bound, ctx.stop); !st)
      return "mysql: live load: " + st.error().message;
    SleepFor(std::chrono::milliseconds(s.baseline_ms), ctx.stop);
    if (ctx.stop.stop_requested()) return "cancelled";

    auto before = ReadRowLockCounters(conn);
    if (!before) return "mysql: " + before.error().message;
    Step(ctx, mode + " " + v.key + ": " + v.what);
    const double from_ms = load.NowMs();
    StrategyRun run;
    switch (v.strategy) {
      case Strategy::kDelete:
        run = BatchedDelete(ctx, conn, s, lay);
        break;
      case Strategy::kArchive:
        run = ArchiveAndDelete(ctx, conn, s, lay);
        break;
      case Strategy::kPartition:
        run = DropPartitions(conn, lay);
        break;
    }
    const double to_ms = load.NowMs();
    auto after = ReadRowLockCounters(conn);
    SleepFor(kTail, ctx.stop);
    load.Stop();
    if (ctx.stop.stop_requested()) return "cancelled";
    if (!run.failed.empty()) return run.failed;
    if (!after) return "mysql: " + after.error().message;

    // Read back, after every writer stopped.
    const std::int64_t eligible_left =
        Count(result, conn, "SELECT COUNT(*) FROM " + lay.table + " WHERE processed_at_us < ?",
              {lay.cutoff_us});
    const std::int64_t keep_present = CountKept(conn, lay);
    auto live = conn.Query(
        "SELECT event_id FROM " + lay.table + " WHERE consumer = ? AND event_id LIKE 'live-%'",
        {std::string(kConsumer)});
    if (eligible_left < 0 || keep_present < 0 || !live) return "mysql: read-back failed";
    std::set<std::string> present;
    for (const auto& r : live->rows) present.insert(r[0].value_or(""));
    std::int64_t live_lost = 0;
    for (const auto& id : acked) live_lost += present.count(id) == 0 ? 1 : 0;
    std::int64_t indeterminate_landed = 0;
    for (const auto& id : present) indeterminate_landed += acked.count(id) == 0 ? 1 : 0;
    const std::int64_t wrongly_removed = (keep_seeded - keep_present) + live_lost;
    const std::int64_t removed = eligible_before - eligible_left + wrongly_removed;

    const auto samples = load.Samples();
    const LiveWindow base = LiveLoad::Before(samples, from_ms);
    const LiveWindow during = LiveLoad::During(samples, from_ms, to_ms);
    auto& m = result.metrics;
    const std::string sfx = "_" + v.key;
    auto put = [&](const std::string& name, double value, const char* source) {
      m[name + sfx] = value;
      provenance[name + sfx] = source;
    };
    put("eligible_before", static_cast<double>(eligible_before), "read_back");
    put("removed", static_cast<double>(removed), "read_back");
    put("eligible_left", static_cast<double>(eligible_left), "read_back");
    put("wrongly_removed", static_cast<double>(wrongly_removed), "read_back");
    put("live_acked", static_cast<double>(acked.size()), "self_reported");
    put("live_lost", static_cast<double>(live_lost), "read_back");
    put("duration_ms", to_ms - from_ms, "self_reported");
    put("statements", static_cast<double>(run.statements), "self_reported");
    if (run.removed_reported >= 0)
      put("removed_reported", static_cast<double>(run.removed_reported), "self_reported");
    put("inserts_before", static_cast<double>(base.ops), "self_reported");
    put("inserts_during", static_cast<double>(during.ops), "self_reported");
    put("insert_errors_during", static_cast<double>(during.errors), "self_reported");
    put("insert_p50_before_ms", base.p50_ms, "self_reported");
    put("insert_p99_before_ms", base.p99_ms, "self_reported");
    if (during.ops > 0) {
      put("insert_p50_during_ms", during.p50_ms, "self_reported");
      put("insert_p99_during_ms", during.p99_ms, "self_reported");
      put("insert_max_during_ms", during.max_ms, "self_reported");
    }
    put("row_lock_waits", static_cast<double>(after->waits - before->waits), "server_counter");
    put("row_lock_time_ms", static_cast<double>(after->time_ms - before->time_ms),
        "server_counter");
    Json cost = {{"strategy", v.key},
                 {"what", v.what},
                 {"table", lay.table},
                 {"duration_ms", to_ms - from_ms},
                 {"statements", run.statements},
                 {"eligible_before", eligible_before},
                 {"removed", removed},
                 {"eligible_left", eligible_left},
                 {"wrongly_removed", wrongly_removed},
                 {"live_acked", acked.size()},
                 {"live_lost", live_lost},
                 {"live_indeterminate_landed", indeterminate_landed},
                 {"insert_p50_ms", {{"before", base.p50_ms}, {"during", during.p50_ms}}},
                 {"insert_p99_ms", {{"before", base.p99_ms}, {"during", during.p99_ms}}},
                 {"inserts_during", during.ops},
                 {"insert_errors_during", during.errors},
                 {"row_lock_waits", after->waits - before->waits},
                 {"row_lock_time_ms", after->time_ms - before->time_ms},
                 {"latency_series", LiveLoad::Series(samples)},
                 {"window_ms", {{"from", from_ms}, {"to", to_ms}}}};
    if (!run.dropped.empty()) cost["dropped_partitions"] = run.dropped;
    if (v.strategy == Strategy::kArchive) {
      const std::int64_t archived = Count(result, conn, "SELECT COUNT(*) FROM " + lay.archive, {});
      const std::int64_t archived_young =
          Count(result, conn, "SELECT COUNT(*) FROM " + lay.archive + " WHERE processed_at_us >= ?",
                {lay.cutoff_us});
      if (archived < 0 || archived_young < 0) return "mysql: reading the archive failed";
      put("archived", static_cast<double>(archived), "read_back");
      cost["archive_table"] = lay.archive;
      cost["archived"] = archived;
      cost["archived_not_eligible"] = archived_young;
    }
    costs.push_back(cost);
    Json bounds = Json::array();
    for (auto b : lay.bounds) bounds.push_back(b);
    layouts[v.key] = {{"table", lay.table},
                      {"cutoff_us", lay.cutoff_us},
                      {"oldest_us", lay.oldest_us},
                      {"partition_bounds_us", bounds}};
    Step(ctx, mode + " " + v.key + ": " + std::to_string(removed) + " removed in " +
                  std::to_string(static_cast<std::int64_t>(to_ms - from_ms)) + " ms (" +
                  std::to_string(run.statements) + " statements); eligible left " +
                  std::to_string(eligible_left) + ", wrongly removed " +
                  std::to_string(wrongly_removed) + ", live lost " + std::to_string(live_lost) +
                  "; insert p99 " + std::to_string(base.p99_ms) + " -> " +
                  std::to_string(during.p99_ms) + " ms; row lock waits " +
                  std::to_string(after->waits - before->waits));
    return "";
  }

  // Seeded younger rows present (-1 when the count failed).
  std::int64_t CountKept(mysql::Connection& conn, const Layout& lay) const {
    return TryCount(conn,
                    "SELECT COUNT(*) FROM " + lay.table +
                        " WHERE processed_at_us >= ? AND event_id LIKE 'keep-%'",
                    {lay.cutoff_us});
  }

  // The run's tables for `v`, each recorded before it exists. Partitioned, aligned:
  // `partitions` partitions splitting [oldest, cutoff) evenly, the last bound exactly the
  // cut-off, then MAXVALUE. Grid: the same width shifted by half a partition, so the cut-off
  // falls inside one.
  domain::Status CreateTables(const domain::RunContext& ctx, const std::string& mode,
                              domain::ModeResult& result, mysql::Connection& conn,
                              const Settings& s, const Variant& v, Layout& lay) const {
    std::string ddl = std::string("(") + kDedupColumns;
    if (v.strategy == Strategy::kPartition) {
      const std::int64_t width = (lay.cutoff_us - lay.oldest_us) / s.partitions;
      if (s.grid) {
        for (std::int64_t k = 1; k <= s.partitions + 1; ++k)
          lay.bounds.push_back(lay.oldest_us + k * width - width / 2);
      } else {
        for (std::int64_t k = 1; k <= s.partitions; ++k)
          lay.bounds.push_back(k == s.partitions ? lay.cutoff_us : lay.oldest_us + k * width);
      }
      ddl +=
          ", PRIMARY KEY (consumer, event_id, processed_at_us)) ENGINE=InnoDB "
          "PARTITION BY RANGE (processed_at_us) (";
      for (size_t i = 0; i < lay.bounds.size(); ++i) {
        ddl += "PARTITION p" + std::to_string(i) + " VALUES LESS THAN (" +
               std::to_string(lay.bounds[i]) + "), ";
      }
      ddl += "PARTITION pmax VALUES LESS THAN MAXVALUE)";
    } else {
      ddl += ", PRIMARY KEY (consumer, event_id), KEY ix_age (processed_at_us)) ENGINE=InnoDB";
    }
    Created(ctx, mode, result, kArtifactMysqlTable, lay.table);
    if (auto st = conn.Execute("DROP TABLE IF EXISTS " + lay.table); !st) return st;
    if (auto st = conn.Execute("CREATE TABLE " + lay.table + " " + ddl); !st) return st;
    if (lay.archive.empty()) return {};
    // The archive: the batch number finds the rows the batch's DELETE removes; the primary key
    // refuses a row archived twice.
    Created(ctx, mode, result, kArtifactMysqlTable, lay.archive);
    if (auto st = conn.Execute("DROP TABLE IF EXISTS " + lay.archive); !st) return st;
    return conn.Execute("CREATE TABLE " + lay.archive + " (" + kDedupColumns +
                        ", batch_no INT NOT NULL, archived_at_us BIGINT NOT NULL, "
                        "PRIMARY KEY (consumer, event_id), KEY ix_batch (batch_no)) ENGINE=InnoDB");
  }

  // `rows` eligible rows spread over [oldest, cutoff) and `keep_rows` over [cutoff, cutoff +
  // 50 min), 10,000 per statement.
  domain::Status Seed(const domain::RunContext& ctx, mysql::Connection& conn, const Settings& s,
                      const Layout& lay) const {
    const std::string sql = "INSERT INTO " + lay.table +
                            " (consumer, event_id, processed_at_us) SELECT ?, "
                            "CONCAT(?, LPAD(? + n, 10, '0')), ? + ((? + n) * ?) DIV ? FROM " +
                            TenThousandRows() + " WHERE n < ?";
    auto fill = [&](const std::string& prefix, std::int64_t count, std::int64_t from_us,
                    std::int64_t span_us) -> domain::Status {
      for (std::int64_t base = 0; base < count && !ctx.stop.stop_requested(); base += kSeedChunk) {
        auto n = conn.Exec(sql, {std::string(kConsumer), prefix, base, from_us, base, span_us,
                                 count, std::min(kSeedChunk, count - base)});
        if (!n) return n.error();
      }
      return {};
    };
    if (auto st = fill("old-", s.rows, lay.oldest_us, lay.cutoff_us - lay.oldest_us); !st)
      return st;
    return fill("keep-", s.keep_rows, lay.cutoff_us, 50 * 60 * 1000000LL);
  }

  StrategyRun BatchedDelete(const domain::RunContext& ctx, mysql::Connection& conn,
                            const Settings& s, const Layout& lay) const {
    StrategyRun run;
    run.removed_reported = 0;
    const std::string sql =
        "DELETE FROM " + lay.table + " WHERE processed_at_us < ? ORDER BY processed_at_us LIMIT ?";
    const std::int64_t max_statements = s.rows / s.batch + 1000;  // bound
    int retries = 0;
    while (run.statements < max_statements && !ctx.stop.stop_requested()) {
      auto n = conn.Exec(sql, {lay.cutoff_us, s.batch});
      ++run.statements;
      if (!n) {
        if (Retryable(conn) && ++retries <= kMaxRetries) continue;
        run.failed = "mysql: DELETE: " + n.error().message;
        return run;
      }
      run.removed_reported += static_cast<std::int64_t>(*n);
      if (*n == 0) break;
    }
    return run;
  }

  StrategyRun ArchiveAndDelete(const domain::RunContext& ctx, mysql::Connection& conn,
                               const Settings& s, const Layout& lay) const {
    StrategyRun run;
    run.removed_reported = 0;
    const std::string archive =
        "INSERT INTO " + lay.archive +
        " (consumer, event_id, processed_at_us, batch_no, archived_at_us) SELECT consumer, "
        "event_id, processed_at_us, ?, ? FROM " +
        lay.table + " WHERE processed_at_us < ? ORDER BY processed_at_us LIMIT ?";
    const std::string remove = "DELETE e FROM " + lay.table + " AS e JOIN " + lay.archive +
                               " AS a ON a.consumer = e.consumer AND a.event_id = e.event_id "
                               "WHERE a.batch_no = ?";
    const std::int64_t max_batches = s.rows / s.batch + 1000;  // bound
    for (std::int64_t batch_no = 1; batch_no <= max_batches && !ctx.stop.stop_requested();
         ++batch_no) {
      std::int64_t archived = 0;
      std::int64_t deleted = 0;
      auto st = mysql::InTransaction(
          conn,
          [&](mysql::Connection& c) -> domain::Status {
            auto a = c.Exec(archive, {batch_no, NowMicros(), lay.cutoff_us, s.batch});
            if (!a) return a.error();
            auto d = c.Exec(remove, {batch_no});
            if (!d) return d.error();
            archived = static_cast<std::int64_t>(*a);
            deleted = static_cast<std::int64_t>(*d);
            return {};
          },
          kMaxRetries);
      run.statements += 2;
      if (!st) {
        run.failed = "mysql: archive batch " + std::to_string(batch_no) + ": " + st.error().message;
        return run;
      }
      run.removed_reported += deleted;
      if (archived == 0) break;
    }
    return run;
  }

  // The job as it is usually written: read the partitions, drop every one whose upper bound is
  // at or below the cut-off (whole partitions only), in one ALTER TABLE.
  StrategyRun DropPartitions(mysql::Connection& conn, const Layout& lay) const {
    StrategyRun run;
    auto parts = conn.Query(
        "SELECT PARTITION_NAME, PARTITION_DESCRIPTION FROM information_schema.PARTITIONS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY PARTITION_ORDINAL_POSITION",
        {lay.table});
    ++run.statements;
    if (!parts) {
      run.failed = "mysql: reading the partitions: " + parts.error().message;
      return run;
    }
    std::string names;
    for (const auto& r : parts->rows) {
      const std::string name = r[0].value_or("");
      const std::string bound = r[1].value_or("MAXVALUE");
      if (bound.empty() || bound.find_first_not_of("0123456789") != std::string::npos) continue;
      if (std::stoll(bound) > lay.cutoff_us) continue;
      names += (names.empty() ? "" : ", ") + name;
      run.dropped.push_back({{"partition", name}, {"less_than_us", std::stoll(bound)}});
    }
    if (names.empty()) return run;  // nothing entirely old: eligible rows stay, and are counted
    ++run.statements;
    if (auto st = conn.Execute("ALTER TABLE " + lay.table + " DROP PARTITION " + names); !st) {
      run.failed = "mysql: DROP PARTITION: " + st.error().message;
    }
    return run;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeRetentionStrategies(const StackConfig& config) {
  return std::make_unique<RetentionStrategies>(config);
}

}  // namespace lab::runners
