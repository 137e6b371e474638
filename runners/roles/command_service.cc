// command-service: applies orders in MySQL. `--mode outbox` writes the outbox row in the same
// transaction; `--mode direct` produces to Kafka after the commit (the anti-pattern of E-002).
// Failpoint: after-commit-before-produce (dies after the Nth commit, before its produce, with
// whatever the producer still buffers).
#include <nlohmann/json.hpp>
#include <thread>

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
  const std::int64_t poison_every = args.Int("poison-every", 0);
  const std::string topic = args.Get("topic");
  const bool update = args.Get("op", "place") == "update";  // update existing orders (version+1)
  Failpoint failpoint(args);

  auto conn = mysql::Connection::Open(MysqlFromArgs(args));
  if (!conn) {
    Emit("error", conn.error().message);
    return 1;
  }
  std::unique_ptr<kafka::Producer> producer;
  if (mode == "direct") {
    auto p = kafka::Producer::Create(args.Get("bootstrap"),
                                     {{"enable.idempotence", "true"}, {"linger.ms", "20"}});
    if (!p) {
      Emit("error", p.error().message);
      return 1;
    }
    producer = std::move(*p);
  }
  std::int64_t committed = 0;
  auto started = SteadyClock::now();
  for (std::int64_t id = start_id; id < start_id + events; ++id) {
    if (rate > 0) {  // offered load: event i is due at i/rate seconds
      auto due = started + std::chrono::microseconds((id - start_id) * 1000000 / rate);
      std::this_thread::sleep_until(due);
    }
    const std::string event_id = ns + "-" + std::to_string(id) + (update ? "-u" : "");
    const std::int64_t amount = 100 + id % 900 + (update ? 7 : 0);
    const std::int64_t version = update ? 2 : 1;
    const std::int64_t now = NowMicros();
    nlohmann::json payload = {
        {"event_id", event_id},
        {"order_id", id},
        {"amount", amount},
        {"version", version},
        {"committed_at_us", now},
        {"poison", poison_every > 0 && id % poison_every == 0},
        {"product_id", poison_every > 0 && id % poison_every == 0 ? 1000 + id : 1}};
    auto s = mysql::InTransaction(**conn, [&](mysql::Connection& c) -> domain::Status {
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
            {ns, event_id, id, std::string(update ? "OrderUpdated" : "OrderPlaced"), payload.dump(),
             now});
        if (!o) return o.error();
      }
      return {};
    });
    if (!s) {
      Emit("error", s.error().message);
      return 1;
    }
    ++committed;
    failpoint.Hit("after-commit-before-produce");
    if (producer) {
      if (auto p = producer->Produce(topic, -1, std::to_string(id), payload.dump(),
                                     {{"event_id", event_id}});
          !p) {
        Emit("produce_error", p.error().message);
      }
      producer->Poll(std::chrono::milliseconds(0));
    }
  }
  std::int64_t acked = 0;
  if (producer) {
    (void)producer->Flush(std::chrono::milliseconds(30000));
    for (const auto& r : producer->TakeReports())
      acked += r.err == RD_KAFKA_RESP_ERR_NO_ERROR ? 1 : 0;
  }
  Emit("committed", committed);
  Emit("acked", acked);
  return 0;
}

}  // namespace lab::runners::roles
