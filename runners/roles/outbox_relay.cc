// outbox-relay: polls pending outbox rows of its run_ns (batch, FOR UPDATE SKIP LOCKED),
// publishes them with an idempotent producer (acks=all), marks the delivered ones published;
// undelivered rows stay pending and are retried with backoff. Exits after --idle-exit-ms with
// nothing pending. A fatal producer error (librdkafka 2.0.2's OUT_OF_ORDER_SEQUENCE_NUMBER)
// re-creates the producer and is reported as a client-library failure.
// Failpoints: after-produce-before-flush (records may still be in the client's buffer),
// after-produce-before-mark (records delivered, rows not marked: they will be published again).
#include <string>
#include <thread>

#include "runners/common/util.h"
#include "runners/kafka/kafka_client.h"
#include "runners/roles/role_common.h"

namespace lab::runners::roles {
namespace {

domain::Result<std::unique_ptr<kafka::Producer>> NewProducer(const RoleArgs& args) {
  return kafka::Producer::Create(args.Get("bootstrap"), {{"enable.idempotence", "true"},
                                                         {"acks", "all"},
                                                         {"linger.ms", "5"},
                                                         {"batch.num.messages", "10000"},
                                                         {"message.timeout.ms", "10000"}});
}

std::string IdList(const std::vector<std::int64_t>& ids) {
  std::string out;
  for (auto id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out;
}

}  // namespace

int RunOutboxRelay(const RoleArgs& args) {
  const std::string ns = args.Get("ns");
  const std::string topic = args.Get("topic");
  const std::int64_t batch = args.Int("batch", 500);
  const auto idle_exit = std::chrono::milliseconds(args.Int("idle-exit-ms", 1500));
  Failpoint failpoint(args);
  auto conn = mysql::Connection::Open(MysqlFromArgs(args));
  if (!conn) {
    Emit("error", conn.error().message);
    return 1;
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
  while (true) {
    if (auto s = (*conn)->Begin(); !s) {
      Emit("error", s.error().message);
      return 1;
    }
    auto rows = (*conn)->Query(
        "SELECT id, event_id, aggregate_id, payload FROM outbox_event WHERE run_ns = ? AND "
        "published_at_us IS NULL ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED",
        {ns, batch});
    if (!rows) {
      (void)(*conn)->Rollback();
      Emit("error", rows.error().message);
      std::this_thread::sleep_for(backoff);
      continue;
    }
    if (rows->rows.empty()) {
      (void)(*conn)->Commit();
      if (SteadyClock::now() - idle_since > idle_exit) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    idle_since = SteadyClock::now();
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
    for (std::size_t i = 0; i < ok.size(); ++i) failpoint.Hit("after-produce-before-mark");
    const std::int64_t now = NowMicros();
    if (!ok.empty()) {
      auto u = (*conn)->Exec(
          "UPDATE outbox_event SET published_at_us = ?, attempts = attempts + 1 WHERE id IN (" +
              IdList(ok) + ")",
          {now});
      if (!u) Emit("error", u.error().message);
    }
    if (!not_ok.empty()) {
      (void)(*conn)->Exec(
          "UPDATE outbox_event SET attempts = attempts + 1 WHERE id IN (" + IdList(not_ok) + ")",
          {});
    }
    if (auto c = (*conn)->Commit(); !c) Emit("error", c.error().message);
    published += static_cast<std::int64_t>(ok.size());
    failed += static_cast<std::int64_t>(not_ok.size());
    if (auto fatal = (*producer)->FatalError()) {
      Emit("client_library_failure",
           "outbox-relay: " + *fatal +
               " (librdkafka 2.0.2 idempotent producer; fixed upstream in 2.3.0 "
               "#4438); producer re-created");
      (*producer)->SetFlushOnDestroy(std::chrono::milliseconds(0));
      producer = NewProducer(args);
      if (!producer) {
        Emit("error", producer.error().message);
        return 1;
      }
    }
    if (!not_ok.empty()) {
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
    } else {
      backoff = std::chrono::milliseconds(20);
    }
  }
  Emit("produced", produced);
  Emit("published", published);
  Emit("delivery_failures", failed);
  return 0;
}

}  // namespace lab::runners::roles
