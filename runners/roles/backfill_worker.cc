// backfill-worker (E-022): fills backfill_item.amount_cents (= amount * 100) over a run's range
// of rows, one of two ways:
//   --strategy big-pass    one UPDATE over [--first-id, --end-id): a single transaction that
//                          holds every row lock of the range until it commits.
//   --strategy controlled  one thread per unfinished shard of backfill_checkpoint (the runner
//                          writes the plan). Each batch is one transaction: lock the shard's
//                          checkpoint (FOR UPDATE), UPDATE the rows [next_id, next_id + --batch)
//                          of the shard, move next_id past them, COMMIT — so the checkpoint and
//                          the rows it covers commit together. Batches are paced by one token
//                          bucket shared by the shards (--rate rows/s), taken before the
//                          transaction so no lock is held while waiting.
// A process killed at any point loses only the batch in flight (rolled back with its checkpoint
// move); a new process with the same arguments resumes at each shard's next_id. Every write adds
// 1 to backfill_count and sets backfilled_by = --worker (a number), so gaps (0) and doubles (> 1)
// are read back with SQL. The checkpoint row lock also keeps two processes from running one batch
// twice. Reports (Emit): strategy, shards, connection_id (one per shard thread), rows (rows
// this process updated), batches, took_ms, done.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runners/common/util.h"
#include "runners/roles/role_common.h"

namespace lab::runners::roles {
namespace {

using namespace std::chrono_literals;

// Paces batches to `rate` rows/s over all shard threads: each batch reserves rows/rate seconds
// of the timeline and waits for its slot.
class RowPacer {
 public:
  explicit RowPacer(std::int64_t rate) : rate_(std::max<std::int64_t>(1, rate)) {}
  void Take(std::int64_t rows) {
    SteadyClock::time_point slot;
    {
      std::lock_guard lock(mu_);
      const auto now = SteadyClock::now();
      if (next_ < now) next_ = now;
      slot = next_;
      next_ += std::chrono::microseconds(rows * 1000000 / rate_);
    }
    std::this_thread::sleep_until(slot);
  }

 private:
  std::int64_t rate_;
  std::mutex mu_;
  SteadyClock::time_point next_ = SteadyClock::now();  // guarded by mu_
};

struct Plan {
  std::string ns;
  std::int64_t worker = 1;  // backfilled_by
  std::string name;         // checkpoint updated_by: "worker#<worker>"
  std::int64_t batch = 500;
  std::int64_t rate = 20000;
  mysql::MysqlConfig mysql;
};

struct ShardTotals {
  std::atomic<std::int64_t> rows{0};
  std::atomic<std::int64_t> batches{0};
  std::atomic<int> failed{0};
};

// One shard, batch after batch, until its checkpoint reaches its end or SIGTERM.
void RunShard(const Plan& plan, int shard, RowPacer& pacer, ShardTotals& totals) {
  auto conn = mysql::Connection::Open(plan.mysql);
  if (!conn) {
    Emit("error", "shard " + std::to_string(shard) + ": " + conn.error().message);
    totals.failed.fetch_add(1);
    return;
  }
  // The runner waits for the server to drop these connections after a kill, so a batch whose
  // COMMIT was already on the wire is settled before it reads the resume point.
  if (auto id = (*conn)->Query("SELECT CONNECTION_ID()")) Emit("connection_id", id->Scalar());
  constexpr std::int64_t kMaxBatches = 100000000;  // bound: 5 M rows at batch 1 is 5 M
  for (std::int64_t i = 0; i < kMaxBatches && !StopRequested(); ++i) {
    pacer.Take(plan.batch);
    bool finished = false;
    std::int64_t updated = 0;
    auto s = mysql::InTransaction(**conn, [&](mysql::Connection& c) -> domain::Status {
      finished = false;
      updated = 0;
      auto cp = c.Query(
          "SELECT next_id, end_id FROM backfill_checkpoint WHERE run_ns = ? AND shard = ? "
          "FOR UPDATE",
          {plan.ns, std::int64_t{shard}});
      if (!cp) return cp.error();
      if (cp->rows.empty() || !cp->rows[0][0] || !cp->rows[0][1]) {
        return domain::MakeError(domain::ErrorCode::kNotFound, "no checkpoint row");
      }
      const std::int64_t next = std::stoll(*cp->rows[0][0]);
      const std::int64_t end = std::stoll(*cp->rows[0][1]);
      if (next >= end) {
        finished = true;
        return {};
      }
      const std::int64_t hi = std::min(next + plan.batch, end);
      auto n = c.Exec(
          "UPDATE backfill_item SET amount_cents = amount * 100, "
          "backfill_count = backfill_count + 1, backfilled_by = ? "
          "WHERE run_ns = ? AND item_id >= ? AND item_id < ?",
          {plan.worker, plan.ns, next, hi});
      if (!n) return n.error();
      updated = static_cast<std::int64_t>(*n);
      auto m = c.Exec(
          "UPDATE backfill_checkpoint SET next_id = ?, batches = batches + 1, "
          "rows_done = rows_done + ?, updated_by = ?, updated_at_us = ? "
          "WHERE run_ns = ? AND shard = ?",
          {hi, updated, plan.name, NowMicros(), plan.ns, std::int64_t{shard}});
      if (!m) return m.error();
      return {};
    });
    if (!s) {
      Emit("error", "shard " + std::to_string(shard) + ": " + s.error().message);
      totals.failed.fetch_add(1);
      return;
    }
    if (finished) return;
    totals.rows.fetch_add(updated);
    totals.batches.fetch_add(1);
  }
}

int RunControlled(const Plan& plan) {
  auto conn = mysql::Connection::Open(plan.mysql);
  if (!conn) {
    Emit("error", conn.error().message);
    return 1;
  }
  auto shards = (*conn)->Query(
      "SELECT shard FROM backfill_checkpoint WHERE run_ns = ? AND next_id < end_id ORDER BY shard",
      {plan.ns});
  if (!shards) {
    Emit("error", shards.error().message);
    return 1;
  }
  Emit("shards", static_cast<std::int64_t>(shards->rows.size()));
  RowPacer pacer(plan.rate);
  ShardTotals totals;
  {
    std::vector<std::jthread> threads;
    for (const auto& row : shards->rows) {
      if (!row[0]) continue;
      const int shard = std::stoi(*row[0]);
      threads.emplace_back([&, shard] { RunShard(plan, shard, pacer, totals); });
    }
  }
  Emit("rows", totals.rows.load());
  Emit("batches", totals.batches.load());
  return totals.failed.load() == 0 ? 0 : 1;
}

int RunBigPass(const Plan& plan, std::int64_t first_id, std::int64_t end_id) {
  auto conn = mysql::Connection::Open(plan.mysql);
  if (!conn) {
    Emit("error", conn.error().message);
    return 1;
  }
  auto n = (*conn)->Exec(
      "UPDATE backfill_item SET amount_cents = amount * 100, backfill_count = backfill_count + 1, "
      "backfilled_by = ? WHERE run_ns = ? AND item_id >= ? AND item_id < ?",
      {plan.worker, plan.ns, first_id, end_id});
  if (!n) {
    Emit("error", n.error().message);
    return 1;
  }
  Emit("rows", static_cast<std::int64_t>(*n));
  Emit("batches", 1);
  return 0;
}

}  // namespace

int RunBackfillWorker(const RoleArgs& args) {
  StopOnSigterm();
  Plan plan;
  plan.ns = args.Get("ns");
  plan.worker = args.Int("worker", 1);
  plan.name = "worker#" + std::to_string(plan.worker);
  plan.batch = std::max<std::int64_t>(1, args.Int("batch", 500));
  plan.rate = std::max<std::int64_t>(1, args.Int("rate", 20000));
  plan.mysql = MysqlFromArgs(args);
  // One statement may update millions of rows: the client must not give up on it first.
  plan.mysql.read_timeout = std::chrono::hours(1);
  plan.mysql.write_timeout = std::chrono::hours(1);
  const std::string strategy = args.Get("strategy", "controlled");
  Emit("strategy", strategy);
  const auto start = SteadyClock::now();
  int rc = 2;
  if (strategy == "big-pass") {
    rc = RunBigPass(plan, args.Int("first-id", 1), args.Int("end-id", 1));
  } else if (strategy == "controlled") {
    rc = RunControlled(plan);
  } else {
    Emit("error", "unknown strategy " + strategy);
  }
  Emit("took_ms", static_cast<std::int64_t>(MsSince(start)));
  if (rc == 0) Emit("done", 1);
  return rc;
}

}  // namespace lab::runners::roles
