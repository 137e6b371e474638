// E-022: an uncontrolled backfill hurts live traffic; a controlled one does not, and resumes
// where it was killed. Each mode seeds `rows` rows of backfill_item (amount set, amount_cents
// 0), starts a live load from outside the backfill — `clients` threads updating random rows
// of that same range (live_updates + 1), paced at `live_rate` ops/s, latency from when each was
// due — measures it alone for `baseline_ms`, then runs the backfill (amount_cents = amount * 100)
// in a real lab-role process (backfill-worker) while the load goes on:
//   failure: one big pass, a single UPDATE over the whole range: every row it has passed stays
//            locked until it commits, so live updates of those rows wait (or time out).
//   success: sharded (`shards` checkpoint rows), batched (`batch` rows per transaction, the
//            checkpoint moved in the same transaction), rate-limited (`rate` rows/s). When the
//            checkpoints say `kill_at_percent` of the range is done the worker is SIGKILLed;
//            once the server has dropped its connections the resume point is read from the
//            checkpoints, and a new process resumes from there.
//            practice=off: the success mode runs the one big pass instead.
// Evidence: live p50/p99 before and during the backfill (self-reported clocks of the load),
// p99_factor = during / before; InnoDB row-lock waits and wait time over the backfill
// (server-wide counters); gaps (backfill_count = 0), doubles (> 1) and wrong values read back
// with SQL; the live updates read back against the load's own count; in success the kill
// (waitpid: SIGKILL), the resume point (checkpoints) and the rows found backfilled at the kill.
#include <signal.h>

#include <atomic>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/experiments/mysql_live_load.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr auto kTail = 300ms;  // the live load goes on this long after the backfill ends
// The baseline p99 the factor divides by is at least this: below it a single fsync or a
// scheduling hiccup of a shared 2-core machine moves a p99 by a multiple.
constexpr double kBaselineFloorMs = 10;

// A well-mixed 64-bit hash (splitmix64): the live load's row for (client, seq), stateless.
std::uint64_t Mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct Settings {
  std::int64_t rows = 0;
  std::int64_t batch = 0;
  std::int64_t shards = 0;
  std::int64_t rate = 0;
  std::int64_t kill_at_percent = 0;
  int clients = 0;
  std::int64_t live_rate = 0;
  std::int64_t baseline_ms = 0;
  bool controlled = false;
};

// What the backfill phase left for the evidence.
struct BackfillOutcome {
  std::string failed;  // non-empty: the mode is inconclusive for this reason
  bool killed = false;
  double kill_at_ms = -1;    // on the live load's clock
  double resume_at_ms = -1;  // the second worker started
  std::string first_status;
  std::int64_t resume_point = -1;
  std::int64_t backfilled_at_kill = -1;
  Json checkpoints_at_kill = Json::array();
  std::int64_t process_rows = 0;  // what the worker(s) said they updated
};

class ControlledBackfill final : public ExperimentBase {
 public:
  explicit ControlledBackfill(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-022"; }

  std::string ConfigurationJson() const override {
    return Json({{"live_update",
                  "UPDATE backfill_item SET live_updates = live_updates + 1 WHERE run_ns = ? "
                  "AND item_id = ? (autocommit)"},
                 {"big_pass",
                  "UPDATE backfill_item SET amount_cents = amount * 100, backfill_count = "
                  "backfill_count + 1 WHERE run_ns = ? AND item_id >= 1 AND item_id < rows + 1"},
                 {"controlled_batch",
                  "BEGIN; SELECT next_id FROM backfill_checkpoint … FOR UPDATE; UPDATE "
                  "backfill_item … item_id in [next_id, next_id + batch); UPDATE "
                  "backfill_checkpoint SET next_id = …; COMMIT"},
                 {"server", "innodb_lock_wait_timeout=5, REPEATABLE READ, sync_binlog=1"}})
        .dump();
  }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    Settings s;
    s.rows = domain::GetInt(ctx.params, "rows");
    s.batch = domain::GetInt(ctx.params, "batch");
    s.shards = std::min(domain::GetInt(ctx.params, "shards"), s.rows);
    s.rate = domain::GetInt(ctx.params, "rate");
    s.kill_at_percent = domain::GetInt(ctx.params, "kill_at_percent");
    s.clients = static_cast<int>(domain::GetInt(ctx.params, "clients"));
    s.live_rate = domain::GetInt(ctx.params, "live_rate");
    s.baseline_ms = domain::GetInt(ctx.params, "baseline_ms");
    s.controlled = mode == "success" && domain::GetString(ctx.params, "practice") != "off";
    const std::string ns = RunNs(ctx, mode);

    auto conn = OpenMysqlWithSchema();
    if (!conn) return Inconclusive(std::move(result), "mysql: " + conn.error().message);
    Created(ctx, mode, result, kArtifactRows, ns);
    if (auto st = Seed(ctx, **conn, ns, s); !st) {
      return Inconclusive(std::move(result), "mysql: seeding: " + st.error().message);
    }
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    Step(ctx, mode + ": " + std::to_string(s.rows) + " rows seeded" +
                  (s.controlled ? ", " + std::to_string(s.shards) + " checkpoint shards" : ""));
    Progress(ctx, 20);

    // The live load, from outside the backfill: random rows of the range being backfilled.
    std::atomic<std::int64_t> acked{0};
    const std::int64_t rows = s.rows;
    LiveLoad load(
        MysqlSettings(), s.clients,
        std::chrono::microseconds(1000000LL * s.clients / std::max<std::int64_t>(1, s.live_rate)),
        [&acked, &ns, rows](mysql::Connection& c, int client, std::int64_t seq) -> domain::Status {
          const auto id =
              static_cast<std::int64_t>(1 + Mix((static_cast<std::uint64_t>(client) << 40) ^
                                                static_cast<std::uint64_t>(seq)) %
                                                static_cast<std::uint64_t>(rows));
          auto n = c.Exec(
              "UPDATE backfill_item SET live_updates = live_updates + 1 "
              "WHERE run_ns = ? AND item_id = ?",
              {ns, id});
          if (!n) return n.error();
          acked.fetch_add(1);
          return {};
        });
    const auto load_bound = std::chrono::milliseconds(s.baseline_ms) + 2 * RoleWait(s.rows) + 30s;
    if (auto st = load.Start(load_bound, ctx.stop); !st) {
      return Inconclusive(std::move(result), "mysql: live load: " + st.error().message);
    }
    Step(ctx, mode + ": live load " + std::to_string(s.live_rate) + " updates/s from " +
                  std::to_string(s.clients) + " clients; baseline " +
                  std::to_string(s.baseline_ms) + " ms");
    SleepFor(std::chrono::milliseconds(s.baseline_ms), ctx.stop);
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");

    auto before = ReadRowLockCounters(**conn);
    if (!before) return Inconclusive(std::move(result), "mysql: " + before.error().message);
    const double from_ms = load.NowMs();
    BackfillOutcome bf = s.controlled ? RunControlled(ctx, mode, result, **conn, ns, s, load)
                                      : RunBigPass(ctx, mode, result, ns, s);
    const double to_ms = load.NowMs();
    auto after = ReadRowLockCounters(**conn);
    SleepFor(kTail, ctx.stop);
    load.Stop();
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    if (!bf.failed.empty()) return Inconclusive(std::move(result), bf.failed);
    if (!after) return Inconclusive(std::move(result), "mysql: " + after.error().message);
    Progress(ctx, 85);

    return Evaluate(ctx, mode, std::move(result), **conn, ns, s, load, from_ms, to_ms, *before,
                    *after, bf, acked.load());
  }

 private:
  // `rows` rows (ids 1..rows) in chunks of 10,000, and in success the shard plan: shard k covers
  // [1 + k * rows / shards, 1 + (k + 1) * rows / shards).
  domain::Status Seed(const domain::RunContext& ctx, mysql::Connection& conn, const std::string& ns,
                      const Settings& s) const {
    const std::string sql =
        "INSERT INTO backfill_item (run_ns, item_id, amount) SELECT ?, ? + n, "
        "1 + MOD((? + n) * 7919, 100000) FROM " +
        TenThousandRows() + " WHERE n < ?";
    for (std::int64_t base = 1; base <= s.rows && !ctx.stop.stop_requested(); base += kSeedChunk) {
      auto n = conn.Exec(sql, {ns, base, base, std::min(kSeedChunk, s.rows - base + 1)});
      if (!n) return n.error();
    }
    if (!s.controlled) return {};
    for (std::int64_t k = 0; k < s.shards; ++k) {
      const std::int64_t first = 1 + k * s.rows / s.shards;
      const std::int64_t end = 1 + (k + 1) * s.rows / s.shards;
      auto n = conn.Exec(
          "INSERT INTO backfill_checkpoint (run_ns, shard, first_id, end_id, next_id, "
          "updated_at_us) VALUES (?, ?, ?, ?, ?, ?)",
          {ns, k, first, end, first, NowMicros()});
      if (!n) return n.error();
    }
    return {};
  }

  // The worker number is what it writes into backfilled_by (1: the first, 2: the resumed one).
  std::vector<std::string> WorkerArgs(const std::string& ns, const Settings& s, int worker) const {
    return {"--ns",       ns,
            "--strategy", "controlled",
            "--batch",    std::to_string(s.batch),
            "--rate",     std::to_string(s.rate),
            "--worker",   std::to_string(worker)};
  }

  BackfillOutcome RunBigPass(const domain::RunContext& ctx, const std::string& mode,
                             domain::ModeResult& result, const std::string& ns,
                             const Settings& s) const {
    BackfillOutcome out;
    Step(ctx, mode + ": one big pass: a single UPDATE over " + std::to_string(s.rows) + " rows");
    auto done = RunRole(ctx, mode, result, "backfill-worker",
                        {"--ns", ns, "--strategy", "big-pass", "--first-id", "1", "--end-id",
                         std::to_string(s.rows + 1), "--worker", "1"},
                        "backfill-big-pass", RoleWait(s.rows));
    if (!done.finished || !done.status.exited || done.status.code != 0) {
      out.failed = "the big pass did not complete: " +
                   (done.finished ? done.status.Describe() : std::string("no exit in time")) + " " +
                   done.Value("error");
    }
    out.process_rows = std::stoll(done.Value("rows", "0"));
    return out;
  }

  // The checkpoints' progress: rows before next_id over all shards (-1 when unreadable).
  std::int64_t CheckpointProgress(mysql::Connection& conn, const std::string& ns) const {
    return TryCount(conn,
                    "SELECT CAST(COALESCE(SUM(next_id - first_id), 0) AS SIGNED) "
                    "FROM backfill_checkpoint WHERE run_ns = ?",
                    {ns});
  }

  BackfillOutcome RunControlled(const domain::RunContext& ctx, const std::string& mode,
                                domain::ModeResult& result, mysql::Connection& conn,
                                const std::string& ns, const Settings& s,
                                const LiveLoad& load) const {
    BackfillOutcome out;
    const std::int64_t target = s.rows * s.kill_at_percent / 100;
    Step(ctx, mode + ": controlled backfill: " + std::to_string(s.shards) + " shards, batch " +
                  std::to_string(s.batch) + ", " + std::to_string(s.rate) +
                  " rows/s; SIGKILL when the checkpoints pass " + std::to_string(target) + " rows");
    auto first =
        StartRole(ctx, mode, result, "backfill-worker", WorkerArgs(ns, s, 1), "backfill#1");
    if (!first) {
      out.failed = "backfill#1: " + first.error().message;
      return out;
    }
    bool exited_early = false;
    WaitUntil(
        [&] {
          if (first->Wait(0ms, ctx.stop)) {
            exited_early = true;
            return true;
          }
          return CheckpointProgress(conn, ns) >= target;
        },
        RoleWait(s.rows), ctx.stop, 10ms);
    // The fault: SIGKILL, then waitpid says how the process ended.
    out.kill_at_ms = load.NowMs();
    first->Signal(SIGKILL);
    RoleOutcome killed = WaitRole(ctx, *first, 10s, result, "backfill#1");
    out.killed = !exited_early && killed.finished && killed.KilledByFailpoint();
    out.first_status = killed.finished ? killed.status.Describe() : "did not end";
    Step(ctx, mode + ": backfill#1 " + out.first_status +
                  (exited_early ? " (it ended before the kill point)" : ""));
    if (ctx.stop.stop_requested()) return out;

    // A COMMIT already on the wire when the process died is still executed by the server:
    // the resume point is read once the server has dropped the dead process's connections.
    std::string ids;
    auto [lo, hi] = killed.values.equal_range("connection_id");
    for (auto it = lo; it != hi; ++it)
      ids += (ids.empty() ? "" : ",") + std::to_string(std::stoll(it->second));
    if (!ids.empty()) {
      const bool gone = WaitUntil(
          [&] {
            return TryCount(conn,
                            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN (" +
                                ids + ")",
                            {}) == 0;
          },
          10s, ctx.stop, 20ms);
      if (!gone) Step(ctx, mode + ": the killed worker's connections were still open after 10 s");
    }
    out.resume_point = CheckpointProgress(conn, ns);
    out.backfilled_at_kill =
        Count(result, conn,
              "SELECT COUNT(*) FROM backfill_item WHERE run_ns = ? AND backfill_count > 0", {ns});
    if (auto cps = conn.Query(
            "SELECT shard, next_id, end_id FROM backfill_checkpoint WHERE run_ns = ? ORDER BY "
            "shard",
            {ns})) {
      for (const auto& r : cps->rows) {
        out.checkpoints_at_kill.push_back({{"shard", std::stoll(r[0].value_or("0"))},
                                           {"next_id", std::stoll(r[1].value_or("0"))},
                                           {"end_id", std::stoll(r[2].value_or("0"))}});
      }
    }
    Step(ctx, mode + ": resume point " + std::to_string(out.resume_point) + " of " +
                  std::to_string(s.rows) + " rows; rows backfilled at the kill " +
                  std::to_string(out.backfilled_at_kill));
    out.process_rows = std::stoll(killed.Value("rows", "0"));  // 0: it died before saying

    out.resume_at_ms = load.NowMs();
    auto second = RunRole(ctx, mode, result, "backfill-worker", WorkerArgs(ns, s, 2), "backfill#2",
                          RoleWait(s.rows));
    if (!second.finished || !second.status.exited || second.status.code != 0) {
      out.failed = "the resumed backfill did not complete: " +
                   (second.finished ? second.status.Describe() : std::string("no exit in time")) +
                   " " + second.Value("error");
    }
    out.process_rows += std::stoll(second.Value("rows", "0"));
    return out;
  }

  domain::ModeResult Evaluate(const domain::RunContext& ctx, const std::string& mode,
                              domain::ModeResult result, mysql::Connection& conn,
                              const std::string& ns, const Settings& s, const LiveLoad& load,
                              double from_ms, double to_ms, const RowLockCounters& before,
                              const RowLockCounters& after, const BackfillOutcome& bf,
                              std::int64_t acked) const {
    auto rows = conn.Query(
        "SELECT COUNT(*), "
        "CAST(COALESCE(SUM(backfill_count >= 1), 0) AS SIGNED), "
        "CAST(COALESCE(SUM(backfill_count = 0), 0) AS SIGNED), "
        "CAST(COALESCE(SUM(backfill_count > 1), 0) AS SIGNED), "
        "CAST(COALESCE(SUM(backfill_count >= 1 AND amount_cents <> amount * 100), 0) AS SIGNED), "
        "CAST(COALESCE(SUM(live_updates), 0) AS SIGNED) "
        "FROM backfill_item WHERE run_ns = ?",
        {ns});
    if (!rows || rows->rows.empty()) {
      return Inconclusive(std::move(result),
                          "mysql: read-back: " + (rows ? "no row" : rows.error().message));
    }
    const auto& r = rows->rows[0];
    auto at = [&](size_t i) { return static_cast<double>(std::stoll(r[i].value_or("0"))); };
    Json by = Json::object();
    if (auto g = conn.Query("SELECT backfilled_by, COUNT(*) FROM backfill_item WHERE run_ns = ? "
                            "GROUP BY backfilled_by",
                            {ns})) {
      for (const auto& row : g->rows) {
        const std::string worker = row[0].value_or("0");
        by[worker == "0" ? "none" : "worker#" + worker] = std::stoll(row[1].value_or("0"));
      }
    }
    Json checkpoints = Json::array();
    if (auto cps =
            conn.Query("SELECT shard, first_id, end_id, next_id, batches, rows_done, updated_by "
                       "FROM backfill_checkpoint WHERE run_ns = ? ORDER BY shard",
                       {ns})) {
      for (const auto& c : cps->rows) {
        checkpoints.push_back({{"shard", std::stoll(c[0].value_or("0"))},
                               {"first_id", std::stoll(c[1].value_or("0"))},
                               {"end_id", std::stoll(c[2].value_or("0"))},
                               {"next_id", std::stoll(c[3].value_or("0"))},
                               {"batches", std::stoll(c[4].value_or("0"))},
                               {"rows_done", std::stoll(c[5].value_or("0"))},
                               {"updated_by", c[6].value_or("")}});
      }
    }

    const auto samples = load.Samples();
    const LiveWindow base = LiveLoad::Before(samples, from_ms);
    const LiveWindow during = LiveLoad::During(samples, from_ms, to_ms);
    auto& m = result.metrics;
    Json provenance = Json::object();
    auto put = [&](const std::string& name, double value, const char* source) {
      m[name] = value;
      provenance[name] = source;
    };
    put("rows", at(0), "read_back");
    put("backfilled", at(1), "read_back");
    put("gaps", at(2), "read_back");
    put("doubles", at(3), "read_back");
    put("wrong_values", at(4), "read_back");
    put("live_updates_read_back", at(5), "read_back");
    put("live_updates_acked", static_cast<double>(acked), "self_reported");
    put("live_lost", std::max(0.0, static_cast<double>(acked) - at(5)), "read_back");
    put("backfill_ms", to_ms - from_ms, "self_reported");
    put("live_ops_before", static_cast<double>(base.ops), "self_reported");
    put("live_ops_during", static_cast<double>(during.ops), "self_reported");
    put("live_errors_during", static_cast<double>(during.errors), "self_reported");
    put("live_p50_before_ms", base.p50_ms, "self_reported");
    put("live_p99_before_ms", base.p99_ms, "self_reported");
    put("live_p50_during_ms", during.p50_ms, "self_reported");
    put("live_p99_during_ms", during.p99_ms, "self_reported");
    put("live_max_during_ms", during.max_ms, "self_reported");
    if (base.ops > 0 && during.ops > 0) {
      put("p99_factor", during.p99_ms / std::max(base.p99_ms, kBaselineFloorMs), "self_reported");
    }
    put("row_lock_waits", static_cast<double>(after.waits - before.waits), "server_counter");
    put("row_lock_time_ms", static_cast<double>(after.time_ms - before.time_ms), "server_counter");
    put("worker_rows_reported", static_cast<double>(bf.process_rows), "self_reported");
    // waitpid's status of the first worker: read from the kernel, not from the process.
    if (mode == "success") put("worker_killed", bf.killed ? 1 : 0, "read_back");
    if (s.controlled) {
      if (bf.resume_point >= 0) {
        put("resume_point", static_cast<double>(bf.resume_point), "read_back");
        put("remaining_at_kill", static_cast<double>(s.rows - bf.resume_point), "read_back");
      }
      if (bf.backfilled_at_kill >= 0)
        put("backfilled_at_kill", static_cast<double>(bf.backfilled_at_kill), "read_back");
    }

    Json details = {
        {"run_ns", ns},
        {"strategy", s.controlled ? "controlled: sharded, batched, rate-limited, checkpointed, "
                                    "killed and resumed"
                                  : "one big pass (a single UPDATE)"},
        {"plan",
         {{"rows", s.rows},
          {"shards", s.controlled ? s.shards : 1},
          {"batch", s.controlled ? s.batch : s.rows},
          {"rate_rows_per_s", s.controlled ? Json(s.rate) : Json("unlimited")},
          {"kill_at_rows", s.controlled ? Json(s.rows * s.kill_at_percent / 100) : Json()}}},
        {"live_load",
         {{"clients", s.clients},
          {"offered_ops_per_s", s.live_rate},
          {"baseline_ms", s.baseline_ms},
          {"reconnect_failures", load.ReconnectFailures()}}},
        {"p99_factor", "live_p99_during_ms / max(live_p99_before_ms, 10 ms)"},
        {"backfill_window_ms", {{"from", from_ms}, {"to", to_ms}}},
        {"latency_series", LiveLoad::Series(samples)},
        {"backfilled_by", by},
        {"checkpoints", checkpoints},
        {"provenance", provenance},
        {"note",
         "latency is measured by the live load from when each update was due; an update that "
         "was waiting when the backfill started or ended counts as during. row_lock_waits and "
         "row_lock_time_ms are deltas of the server-wide Innodb_row_lock_waits / "
         "Innodb_row_lock_time over the backfill: every session's waits (the run holds the "
         "mysql-server lock, so no other run's). worker_rows_reported is what the worker "
         "processes printed (a killed one prints nothing)."}};
    if (s.controlled) {
      details["kill"] = {{"first_process", bf.first_status},
                         {"kill_at_ms", bf.kill_at_ms},
                         {"resume_at_ms", bf.resume_at_ms},
                         {"resume_point", bf.resume_point},
                         {"backfilled_at_kill", bf.backfilled_at_kill},
                         {"checkpoints_at_kill", bf.checkpoints_at_kill}};
    }
    result.details_json = details.dump();
    Step(ctx, mode + ": live p99 " + std::to_string(base.p99_ms) + " ms before -> " +
                  std::to_string(during.p99_ms) + " ms during (" + std::to_string(during.ops) +
                  " updates, " + std::to_string(during.errors) + " failed); gaps " +
                  std::to_string(static_cast<std::int64_t>(at(2))) + ", doubles " +
                  std::to_string(static_cast<std::int64_t>(at(3))) + "; row lock waits " +
                  std::to_string(after.waits - before.waits));
    Progress(ctx, 100);
    return result;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeControlledBackfill(const StackConfig& config) {
  return std::make_unique<ControlledBackfill>(config);
}

}  // namespace lab::runners
