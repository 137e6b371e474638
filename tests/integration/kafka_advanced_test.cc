// E-012 and E-015 through the HTTP API of the real server: each run completes with its verdict,
// and its evidence is recounted here from what the stack holds (the kept topics, MariaDB rows and
// registry subjects), not from the runner's arithmetic; the practice=off flip turns the verdict
// to refuted. Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "runners/kafka/kafka_client.h"
#include "runners/registry/http_client.h"
#include "runners/registry/schema_registry.h"
#include "tests/integration/api_harness.h"
#include "tests/integration/harness.h"
#include "tests/integration/redis_support.h"

namespace lab::testing {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

std::string HeaderOf(const runners::kafka::Message& m, const std::string& name) {
  for (const auto& [k, v] : m.headers) {
    if (k == name) return v;
  }
  return "";
}

// ---------------------------------------------------------------- E-012

// One mode of E-012 recounted from the kept topic and rows.
struct TxnRecount {
  double applied = 0;           // txn_effect rows
  double phantoms = 0;          // rows whose transaction's kafka_txn outcome is not committed
  double committed_rows = 0;    // kafka_txn: records of committed transactions
  double fenced_txns = 0;       // kafka_txn rows with outcome fenced
  double log_end = 0;           // sum of the partitions' high watermarks
  double data_records = 0;      // records a fresh read_uncommitted reader sees
  double committed_in_log = 0;  // of those, records of committed transactions
  double aborted_visible = 0;   // records of other transactions a fresh read_committed reader sees
};

TxnRecount RecountE012(const Json& details) {
  TxnRecount r;
  const std::string ns = details.value("run_ns", "");
  const std::string topic = details.value("topic", "");
  const int partitions = static_cast<int>(details.value("partitions", Json::object()).size());
  EXPECT_FALSE(ns.empty());
  EXPECT_EQ(partitions, 3);
  auto db = Mysql();
  if (!db) return r;
  // Outcomes per transaction, then the rows judged against them here (not by the runner's join).
  std::map<std::string, std::string> outcome;
  auto txns = db->Query("SELECT txn_no, outcome, records FROM kafka_txn WHERE run_ns = ?", {ns});
  EXPECT_TRUE(txns.ok());
  if (!txns) return r;
  for (const auto& row : txns->rows) {
    outcome[*row[0]] = *row[1];
    if (*row[1] == "committed") r.committed_rows += std::stod(*row[2]);
    if (*row[1] == "fenced") ++r.fenced_txns;
  }
  auto effects = db->Query("SELECT txn_no FROM txn_effect WHERE run_ns = ?", {ns});
  EXPECT_TRUE(effects.ok());
  if (!effects) return r;
  for (const auto& row : effects->rows) {
    ++r.applied;
    if (outcome[*row[0]] != "committed") ++r.phantoms;
  }
  const auto bootstrap = TestStackConfig().kafka_bootstrap;
  auto watermarks =
      runners::kafka::Consumer::Create(bootstrap, "", {{"isolation.level", "read_uncommitted"}});
  EXPECT_TRUE(watermarks.ok());
  if (!watermarks) return r;
  for (int p = 0; p < partitions; ++p) {
    std::int64_t low = 0;
    std::int64_t high = 0;
    EXPECT_EQ(rd_kafka_query_watermark_offsets((*watermarks)->handle(), topic.c_str(), p, &low,
                                               &high, 5000),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    r.log_end += static_cast<double>(high);
  }
  auto all = runners::kafka::ReadTopic(bootstrap, topic, partitions, "read_uncommitted", 60s);
  auto visible = runners::kafka::ReadTopic(bootstrap, topic, partitions, "read_committed", 60s);
  EXPECT_TRUE(all.complete && visible.complete) << all.error << visible.error;
  for (const auto& m : all.messages) {
    ++r.data_records;
    if (outcome[HeaderOf(m, "txn")] == "committed") ++r.committed_in_log;
  }
  for (const auto& m : visible.messages)
    r.aborted_visible += outcome[HeaderOf(m, "txn")] == "committed" ? 0 : 1;
  return r;
}

// E-012 with the defaults (20 transactions of 10 records on 3 partitions, every 3rd aborted, and
// a fenced zombie of 10 records): 140 committed and 70 aborted records, 21 transactions each
// ending with a marker on each partition (63 markers). read_uncommitted applies all 210 records
// (70 phantoms) and misses only the markers; read_committed applies exactly the 140 committed
// ones and misses the markers and the 70 aborted records; both reach the end of the log.
TEST(Integration, E012ReadCommittedSkipsAborted) {
  auto o = RunKeptThroughApi("E-012", {});
  std::map<std::string, TxnRecount> recount;
  for (const char* mode : {"failure", "success"}) recount[mode] = RecountE012(DetailsOf(o, mode));
  CleanupKept("E-012", o);

  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    const auto& r = recount[mode];
    EXPECT_EQ(r.committed_rows, 140) << mode;
    EXPECT_EQ(r.fenced_txns, 1) << mode;
    EXPECT_EQ(r.data_records, 210) << mode;
    EXPECT_EQ(r.committed_in_log, 140) << mode;
    EXPECT_EQ(r.log_end - r.data_records, 63) << mode << ": markers";
    EXPECT_EQ(r.aborted_visible, 0) << mode;
    EXPECT_EQ(MetricOf(o, mode, "applied"), r.applied) << mode << Describe(o);
    EXPECT_EQ(MetricOf(o, mode, "phantoms"), r.phantoms) << mode;
    EXPECT_EQ(MetricOf(o, mode, "committed"), r.committed_rows) << mode;
    EXPECT_EQ(MetricOf(o, mode, "committed_in_log"), r.committed_in_log) << mode;
    EXPECT_EQ(MetricOf(o, mode, "aborted_in_log"), r.data_records - r.committed_in_log) << mode;
    EXPECT_EQ(MetricOf(o, mode, "markers"), r.log_end - r.data_records) << mode;
    // Every record the consumer received was applied once, so what it never received is the
    // log's end minus the rows.
    EXPECT_EQ(MetricOf(o, mode, "gaps"), r.log_end - r.applied) << mode;
    EXPECT_EQ(MetricOf(o, mode, "gap_committed_records"), 0) << mode;
    EXPECT_EQ(MetricOf(o, mode, "reached_end"), 1) << mode;
    EXPECT_EQ(MetricOf(o, mode, "fenced"), 1) << mode;
  }
  EXPECT_EQ(recount["failure"].applied, 210);
  EXPECT_EQ(recount["failure"].phantoms, 70);
  EXPECT_EQ(MetricOf(o, "failure", "gap_markers"), 63) << Describe(o);
  EXPECT_EQ(MetricOf(o, "failure", "gap_aborted_records"), 0);
  EXPECT_EQ(recount["success"].applied, 140);
  EXPECT_EQ(recount["success"].phantoms, 0);
  EXPECT_EQ(MetricOf(o, "success", "gap_markers"), 63) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "gap_aborted_records"), 70);
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
  // Cleanup removed the rows.
  auto db = Mysql();
  ASSERT_TRUE(db);
  for (const char* mode : {"failure", "success"}) {
    const std::string ns = DetailsOf(o, mode).value("run_ns", "");
    for (const char* table : {"kafka_txn", "txn_effect"}) {
      auto left =
          db->Query(std::string("SELECT COUNT(*) FROM ") + table + " WHERE run_ns = ?", {ns});
      ASSERT_TRUE(left.ok());
      EXPECT_EQ(left->Scalar(), 0) << table << " " << mode;
    }
  }
}

// practice=off: the success mode's consumer reads read_uncommitted and applies every aborted and
// fenced record: phantoms, so the claim's success side fails.
TEST(Integration, E012ReadUncommittedInSuccessModeRefuted) {
  auto o = RunThroughApi("E-012", {{"practice", std::string("off")}}, {"success"});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "phantoms"), MetricOf(o, "success", "aborted_in_log"))
      << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "phantoms"), 0);
  EXPECT_EQ(DetailsOf(o, "success").value("isolation", ""), "read_uncommitted");
}

// ---------------------------------------------------------------- E-015

// The registry's answer to GET `path` (Confluent API), parsed.
Json RegistryGet(const std::string& path) {
  auto r =
      runners::registry::HttpRequest("GET", TestStackConfig().registry_url + path, "", "", 5000ms);
  EXPECT_TRUE(r.ok()) << path;
  if (!r) return Json();
  auto j = Json::parse(r->body, nullptr, false);
  return r->status == 200 && !j.is_discarded() ? j : Json();
}

// A topic recounted as a deserializer with `reader_json` reads it: records per schema id and the
// records whose writer schema (fetched here by id) does not resolve into the reader or decode.
struct TopicRecount {
  std::map<int, double> by_id;
  double records = 0;
  double unreadable = 0;
};

TopicRecount RecountTopic(const std::string& topic, const std::string& reader_json) {
  TopicRecount out;
  auto reader = runners::registry::ParseSchema(reader_json);
  EXPECT_TRUE(reader.ok());
  auto read =
      runners::kafka::ReadTopic(TestStackConfig().kafka_bootstrap, topic, 3, "read_committed", 60s);
  EXPECT_TRUE(read.complete) << read.error;
  if (!reader || !read.complete) return out;
  runners::registry::RegistryClient client(TestStackConfig().registry_url);
  for (const auto& m : read.messages) {
    ++out.records;
    auto wire = runners::registry::WireDecode(m.value);
    if (!wire) {
      ++out.unreadable;
      continue;
    }
    ++out.by_id[wire->first];
    auto text = client.SchemaById(wire->first);
    auto writer = text ? runners::registry::ParseSchema(*text)
                       : domain::Result<runners::registry::SchemaHandle>(text.error());
    auto value = writer ? runners::registry::DecodeAvro(*writer, *reader, wire->second)
                        : domain::Result<Json>(writer.error());
    if (!value || std::to_string(value->value("id", std::int64_t{-1})) != m.key) ++out.unreadable;
  }
  return out;
}

// The subject's versions as the registry stores them: how many, and how many are the given
// schema (compared as JSON).
std::pair<double, double> VersionsOf(const std::string& subject, const std::string& schema) {
  auto versions = RegistryGet("/subjects/" + subject + "/versions");
  EXPECT_TRUE(versions.is_array()) << subject;
  if (!versions.is_array()) return {-1, -1};
  double same = 0;
  for (const auto& v : versions) {
    auto one = RegistryGet("/subjects/" + subject + "/versions/" + v.dump());
    if (one.is_object() &&
        Json::parse(one.value("schema", ""), nullptr, false) == Json::parse(schema, nullptr, false))
      ++same;
  }
  return {static_cast<double>(versions.size()), same};
}

// E-015 with the defaults (30 records per accepted schema). NONE: the breaking V2 is stored and
// its 30 records are unreadable to a V1 deserializer. BACKWARD: it is answered 409 and never
// stored, the compatible V2 is; every record of the topic is readable with V1, and the breaking
// schema lives under a new subject on a new topic. The global rule is the same after the run,
// and cleanup removes every subject the run made.
TEST(Integration, E015CompatibilityGate) {
  const Json global_before = RegistryGet("/config");
  auto o = RunKeptThroughApi("E-015", {});
  const Json failure = DetailsOf(o, "failure");
  const Json success = DetailsOf(o, "success");
  const std::string breaking = failure.value("schema_v2_breaking", "");
  const std::string v1 = failure.value("schema_v1", "");
  ASSERT_FALSE(breaking.empty() || v1.empty()) << Describe(o);
  const auto failure_versions = VersionsOf(failure.value("subject", ""), breaking);
  const auto success_versions = VersionsOf(success.value("subject", ""), breaking);
  const Json failure_rule = RegistryGet("/config/" + failure.value("subject", ""));
  const Json success_rule = RegistryGet("/config/" + success.value("subject", ""));
  const auto failure_topic = RecountTopic(failure.value("topic", ""), v1);
  const auto success_topic = RecountTopic(success.value("topic", ""), v1);
  const Json escape = success.value("escape_hatch", Json::object());
  const auto escape_topic = RecountTopic(escape.value("topic", ""), breaking);
  const auto escape_versions = VersionsOf(escape.value("subject", ""), breaking);
  CleanupKept("E-015", o);

  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  // NONE: V1, the breaking V2 and the compatible V2 are stored; 30 unreadable records.
  EXPECT_EQ(failure_versions, std::make_pair(3.0, 1.0)) << Describe(o);
  EXPECT_EQ(failure_rule.value("compatibilityLevel", ""), "NONE");
  EXPECT_EQ(failure_topic.records, 90);
  EXPECT_EQ(failure_topic.unreadable, 30);
  EXPECT_EQ(MetricOf(o, "failure", "parse_failures"), failure_topic.unreadable) << Describe(o);
  EXPECT_EQ(MetricOf(o, "failure", "failures_valid_writer"), failure_topic.unreadable);
  EXPECT_EQ(MetricOf(o, "failure", "records_in_topic"), failure_topic.records);
  EXPECT_EQ(MetricOf(o, "failure", "breaking_check_compatible"), 1);
  // BACKWARD: V1 and the compatible V2 only; everything readable; the escape hatch holds V2.
  EXPECT_EQ(success_versions, std::make_pair(2.0, 0.0)) << Describe(o);
  EXPECT_EQ(success_rule.value("compatibilityLevel", ""), "BACKWARD");
  EXPECT_EQ(success_topic.records, 60);
  EXPECT_EQ(success_topic.unreadable, 0);
  EXPECT_EQ(success_topic.by_id.size(), 2u);
  EXPECT_EQ(MetricOf(o, "success", "decoded"), success_topic.records) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "breaking_check_compatible"), 0);
  EXPECT_EQ(MetricOf(o, "success", "compatible_check_compatible"), 1);
  EXPECT_EQ(success.value("register_v2_breaking", Json::object()).value("http_status", 0), 409);
  EXPECT_EQ(escape_versions, std::make_pair(1.0, 1.0));
  EXPECT_EQ(escape_topic.records, 30);
  EXPECT_EQ(escape_topic.unreadable, 0);
  EXPECT_EQ(MetricOf(o, "success", "escape_decoded_v2"), escape_topic.records);
  // The registry as found: same global rule, no subject of the run left.
  for (const char* mode : {"failure", "success"})
    EXPECT_EQ(MetricOf(o, mode, "global_rule_unchanged"), 1) << mode;
  EXPECT_EQ(RegistryGet("/config"), global_before);
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
  auto subjects = runners::registry::RegistryClient(TestStackConfig().registry_url).Subjects();
  ASSERT_TRUE(subjects.ok());
  const std::string url = TestStackConfig().registry_url;
  const std::string v3 = url.substr(0, url.find("/apis/")) + "/apis/registry/v3";
  for (const auto& s :
       {failure.value("subject", ""), success.value("subject", ""), escape.value("subject", "")}) {
    EXPECT_EQ(std::count(subjects->begin(), subjects->end(), s), 0) << s;
    // Gone as an artifact too (with its compatibility rule), not only soft-deleted.
    auto artifact = runners::registry::HttpRequest("GET", v3 + "/groups/default/artifacts/" + s, "",
                                                   "", 5000ms);
    ASSERT_TRUE(artifact.ok());
    EXPECT_EQ(artifact->status, 404) << s << ": " << artifact->body;
  }
}

// practice=off: the success mode's subject rule is NONE, so the breaking V2 is registered and
// its records break the V1 consumer: refuted.
TEST(Integration, E015WithoutGateRefuted) {
  auto o = RunThroughApi("E-015", {{"practice", std::string("off")}}, {"success"});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "breaking_registered"), 1) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "parse_failures"),
            MetricOf(o, "success", "records_v2_breaking"));
  EXPECT_GT(MetricOf(o, "success", "parse_failures"), 0);
}

}  // namespace
}  // namespace lab::testing
