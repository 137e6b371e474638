// outbox-relay: polls pending outbox rows of its run_ns (published_at_us = 0; batch, FOR UPDATE
// SKIP LOCKED), publishes them with an idempotent producer (acks=all), marks the delivered ones
// published (published_at_us = now: an in-place update since migration 002);
// undelivered rows stay pending and are retried with backoff. Per batch, inside one MySQL
// transaction: one SELECT, every record produced asynchronously, ONE flush, ONE UPDATE for the
// delivered ids, one COMMIT — so the per-record cost is the client's, and the fsync of the
// commit and the Kafka round trip are paid once per batch (bench/relay_drain measures it). Exits
// after --idle-exit-ms with nothing pending. A fatal producer error (librdkafka 2.0.2's
// OUT_OF_ORDER_SEQUENCE_NUMBER) re-creates the producer and is reported as a client-library
// failure. Failpoints: after-produce-before-flush (records may still be in the client's buffer),
// after-produce-before-mark (records delivered, rows not marked: they will be published again).
#include <algorithm>
#include <deque>
#include <future>
#include <string>
#include <thread>

#include "runners/common/util.h"
#include "runners/kafka/kafka_client.h"
#include "runners/roles/role_common.h"

namespace lab::runners::roles {
namespace {

// reconnect.backoff.max.ms: librdkafka doubles the wait between reconnects up to 10 s by
// default, so after a long outage (N19) the relay could idle for seconds with every broker back.
domain::Result<std::unique_ptr<kafka::Producer>> NewProducer(const RoleArgs& args) {
  return kafka::Producer::Create(args.Get("bootstrap"), {{"enable.idempotence", "true"},
                                                         {"acks", "all"},
                                                         {"linger.ms", "5"},
                                                         {"batch.num.messages", "10000"},
                                                         {"message.timeout.ms", "10000"},
                                                         {"reconnect.backoff.max.ms", "1000"}});
}

// A predicate matching exactly `ids`: runs of consecutive ids as BETWEEN, the rest as IN.
// Exact because every id inside a run is one of ours (rows we hold locked), so no row the relay
// did not publish is marked. Why not one IN list: MariaDB updates 5,000 rows about twice as fast
// through a few ranges as through 5,000 IN points (measured: ~0.15 s vs ~0.3 s on this stack).
// A range stops one id short of its run and the run's last id joins the IN list, so the row an
// InnoDB range scan reads past its end is always one this transaction holds, never the next
// batch's first row (locked by the other connection, whose transaction waits for this mark). A
// precaution beside the SELECT's FORCE INDEX, which removed the wait cycle actually observed.
std::string IdPredicate(std::vector<std::int64_t> ids) {
  std::sort(ids.begin(), ids.end());
  std::string ranges;
  std::string singles;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (j - i >= 2) {
      ranges += (ranges.empty() ? "" : " OR ") + std::string("id BETWEEN ") +
                std::to_string(ids[i]) + " AND " + std::to_string(ids[j] - 1);
      singles += (singles.empty() ? "" : ",") + std::to_string(ids[j]);
    } else {
      for (std::size_t k = i; k <= j; ++k)
        singles += (singles.empty() ? "" : ",") + std::to_string(ids[k]);
    }
    i = j + 1;
  }
  if (!singles.empty())
    ranges += std::string(ranges.empty() ? "" : " OR ") + "id IN (" + singles + ")";
  return "(" + ranges + ")";
}

// What marking one batch did.
struct Marked {
  std::int64_t published = 0;
  std::int64_t failed = 0;
  double mark_ms = 0;    // the UPDATE statements
  double commit_ms = 0;  // the COMMIT (fsync of redo log and binlog)
};

// Marks the delivered ids published (and counts an attempt on the undelivered ones), then
// commits the batch's transaction — the one that holds the rows' FOR UPDATE locks.
Marked MarkAndCommit(mysql::Connection& conn, const std::vector<std::int64_t>& ok,
                     const std::vector<std::int64_t>& not_ok) {
  Marked m;
  auto t_mark = SteadyClock::now();
  // Text protocol on purpose: the id predicate makes every statement text unique, and a
  // prepared (cached) statement per batch would pile up server-side statements.
  bool marked = true;
  if (!ok.empty()) {
    auto u =
        conn.Execute("UPDATE outbox_event SET published_at_us = " + std::to_string(NowMicros()) +
                     ", attempts = attempts + 1 WHERE " + IdPredicate(ok));
    if (!u) {
      Emit("error", u.error().message);  // e.g. a lock wait timeout: the rows stay pending
      marked = false;
    }
  }
  if (!not_ok.empty()) {
    auto u = conn.Execute("UPDATE outbox_event SET attempts = attempts + 1 WHERE " +
                          IdPredicate(not_ok));
    if (!u) Emit("error", u.error().message);
  }
  m.mark_ms = MsSince(t_mark);
  auto t_commit = SteadyClock::now();
  if (auto c = conn.Commit(); !c) {
    Emit("error", c.error().message);  // rolled back: the rows stay pending, published again
  } else if (marked) {
    m.published = static_cast<std::int64_t>(ok.size());
  }
  m.failed = static_cast<std::int64_t>(not_ok.size());
  m.commit_ms = MsSince(t_commit);
  return m;
}

}  // namespace

// `--mark-workers W` (default 1) MySQL transactions may be marking at once: while batch k's
// UPDATE and COMMIT run in a background task on its own connection, batch k+1 is selected on
// another connection and produced — SKIP LOCKED skips batch k's rows, locked until their
// commit. Why: the mark (an indexed column changed on every row) is the slowest step, and it
// needs neither Kafka nor the next batch. Batch k+1 is produced only after batch k's flush, so
// records keep their id order in Kafka; after a batch with delivery failures every mark is
// waited for, so the retried rows are selected before newer ones. With a failpoint armed,
// earlier marks have committed before a batch's failpoints fire: a kill leaves exactly the
// current batch unmarked, as in a relay without the overlap. More than one mark at once did not
// pay on this stack (bench/README.md: the marks and the next SELECT contend on the same index),
// nor did selecting the next batch while the current one is in Kafka, nor a scan cursor.
int RunOutboxRelay(const RoleArgs& args) {
  const std::string ns = args.Get("ns");
  const std::string topic = args.Get("topic");
  const std::int64_t batch = args.Int("batch", 5000);
  const auto idle_exit = std::chrono::milliseconds(args.Int("idle-exit-ms", 1500));
  const auto mark_workers =
      static_cast<std::size_t>(std::clamp<std::int64_t>(args.Int("mark-workers", 1), 1, 8));
  Failpoint failpoint(args);
  const bool failpoint_armed =
      failpoint.Armed("after-produce-before-flush") || failpoint.Armed("after-produce-before-mark");
  // One connection per mark in flight, plus the one selecting the next batch.
  std::vector<std::unique_ptr<mysql::Connection>> conns(mark_workers + 1);
  for (auto& c : conns) {
    auto opened = mysql::Connection::Open(MysqlFromArgs(args));
    if (!opened) {
      Emit("error", opened.error().message);
      return 1;
    }
    c = std::move(*opened);
    // READ COMMITTED: no gap or next-key locks. Under REPEATABLE READ, a mark's id range locks
    // the record after its end, which is the first row of the next batch (held by the other
    // connection) or the end of the table (where the command-service inserts): the mark would
    // wait for them. Row locks, all this relay needs, are the same in both levels.
    if (auto s = c->Execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"); !s) {
      Emit("error", s.error().message);
      return 1;
    }
  }
  auto producer = NewProducer(args);
  if (!producer) {
    Emit("error", producer.error().message);
    return 1;
  }
  std::int64_t published = 0;
  std::int64_t produced = 0;
  std::int64_t failed = 0;
  auto idle_since = SteadyClock::now();
  auto backoff = std::chrono::milliseconds(20);
  // Where the time goes, summed over batches (printed at exit; bench/relay_drain shows them).
  double select_ms = 0;
  double produce_ms = 0;
  double mark_ms = 0;
  double commit_ms = 0;
  double wait_mark_ms = 0;  // time the loop waited for the previous batch's mark
  std::int64_t batches = 0;
  std::deque<std::future<Marked>> in_flight;  // marks of earlier batches, oldest first
  auto settle_oldest = [&] {
    auto t_wait = SteadyClock::now();
    Marked m = in_flight.front().get();
    in_flight.pop_front();
    wait_mark_ms += MsSince(t_wait);
    published += m.published;
    failed += m.failed;
    mark_ms += m.mark_ms;
    commit_ms += m.commit_ms;
  };
  auto settle = [&] {
    while (!in_flight.empty()) settle_oldest();
  };
  std::size_t turn = 0;
  while (true) {
    mysql::Connection& conn = *conns[turn];
    auto t_select = SteadyClock::now();
    if (auto s = conn.Begin(); !s) {
      Emit("error", s.error().message);
      settle();
      return 1;
    }
    // FORCE INDEX: every batch must lock through the same index. A batch read through PRIMARY
    // (the optimizer's choice for ORDER BY id LIMIT, some of the time) locks no entry of
    // ix_outbox_pending; the next batch, reading through it, then locks those entries before it
    // skips their (locked) rows and keeps them — and the first batch's mark, which must change
    // them, waits on a transaction that waits for it (seen: 5 s lock wait timeouts in E-001).
    auto rows = conn.Query(
        "SELECT id, event_id, aggregate_id, payload FROM outbox_event FORCE INDEX "
        "(ix_outbox_pending) WHERE run_ns = ? AND published_at_us = 0 ORDER BY id LIMIT ? "
        "FOR UPDATE SKIP LOCKED",
        {ns, batch});
    if (!rows) {
      (void)conn.Rollback();
      Emit("error", rows.error().message);
      std::this_thread::sleep_for(backoff);
      continue;
    }
    if (rows->rows.empty()) {
      (void)conn.Commit();
      if (!in_flight.empty()) {  // rows of batches being marked are skipped: not idle yet
        settle();
        continue;
      }
      if (SteadyClock::now() - idle_since > idle_exit) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    idle_since = SteadyClock::now();
    ++batches;
    select_ms += MsSince(t_select);
    auto t_produce = SteadyClock::now();
    for (const auto& r : rows->rows) {
      std::int64_t id = std::stoll(*r[0]);
      if (auto p = (*producer)->Produce(topic, -1, *r[2], *r[3], {{"event_id", *r[1]}}, id); !p) {
        Emit("produce_error", p.error().message);
      }
      ++produced;
      failpoint.Hit("after-produce-before-flush");
    }
    (void)(*producer)->Flush(std::chrono::milliseconds(12000));
    std::vector<std::int64_t> ok;
    std::vector<std::int64_t> not_ok;
    for (const auto& report : (*producer)->TakeReports()) {
      if (report.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ok.push_back(report.seq);
      } else {
        not_ok.push_back(report.seq);
        auto lib = kafka::ClassifyClientLibraryFailure(report.err, false, "outbox-relay delivery");
        Emit("delivery_error",
             std::string(rd_kafka_err2name(report.err)) + (lib ? " " + *lib : ""));
      }
    }
    produce_ms += MsSince(t_produce);
    if (failpoint_armed) settle();
    for (std::size_t i = 0; i < ok.size(); ++i) failpoint.Hit("after-produce-before-mark");
    // The connection after this one is the next batch's: its earlier mark must be done.
    if (in_flight.size() >= mark_workers) settle_oldest();
    in_flight.push_back(std::async(std::launch::async, [&conn, ok = std::move(ok), not_ok] {
      return MarkAndCommit(conn, ok, not_ok);
    }));
    turn = (turn + 1) % conns.size();
    if (auto fatal = (*producer)->FatalError()) {
      Emit("client_library_failure",
           "outbox-relay: " + *fatal +
               " (librdkafka 2.0.2 idempotent producer; fixed upstream in 2.3.0 "
               "#4438); producer re-created");
      (*producer)->SetFlushOnDestroy(std::chrono::milliseconds(0));
      producer = NewProducer(args);
      if (!producer) {
        Emit("error", producer.error().message);
        settle();
        return 1;
      }
    }
    if (!not_ok.empty()) {
      settle();
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
    } else {
      backoff = std::chrono::milliseconds(20);
    }
  }
  settle();
  Emit("produced", produced);
  Emit("published", published);
  Emit("delivery_failures", failed);
  Emit("batches", batches);
  Emit("select_ms", static_cast<std::int64_t>(select_ms));
  Emit("produce_flush_ms", static_cast<std::int64_t>(produce_ms));
  Emit("mark_ms", static_cast<std::int64_t>(mark_ms));
  Emit("commit_ms", static_cast<std::int64_t>(commit_ms));
  Emit("wait_mark_ms", static_cast<std::int64_t>(wait_mark_ms));
  return 0;
}

}  // namespace lab::runners::roles
