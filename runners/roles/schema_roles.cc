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

}  // namespace

int RunSchemaProducer(const RoleArgs& args) {
  const std::string topic = args.Get("topic");
  const std::string subject = args.Get("subject");
  const std::string schema_json = args.Get("schema");
  const std::int64_t events = args.Int("events", 0);
  const std::int64_t first_id = args.Int("first-id", 1);
  const std::string ns = args.Get("ns");
  const auto interval = std::chrono::microseconds(args.Int("interval-us", 0));  // pacing

  auto schema = registry::ParseSchema(schema_json);
  if (!schema) {
    Emit("error", schema.error().message);
    return 1;
  }
  registry::RegistryClient client(args.Get("registry"));
  auto id = client.Register(subject, schema_json);
  if (!id) {
    if (id.error().code == domain::ErrorCode::kConflict) {
      Emit("register_conflict", id.error().message);
      return 3;
    }
    Emit("error", id.error().message);
    return 1;
  }
  Emit("schema_id", *id);

  auto producer = kafka::Producer::Create(args.Get("bootstrap"),
                                          {{"enable.idempotence", "true"}, {"acks", "all"}});
  if (!producer) {
    Emit("error", producer.error().message);
    return 1;
  }
  std::int64_t enqueued = 0;
  for (std::int64_t i = 0; i < events && !StopRequested(); ++i) {
    const std::int64_t order_id = first_id + i;
    nlohmann::json record = {
        {"id", order_id}, {"amount", AmountOf(order_id)}, {"currency", kCurrencies[order_id % 3]}};
    auto body = registry::EncodeAvro(*schema, record);  // fields the schema lacks are ignored
    if (!body) {
      Emit("error", body.error().message);
      return 1;
    }
    auto s =
        (*producer)->Produce(topic, -1, std::to_string(order_id), registry::WireEncode(*id, *body),
                             {{"event_id", ns + "-" + std::to_string(order_id)}}, order_id);
    if (!s) {
      Emit("produce_error", s.error().message);
      break;
    }
    ++enqueued;
    // The idempotent producer holds records until it has its producer id; flushing the first
    // one makes the pace below the pace at which records reach the brokers.
    if (i == 0) (void)(*producer)->Flush(std::chrono::milliseconds(10000));
    if (interval.count() > 0) {
      (*producer)->Poll(std::chrono::milliseconds(0));
      std::this_thread::sleep_for(interval);
    }
  }
  auto flushed = (*producer)->Flush(std::chrono::milliseconds(20000));
  if (!flushed) Emit("flush_error", flushed.error().message);
  std::int64_t delivered = 0;
  std::int64_t failed = 0;
  std::map<std::string, std::int64_t> library_failures;  // one line per kind, not per record
  std::map<std::string, std::int64_t> other_failures;
  for (const auto& r : (*producer)->TakeReports()) {
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
  if (auto fatal = (*producer)->FatalError())
    Emit("client_library_failure", "schema-producer: " + *fatal);
  Emit("enqueued", enqueued);
  Emit("produced", delivered);
  Emit("delivery_errors", failed);
  return delivered == events ? 0 : 1;
}

int RunSchemaConsumer(const RoleArgs& args) {
  const std::string topic = args.Get("topic");
  const bool dual = args.Get("read", "strict") == "dual";
  const bool retry = args.Get("on-failure", "retry") == "retry";
  const auto backoff = std::chrono::milliseconds(args.Int("retry-backoff-ms", 200));
  StopOnSigterm();

  auto reader = registry::ParseSchema(args.Get("reader-schema"));
  if (!reader) {
    Emit("error", reader.error().message);
    return 1;
  }
  registry::RegistryClient client(args.Get("registry"));
  // Decoders by writer schema id (dual) — the registry is asked once per id. The strict reader
  // has one decoder: its own schema as both writer and reader.
  std::map<int, std::unique_ptr<registry::ResolvingDecoder>> decoders;
  std::unique_ptr<registry::ResolvingDecoder> strict;
  if (!dual) {
    auto d = registry::ResolvingDecoder::Create(*reader, *reader);
    if (!d) {
      Emit("error", d.error().message);
      return 1;
    }
    strict = std::move(*d);
  }

  auto consumer = kafka::Consumer::Create(args.Get("bootstrap"), args.Get("group"),
                                          {{"auto.offset.reset", "earliest"}});
  if (!consumer) {
    Emit("error", consumer.error().message);
    return 1;
  }
  if (auto s = (*consumer)->Subscribe({topic}); !s) {
    Emit("error", s.error().message);
    return 1;
  }

  // Per distinct record (a retried record counts once), except failed_attempts.
  std::int64_t consumed = 0;         // records decoded, validated and processed
  std::int64_t unreadable = 0;       // no frame, registry lookup or resolution failed
  std::int64_t decode_errors = 0;    // avro-c could not decode the bytes
  std::int64_t garbage = 0;          // decoded, but validation rejected what came out
  std::int64_t failed_attempts = 0;  // every failed try, retries included
  std::int64_t skipped = 0;          // failures committed past (on-failure skip)
  std::int64_t schema_fetches = 0;
  std::map<int, std::int64_t> consumed_by_schema;
  std::set<std::pair<std::int32_t, std::int64_t>> failed_records;
  int last_assigned = -1;

  enum class Fault { kNone, kUnreadable, kDecode, kGarbage };
  struct Verdict {
    Fault fault = Fault::kNone;
    std::string why;
  };
  // Decodes and validates one record.
  auto check = [&](const kafka::Message& m, int& schema_id) -> Verdict {
    auto wire = registry::WireDecode(m.value);
    if (!wire) return {Fault::kUnreadable, "frame: " + wire.error().message};
    schema_id = wire->first;
    const registry::ResolvingDecoder* decoder = strict.get();
    if (dual) {
      auto it = decoders.find(schema_id);
      if (it == decoders.end()) {
        ++schema_fetches;
        auto text = client.SchemaById(schema_id);
        if (!text) return {Fault::kUnreadable, "registry: " + text.error().message};
        auto writer = registry::ParseSchema(*text);
        if (!writer) return {Fault::kUnreadable, "writer schema: " + writer.error().message};
        auto d = registry::ResolvingDecoder::Create(*writer, *reader);
        if (!d) return {Fault::kUnreadable, "resolve: " + d.error().message};
        it = decoders.emplace(schema_id, std::move(*d)).first;
      }
      decoder = it->second.get();
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
  };

  std::map<std::int32_t, std::int64_t> pending_commit;  // processed, commit not yet accepted
  int seen_rebalances = (*consumer)->rebalances();
  auto unassigned_since = SteadyClock::now();
  while (!StopRequested()) {
    auto polled = (*consumer)->Poll(100, std::chrono::milliseconds(200));
    if (auto stalled = (*consumer)->RejoinIfStalled(std::chrono::seconds(5)))
      Emit("client_library_failure", "schema-consumer: " + *stalled);
    if ((*consumer)->assigned_count() != last_assigned) {
      last_assigned = (*consumer)->assigned_count();
      Emit("assigned", last_assigned);
      unassigned_since = SteadyClock::now();
    }
    if (last_assigned == 0 && SteadyClock::now() - unassigned_since > std::chrono::seconds(5)) {
      // Still without partitions: say what the client knows (member id: did it join at all;
      // partitions of the topic in its metadata), for the runner's step log.
      unassigned_since = SteadyClock::now();
      char* member = rd_kafka_memberid((*consumer)->handle());
      const rd_kafka_metadata_t* md = nullptr;
      int partitions = -1;
      if (rd_kafka_metadata((*consumer)->handle(), 0, nullptr, &md, 2000) ==
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int t = 0; t < md->topic_cnt; ++t) {
          if (topic == md->topics[t].topic) partitions = md->topics[t].partition_cnt;
        }
        rd_kafka_metadata_destroy(md);
      }
      Emit("unassigned", std::string("member=") + (member != nullptr ? member : "") +
                             " rebalances=" + std::to_string((*consumer)->rebalances()) +
                             " topic_partitions=" + std::to_string(partitions));
      if (member != nullptr) rd_kafka_mem_free((*consumer)->handle(), member);
    }
    if (!polled) {
      Emit("consume_error", polled.error().message);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    std::map<std::int32_t, std::int64_t> next;     // offsets to commit, per partition
    std::map<std::int32_t, std::int64_t> stalled;  // partition -> offset to retry from
    for (const auto& m : *polled) {
      if (stalled.count(m.partition) > 0) continue;  // behind a poison pill in this batch
      int schema_id = -1;
      Verdict verdict = check(m, schema_id);
      if (verdict.fault == Fault::kNone) {
        ++consumed;
        ++consumed_by_schema[schema_id];
        next[m.partition] = m.offset + 1;
        continue;
      }
      ++failed_attempts;
      if (failed_records.insert({m.partition, m.offset}).second) {
        ++(verdict.fault == Fault::kUnreadable ? unreadable
           : verdict.fault == Fault::kDecode   ? decode_errors
                                               : garbage);
        if (failed_records.size() <= 5) {
          Emit("parse_failure", std::to_string(m.partition) + "@" + std::to_string(m.offset) +
                                    " schema_id=" + std::to_string(schema_id) + ": " + verdict.why);
        }
      }
      if (retry) {
        stalled[m.partition] = m.offset;
      } else {
        ++skipped;
        next[m.partition] = m.offset + 1;
      }
    }
    // A failed commit is retried with the next batch: the records were processed, and leaving
    // their offsets uncommitted would show as lag until the partition received more records.
    // After a rebalance the pending offsets are dropped: the partitions may belong to another
    // member now, which re-reads from the committed offsets (at-least-once).
    if ((*consumer)->rebalances() != seen_rebalances) {
      seen_rebalances = (*consumer)->rebalances();
      pending_commit.clear();
    }
    for (const auto& [p, off] : next) pending_commit[p] = off;
    if (!pending_commit.empty()) {
      std::vector<kafka::TopicPartitionOffset> offsets;
      for (const auto& [p, off] : pending_commit) offsets.push_back({topic, p, off});
      if (auto s = (*consumer)->Commit(offsets); s) {
        pending_commit.clear();
      } else {
        Emit("commit_error", s.error().message);
      }
    }
    if (!stalled.empty()) {
      // Rewind to the record that failed: the next fetch returns it again (and everything
      // after it), which is what a consumer that cannot skip a record does forever.
      TopicListHandle list(rd_kafka_topic_partition_list_new(static_cast<int>(stalled.size())));
      for (const auto& [p, off] : stalled)
        rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = off;
      ErrorHandle err(rd_kafka_seek_partitions((*consumer)->handle(), list.get(), 5000));
      if (err) Emit("seek_error", rd_kafka_error_string(err.get()));
      std::this_thread::sleep_for(backoff);
    }
  }
  (void)(*consumer)->Close();
  Emit("consumed", consumed);
  for (const auto& [id, n] : consumed_by_schema) Emit("consumed_schema_" + std::to_string(id), n);
  Emit("parse_failures", static_cast<std::int64_t>(failed_records.size()));
  Emit("failed_attempts", failed_attempts);
  Emit("unreadable", unreadable);
  Emit("decode_errors", decode_errors);
  Emit("garbage_rejected", garbage);
  Emit("skipped", skipped);
  Emit("schema_fetches", schema_fetches);
  return 0;
}

}  // namespace lab::runners::roles
