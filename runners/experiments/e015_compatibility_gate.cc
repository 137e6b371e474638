// E-015: the registry's compatibility rule blocks a breaking schema before it ships.
//
// Subject lab.<ns>.<mode>.orders-value (Confluent API of Apicurio), records in the Confluent wire
// format on the topic of the same name:
//   V1            Order{id long, amount double}
//   V2 breaking   Order{id long, amount string}   — amount becomes a formatted decimal string:
//                 neither can a V2 reader read V1 data nor a V1 reader V2 data.
//   V2 compatible Order{id long, amount double, currency string default "EUR"} — a field with a
//                 default: BACKWARD-compatible, and V1 readers skip it.
// Both modes: V1 is registered (the subject's first version), the subject gets its own
// compatibility rule (an artifact rule: the registry's global rule is never touched; it is read
// before and after, global_rule_unchanged), and a producer that auto-registers its schema (as
// Confluent serializers do) writes `events` V1 records. Then the team ships V2: the
// compatibility endpoint is asked first, then the producer registers it and, if the registry
// accepts, writes `events` records with it; then the compatible V2 the same way.
//   failure: the subject's rule is NONE.  success: BACKWARD — the breaking V2 is answered 409
//   (the registry's message kept) and never produced; the compatible V2 is accepted; the breaking
//   change ships through the escape hatch instead: a new subject on a new topic
//   (orders-v2-value), read by a new consumer with the V2 schema.
//   practice=off: the success mode's subject rule is NONE too.
// The V1 consumer (a deserializer with V1 as its reader schema) reads the topic from the start
// with a fresh consumer: the writer schema by the record's id from the registry, resolved into V1
// by avro-c, the id checked against the key. A record it cannot read is a parse failure; for each
// one it also decodes the bytes with their own writer schema (failures_valid_writer: the record
// is genuine V2 data that V1 cannot read, not a corrupt one). A separate read-back counts the
// topic's records by the schema id in their header; the subject's versions are read back from
// the registry.
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/registry/http_client.h"
#include "runners/registry/schema_registry.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr int kPartitions = 3;
constexpr const char* kContentType = "application/vnd.schemaregistry.v1+json";

const char* const kSchemaV1 = R"({"type":"record","name":"Order","namespace":"lab.e015","fields":[)"
                              R"({"name":"id","type":"long"},{"name":"amount","type":"double"}]})";
const char* const kSchemaBreaking =
    R"({"type":"record","name":"Order","namespace":"lab.e015","fields":[)"
    R"({"name":"id","type":"long"},{"name":"amount","type":"string"}]})";
const char* const kSchemaCompatible =
    R"({"type":"record","name":"Order","namespace":"lab.e015","fields":[)"
    R"({"name":"id","type":"long"},{"name":"amount","type":"double"},)"
    R"({"name":"currency","type":"string","default":"EUR"}]})";

enum class Shape { kV1, kBreaking, kCompatible };

// The order as each schema writes it; amounts in [10.00, 99.99].
Json RecordOf(Shape shape, std::int64_t id) {
  const double amount = 10.0 + static_cast<double>(id % 9000) / 100.0;
  switch (shape) {
    case Shape::kV1:
      return {{"id", id}, {"amount", amount}};
    case Shape::kBreaking: {
      char text[32];
      std::snprintf(text, sizeof text, "%.2f", amount);
      return {{"id", id}, {"amount", std::string(text)}};
    }
    case Shape::kCompatible:
      return {{"id", id}, {"amount", amount}, {"currency", id % 2 == 0 ? "EUR" : "USD"}};
  }
  return {};
}

// One answer of the registry: HTTP status and body as it sent them.
struct Answer {
  long status = 0;
  std::string body;
  Json json;  // the body parsed, or discarded
};

// What a deserializer with one reader schema made of a topic.
struct Consumption {
  std::int64_t records = 0;
  std::int64_t decoded = 0;
  std::int64_t failures = 0;
  std::int64_t failures_valid_writer = 0;  // failed records whose bytes fit their writer schema
  std::map<int, std::int64_t> by_id;       // records per schema id
  Json samples = Json::array();            // a few failures: offset, id, error
  std::string error;                       // the topic could not be read
};

class CompatibilityGate final : public ExperimentBase {
 public:
  explicit CompatibilityGate(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-015"; }

  std::string ConfigurationJson() const override {
    return Json({{"partitions", kPartitions},
                 {"schema_v1", kSchemaV1},
                 {"schema_v2_breaking", kSchemaBreaking},
                 {"schema_v2_compatible", kSchemaCompatible},
                 {"subject_rule",
                  "failure: NONE; success: BACKWARD (practice=off: NONE); set per subject "
                  "(PUT /config/{subject}), the global rule is only read"},
                 {"producer", {{"enable.idempotence", "true"}, {"acks", "all"}}},
                 {"v1_consumer",
                  "writer schema by the wire header's id, resolved into V1 (avro-c)"}})
        .dump();
  }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::int64_t events = domain::GetInt(ctx.params, "events");
    const bool practice = domain::GetString(ctx.params, "practice") != "off";
    const bool gate = mode == "success" && practice;
    const std::string rule = gate ? "BACKWARD" : "NONE";
    const std::string topic = Topic(ctx, mode, "orders");
    const std::string subject = topic + "-value";
    const std::string escape_topic = Topic(ctx, mode, "orders-v2");
    const std::string escape_subject = escape_topic + "-value";
    Json details = {{"topic", topic},
                    {"subject", subject},
                    {"subject_rule", rule},
                    {"practice", practice ? "on" : "off"},
                    {"schema_v1", kSchemaV1},
                    {"schema_v2_breaking", kSchemaBreaking},
                    {"schema_v2_compatible", kSchemaCompatible}};
    Json provenance = Json::object();
    auto finish = [&](const std::string& why) {
      result.details_json = details.dump();
      return Inconclusive(std::move(result), why);
    };
    auto put = [&](const std::string& name, double v, const char* source) {
      result.metrics[name] = v;
      provenance[name] = source;
    };

    const auto global_before = GlobalRule();
    if (!global_before) return finish("registry: " + global_before.error().message);
    details["global_rule_before"] = *global_before;
    if (auto s = CreateTopic(ctx, mode, result, topic, kPartitions); !s)
      return finish("kafka: " + s.error().message);
    if (!AllBrokersKnow(topic, kPartitions, ctx.stop))
      Step(ctx, mode + ": not every broker knew " + topic + " within 10 s; producing anyway");
    // Recorded before anything is registered, so cleanup deletes it whatever happens next.
    Created(ctx, mode, result, kArtifactSubject, subject);

    // V1, the subject's own rule, V1 records.
    std::int64_t next_id = 1;
    std::int64_t resent = 0;  // records produced again after librdkafka failed them locally
    auto v1 = Register(subject, kSchemaV1);
    if (!v1) return finish("registry: " + v1.error().message);
    if (v1->status != 200)
      return finish("registry: V1 refused: HTTP " + std::to_string(v1->status) + " " + v1->body);
    const int id_v1 = v1->json.value("id", -1);
    if (auto s = SetSubjectRule(subject, rule); !s) return finish("registry: " + s.error().message);
    auto rule_read_back = Call("GET", "/config/" + subject, "");
    details["subject_rule_read_back"] =
        rule_read_back ? rule_read_back->json.value("compatibilityLevel", rule_read_back->body)
                       : rule_read_back.error().message;
    auto produced_v1 = ProduceRecords(topic, id_v1, kSchemaV1, Shape::kV1, next_id, events, resent);
    if (!produced_v1) return finish("kafka: " + produced_v1.error().message);
    next_id += events;
    Step(ctx, mode + ": V1 registered (id " + std::to_string(id_v1) + "), subject rule " + rule +
                  ", " + std::to_string(*produced_v1) + " V1 records produced");
    Progress(ctx, 20);

    // The breaking V2: the compatibility check, then the producer's registration.
    auto check_breaking = Check(subject, kSchemaBreaking);
    if (!check_breaking) return finish("registry: " + check_breaking.error().message);
    details["check_v2_breaking"] =
        check_breaking->json.is_discarded() ? Json(check_breaking->body) : check_breaking->json;
    auto breaking = Register(subject, kSchemaBreaking);
    if (!breaking) return finish("registry: " + breaking.error().message);
    details["register_v2_breaking"] = {{"http_status", breaking->status},
                                       {"answer", breaking->body}};
    std::int64_t produced_breaking = 0;
    int id_breaking = -1;
    if (breaking->status == 200) {
      id_breaking = breaking->json.value("id", -1);
      auto n = ProduceRecords(topic, id_breaking, kSchemaBreaking, Shape::kBreaking, next_id,
                              events, resent);
      if (!n) return finish("kafka: " + n.error().message);
      produced_breaking = *n;
      next_id += events;
    } else if (breaking->status != 409) {
      return finish("registry: breaking V2: HTTP " + std::to_string(breaking->status) + " " +
                    breaking->body);
    }
    Step(ctx, mode + ": breaking V2: check says " + check_breaking->body + "; registration HTTP " +
                  std::to_string(breaking->status) +
                  (breaking->status == 200
                       ? ", " + std::to_string(produced_breaking) + " V2 records produced"
                       : ": " + breaking->body.substr(0, 300)));
    Progress(ctx, 40);

    // The compatible V2 the same way.
    auto check_compatible = Check(subject, kSchemaCompatible);
    if (!check_compatible) return finish("registry: " + check_compatible.error().message);
    details["check_v2_compatible"] = check_compatible->json.is_discarded()
                                         ? Json(check_compatible->body)
                                         : check_compatible->json;
    auto compatible = Register(subject, kSchemaCompatible);
    if (!compatible) return finish("registry: " + compatible.error().message);
    details["register_v2_compatible"] = {{"http_status", compatible->status},
                                         {"answer", compatible->body}};
    std::int64_t produced_compatible = 0;
    int id_compatible = -1;
    if (compatible->status == 200) {
      id_compatible = compatible->json.value("id", -1);
      auto n = ProduceRecords(topic, id_compatible, kSchemaCompatible, Shape::kCompatible, next_id,
                              events, resent);
      if (!n) return finish("kafka: " + n.error().message);
      produced_compatible = *n;
      next_id += events;
    }
    Step(ctx, mode + ": compatible V2: registration HTTP " + std::to_string(compatible->status) +
                  ", " + std::to_string(produced_compatible) + " records produced");

    // The escape hatch (success with the gate): the breaking schema under a new subject, on a
    // new topic the V1 consumers do not read, read by a consumer built for V2.
    if (gate) {
      if (auto s = CreateTopic(ctx, mode, result, escape_topic, kPartitions); !s)
        return finish("kafka: " + s.error().message);
      if (!AllBrokersKnow(escape_topic, kPartitions, ctx.stop))
        Step(ctx, mode + ": not every broker knew " + escape_topic + " within 10 s");
      Created(ctx, mode, result, kArtifactSubject, escape_subject);
      auto escape = Register(escape_subject, kSchemaBreaking);
      if (!escape) return finish("registry: " + escape.error().message);
      details["escape_hatch"] = {{"topic", escape_topic},
                                 {"subject", escape_subject},
                                 {"http_status", escape->status},
                                 {"answer", escape->body}};
      put("escape_hatch_registered", escape->status == 200 ? 1 : 0, "server_counter");
      if (escape->status == 200) {
        auto n = ProduceRecords(escape_topic, escape->json.value("id", -1), kSchemaBreaking,
                                Shape::kBreaking, next_id, events, resent);
        if (!n) return finish("kafka: " + n.error().message);
        auto v2 = ConsumeAs(escape_topic, kSchemaBreaking, events);
        if (!v2.error.empty()) return finish("escape hatch read: " + v2.error);
        put("escape_records", static_cast<double>(v2.records), "read_back");
        put("escape_decoded_v2", static_cast<double>(v2.decoded), "self_reported");
      }
    }
    Progress(ctx, 70);

    // The V1 consumer, then the independent counts.
    const std::int64_t produced = *produced_v1 + produced_breaking + produced_compatible;
    auto consumed = ConsumeAs(topic, kSchemaV1, produced);
    if (!consumed.error.empty()) return finish("V1 consumer: " + consumed.error);
    auto read =
        kafka::ReadTopic(config_.kafka_bootstrap, topic, kPartitions, "read_committed", 30s);
    if (!read.complete) return finish("read-back: " + read.error);
    std::map<int, std::int64_t> by_id;
    for (const auto& m : read.messages) {
      auto wire = registry::WireDecode(m.value);
      ++by_id[wire ? wire->first : -1];
    }
    auto count_of = [&](int id) { return id >= 0 && by_id.count(id) ? by_id[id] : 0; };
    auto versions = Call("GET", "/subjects/" + subject + "/versions", "");
    if (!versions || versions->status != 200 || !versions->json.is_array())
      return finish("registry: versions of " + subject + ": " +
                    (versions ? versions->body : versions.error().message));
    // Is the breaking schema one of the subject's versions? Asked of the registry version by
    // version (the schema text as stored), not inferred from the registration's answer.
    std::int64_t breaking_in_registry = 0;
    Json stored = Json::array();
    for (const auto& v : versions->json) {
      auto one = Call("GET", "/subjects/" + subject + "/versions/" + v.dump(), "");
      if (!one || one->status != 200)
        return finish("registry: version " + v.dump() + " of " + subject);
      const std::string schema = one->json.value("schema", "");
      auto parsed = Json::parse(schema, nullptr, false);
      const bool is_breaking =
          !parsed.is_discarded() && parsed == Json::parse(kSchemaBreaking, nullptr, false);
      breaking_in_registry += is_breaking ? 1 : 0;
      stored.push_back(
          {{"version", v}, {"id", one->json.value("id", -1)}, {"breaking", is_breaking}});
    }
    details["subject_versions"] = stored;
    const auto global_after = GlobalRule();
    if (!global_after) return finish("registry: " + global_after.error().message);
    details["global_rule_after"] = *global_after;
    details["schema_ids"] = {
        {"v1", id_v1}, {"v2_breaking", id_breaking}, {"v2_compatible", id_compatible}};
    details["records_by_schema_id"] = by_id;
    details["parse_failure_samples"] = consumed.samples;

    put("global_rule_unchanged", *global_before == *global_after ? 1 : 0, "read_back");
    put("breaking_check_compatible", check_breaking->json.value("is_compatible", false) ? 1 : 0,
        "server_counter");
    put("breaking_registered", breaking->status == 200 ? 1 : 0, "server_counter");
    put("breaking_rejected", breaking->status == 409 ? 1 : 0, "server_counter");
    put("breaking_in_registry", static_cast<double>(breaking_in_registry), "read_back");
    put("compatible_check_compatible", check_compatible->json.value("is_compatible", false) ? 1 : 0,
        "server_counter");
    put("compatible_registered", compatible->status == 200 ? 1 : 0, "server_counter");
    put("subject_versions", static_cast<double>(versions->json.size()), "read_back");
    put("produced", static_cast<double>(produced), "self_reported");
    put("records_in_topic", static_cast<double>(read.messages.size()), "read_back");
    put("records_v1", static_cast<double>(count_of(id_v1)), "read_back");
    put("records_v2_breaking", static_cast<double>(count_of(id_breaking)), "read_back");
    put("records_v2_compatible", static_cast<double>(count_of(id_compatible)), "read_back");
    put("consumed", static_cast<double>(consumed.records), "self_reported");
    put("decoded", static_cast<double>(consumed.decoded), "self_reported");
    put("parse_failures", static_cast<double>(consumed.failures), "self_reported");
    put("failures_valid_writer", static_cast<double>(consumed.failures_valid_writer),
        "self_reported");
    details["records_resent"] = resent;
    if (resent > 0) {
      details["records_resent_why"] =
          "librdkafka 2.0.2 failed them locally (_UNKNOWN_PARTITION, never sent) when a broker "
          "that had not yet learned the new topic answered a metadata request (librdkafka "
          "#4401); a new producer sent them again";
    }
    details["provenance"] = provenance;
    result.details_json = details.dump();
    Step(ctx, mode + " (rule " + rule + "): breaking V2 " +
                  (breaking->status == 200 ? "registered" : "rejected (HTTP 409)") +
                  ", compatible V2 HTTP " + std::to_string(compatible->status) +
                  "; topic: v1=" + std::to_string(count_of(id_v1)) +
                  " v2_breaking=" + std::to_string(count_of(id_breaking)) +
                  " v2_compatible=" + std::to_string(count_of(id_compatible)) +
                  "; V1 consumer decoded=" + std::to_string(consumed.decoded) +
                  " parse_failures=" + std::to_string(consumed.failures));
    Progress(ctx, 100);
    return result;
  }

 private:
  domain::Result<Answer> Call(const std::string& method, const std::string& path,
                              const std::string& body) const {
    auto r = registry::HttpRequest(method, config_.registry_url + path, body,
                                   body.empty() ? "" : kContentType, 5000ms);
    if (!r) return r.error();
    Answer a{r->status, r->body, Json::parse(r->body, nullptr, false)};
    return a;
  }

  // The registry's global compatibility level (GET /config), only ever read.
  domain::Result<std::string> GlobalRule() const {
    auto r = Call("GET", "/config", "");
    if (!r) return r.error();
    if (r->status != 200 || !r->json.is_object())
      return domain::MakeError(domain::ErrorCode::kUnavailable,
                               "GET /config: HTTP " + std::to_string(r->status) + " " + r->body);
    return r->json.value("compatibilityLevel", r->body);
  }

  domain::Status SetSubjectRule(const std::string& subject, const std::string& level) const {
    auto r = Call("PUT", "/config/" + subject, Json({{"compatibility", level}}).dump());
    if (!r) return r.error();
    if (r->status != 200)
      return domain::MakeError(
          domain::ErrorCode::kUnavailable,
          "PUT /config/" + subject + ": HTTP " + std::to_string(r->status) + " " + r->body);
    return {};
  }

  static std::string SchemaBody(const char* schema) {
    return Json({{"schema", schema}, {"schemaType", "AVRO"}}).dump();
  }

  // POST /subjects/{subject}/versions, as a serializer auto-registers: 200 {id} or 409.
  domain::Result<Answer> Register(const std::string& subject, const char* schema) const {
    return Call("POST", "/subjects/" + subject + "/versions", SchemaBody(schema));
  }

  // The compatibility check against the subject's latest version. verbose=true asks for the
  // reasons; Apicurio 3.3.3 answers is_compatible only (its 409 on registration names them).
  domain::Result<Answer> Check(const std::string& subject, const char* schema) const {
    auto r = Call("POST", "/compatibility/subjects/" + subject + "/versions/latest?verbose=true",
                  SchemaBody(schema));
    if (!r) return r;
    if (r->status != 200 || !r->json.is_object() || !r->json.contains("is_compatible")) {
      return domain::MakeError(domain::ErrorCode::kUnavailable,
                               "compatibility check on " + subject + ": HTTP " +
                                   std::to_string(r->status) + " " + r->body);
    }
    return r;
  }

  // `count` records written with `schema` (id `schema_id`), ids from `first`; returns how many
  // were acknowledged. Records librdkafka failed locally because it briefly took the new topic
  // for unknown (AllBrokersKnow) were never sent: they are produced again by a new producer, at
  // most twice, and counted in `resent`.
  domain::Result<std::int64_t> ProduceRecords(const std::string& topic, int schema_id,
                                              const char* schema_json, Shape shape,
                                              std::int64_t first, std::int64_t count,
                                              std::int64_t& resent) const {
    auto schema = registry::ParseSchema(schema_json);
    if (!schema) return schema.error();
    std::vector<std::int64_t> pending;
    for (std::int64_t id = first; id < first + count; ++id) pending.push_back(id);
    std::int64_t acked = 0;
    std::map<std::string, std::int64_t> errors;
    for (int round = 0; round < 3 && !pending.empty(); ++round) {
      if (round > 0) {
        resent += static_cast<std::int64_t>(pending.size());
        std::this_thread::sleep_for(500ms);
      }
      auto producer = kafka::Producer::Create(config_.kafka_bootstrap,
                                              {{"enable.idempotence", "true"}, {"acks", "all"}});
      if (!producer) return producer.error();
      for (std::int64_t id : pending) {
        auto body = registry::EncodeAvro(*schema, RecordOf(shape, id));
        if (!body) return body.error();
        if (auto s = (*producer)->Produce(topic, -1, std::to_string(id),
                                          registry::WireEncode(schema_id, *body), {}, id);
            !s) {
          return s.error();
        }
      }
      if (auto s = (*producer)->Flush(20s); !s) return s.error();
      pending.clear();
      errors.clear();
      for (const auto& r : (*producer)->TakeReports()) {
        if (r.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          ++acked;
          continue;
        }
        ++errors[rd_kafka_err2name(r.err)];
        const bool unknown = r.err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
                             r.err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (unknown && r.status == RD_KAFKA_MSG_STATUS_NOT_PERSISTED) pending.push_back(r.seq);
      }
    }
    if (acked != count) {
      std::string why;
      for (const auto& [name, n] : errors) why += " " + name + " x" + std::to_string(n);
      return domain::MakeError(domain::ErrorCode::kUnavailable,
                               std::to_string(acked) + " of " + std::to_string(count) +
                                   " records acknowledged to " + topic + ";" + why);
    }
    return acked;
  }

  // A consumer whose deserializer has `reader_json` as its reader schema reads `topic` from the
  // start: each record's writer schema by its id (fetched once per id from the registry),
  // resolved into the reader schema; the decoded id must be the key.
  Consumption ConsumeAs(const std::string& topic, const char* reader_json,
                        std::int64_t expected) const {
    Consumption out;
    auto reader = registry::ParseSchema(reader_json);
    if (!reader) {
      out.error = reader.error().message;
      return out;
    }
    auto read = kafka::ReadTopic(config_.kafka_bootstrap, topic, kPartitions, "read_committed",
                                 ReadBackWait(expected));
    if (!read.complete) {
      out.error = read.error;
      return out;
    }
    struct Writer {
      registry::SchemaHandle schema;
      std::unique_ptr<registry::ResolvingDecoder> decoder;
      std::string error;  // why this writer schema cannot be read into the reader schema
    };
    std::map<int, Writer> writers;
    registry::RegistryClient client(config_.registry_url);
    for (const auto& m : read.messages) {
      ++out.records;
      auto fail = [&](int id, const std::string& why) {
        ++out.failures;
        if (out.samples.size() < 5) {
          out.samples.push_back({{"partition", m.partition},
                                 {"offset", m.offset},
                                 {"schema_id", id},
                                 {"error", why}});
        }
      };
      auto wire = registry::WireDecode(m.value);
      if (!wire) {
        fail(-1, wire.error().message);
        continue;
      }
      const int id = wire->first;
      ++out.by_id[id];
      auto it = writers.find(id);
      if (it == writers.end()) {
        Writer w;
        auto text = client.SchemaById(id);
        auto schema = text ? registry::ParseSchema(*text)
                           : domain::Result<registry::SchemaHandle>(text.error());
        if (!schema) {
          w.error = "writer schema " + std::to_string(id) + ": " + schema.error().message;
        } else {
          w.schema = *schema;
          auto decoder = registry::ResolvingDecoder::Create(*schema, *reader);
          if (decoder) {
            w.decoder = std::move(*decoder);
          } else {
            w.error = decoder.error().message;
          }
        }
        it = writers.emplace(id, std::move(w)).first;
      }
      const Writer& w = it->second;
      if (!w.decoder) {
        fail(id, w.error);
        if (w.schema && registry::DecodeAvro(w.schema, w.schema, wire->second).ok())
          ++out.failures_valid_writer;
        continue;
      }
      auto decoded = w.decoder->Decode(wire->second);
      if (!decoded) {
        fail(id, decoded.error().message);
        continue;
      }
      if (decoded->unread_bytes > 0) {
        fail(id, std::to_string(decoded->unread_bytes) + " bytes left unread");
        continue;
      }
      if (!decoded->value.is_object() ||
          std::to_string(decoded->value.value("id", std::int64_t{-1})) != m.key) {
        fail(id, "decoded id is not the record's key: " + decoded->value.dump());
        continue;
      }
      ++out.decoded;
    }
    return out;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeCompatibilityGate(const StackConfig& config) {
  return std::make_unique<CompatibilityGate>(config);
}

}  // namespace lab::runners
