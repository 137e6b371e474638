// replay-worker: reads the DLQ from the beginning (a fresh group per round), replays each
// message that passes the filter (a substring of its `error` header) to the target topic at
// most --rate per second, and writes one replay_audit row per message considered.
#include <nlohmann/json.hpp>
#include <thread>

#include "runners/common/util.h"
#include "runners/kafka/kafka_client.h"
#include "runners/roles/role_common.h"

namespace lab::runners::roles {

int RunReplayWorker(const RoleArgs& args) {
  const std::string ns = args.Get("ns");
  const std::string dlq = args.Get("dlq");
  const std::string target = args.Get("target");
  const std::int64_t round = args.Int("round", 1);
  const std::int64_t rate = std::max<std::int64_t>(1, args.Int("rate", 100));
  const std::string filter = args.Get("filter");
  const auto idle_exit = std::chrono::milliseconds(args.Int("idle-exit-ms", 2000));
  auto conn = mysql::Connection::Open(MysqlFromArgs(args));
  if (!conn) {
    Emit("error", conn.error().message);
    return 1;
  }
  auto producer = kafka::Producer::Create(args.Get("bootstrap"), {{"enable.idempotence", "true"}});
  auto consumer = kafka::Consumer::Create(args.Get("bootstrap"), args.Get("group"),
                                          {{"auto.offset.reset", "earliest"}});
  if (!producer || !consumer) {
    Emit("error", !producer ? producer.error().message : consumer.error().message);
    return 1;
  }
  if (auto s = (*consumer)->Subscribe({dlq}); !s) {
    Emit("error", s.error().message);
    return 1;
  }
  std::int64_t replayed = 0;
  std::int64_t filtered = 0;
  auto started = SteadyClock::now();
  auto last = SteadyClock::now();
  bool assigned = false;
  while (true) {
    auto polled = (*consumer)->Poll(100, std::chrono::milliseconds(200));
    if (!polled) continue;
    if ((*consumer)->assigned_count() > 0) assigned = true;
    if (polled->empty()) {
      if (assigned && SteadyClock::now() - last > idle_exit) break;
      continue;
    }
    last = SteadyClock::now();
    for (const auto& m : *polled) {
      std::string event_id;
      std::string error;
      std::string origin_topic = m.topic;
      std::string origin_partition = std::to_string(m.partition);
      std::string origin_offset = std::to_string(m.offset);
      for (const auto& [k, v] : m.headers) {
        if (k == "event_id") event_id = v;
        if (k == "error") error = v;
        if (k == "origin-topic") origin_topic = v;
        if (k == "origin-partition") origin_partition = v;
        if (k == "origin-offset") origin_offset = v;
      }
      bool pass = filter.empty() || error.find(filter) != std::string::npos;
      if (pass) {
        // Rate limit: the n-th replay is due at n/rate seconds after the start.
        std::this_thread::sleep_until(started +
                                      std::chrono::microseconds(replayed * 1000000 / rate));
        (void)(*producer)->Produce(
            target, -1, m.key, m.value,
            {{"event_id", event_id}, {"replayed-round", std::to_string(round)}});
        ++replayed;
      } else {
        ++filtered;
      }
      auto a = (*conn)->Exec(
          "INSERT INTO replay_audit (run_ns, replay_round, event_id, origin_topic, "
          "origin_partition, origin_offset, "
          "outcome, replayed_at_us) VALUES (?,?,?,?,?,?,?,?)",
          {ns, round, event_id, origin_topic, std::stoll(origin_partition),
           std::stoll(origin_offset), std::string(pass ? "replayed" : "skipped-filter"),
           NowMicros()});
      if (!a) Emit("error", a.error().message);
    }
    (void)(*producer)->Flush(std::chrono::milliseconds(10000));
    (void)(*consumer)->CommitCurrent();
  }
  (void)(*producer)->Flush(std::chrono::milliseconds(10000));
  (void)(*consumer)->Close();
  Emit("replayed", replayed);
  Emit("filtered", filtered);
  return 0;
}

}  // namespace lab::runners::roles
