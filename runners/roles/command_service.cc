// command-service: applies orders in MySQL. `--mode outbox` writes the outbox row in the same
// transaction; `--mode direct` produces to Kafka after the commit (the anti-pattern of E-002).
// `--rate R` offers R commands/s (command i is due at i/R s after the start); `--concurrency C`
// runs C workers, each with its own MySQL connection. Why several: MariaDB here is durable
// (innodb_flush_log_at_trx_commit=1, sync_binlog=1), so one connection's commits are serialised
// on fsync (~140 commits/s measured on this stack); concurrent commits share a group commit.
// Failpoint: after-commit-before-produce (dies after the Nth commit, before its produce, with
// whatever the producer still buffers). `--message-timeout-ms M` bounds the direct producer's
// delivery (librdkafka's message.timeout.ms; default 300 s): a record it cannot deliver within M
// fails (N19's broker outage). SIGTERM stops the workers after the command in hand; the
// producer is then flushed and the counts printed as at a normal end.
// Output: committed, acked, delivery_failed and produce_errors (direct mode), elapsed_ms (first due
// time to last commit), commit_p50_us and commit_p99_us (BEGIN to COMMIT returned), late_p99_us
// (how far behind its due time a command started: the offered load was really offered when this
// stays small).
#include <algorithm>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "runners/common/util.h"
#include "runners/kafka/kafka_client.h"
#include "runners/roles/role_common.h"

namespace lab::runners::roles {

int RunCommandService(const RoleArgs& args) {
  const std::string ns = args.Get("ns");
  const std::string mode = args.Get("mode", "outbox");
  const std::int64_t events = args.Int("events", 100);
  const std::int64_t start_id = args.Int("start-id", 1);
  const std::int64_t rate = args.Int("rate", 0);
  const auto concurrency =
      static_cast<int>(std::clamp<std::int64_t>(args.Int("concurrency", 1), 1, 64));
  const std::int64_t poison_every = args.Int("poison-every", 0);
  const std::string topic = args.Get("topic");
  const bool update = args.Get("op", "place") == "update";  // update existing orders (version+1)
  const std::int64_t message_timeout_ms = args.Int("message-timeout-ms", 0);
  Failpoint failpoint(args);
  StopOnSigterm();

  std::vector<std::unique_ptr<mysql::Connection>> conns;
  for (int w = 0; w < concurrency; ++w) {
    auto conn = mysql::Connection::Open(MysqlFromArgs(args));
    if (!conn) {
      Emit("error", conn.error().message);
      return 1;
    }
    conns.push_back(std::move(*conn));
  }
  std::mutex mu;  // guards producer, failpoint and the sample vectors below
  std::unique_ptr<kafka::Producer> producer;
  if (mode == "direct") {
    kafka::ConfigMap conf = {{"enable.idempotence", "true"}, {"linger.ms", "20"}};
    if (message_timeout_ms > 0)
      conf.emplace_back("message.timeout.ms", std::to_string(message_timeout_ms));
    auto p = kafka::Producer::Create(args.Get("bootstrap"), std::move(conf));
    if (!p) {
      Emit("error", p.error().message);
      return 1;
    }
    producer = std::move(*p);
  }
  std::vector<double> commit_us;    // guarded by mu
  std::vector<double> late_us;      // guarded by mu
  std::int64_t produce_errors = 0;  // guarded by mu
  std::atomic<std::int64_t> next{start_id};
  std::atomic<std::int64_t> committed{0};
  std::atomic<bool> failed{false};
  const auto started = SteadyClock::now();

  auto worker = [&](mysql::Connection& conn) {
    std::vector<double> my_commit;
    std::vector<double> my_late;
    while (!failed && !StopRequested()) {
      const std::int64_t id = next++;
      if (id >= start_id + events) break;
      if (rate > 0) {  // offered load: command i is due at i/rate seconds
        auto due = started + std::chrono::microseconds((id - start_id) * 1000000 / rate);
        std::this_thread::sleep_until(due);
        my_late.push_back(
            std::chrono::duration<double, std::micro>(SteadyClock::now() - due).count());
      }
      const std::string event_id = ns + "-" + std::to_string(id) + (update ? "-u" : "");
      const std::int64_t amount = 100 + id % 900 + (update ? 7 : 0);
      const std::int64_t version = update ? 2 : 1;
      const auto t0 = SteadyClock::now();
      const std::int64_t now = NowMicros();
      nlohmann::json payload = {
          {"event_id", event_id},
          {"order_id", id},
          {"amount", amount},
          {"version", version},
          {"committed_at_us", now},
          {"poison", poison_every > 0 && id % poison_every == 0},
          {"product_id", poison_every > 0 && id % poison_every == 0 ? 1000 + id : 1}};
      auto s = mysql::InTransaction(conn, [&](mysql::Connection& c) -> domain::Status {
        auto r =
            update
                ? c.Exec(
                      "UPDATE orders SET amount = ?, version = ? WHERE run_ns = ? AND order_id = ?",
                      {amount, version, ns, id})
                : c.Exec(
                      "INSERT INTO orders (run_ns, order_id, amount, version, created_at_us) "
                      "VALUES (?,?,?,1,?)",
                      {ns, id, amount, now});
        if (!r) return r.error();
        if (mode == "outbox") {
          auto o = c.Exec(
              "INSERT INTO outbox_event (run_ns, event_id, aggregate_id, event_type, payload, "
              "created_at_us) "
              "VALUES (?,?,?,?,?,?)",
              {ns, event_id, id, std::string(update ? "OrderUpdated" : "OrderPlaced"),
               payload.dump(), now});
          if (!o) return o.error();
        }
        return {};
      });
      if (!s) {
        Emit("error", s.error().message);
        failed = true;
        break;
      }
      my_commit.push_back(
          std::chrono::duration<double, std::micro>(SteadyClock::now() - t0).count());
      ++committed;
      std::lock_guard lock(mu);
      failpoint.Hit("after-commit-before-produce");
      if (producer) {
        if (auto p = producer->Produce(topic, -1, std::to_string(id), payload.dump(),
                                       {{"event_id", event_id}});
            !p) {
          // The first few verbatim; a long outage can refuse millions (the count is printed).
          if (++produce_errors <= 10) Emit("produce_error", p.error().message);
        }
        producer->Poll(std::chrono::milliseconds(0));
      }
    }
    std::lock_guard lock(mu);
    commit_us.insert(commit_us.end(), my_commit.begin(), my_commit.end());
    late_us.insert(late_us.end(), my_late.begin(), my_late.end());
  };
  if (concurrency == 1) {
    worker(*conns[0]);  // on this thread: a failpoint kill looks exactly as it always did
  } else {
    std::vector<std::jthread> workers;
    for (auto& c : conns) workers.emplace_back([&worker, &c] { worker(*c); });
  }
  const double elapsed_ms = MsSince(started);
  std::int64_t acked = 0;
  std::int64_t delivery_failed = 0;
  if (producer) {
    (void)producer->Flush(std::chrono::milliseconds(30000));
    for (const auto& r : producer->TakeReports()) {
      acked += r.err == RD_KAFKA_RESP_ERR_NO_ERROR ? 1 : 0;
      delivery_failed += r.err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : 1;
    }
  }
  Emit("committed", committed.load());
  Emit("acked", acked);
  if (producer) {
    Emit("delivery_failed", delivery_failed);
    Emit("produce_errors", produce_errors);
  }
  Emit("elapsed_ms", static_cast<std::int64_t>(elapsed_ms));
  Emit("commit_p50_us", static_cast<std::int64_t>(Percentile(commit_us, 0.50)));
  Emit("commit_p99_us", static_cast<std::int64_t>(Percentile(commit_us, 0.99)));
  if (rate > 0) Emit("late_p99_us", static_cast<std::int64_t>(Percentile(late_us, 0.99)));
  return failed ? 1 : 0;
}

}  // namespace lab::runners::roles
