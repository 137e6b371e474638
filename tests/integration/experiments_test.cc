// Each experiment against the real stack, queued through the HTTP API of the real server the way
// a user queues it (RunThroughApi): it completes, its verdict is confirmed, and its evidence is
// consistent with itself. Where a success mode can be flipped into its failure practice, the
// metric must change with it. Tests that stop a run at a chosen moment drive the runner
// in-process (RunExperiment with a stop token). Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "harness.h"
#include "runners/experiments/experiment_base.h"
#include "runners/kafka/kafka_client.h"
#include "runners/registry/schema_registry.h"
#include "tests/integration/api_harness.h"

namespace lab::testing {
namespace {

double M(const RunOutcome& o, const std::string& mode, const std::string& metric) {
  auto it = o.modes.find(mode);
  if (it == o.modes.end()) return -1e9;
  auto m = it->second.metrics.find(metric);
  return m == it->second.metrics.end() ? -1e9 : m->second;
}

// E-000 answers for every part, and `unreachable` counts the parts that did not.
TEST(Integration, E000StackCheck) {
  auto o = RunThroughApi("E-000", {});
  double unreachable = 0;
  for (const auto& [k, v] : o.modes["check"].metrics) {
    if (k.size() > 10 && k.substr(k.size() - 10) == ".reachable") unreachable += v == 0 ? 1 : 0;
  }
  EXPECT_EQ(M(o, "check", "unreachable"), unreachable) << Describe(o);
  EXPECT_EQ(M(o, "check", "kafka.reachable"), 1) << Describe(o);
  EXPECT_EQ(M(o, "check", "mysql.reachable"), 1) << Describe(o);
}

// E-002: lost = committed - read_back in both modes; direct produce loses, the outbox does not.
TEST(Integration, E002ProduceAfterCommit) {
  auto o = RunThroughApi("E-002", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_EQ(M(o, mode, "lost"), M(o, mode, "committed") - M(o, mode, "read_back"))
        << mode << Describe(o);
    EXPECT_EQ(M(o, mode, "committed"), 500) << mode;
  }
}

// E-003: duplicates = applied - unique; without dedup redelivery applies twice, with it never.
TEST(Integration, E003ConsumeWithoutDedup) {
  auto o = RunThroughApi("E-003", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_EQ(M(o, mode, "duplicates"), M(o, mode, "applied") - M(o, mode, "unique"))
        << mode << Describe(o);
    EXPECT_GT(M(o, mode, "redelivered_in_topic"), 0) << mode << Describe(o);
  }
}

// E-004: lost = produced - processed; commit-then-process loses the in-flight batch.
TEST(Integration, E004CommitBeforeProcess) {
  auto o = RunThroughApi("E-004", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_EQ(M(o, mode, "lost"), M(o, mode, "produced") - M(o, mode, "processed"))
        << mode << Describe(o);
  }
}

// E-005: poisoned events (their product row is missing in MySQL) go through both retry topics
// to the DLQ with full headers; after the rows are created, two replays recover every event
// and processed_event makes the second one harmless. The evidence must add up.
void ExpectE005Consistent(const RunOutcome& o) {
  EXPECT_GT(M(o, "success", "poisoned"), 0) << Describe(o);
  EXPECT_EQ(M(o, "success", "dlq"), M(o, "success", "poisoned")) << Describe(o);
  EXPECT_EQ(M(o, "success", "retried"), M(o, "success", "poisoned")) << Describe(o);
  EXPECT_EQ(M(o, "success", "dlq_headers_ok"), M(o, "success", "dlq")) << Describe(o);
  EXPECT_EQ(M(o, "success", "applied_before_replay"),
            M(o, "success", "total") - M(o, "success", "poisoned"))
      << Describe(o);
  EXPECT_EQ(M(o, "success", "final_applied"), M(o, "success", "total")) << Describe(o);
  EXPECT_EQ(M(o, "success", "replayed_first"), M(o, "success", "dlq")) << Describe(o);
  EXPECT_EQ(M(o, "success", "replayed_second"), M(o, "success", "dlq")) << Describe(o);
  EXPECT_EQ(M(o, "success", "replay_audit_rows"),
            M(o, "success", "replayed_first") + M(o, "success", "replayed_second"))
      << Describe(o);
}

TEST(Integration, E005DlqReplay) {
  auto o = RunThroughApi("E-005", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  ExpectE005Consistent(o);
  EXPECT_EQ(M(o, "success", "total"), 300) << Describe(o);
  EXPECT_EQ(M(o, "success", "duplicates"), 0) << Describe(o);
}

// The practice flipped: the consumers of the replays run without processed_event, so the second
// replay applies every replayed event's side effect again and the claim is not confirmed.
TEST(Integration, E005DlqReplayWithoutDedup) {
  auto o = RunThroughApi("E-005", {{"dedup", std::string("none")}, {"events", std::int64_t{100}}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  ExpectE005Consistent(o);
  EXPECT_EQ(M(o, "success", "duplicates"), M(o, "success", "dlq")) << Describe(o);
}

// E-005 stopped while its first consumer runs: it returns inconclusive ("cancelled") promptly,
// and what it created is gone: its role processes, its topics, its MySQL rows.
TEST(Integration, E005StopCleansUp) {
  std::stop_source stop;
  auto run = std::async(std::launch::async,
                        [&] { return RunExperiment("E-005", {}, {}, false, stop.get_token()); });
  std::this_thread::sleep_for(std::chrono::seconds(6));
  auto stopped_at = std::chrono::steady_clock::now();
  stop.request_stop();
  auto o = run.get();
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, std::chrono::seconds(20));
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kInconclusive) << Describe(o);
  EXPECT_EQ(o.modes["success"].inconclusive.value_or(""), "cancelled") << Describe(o);
  auto config = TestStackConfig();
  auto admin = runners::kafka::Admin::Create(config.kafka_bootstrap);
  ASSERT_TRUE(admin);
  runners::mysql::MysqlConfig mc;
  mc.host = config.mysql_host;
  mc.port = config.mysql_port;
  mc.user = config.mysql_user;
  mc.password = config.mysql_password;
  mc.database = config.mysql_database;
  auto conn = runners::mysql::Connection::Open(mc);
  ASSERT_TRUE(conn) << conn.error().message;
  int processes = 0;
  int topics = 0;
  for (const auto& a : o.artifacts) {
    if (a.kind == runners::kArtifactProcess) {
      ++processes;
      std::ifstream cmdline("/proc/" + a.name + "/cmdline");
      std::string text((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
      EXPECT_EQ(text.find("lab-role"), std::string::npos) << "pid " << a.name << " still runs";
    } else if (a.kind == runners::kArtifactTopic) {
      ++topics;
      bool gone = false;
      for (int i = 0; i < 50 && !gone; ++i) {  // deletion reaches metadata within seconds
        auto md = (*admin)->Metadata(a.name, std::chrono::milliseconds(2000));
        gone = !md || md->partitions.empty();
        if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      EXPECT_TRUE(gone) << a.name;
    } else if (a.kind == runners::kArtifactRows) {
      for (const char* table : {"orders", "outbox_event", "processed_event", "side_effect",
                                "order_projection", "product", "replay_audit"}) {
        auto rows = (*conn)->Query(
            std::string("SELECT COUNT(*) FROM ") + table + " WHERE run_ns = ?", {a.name});
        ASSERT_TRUE(rows) << rows.error().message;
        EXPECT_EQ(rows->Scalar(), 0) << table << " " << a.name;
      }
    }
  }
  EXPECT_GE(processes, 1) << Describe(o);
  EXPECT_EQ(topics, 4) << Describe(o);
}

// E-006: the same V1->V2 change (a new required field: refused under BACKWARD, accepted under
// FORWARD) breaks strict V1 consumers when the producer ships first and converges when
// dual-read consumers are deployed first. The topic holds every record under its schema id,
// and the run's registry subjects are gone afterwards (soft + permanent delete).
void ExpectE006Consistent(const RunOutcome& o, const std::vector<std::string>& modes,
                          double events) {
  const double v1 = static_cast<double>(static_cast<std::int64_t>(events) / 2);
  auto subjects = runners::registry::RegistryClient(TestStackConfig().registry_url).Subjects();
  ASSERT_TRUE(subjects.ok()) << subjects.error().message;
  for (const auto& mode : modes) {
    ASSERT_TRUE(o.modes.count(mode)) << mode << Describe(o);
    EXPECT_FALSE(o.modes.at(mode).inconclusive.has_value()) << mode << Describe(o);
    EXPECT_EQ(M(o, mode, "produced"), events) << mode << Describe(o);
    EXPECT_EQ(M(o, mode, "records_v1") + M(o, mode, "records_v2"), M(o, mode, "produced"))
        << mode << Describe(o);
    EXPECT_EQ(M(o, mode, "records_v1"), v1) << mode << Describe(o);
    EXPECT_EQ(M(o, mode, "v2_rejected_by_backward"), 1) << mode << Describe(o);
    // produced = consumed + skipped + what is still uncommitted at the end
    EXPECT_EQ(M(o, mode, "unaccounted"), 0) << mode << Describe(o);
    auto details = nlohmann::json::parse(o.modes.at(mode).details_json);
    const auto subject = details.value("subject", std::string());
    EXPECT_FALSE(subject.empty()) << mode;
    EXPECT_EQ(std::count(subjects->begin(), subjects->end(), subject), 0) << subject;
  }
}

TEST(Integration, E006SchemaRolloutOrder) {
  auto o = RunThroughApi("E-006", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  ExpectE006Consistent(o, {"failure", "success"}, 400);
  // Producer first, consumers retry what they cannot parse: every partition stalls at its first
  // V2 record, so exactly the V1 half is consumed and the V2 half stays as lag.
  EXPECT_EQ(M(o, "failure", "consumed"), M(o, "failure", "records_v1")) << Describe(o);
  EXPECT_EQ(M(o, "failure", "final_lag"), M(o, "failure", "records_v2")) << Describe(o);
  EXPECT_EQ(M(o, "failure", "max_lag"), M(o, "failure", "records_v2")) << Describe(o);
  EXPECT_EQ(M(o, "failure", "converged"), 0) << Describe(o);
  // Consumers first with dual-read: both schema ids fetched, everything consumed, lag back to 0.
  EXPECT_EQ(M(o, "success", "consumed"), M(o, "success", "produced")) << Describe(o);
  EXPECT_GE(M(o, "success", "schema_fetches"), 2) << Describe(o);
  EXPECT_EQ(M(o, "success", "converged"), 1) << Describe(o);
  EXPECT_GE(M(o, "success", "time_to_converge_ms"), 0) << Describe(o);
}

// The flip: the success mode deploys strict V1 consumers instead of dual-read ones (and they
// skip what they cannot parse): every V2 record is a parse failure, so the claim's success
// side fails although the rollout order is right.
TEST(Integration, E006ConsumersFirstWithoutDualReadFail) {
  auto o = RunThroughApi("E-006",
                         {{"success_reader", std::string("strict-v1")},
                          {"on_parse_failure", std::string("skip")},
                          {"events", std::int64_t{200}}},
                         {"success"});
  EXPECT_NE(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  ExpectE006Consistent(o, {"success"}, 200);
  EXPECT_EQ(M(o, "success", "parse_failures"), M(o, "success", "records_v2")) << Describe(o);
  EXPECT_EQ(M(o, "success", "skipped"), M(o, "success", "records_v2")) << Describe(o);
  EXPECT_EQ(M(o, "success", "consumed"), M(o, "success", "records_v1")) << Describe(o);
  EXPECT_EQ(M(o, "success", "final_lag"), 0) << Describe(o);  // skipping hides it from lag
}

// E-007: while the transaction is open read_committed sees nothing (not even the later plain
// record) though read_uncommitted sees them all; after commit everything is visible.
TEST(Integration, E007OpenTransactionPinsLso) {
  auto o = RunThroughApi("E-007", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  EXPECT_EQ(M(o, "success", "visible_uncommitted_open"), 11) << Describe(o);
  EXPECT_LE(M(o, "success", "last_stable_offset_open"), 0) << Describe(o);
  EXPECT_EQ(M(o, "success", "high_watermark_open"), 11) << Describe(o);
  EXPECT_EQ(M(o, "success", "plain_acked"), 1) << Describe(o);
  EXPECT_EQ(M(o, "success", "visible_uncommitted_after"), 11) << Describe(o);
}

// E-001: applied = commands, no duplicates, no mismatches, no stale cache reads (both
// invalidation strategies).
TEST(Integration, E001StandardPipeline) {
  for (const char* inv : {"versioned", "del"}) {
    auto o = RunThroughApi("E-001", {{"invalidation", std::string(inv)}});
    EXPECT_EQ(M(o, "success", "published"), M(o, "success", "commands")) << inv << Describe(o);
    EXPECT_EQ(M(o, "success", "applied"), M(o, "success", "commands")) << inv << Describe(o);
    EXPECT_EQ(M(o, "success", "duplicates"), 0) << inv << Describe(o);
    EXPECT_EQ(M(o, "success", "mismatches"), 0) << inv << Describe(o);
    if (std::string(inv) == "versioned") {
      EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << inv << Describe(o);
    } else {
      // DEL races a reader's fill (old row read before the commit, written back after the
      // delete) in some runs; the verdict must follow the stale reads it counted.
      EXPECT_EQ(o.verdict.verdict, M(o, "success", "stale_reads") == 0 ? domain::Verdict::kConfirmed
                                                                       : domain::Verdict::kRefuted)
          << inv << Describe(o);
    }
  }
}

// E-008: the naive mode's DB reads are counted in MySQL and dwarf the defended mode's.
TEST(Integration, E008CacheStampede) {
  auto o = RunThroughApi("E-008", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  EXPECT_EQ(M(o, "failure", "db_reads"), M(o, "failure", "client_loads")) << Describe(o);
  EXPECT_EQ(M(o, "success", "errors"), 0) << Describe(o);
}

// E-009 (pauses and kills brokers of the shared stack): acks=1 loses acknowledged records,
// acks=all + min ISR 2 does not, and ISR < 2 is rejected with NOT_ENOUGH_REPLICAS.
TEST(Integration, E009AcksDurability) {
  auto o = RunThroughApi("E-009", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_FALSE(o.modes[mode].inconclusive.has_value()) << mode << Describe(o);
    EXPECT_EQ(M(o, mode, "lost_acked"), M(o, mode, "acknowledged") - M(o, mode, "read_back"))
        << mode << Describe(o);
  }
  // acks=1: half of the 2000 events are written while the follower is out of the ISR; those
  // are the ones the unclean election loses, the replicated half survives.
  EXPECT_GT(M(o, "failure", "read_back"), 0) << Describe(o);
  EXPECT_GT(M(o, "failure", "lost_acked"), 0) << Describe(o);
  EXPECT_EQ(M(o, "failure", "rejected_isr"), 0) << Describe(o);
  // acks=all: what was acknowledged survives the leader's death (not a vacuous zero: the
  // in-sync half is acknowledged), and the writes with ISR < 2 are rejected.
  EXPECT_GE(M(o, "success", "acknowledged"), 1000) << Describe(o);
  EXPECT_EQ(M(o, "success", "lost_acked"), 0) << Describe(o);
  EXPECT_GT(M(o, "success", "rejected_isr"), 0) << Describe(o);
}

// E-009 stopped while a fault is active (the follower just paused): it returns inconclusive,
// says which faults it undid, and leaves all 3 brokers registered and every partition of the
// cluster fully replicated. The stop is requested from the run's own step log, on the runner's
// thread, right after the pause: watching the cluster from outside raced the run, which could
// undo its faults itself before an outside client noticed them.
TEST(Integration, E009StopUndoesFaults) {
  auto config = TestStackConfig();
  auto brokers = [&] {
    auto admin = runners::kafka::Admin::Create(config.kafka_bootstrap);
    if (!admin) return -1;
    auto md = (*admin)->Metadata("", std::chrono::milliseconds(3000));
    return md ? static_cast<int>(md->brokers.size()) : -1;
  };
  ASSERT_EQ(brokers(), 3);
  std::stop_source stop;
  std::chrono::steady_clock::time_point stopped_at{};
  auto on_step = [&](std::string_view step) {
    if (step.starts_with("fault: kafka pause") && !stop.stop_requested()) {
      stopped_at = std::chrono::steady_clock::now();
      stop.request_stop();
    }
  };
  auto o = RunExperiment("E-009", {}, {"failure"}, false, stop.get_token(), "", on_step);
  ASSERT_TRUE(stop.stop_requested()) << "the run never paused a follower\n" << Describe(o);
  auto after_stop = std::chrono::steady_clock::now() - stopped_at;
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kInconclusive) << Describe(o);
  EXPECT_EQ(o.modes["failure"].inconclusive.value_or(""), "cancelled") << Describe(o);
  auto details = nlohmann::json::parse(o.modes["failure"].details_json);
  EXPECT_FALSE(details.value("faults_undone_on_exit", nlohmann::json::array()).empty())
      << Describe(o);
  EXPECT_TRUE(details.value("cluster_fully_replicated", false)) << Describe(o);
  EXPECT_LT(after_stop, std::chrono::seconds(120)) << Describe(o);
  EXPECT_EQ(brokers(), 3);
  auto admin = runners::kafka::Admin::Create(config.kafka_bootstrap);
  ASSERT_TRUE(admin);
  auto urp = (*admin)->UnderReplicatedPartitions(std::chrono::milliseconds(5000));
  ASSERT_TRUE(urp) << urp.error().message;
  EXPECT_TRUE(urp->empty()) << urp->size() << " under-replicated, e.g. " << urp->front();
}

}  // namespace
}  // namespace lab::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
