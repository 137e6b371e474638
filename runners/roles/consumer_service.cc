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

// The role's settings, read once from its arguments.
struct Settings {
  explicit Settings(const RoleArgs& args)
      : ns(args.Get("ns")),
        topic(args.Get("topic")),
        consumer_name(args.Get("consumer-name", "projector")),
        dedup(args.Int("dedup", 1) != 0),
        commit_first(args.Get("commit", "process-then-commit") == "commit-then-process"),
        batch(static_cast<std::size_t>(args.Int("batch", 50))),
        tx_batch(static_cast<std::size_t>(std::max<std::int64_t>(1, args.Int("tx-batch", 1)))),
        idle_exit(args.Int("idle-exit-ms", 3000)),
        invalidate(args.Get("invalidate", "none")),
        cache_prefix(args.Get("cache-prefix")),
        require_product(args.Int("require-product", 0) != 0),
        retry_topics(SplitComma(args.Get("retry-topics"))),
        dlq(args.Get("dlq")),
        retry_delay(args.Int("retry-delay-ms", 200)),
        bootstrap(args.Get("bootstrap")) {}
  std::string ns;
  std::string topic;
  std::string consumer_name;
  bool dedup;
  bool commit_first;
  std::size_t batch;
  std::size_t tx_batch;
  std::chrono::milliseconds idle_exit;
  std::string invalidate;
  std::string cache_prefix;
  bool require_product;
  std::vector<std::string> retry_topics;
  std::string dlq;
  std::chrono::milliseconds retry_delay;
  std::string bootstrap;
};

class ConsumerService {
 public:
  explicit ConsumerService(const RoleArgs& args) : args_(args), s_(args), failpoint_(args) {}

  int Run() {
    if (!Connect()) return 1;
    StopOnSigterm();
    while (!StopRequested()) {
      std::vector<kafka::Message> polled;
      const PollOutcome outcome = Poll(polled);
      if (outcome == PollOutcome::kIdle) break;
      if (outcome == PollOutcome::kNothing) continue;
      if (!HandleBatch(polled)) return 1;
    }
    (void)consumer_->Close();
    Report();
    return 0;
  }

 private:
  enum class PollOutcome { kMessages, kNothing, kIdle };

  // MySQL, Redis (only to invalidate), a producer (only to route to retry topics / the DLQ) and
  // the subscribed consumer. False (the error reported) when one cannot be had.
  bool Connect() {
    auto conn = mysql::Connection::Open(MysqlFromArgs(args_));
    if (!conn) return Failed(conn.error().message);
    conn_ = std::move(*conn);
    if (s_.invalidate != "none") {
      auto r = redis::Connection::Open(args_.Get("redis-host", "127.0.0.1"),
                                       static_cast<int>(args_.Int("redis-port", 16379)),
                                       std::chrono::milliseconds(2000));
      if (!r) return Failed(r.error().message);
      cache_ = std::move(*r);
    }
    if (!s_.dlq.empty()) {
      auto p = kafka::Producer::Create(s_.bootstrap, {{"enable.idempotence", "true"}});
      if (!p) return Failed(p.error().message);
      producer_ = std::move(*p);
    }
    auto consumer = kafka::Consumer::Create(s_.bootstrap, args_.Get("group"),
                                            {{"isolation.level", "read_committed"},
                                             {"auto.offset.reset", "earliest"},
                                             {"max.poll.interval.ms", "60000"}});
    if (!consumer) return Failed(consumer.error().message);
    consumer_ = std::move(*consumer);
    std::vector<std::string> topics = {s_.topic};
    topics.insert(topics.end(), s_.retry_topics.begin(), s_.retry_topics.end());
    if (auto st = consumer_->Subscribe(topics); !st) return Failed(st.error().message);
    return true;
  }

  static bool Failed(const std::string& message) {
    Emit("error", message);
    return false;
  }

  // One poll. kIdle once nothing arrived for idle_exit since the last message (or since the
  // assignment).
  PollOutcome Poll(std::vector<kafka::Message>& out) {
    auto polled = consumer_->Poll(s_.batch, std::chrono::milliseconds(200));
    if (auto stalled = consumer_->RejoinIfStalled(std::chrono::seconds(5)))
      Emit("client_library_failure", "consumer-service: " + *stalled);
    if (!polled) {
      Emit("consume_error", polled.error().message);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      return PollOutcome::kNothing;
    }
    if (!seen_assignment_ && consumer_->assigned_count() > 0) {
      // The idle clock starts at the assignment: a slow group join must not count as idle
      // time, or the consumer could leave before its first fetch.
      seen_assignment_ = true;
      last_message_ = SteadyClock::now();
    }
    if (polled->empty()) {
      if (seen_assignment_ && SteadyClock::now() - last_message_ > s_.idle_exit) {
        return PollOutcome::kIdle;
      }
      return PollOutcome::kNothing;
    }
    last_message_ = SteadyClock::now();
    out = std::move(*polled);
    return PollOutcome::kMessages;
  }

  // Applies a polled batch and commits its offsets, before (commit-then-process) or after.
  // False when the role cannot go on (the routing producer could not be re-created).
  bool HandleBatch(const std::vector<kafka::Message>& polled) {
    const auto offsets = NextOffsets(polled);
    if (s_.commit_first) CommitOffsets(offsets);
    std::vector<bool> done(polled.size(), false);
    // --tx-batch N: events applied N to a transaction (one durable commit for N, each event
    // still with its own processed_event row). Only where no event is routed on failure (no DLQ,
    // no product check) and offsets follow processing; a batch that fails is applied again one
    // event per transaction by the loop below (processed_event makes that safe).
    if (s_.tx_batch > 1 && !producer_ && !s_.require_product && !s_.commit_first) {
      for (std::size_t from = 0; from < polled.size(); from += s_.tx_batch) {
        ApplyInOneTransaction(polled, from, std::min(polled.size(), from + s_.tx_batch), done);
      }
    }
    for (std::size_t index = 0; index < polled.size(); ++index) {
      if (done[index]) continue;
      if (!ApplyOne(polled[index])) return false;
    }
    if (!s_.commit_first) CommitOffsets(offsets);
    return true;
  }

  static std::vector<kafka::TopicPartitionOffset> NextOffsets(
      const std::vector<kafka::Message>& polled) {
    std::map<std::pair<std::string, std::int32_t>, std::int64_t> next;
    for (const auto& m : polled) {
      auto& n = next[{m.topic, m.partition}];
      n = std::max(n, m.offset + 1);
    }
    std::vector<kafka::TopicPartitionOffset> offsets;
    for (const auto& [tp, off] : next) offsets.push_back({tp.first, tp.second, off});
    return offsets;
  }

  void CommitOffsets(const std::vector<kafka::TopicPartitionOffset>& offsets) {
    if (auto st = consumer_->Commit(offsets); !st) Emit("commit_error", st.error().message);
  }

  // polled[from, to) in one transaction; marks them done when it commits. Records that are not
  // JSON are left to the one-by-one loop, which reports them.
  void ApplyInOneTransaction(const std::vector<kafka::Message>& polled, std::size_t from,
                             std::size_t to, std::vector<bool>& done) {
    std::vector<nlohmann::json> events;
    for (std::size_t i = from; i < to; ++i)
      events.push_back(nlohmann::json::parse(polled[i].value, nullptr, false));
    std::vector<bool> duplicate(to - from, false);
    auto st = mysql::InTransaction(*conn_, [&](mysql::Connection& c) -> domain::Status {
      for (std::size_t i = from; i < to; ++i) {
        const auto& ev = events[i - from];
        if (!ev.is_object()) continue;
        bool was_duplicate = false;
        std::string failure;
        if (auto a = ApplyEvent(c, polled[i], ev, ev.value("event_id", std::string()),
                                was_duplicate, failure);
            !a) {
          return a;
        }
        duplicate[i - from] = was_duplicate;
      }
      return {};
    });
    if (!st) {
      Emit("apply_error", "batch of " + std::to_string(to - from) + ": " + st.error().message +
                              " (applied one by one)");
      return;
    }
    for (std::size_t i = from; i < to; ++i) {
      const auto& ev = events[i - from];
      if (!ev.is_object()) continue;
      done[i] = true;
      if (duplicate[i - from]) {
        ++skipped_duplicates_;
      } else {
        AfterApply(ev);
      }
    }
  }

  // One event in its own transaction; a failure routes it to the next retry topic or the DLQ.
  // False when the role cannot go on.
  bool ApplyOne(const kafka::Message& m) {
    if (s_.commit_first) failpoint_.Hit("before-apply-after-commit-offset");
    auto ev = nlohmann::json::parse(m.value, nullptr, false);
    if (!ev.is_object()) {
      Emit("bad_record",
           m.topic + "/" + std::to_string(m.partition) + "@" + std::to_string(m.offset));
      return true;
    }
    const std::string event_id = ev.value("event_id", std::string());
    const int attempts = std::stoi(HeaderOr(m, "attempts", "0"));
    if (m.topic != s_.topic) {  // a retry topic: honour its delay
      auto due = std::stoll(HeaderOr(m, "not-before-ms", "0"));
      auto wait = due - NowMicros() / 1000;
      if (wait > 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min<long long>(wait, 2000)));
    }
    std::string failure;
    bool was_duplicate = false;
    auto st = mysql::InTransaction(*conn_, [&](mysql::Connection& c) -> domain::Status {
      failure.clear();
      was_duplicate = false;
      return ApplyEvent(c, m, ev, event_id, was_duplicate, failure);
    });
    if (!st && failure.empty()) {
      Emit("apply_error", st.error().message);
      failure = st.error().message;
    }
    if (!failure.empty()) return producer_ ? Route(m, event_id, attempts, failure) : true;
    if (was_duplicate) {
      ++skipped_duplicates_;
      return true;
    }
    AfterApply(ev);
    return true;
  }

  // One event's effects inside the caller's transaction: processed_event (with --dedup; an
  // event already recorded is a duplicate and changes nothing), the side effect, the projection.
  // `failure` names an expected failure (E-005's missing product), which routes the event.
  domain::Status ApplyEvent(mysql::Connection& c, const kafka::Message& m, const nlohmann::json& ev,
                            const std::string& event_id, bool& was_duplicate,
                            std::string& failure) {
    if (s_.dedup) {
      auto r = c.Exec(
          "INSERT IGNORE INTO processed_event (run_ns, consumer, event_id, processed_at_us) "
          "VALUES (?,?,?,?)",
          {s_.ns, s_.consumer_name, event_id, NowMicros()});
      if (!r) return r.error();
      if (*r == 0) {
        was_duplicate = true;
        return {};
      }
    }
    if (s_.require_product) {
      auto q = c.Query("SELECT COUNT(*) FROM product WHERE run_ns = ? AND product_id = ?",
                       {s_.ns, ev.value("product_id", std::int64_t{0})});
      if (!q) return q.error();
      if (q->Scalar() == 0) {
        failure = "unknown product " + std::to_string(ev.value("product_id", std::int64_t{0}));
        return domain::MakeError(domain::ErrorCode::kNotFound, failure);
      }
    }
    auto se = c.Exec(
        "INSERT INTO side_effect (run_ns, event_id, source, applied_at_us) VALUES (?,?,?,?)",
        {s_.ns, event_id,
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
        {s_.ns, ev.value("order_id", std::int64_t{0}), ev.value("amount", std::int64_t{0}),
         ev.value("version", std::int64_t{1}), ev.value("committed_at_us", std::int64_t{0}),
         NowMicros()});
    if (!pr) return pr.error();
    return {};
  }

  // What follows an applied event once its transaction has committed.
  void AfterApply(const nlohmann::json& ev) {
    if (cache_) {
      std::string key = s_.cache_prefix + std::to_string(ev.value("order_id", std::int64_t{0}));
      if (s_.invalidate == "del") {
        (void)cache_->Command({"DEL", key});
      } else if (s_.invalidate == "versioned") {
        (void)cache_->Command({"EVAL", redis::kVersionedOrderSet, "1", key,
                               std::to_string(ev.value("version", std::int64_t{1})),
                               std::to_string(ev.value("amount", std::int64_t{0})), "60000"});
      }
    }
    ++applied_;
    failpoint_.Hit("after-apply-before-commit-offset");
  }

  // A failed event to the next retry topic, or to the DLQ after the last one. Routed before the
  // offset commit, up to 3 tries (a fatal idempotence error of librdkafka 2.0.2 re-creates the
  // producer); a record that still could not be routed is reported — it would be lost, and the
  // run's read-back counts would show it. False when the producer could not be re-created.
  bool Route(const kafka::Message& m, const std::string& event_id, int attempts,
             const std::string& failure) {
    const std::string next_topic = attempts < static_cast<int>(s_.retry_topics.size())
                                       ? s_.retry_topics[static_cast<std::size_t>(attempts)]
                                       : s_.dlq;
    const kafka::Headers headers = {
        {"event_id", event_id},
        {"error", failure},
        {"attempts", std::to_string(attempts + 1)},
        {"origin-topic", HeaderOr(m, "origin-topic", m.topic)},
        {"origin-partition", HeaderOr(m, "origin-partition", std::to_string(m.partition))},
        {"origin-offset", HeaderOr(m, "origin-offset", std::to_string(m.offset))},
        {"not-before-ms",
         std::to_string(NowMicros() / 1000 + s_.retry_delay.count() * (attempts + 1))}};
    bool delivered = false;
    for (int attempt = 0; attempt < 3 && !delivered; ++attempt) {
      delivered = ProduceOnce(next_topic, m, headers, event_id);
      if (!RenewProducerIfFatal()) return false;
    }
    if (!delivered) {
      ++route_failures_;
      return true;
    }
    (next_topic == s_.dlq ? routed_dlq_ : routed_retry_) += 1;
    return true;
  }

  // One produce + flush; true when the record was delivered.
  bool ProduceOnce(const std::string& next_topic, const kafka::Message& m,
                   const kafka::Headers& headers, const std::string& event_id) {
    auto produced = producer_->Produce(next_topic, -1, m.key, m.value, headers);
    auto flushed = produced ? producer_->Flush(std::chrono::milliseconds(10000)) : produced;
    bool delivered = static_cast<bool>(flushed);
    for (const auto& r : producer_->TakeReports()) {
      if (r.err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      delivered = false;
      if (auto lib = kafka::ClassifyClientLibraryFailure(r.err, false, "consumer routing"))
        Emit("client_library_failure", *lib);
    }
    if (!delivered) {
      Emit("route_error", event_id + " -> " + next_topic + ": " +
                              (flushed ? std::string("delivery failed") : flushed.error().message));
    }
    return delivered;
  }

  // A producer in a fatal state is replaced; false when the new one cannot be created.
  bool RenewProducerIfFatal() {
    auto fatal = producer_->FatalError();
    if (!fatal) return true;
    Emit("client_library_failure", "consumer routing: " + *fatal + "; producer re-created");
    producer_->SetFlushOnDestroy(std::chrono::milliseconds(0));
    auto p = kafka::Producer::Create(s_.bootstrap, {{"enable.idempotence", "true"}});
    if (!p) return Failed(p.error().message);
    producer_ = std::move(*p);
    return true;
  }

  void Report() const {
    Emit("applied", applied_);
    Emit("skipped_duplicates", skipped_duplicates_);
    Emit("routed_retry", routed_retry_);
    Emit("routed_dlq", routed_dlq_);
    Emit("route_failures", route_failures_);
  }

  const RoleArgs& args_;
  const Settings s_;
  Failpoint failpoint_;
  std::unique_ptr<mysql::Connection> conn_;
  std::unique_ptr<redis::Connection> cache_;   // with --invalidate
  std::unique_ptr<kafka::Producer> producer_;  // retry/DLQ
  std::unique_ptr<kafka::Consumer> consumer_;
  std::int64_t applied_ = 0;
  std::int64_t skipped_duplicates_ = 0;
  std::int64_t routed_retry_ = 0;
  std::int64_t routed_dlq_ = 0;
  std::int64_t route_failures_ = 0;
  SteadyClock::time_point last_message_ = SteadyClock::now();
  bool seen_assignment_ = false;
};

}  // namespace

int RunConsumerService(const RoleArgs& args) { return ConsumerService(args).Run(); }

}  // namespace lab::runners::roles
