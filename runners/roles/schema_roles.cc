// E-006's roles: a producer and a consumer of Avro records in the Confluent wire format.
//
// schema-producer: registers its schema under --subject (auto-register, as serializers do;
// a 409 from the subject's compatibility rule ends it with exit code 3) and produces --events
// records Order{id, [currency,] amount} with ids from --first-id, key = id, value = magic 0 +
// schema id + Avro body. Emits produced, delivery_errors and schema_id.
//
// schema-consumer: consumes --topic in --group and decodes every record into its reader schema
// (--reader-schema). --read strict: the anti-pattern "we know the schema" — the id in the
// header is ignored and the body is decoded with the reader schema as the writer schema.
// --read dual: the writer schema is fetched from the registry by the header's id (cached per
// id) and resolved into the reader schema (avro-c's resolver). A record that does not decode,
// leaves bytes unread, or whose values fail validation (id = key, amount finite and in range)
// is a parse failure. --on-failure retry: the record is retried (seek back, offsets committed
// only before it), so its partition stalls — a poison pill; skip: counted and committed past.
// Runs until SIGTERM, then commits, leaves the group and emits its counters.
#include <cmath>
#include <map>
#include <set>
#include <thread>

#include "runners/common/util.h"
#include "runners/kafka/kafka_client.h"
#include "runners/registry/schema_registry.h"
#include "runners/roles/role_common.h"

namespace lab::runners::roles {
namespace {

using TopicListHandle =
    CHandle<rd_kafka_topic_partition_list_t, rd_kafka_topic_partition_list_destroy>;
using ErrorHandle = CHandle<rd_kafka_error_t, rd_kafka_error_destroy>;

// The order's amount as the producer writes it: cents in [10.00, 99.99], so that a value outside
// [0, 1e6] or non-finite can only come from bytes read with the wrong schema.
double AmountOf(std::int64_t id) { return 10.0 + static_cast<double>(id % 9000) / 100.0; }

const char* const kCurrencies[] = {"EUR", "USD", "CHF"};

// schema-producer: registers its schema, produces the records paced, reports the deliveries.
class SchemaProducer {
 public:
  explicit SchemaProducer(const RoleArgs& args)
      : args_(args),
        topic_(args.Get("topic")),
        subject_(args.Get("subject")),
        schema_json_(args.Get("schema")),
        events_(args.Int("events", 0)),
        first_id_(args.Int("first-id", 1)),
        ns_(args.Get("ns")),
        interval_(args.Int("interval-us", 0)) {}

  int Run() {
    if (int rc = Register(); rc != 0) return rc;
    auto producer = kafka::Producer::Create(args_.Get("bootstrap"),
                                            {{"enable.idempotence", "true"}, {"acks", "all"}});
    if (!producer) {
      Emit("error", producer.error().message);
      return 1;
    }
    producer_ = std::move(*producer);
    if (!ProduceAll()) return 1;
    return ReportDeliveries();
  }

 private:
  // Auto-registers the schema, as serializers do. 0, or the exit code: 3 for a 409.
  int Register() {
    auto schema = registry::ParseSchema(schema_json_);
    if (!schema) {
      Emit("error", schema.error().message);
      return 1;
    }
    schema_ = std::move(*schema);
    registry::RegistryClient client(args_.Get("registry"));
    auto id = client.Register(subject_, schema_json_);
    if (!id) {
      if (id.error().code == domain::ErrorCode::kConflict) {
        Emit("register_conflict", id.error().message);
        return 3;
      }
      Emit("error", id.error().message);
      return 1;
    }
    id_ = *id;
    Emit("schema_id", id_);
    return 0;
  }

  // Produces the records at the pace asked. False when a record cannot be encoded.
  bool ProduceAll() {
    for (std::int64_t i = 0; i < events_ && !StopRequested(); ++i) {
      const std::int64_t order_id = first_id_ + i;
      nlohmann::json record = {{"id", order_id},
                               {"amount", AmountOf(order_id)},
                               {"currency", kCurrencies[order_id % 3]}};
      auto body = registry::EncodeAvro(schema_, record);  // fields the schema lacks are ignored
      if (!body) {
        Emit("error", body.error().message);
        return false;
      }
      auto s =
          producer_->Produce(topic_, -1, std::to_string(order_id), registry::WireEncode(id_, *body),
                             {{"event_id", ns_ + "-" + std::to_string(order_id)}}, order_id);
      if (!s) {
        Emit("produce_error", s.error().message);
        break;
      }
      ++enqueued_;
      // The idempotent producer holds records until it has its producer id; flushing the first
      // one makes the pace below the pace at which records reach the brokers.
      if (i == 0) (void)producer_->Flush(std::chrono::milliseconds(10000));
      if (interval_.count() > 0) {
        producer_->Poll(std::chrono::milliseconds(0));
        std::this_thread::sleep_for(interval_);
      }
    }
    return true;
  }

  // Flushes, then counts the delivery reports: one line per kind of failure, not per record.
  int ReportDeliveries() {
    auto flushed = producer_->Flush(std::chrono::milliseconds(20000));
    if (!flushed) Emit("flush_error", flushed.error().message);
    std::int64_t delivered = 0;
    std::int64_t failed = 0;
    std::map<std::string, std::int64_t> library_failures;
    std::map<std::string, std::int64_t> other_failures;
    for (const auto& r : producer_->TakeReports()) {
      if (r.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++delivered;
        continue;
      }
      ++failed;
      if (auto lib = kafka::ClassifyClientLibraryFailure(r.err, false, "schema-producer"))
        ++library_failures[*lib];
      else
        ++other_failures[rd_kafka_err2str(r.err)];
    }
    for (const auto& [what, n] : library_failures)
      Emit("client_library_failure", what + " (" + std::to_string(n) + " records)");
    for (const auto& [what, n] : other_failures)
      Emit("delivery_error", what + " (" + std::to_string(n) + " records)");
    if (auto fatal = producer_->FatalError())
      Emit("client_library_failure", "schema-producer: " + *fatal);
    Emit("enqueued", enqueued_);
    Emit("produced", delivered);
    Emit("delivery_errors", failed);
    return delivered == events_ ? 0 : 1;
  }

  const RoleArgs& args_;
  const std::string topic_;
  const std::string subject_;
  const std::string schema_json_;
  const std::int64_t events_;
  const std::int64_t first_id_;
  const std::string ns_;
  const std::chrono::microseconds interval_;  // pacing
  registry::SchemaHandle schema_;
  int id_ = -1;
  std::unique_ptr<kafka::Producer> producer_;
  std::int64_t enqueued_ = 0;
};

// schema-consumer: decodes, validates, commits or rewinds, until SIGTERM; then its counters.
class SchemaConsumer {
 public:
  explicit SchemaConsumer(const RoleArgs& args)
      : args_(args),
        topic_(args.Get("topic")),
        dual_(args.Get("read", "strict") == "dual"),
        retry_(args.Get("on-failure", "retry") == "retry"),
        backoff_(args.Int("retry-backoff-ms", 200)),
        client_(args.Get("registry")) {}

  int Run() {
    StopOnSigterm();
    if (!SetUp()) return 1;
    seen_rebalances_ = consumer_->rebalances();
    unassigned_since_ = SteadyClock::now();
    while (!StopRequested()) PollOnce();
    (void)consumer_->Close();
    Report();
    return 0;
  }

 private:
  enum class Fault { kNone, kUnreadable, kDecode, kGarbage };
  struct Verdict {
    Fault fault = Fault::kNone;
    std::string why;
  };

  static bool Failed(const std::string& message) {
    Emit("error", message);
    return false;
  }

  // The reader schema, the strict reader's one decoder and the subscribed consumer. False (the
  // error reported) when one cannot be had.
  bool SetUp() {
    auto reader = registry::ParseSchema(args_.Get("reader-schema"));
    if (!reader) return Failed(reader.error().message);
    reader_ = std::move(*reader);
    // The strict reader has one decoder: its own schema as both writer and reader.
    if (!dual_) {
      auto d = registry::ResolvingDecoder::Create(reader_, reader_);
      if (!d) return Failed(d.error().message);
      strict_ = std::move(*d);
    }
    auto consumer = kafka::Consumer::Create(args_.Get("bootstrap"), args_.Get("group"),
                                            {{"auto.offset.reset", "earliest"}});
    if (!consumer) return Failed(consumer.error().message);
    consumer_ = std::move(*consumer);
    if (auto s = consumer_->Subscribe({topic_}); !s) return Failed(s.error().message);
    return true;
  }

  // One poll: the assignment watched, the batch checked, its offsets committed, a stalled
  // partition rewound.
  void PollOnce() {
    auto polled = consumer_->Poll(100, std::chrono::milliseconds(200));
    if (auto stalled = consumer_->RejoinIfStalled(std::chrono::seconds(5)))
      Emit("client_library_failure", "schema-consumer: " + *stalled);
    WatchAssignment();
    if (!polled) {
      Emit("consume_error", polled.error().message);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      return;
    }
    std::map<std::int32_t, std::int64_t> next;     // offsets to commit, per partition
    std::map<std::int32_t, std::int64_t> stalled;  // partition -> offset to retry from
    for (const auto& m : *polled) {
      if (stalled.count(m.partition) > 0) continue;  // behind a poison pill in this batch
      Handle(m, next, stalled);
    }
    Commit(next);
    if (!stalled.empty()) Rewind(stalled);
  }

  // Reports each change of the assignment, and every 5 s without partitions what the client
  // knows.
  void WatchAssignment() {
    if (consumer_->assigned_count() != last_assigned_) {
      last_assigned_ = consumer_->assigned_count();
      Emit("assigned", last_assigned_);
      unassigned_since_ = SteadyClock::now();
    }
    if (last_assigned_ == 0 && SteadyClock::now() - unassigned_since_ > std::chrono::seconds(5)) {
      unassigned_since_ = SteadyClock::now();
      ReportUnassigned();
    }
  }

  // Still without partitions: say what the client knows (member id: did it join at all;
  // partitions of the topic in its metadata), for the runner's step log.
  void ReportUnassigned() {
    char* member = rd_kafka_memberid(consumer_->handle());
    const rd_kafka_metadata_t* md = nullptr;
    int partitions = -1;
    if (rd_kafka_metadata(consumer_->handle(), 0, nullptr, &md, 2000) ==
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int t = 0; t < md->topic_cnt; ++t) {
        if (topic_ == md->topics[t].topic) partitions = md->topics[t].partition_cnt;
      }
      rd_kafka_metadata_destroy(md);
    }
    Emit("unassigned", std::string("member=") + (member != nullptr ? member : "") +
                           " rebalances=" + std::to_string(consumer_->rebalances()) +
                           " topic_partitions=" + std::to_string(partitions));
    if (member != nullptr) rd_kafka_mem_free(consumer_->handle(), member);
  }

  // One record: processed, or counted as a parse failure and then retried or skipped.
  void Handle(const kafka::Message& m, std::map<std::int32_t, std::int64_t>& next,
              std::map<std::int32_t, std::int64_t>& stalled) {
    int schema_id = -1;
    Verdict verdict = Check(m, schema_id);
    if (verdict.fault == Fault::kNone) {
      ++consumed_;
      ++consumed_by_schema_[schema_id];
      next[m.partition] = m.offset + 1;
      return;
    }
    ++failed_attempts_;
    if (failed_records_.insert({m.partition, m.offset}).second) {
      ++(verdict.fault == Fault::kUnreadable ? unreadable_
         : verdict.fault == Fault::kDecode   ? decode_errors_
                                             : garbage_);
      if (failed_records_.size() <= 5) {
        Emit("parse_failure", std::to_string(m.partition) + "@" + std::to_string(m.offset) +
                                  " schema_id=" + std::to_string(schema_id) + ": " + verdict.why);
      }
    }
    if (retry_) {
      stalled[m.partition] = m.offset;
    } else {
      ++skipped_;
      next[m.partition] = m.offset + 1;
    }
  }

  // Decodes and validates one record.
  Verdict Check(const kafka::Message& m, int& schema_id) {
    auto wire = registry::WireDecode(m.value);
    if (!wire) return {Fault::kUnreadable, "frame: " + wire.error().message};
    schema_id = wire->first;
    const registry::ResolvingDecoder* decoder = strict_.get();
    if (dual_) {
      Verdict unreadable;
      decoder = DecoderFor(schema_id, unreadable);
      if (decoder == nullptr) return unreadable;
    }
    auto decoded = decoder->Decode(wire->second);
    if (!decoded) return {Fault::kDecode, "decode: " + decoded.error().message};
    const auto& v = decoded->value;
    if (decoded->unread_bytes > 0)
      return {Fault::kGarbage,
              std::to_string(decoded->unread_bytes) + " bytes left unread, " + v.dump()};
    if (!v.contains("id") || !v["id"].is_number_integer() ||
        std::to_string(v["id"].get<std::int64_t>()) != m.key)
      return {Fault::kGarbage, "id != key " + m.key + ", " + v.dump()};
    if (!v.contains("amount") || !v["amount"].is_number() ||
        !std::isfinite(v["amount"].get<double>()) || v["amount"].get<double>() < 0 ||
        v["amount"].get<double>() > 1e6)
      return {Fault::kGarbage, "implausible amount, " + v.dump()};
    return {};
  }

  // The dual reader's decoder for a writer schema id: the registry is asked once per id.
  // nullptr, with why in `unreadable`, when the writer schema cannot be had or resolved.
  const registry::ResolvingDecoder* DecoderFor(int schema_id, Verdict& unreadable) {
    auto it = decoders_.find(schema_id);
    if (it == decoders_.end()) {
      ++schema_fetches_;
      auto text = client_.SchemaById(schema_id);
      if (!text) {
        unreadable = {Fault::kUnreadable, "registry: " + text.error().message};
        return nullptr;
      }
      auto writer = registry::ParseSchema(*text);
      if (!writer) {
        unreadable = {Fault::kUnreadable, "writer schema: " + writer.error().message};
        return nullptr;
      }
      auto d = registry::ResolvingDecoder::Create(*writer, reader_);
      if (!d) {
        unreadable = {Fault::kUnreadable, "resolve: " + d.error().message};
        return nullptr;
      }
      it = decoders_.emplace(schema_id, std::move(*d)).first;
    }
    return it->second.get();
  }

  // A failed commit is retried with the next batch: the records were processed, and leaving
  // their offsets uncommitted would show as lag until the partition received more records.
  // After a rebalance the pending offsets are dropped: the partitions may belong to another
  // member now, which re-reads from the committed offsets (at-least-once).
  void Commit(const std::map<std::int32_t, std::int64_t>& next) {
    if (consumer_->rebalances() != seen_rebalances_) {
      seen_rebalances_ = consumer_->rebalances();
      pending_commit_.clear();
    }
    for (const auto& [p, off] : next) pending_commit_[p] = off;
    if (pending_commit_.empty()) return;
    std::vector<kafka::TopicPartitionOffset> offsets;
    for (const auto& [p, off] : pending_commit_) offsets.push_back({topic_, p, off});
    if (auto s = consumer_->Commit(offsets); s) {
      pending_commit_.clear();
    } else {
      Emit("commit_error", s.error().message);
    }
  }

  // Rewind to the record that failed: the next fetch returns it again (and everything after
  // it), which is what a consumer that cannot skip a record does forever.
  void Rewind(const std::map<std::int32_t, std::int64_t>& stalled) {
    TopicListHandle list(rd_kafka_topic_partition_list_new(static_cast<int>(stalled.size())));
    for (const auto& [p, off] : stalled)
      rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), p)->offset = off;
    ErrorHandle err(rd_kafka_seek_partitions(consumer_->handle(), list.get(), 5000));
    if (err) Emit("seek_error", rd_kafka_error_string(err.get()));
    std::this_thread::sleep_for(backoff_);
  }

  void Report() const {
    Emit("consumed", consumed_);
    for (const auto& [id, n] : consumed_by_schema_)
      Emit("consumed_schema_" + std::to_string(id), n);
    Emit("parse_failures", static_cast<std::int64_t>(failed_records_.size()));
    Emit("failed_attempts", failed_attempts_);
    Emit("unreadable", unreadable_);
    Emit("decode_errors", decode_errors_);
    Emit("garbage_rejected", garbage_);
    Emit("skipped", skipped_);
    Emit("schema_fetches", schema_fetches_);
  }

  const RoleArgs& args_;
  const std::string topic_;
  const bool dual_;
  const bool retry_;
  const std::chrono::milliseconds backoff_;
  registry::RegistryClient client_;
  registry::SchemaHandle reader_;
  // Decoders by writer schema id (dual). The strict reader has only strict_.
  std::map<int, std::unique_ptr<registry::ResolvingDecoder>> decoders_;
  std::unique_ptr<registry::ResolvingDecoder> strict_;
  std::unique_ptr<kafka::Consumer> consumer_;

  // Per distinct record (a retried record counts once), except failed_attempts.
  std::int64_t consumed_ = 0;         // records decoded, validated and processed
  std::int64_t unreadable_ = 0;       // no frame, registry lookup or resolution failed
  std::int64_t decode_errors_ = 0;    // avro-c could not decode the bytes
  std::int64_t garbage_ = 0;          // decoded, but validation rejected what came out
  std::int64_t failed_attempts_ = 0;  // every failed try, retries included
  std::int64_t skipped_ = 0;          // failures committed past (on-failure skip)
  std::int64_t schema_fetches_ = 0;
  std::map<int, std::int64_t> consumed_by_schema_;
  std::set<std::pair<std::int32_t, std::int64_t>> failed_records_;
  int last_assigned_ = -1;
  std::map<std::int32_t, std::int64_t> pending_commit_;  // processed, commit not yet accepted
  int seen_rebalances_ = 0;
  SteadyClock::time_point unassigned_since_;
};

}  // namespace

int RunSchemaProducer(const RoleArgs& args) { return SchemaProducer(args).Run(); }

int RunSchemaConsumer(const RoleArgs& args) { return SchemaConsumer(args).Run(); }

}  // namespace lab::runners::roles
