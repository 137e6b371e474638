// replay-worker: reads the DLQ from the beginning (a fresh group per round), replays each
// message that passes the filter (a substring of its `error` header) to the target topic at
// most --rate per second, and writes one replay_audit row per message considered, after its
// delivery is known (outcome replayed | replay-failed:<error> | skipped-filter).
// The replayed copy keeps the key, the value and the event_id header, and carries
// `replayed-round` so consumers and read-backs can tell it from the original.
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "runners/common/util.h"
#include "runners/kafka/kafka_client.h"
#include "runners/roles/role_common.h"

namespace lab::runners::roles {
namespace {

domain::Result<std::unique_ptr<kafka::Producer>> NewProducer(const RoleArgs& args) {
  return kafka::Producer::Create(args.Get("bootstrap"),
                                 {{"enable.idempotence", "true"}, {"acks", "all"}});
}

struct Considered {
  std::string event_id;
  std::string origin_topic;
  std::int64_t origin_partition = -1;
  std::int64_t origin_offset = -1;
  bool pass = false;
  std::int64_t replayed_at_us = 0;
};

std::int64_t ToInt(const std::string& text, std::int64_t def) {
  try {
    return std::stoll(text);
  } catch (const std::exception&) {
    return def;
  }
}

}  // namespace

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
  auto producer = NewProducer(args);
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
  std::int64_t failed = 0;
  std::int64_t filtered = 0;
  std::int64_t audit_errors = 0;
  // The rate limiter's clock starts at the first replay, not at process start: the group join
  // takes seconds and would otherwise let a burst through unthrottled.
  std::optional<SteadyClock::time_point> first_replay;
  SteadyClock::time_point last_replay;
  std::int64_t enqueued = 0;
  auto last = SteadyClock::now();
  bool assigned = false;
  while (true) {
    auto polled = (*consumer)->Poll(100, std::chrono::milliseconds(200));
    if (!polled) {
      Emit("consume_error", polled.error().message);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    if (!assigned && (*consumer)->assigned_count() > 0) {
      assigned = true;
      last = SteadyClock::now();  // idle time counts from the assignment
    }
    if (polled->empty()) {
      if (assigned && SteadyClock::now() - last > idle_exit) break;
      continue;
    }
    last = SteadyClock::now();
    std::vector<Considered> batch;
    for (const auto& m : *polled) {
      Considered c;
      c.origin_topic = m.topic;
      c.origin_partition = m.partition;
      c.origin_offset = m.offset;
      std::string error;
      for (const auto& [k, v] : m.headers) {
        if (k == "event_id") c.event_id = v;
        if (k == "error") error = v;
        if (k == "origin-topic") c.origin_topic = v;
        if (k == "origin-partition") c.origin_partition = ToInt(v, -1);
        if (k == "origin-offset") c.origin_offset = ToInt(v, -1);
      }
      c.pass = filter.empty() || error.find(filter) != std::string::npos;
      if (c.pass) {
        if (!first_replay) first_replay = SteadyClock::now();
        // Rate limit: the n-th replay is due n/rate seconds after the first.
        std::this_thread::sleep_until(*first_replay +
                                      std::chrono::microseconds(enqueued * 1000000 / rate));
        c.replayed_at_us = NowMicros();
        last_replay = SteadyClock::now();
        auto p = (*producer)->Produce(
            target, -1, m.key, m.value,
            {{"event_id", c.event_id}, {"replayed-round", std::to_string(round)}},
            static_cast<std::int64_t>(batch.size()));
        if (!p) Emit("produce_error", p.error().message);
        ++enqueued;
        (*producer)->Poll(std::chrono::milliseconds(0));
      } else {
        c.replayed_at_us = NowMicros();
      }
      batch.push_back(std::move(c));
    }
    // Delivery decides the audit outcome; offsets are committed only after the audit rows.
    auto flushed = (*producer)->Flush(std::chrono::milliseconds(15000));
    if (!flushed) Emit("error", "flush: " + flushed.error().message);
    std::map<std::int64_t, std::string> outcome;  // batch index -> delivery error ("" = ok)
    for (const auto& r : (*producer)->TakeReports()) {
      outcome[r.seq] = r.err == RD_KAFKA_RESP_ERR_NO_ERROR ? "" : rd_kafka_err2name(r.err);
      if (auto lib = kafka::ClassifyClientLibraryFailure(r.err, false, "replay-worker delivery"))
        Emit("client_library_failure", *lib);
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto& c = batch[i];
      std::string result = "skipped-filter";
      if (c.pass) {
        auto it = outcome.find(static_cast<std::int64_t>(i));
        if (it != outcome.end() && it->second.empty()) {
          result = "replayed";
          ++replayed;
        } else {
          result = "replay-failed:" + (it == outcome.end() ? std::string("no report") : it->second);
          ++failed;
        }
      } else {
        ++filtered;
      }
      auto a = (*conn)->Exec(
          "INSERT INTO replay_audit (run_ns, replay_round, event_id, origin_topic, "
          "origin_partition, origin_offset, outcome, replayed_at_us) VALUES (?,?,?,?,?,?,?,?)",
          {ns, round, c.event_id, c.origin_topic, c.origin_partition, c.origin_offset, result,
           c.replayed_at_us});
      if (!a) {
        ++audit_errors;
        Emit("error", a.error().message);
      }
    }
    if (auto fatal = (*producer)->FatalError()) {
      Emit("client_library_failure", "replay-worker: " + *fatal + "; producer re-created");
      (*producer)->SetFlushOnDestroy(std::chrono::milliseconds(0));
      producer = NewProducer(args);
      if (!producer) {
        Emit("error", producer.error().message);
        return 1;
      }
    }
    if (auto s = (*consumer)->CommitCurrent(); !s) Emit("commit_error", s.error().message);
  }
  (void)(*consumer)->Close();
  Emit("replayed", replayed);
  Emit("replay_failed", failed);
  Emit("filtered", filtered);
  Emit("audit_errors", audit_errors);
  if (first_replay && enqueued > 1) {
    const double seconds = std::chrono::duration<double>(last_replay - *first_replay).count();
    Emit("rate_observed",
         seconds > 0 ? static_cast<std::int64_t>(static_cast<double>(enqueued - 1) / seconds) : 0);
  }
  return 0;
}

}  // namespace lab::runners::roles
