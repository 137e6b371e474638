// consumer-service: consumes (read_committed), applies the projection and a side-effect row —
// with `--dedup 1` together with processed_event(event_id) in one MySQL transaction — and
// commits offsets after processing (`--commit process-then-commit`) or before it
// (`commit-then-process`, the anti-pattern of E-004). Failed events go through the retry
// topics to the DLQ with headers (error, attempts, origin topic/partition/offset). After the
// projection commits it invalidates the Redis cache (DEL, or a versioned compare-and-set).
// With `--require-product 1` applying an event needs its product row (E-005's real fault:
// events that arrive before their reference data fail until the data exists).
// `--tx-batch N` applies up to N polled events in one transaction (see the loop).
// Failpoints: after-apply-before-commit-offset, before-apply-after-commit-offset. SIGTERM stops
// it after the batch in hand (applied, invalidated, offsets committed).
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "runners/common/util.h"
#include "runners/kafka/kafka_client.h"
#include "runners/redis/order_cache.h"
#include "runners/redis/redis_client.h"
#include "runners/roles/role_common.h"

namespace lab::runners::roles {
namespace {

std::vector<std::string> SplitComma(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string HeaderOr(const kafka::Message& m, const std::string& name, const std::string& def) {
  for (const auto& [k, v] : m.headers) {
    if (k == name) return v;
  }
  return def;
}

}  // namespace

int RunConsumerService(const RoleArgs& args) {
  const std::string ns = args.Get("ns");
  const std::string topic = args.Get("topic");
  const std::string consumer_name = args.Get("consumer-name", "projector");
  const bool dedup = args.Int("dedup", 1) != 0;
  const bool commit_first = args.Get("commit", "process-then-commit") == "commit-then-process";
  const auto batch = static_cast<std::size_t>(args.Int("batch", 50));
  const auto tx_batch =
      static_cast<std::size_t>(std::max<std::int64_t>(1, args.Int("tx-batch", 1)));
  const auto idle_exit = std::chrono::milliseconds(args.Int("idle-exit-ms", 3000));
  const std::string invalidate = args.Get("invalidate", "none");
  const std::string cache_prefix = args.Get("cache-prefix");
  const bool require_product = args.Int("require-product", 0) != 0;
  const std::vector<std::string> retry_topics = SplitComma(args.Get("retry-topics"));
  const std::string dlq = args.Get("dlq");
  const auto retry_delay = std::chrono::milliseconds(args.Int("retry-delay-ms", 200));
  Failpoint failpoint(args);

  auto conn = mysql::Connection::Open(MysqlFromArgs(args));
  if (!conn) {
    Emit("error", conn.error().message);
    return 1;
  }
  std::unique_ptr<redis::Connection> cache;
  if (invalidate != "none") {
    auto r = redis::Connection::Open(args.Get("redis-host", "127.0.0.1"),
                                     static_cast<int>(args.Int("redis-port", 16379)),
                                     std::chrono::milliseconds(2000));
    if (!r) {
      Emit("error", r.error().message);
      return 1;
    }
    cache = std::move(*r);
  }
  std::unique_ptr<kafka::Producer> producer;  // retry/DLQ
  if (!dlq.empty()) {
    auto p = kafka::Producer::Create(args.Get("bootstrap"), {{"enable.idempotence", "true"}});
    if (!p) {
      Emit("error", p.error().message);
      return 1;
    }
    producer = std::move(*p);
  }
  auto consumer = kafka::Consumer::Create(args.Get("bootstrap"), args.Get("group"),
                                          {{"isolation.level", "read_committed"},
                                           {"auto.offset.reset", "earliest"},
                                           {"max.poll.interval.ms", "60000"}});
  if (!consumer) {
    Emit("error", consumer.error().message);
    return 1;
  }
  std::vector<std::string> topics = {topic};
  topics.insert(topics.end(), retry_topics.begin(), retry_topics.end());
  if (auto s = (*consumer)->Subscribe(topics); !s) {
    Emit("error", s.error().message);
    return 1;
  }

  // One event's effects inside the caller's transaction: processed_event (with --dedup; an
  // event already recorded is a duplicate and changes nothing), the side effect, the projection.
  // `failure` names an expected failure (E-005's missing product), which routes the event.
  auto apply_event = [&](mysql::Connection& c, const kafka::Message& m, const nlohmann::json& ev,
                         const std::string& event_id, bool& was_duplicate,
                         std::string& failure) -> domain::Status {
    if (dedup) {
      auto r = c.Exec(
          "INSERT IGNORE INTO processed_event (run_ns, consumer, event_id, processed_at_us) "
          "VALUES (?,?,?,?)",
          {ns, consumer_name, event_id, NowMicros()});
      if (!r) return r.error();
      if (*r == 0) {
        was_duplicate = true;
        return {};
      }
    }
    if (require_product) {
      auto q = c.Query("SELECT COUNT(*) FROM product WHERE run_ns = ? AND product_id = ?",
                       {ns, ev.value("product_id", std::int64_t{0})});
      if (!q) return q.error();
      if (q->Scalar() == 0) {
        failure = "unknown product " + std::to_string(ev.value("product_id", std::int64_t{0}));
        return domain::MakeError(domain::ErrorCode::kNotFound, failure);
      }
    }
    auto se = c.Exec(
        "INSERT INTO side_effect (run_ns, event_id, source, applied_at_us) VALUES (?,?,?,?)",
        {ns, event_id,
         HeaderOr(m, "replayed-round", "").empty() ? std::string("consume") : std::string("replay"),
         NowMicros()});
    if (!se) return se.error();
    auto pr = c.Exec(
        "INSERT INTO order_projection (run_ns, order_id, amount, version, applied_count, "
        "committed_at_us, "
        "projected_at_us) VALUES (?,?,?,?,1,?,?) ON DUPLICATE KEY UPDATE amount = "
        "VALUES(amount), "
        "version = VALUES(version), applied_count = applied_count + 1, committed_at_us = "
        "VALUES(committed_at_us), projected_at_us = VALUES(projected_at_us)",
        {ns, ev.value("order_id", std::int64_t{0}), ev.value("amount", std::int64_t{0}),
         ev.value("version", std::int64_t{1}), ev.value("committed_at_us", std::int64_t{0}),
         NowMicros()});
    if (!pr) return pr.error();
    return {};
  };

  std::int64_t applied = 0;
  // What follows an applied event once its transaction has committed.
  auto after_apply = [&](const nlohmann::json& ev) {
    if (cache) {
      std::string key = cache_prefix + std::to_string(ev.value("order_id", std::int64_t{0}));
      if (invalidate == "del") {
        (void)cache->Command({"DEL", key});
      } else if (invalidate == "versioned") {
        (void)cache->Command({"EVAL", redis::kVersionedOrderSet, "1", key,
                              std::to_string(ev.value("version", std::int64_t{1})),
                              std::to_string(ev.value("amount", std::int64_t{0})), "60000"});
      }
    }
    ++applied;
    failpoint.Hit("after-apply-before-commit-offset");
  };
  std::int64_t skipped_duplicates = 0;
  std::int64_t routed_retry = 0;
  std::int64_t routed_dlq = 0;
  std::int64_t route_failures = 0;
  auto last_message = SteadyClock::now();
  bool seen_assignment = false;
  StopOnSigterm();
  while (!StopRequested()) {
    auto polled = (*consumer)->Poll(batch, std::chrono::milliseconds(200));
    if (auto stalled = (*consumer)->RejoinIfStalled(std::chrono::seconds(5)))
      Emit("client_library_failure", "consumer-service: " + *stalled);
    if (!polled) {
      Emit("consume_error", polled.error().message);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    if (!seen_assignment && (*consumer)->assigned_count() > 0) {
      // The idle clock starts at the assignment: a slow group join must not count as idle
      // time, or the consumer could leave before its first fetch.
      seen_assignment = true;
      last_message = SteadyClock::now();
    }
    if (polled->empty()) {
      if (seen_assignment && SteadyClock::now() - last_message > idle_exit) break;
      continue;
    }
    last_message = SteadyClock::now();
    std::map<std::pair<std::string, std::int32_t>, std::int64_t> next;
    for (const auto& m : *polled) {
      auto& n = next[{m.topic, m.partition}];
      n = std::max(n, m.offset + 1);
    }
    std::vector<kafka::TopicPartitionOffset> offsets;
    for (const auto& [tp, off] : next) offsets.push_back({tp.first, tp.second, off});
    if (commit_first) {
      if (auto s = (*consumer)->Commit(offsets); !s) Emit("commit_error", s.error().message);
    }
    // --tx-batch N: events applied N to a transaction (one durable commit for N, each event
    // still with its own processed_event row). Only where no event is routed on failure (no DLQ,
    // no product check) and offsets follow processing; a batch that fails is applied again one
    // event per transaction by the loop below (processed_event makes that safe).
    std::vector<bool> done(polled->size(), false);
    if (tx_batch > 1 && !producer && !require_product && !commit_first) {
      for (std::size_t from = 0; from < polled->size(); from += tx_batch) {
        const std::size_t to = std::min(polled->size(), from + tx_batch);
        std::vector<nlohmann::json> events;
        for (std::size_t i = from; i < to; ++i)
          events.push_back(nlohmann::json::parse((*polled)[i].value, nullptr, false));
        std::vector<bool> duplicate(to - from, false);
        auto s = mysql::InTransaction(**conn, [&](mysql::Connection& c) -> domain::Status {
          for (std::size_t i = from; i < to; ++i) {
            const auto& ev = events[i - from];
            if (!ev.is_object()) continue;  // reported by the loop below
            bool was_duplicate = false;
            std::string failure;
            if (auto a = apply_event(c, (*polled)[i], ev, ev.value("event_id", std::string()),
                                     was_duplicate, failure);
                !a) {
              return a;
            }
            duplicate[i - from] = was_duplicate;
          }
          return {};
        });
        if (!s) {
          Emit("apply_error", "batch of " + std::to_string(to - from) + ": " + s.error().message +
                                  " (applied one by one)");
          continue;
        }
        for (std::size_t i = from; i < to; ++i) {
          const auto& ev = events[i - from];
          if (!ev.is_object()) continue;
          done[i] = true;
          if (duplicate[i - from]) {
            ++skipped_duplicates;
          } else {
            after_apply(ev);
          }
        }
      }
    }
    for (std::size_t index = 0; index < polled->size(); ++index) {
      if (done[index]) continue;
      const auto& m = (*polled)[index];
      if (commit_first) failpoint.Hit("before-apply-after-commit-offset");
      auto ev = nlohmann::json::parse(m.value, nullptr, false);
      if (!ev.is_object()) {
        Emit("bad_record",
             m.topic + "/" + std::to_string(m.partition) + "@" + std::to_string(m.offset));
        continue;
      }
      const std::string event_id = ev.value("event_id", std::string());
      const int attempts = std::stoi(HeaderOr(m, "attempts", "0"));
      if (m.topic != topic) {  // a retry topic: honour its delay
        auto due = std::stoll(HeaderOr(m, "not-before-ms", "0"));
        auto wait = due - NowMicros() / 1000;
        if (wait > 0)
          std::this_thread::sleep_for(std::chrono::milliseconds(std::min<long long>(wait, 2000)));
      }
      std::string failure;
      bool was_duplicate = false;
      auto s = mysql::InTransaction(**conn, [&](mysql::Connection& c) -> domain::Status {
        failure.clear();
        was_duplicate = false;
        return apply_event(c, m, ev, event_id, was_duplicate, failure);
      });
      if (!s && failure.empty()) {
        Emit("apply_error", s.error().message);
        failure = s.error().message;
      }
      if (!failure.empty()) {
        if (!producer) continue;
        std::string next_topic = attempts < static_cast<int>(retry_topics.size())
                                     ? retry_topics[static_cast<std::size_t>(attempts)]
                                     : dlq;
        kafka::Headers headers = {
            {"event_id", event_id},
            {"error", failure},
            {"attempts", std::to_string(attempts + 1)},
            {"origin-topic", HeaderOr(m, "origin-topic", m.topic)},
            {"origin-partition", HeaderOr(m, "origin-partition", std::to_string(m.partition))},
            {"origin-offset", HeaderOr(m, "origin-offset", std::to_string(m.offset))},
            {"not-before-ms",
             std::to_string(NowMicros() / 1000 + retry_delay.count() * (attempts + 1))}};
        // Routed before the offset commit, up to 3 tries (a fatal idempotence error of
        // librdkafka 2.0.2 re-creates the producer); a record that still could not be routed
        // is reported — it would be lost, and the run's read-back counts would show it.
        bool delivered = false;
        for (int attempt = 0; attempt < 3 && !delivered; ++attempt) {
          auto produced = producer->Produce(next_topic, -1, m.key, m.value, headers);
          auto flushed = produced ? producer->Flush(std::chrono::milliseconds(10000)) : produced;
          delivered = static_cast<bool>(flushed);
          for (const auto& r : producer->TakeReports()) {
            if (r.err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
            delivered = false;
            if (auto lib = kafka::ClassifyClientLibraryFailure(r.err, false, "consumer routing"))
              Emit("client_library_failure", *lib);
          }
          if (!delivered) {
            Emit("route_error",
                 event_id + " -> " + next_topic + ": " +
                     (flushed ? std::string("delivery failed") : flushed.error().message));
          }
          if (auto fatal = producer->FatalError()) {
            Emit("client_library_failure", "consumer routing: " + *fatal + "; producer re-created");
            producer->SetFlushOnDestroy(std::chrono::milliseconds(0));
            auto p =
                kafka::Producer::Create(args.Get("bootstrap"), {{"enable.idempotence", "true"}});
            if (!p) {
              Emit("error", p.error().message);
              return 1;
            }
            producer = std::move(*p);
          }
        }
        if (!delivered) {
          ++route_failures;
          continue;
        }
        (next_topic == dlq ? routed_dlq : routed_retry) += 1;
        continue;
      }
      if (was_duplicate) {
        ++skipped_duplicates;
        continue;
      }
      after_apply(ev);
    }
    if (!commit_first) {
      if (auto s = (*consumer)->Commit(offsets); !s) Emit("commit_error", s.error().message);
    }
  }
  (void)(*consumer)->Close();
  Emit("applied", applied);
  Emit("skipped_duplicates", skipped_duplicates);
  Emit("routed_retry", routed_retry);
  Emit("routed_dlq", routed_dlq);
  Emit("route_failures", route_failures);
  return 0;
}

}  // namespace lab::runners::roles
