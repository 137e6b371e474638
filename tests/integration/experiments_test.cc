// Each experiment against the real stack: it completes, its verdict is confirmed, and its
// evidence is consistent with itself. Where a success mode can be flipped into its failure
// practice, the metric must change with it. Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include "harness.h"

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
  auto o = RunExperiment("E-000", {});
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
  auto o = RunExperiment("E-002", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_EQ(M(o, mode, "lost"), M(o, mode, "committed") - M(o, mode, "read_back"))
        << mode << Describe(o);
    EXPECT_EQ(M(o, mode, "committed"), 500) << mode;
  }
  EXPECT_LT(o.seconds, 60) << Describe(o);
}

// E-003: duplicates = applied - unique; without dedup redelivery applies twice, with it never.
TEST(Integration, E003ConsumeWithoutDedup) {
  auto o = RunExperiment("E-003", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_EQ(M(o, mode, "duplicates"), M(o, mode, "applied") - M(o, mode, "unique"))
        << mode << Describe(o);
    EXPECT_GT(M(o, mode, "redelivered_in_topic"), 0) << mode << Describe(o);
  }
  EXPECT_LT(o.seconds, 60) << Describe(o);
}

// E-004: lost = produced - processed; commit-then-process loses the in-flight batch.
TEST(Integration, E004CommitBeforeProcess) {
  auto o = RunExperiment("E-004", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_EQ(M(o, mode, "lost"), M(o, mode, "produced") - M(o, mode, "processed"))
        << mode << Describe(o);
  }
  EXPECT_LT(o.seconds, 60) << Describe(o);
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
  auto o = RunExperiment("E-005", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  ExpectE005Consistent(o);
  EXPECT_EQ(M(o, "success", "total"), 300) << Describe(o);
  EXPECT_EQ(M(o, "success", "duplicates"), 0) << Describe(o);
  EXPECT_LT(o.seconds, 60) << Describe(o);
}

// The practice flipped: the consumers of the replays run without processed_event, so the second
// replay applies every replayed event's side effect again and the claim is not confirmed.
TEST(Integration, E005DlqReplayWithoutDedup) {
  auto o = RunExperiment("E-005", {{"dedup", std::string("none")}, {"events", std::int64_t{100}}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  ExpectE005Consistent(o);
  EXPECT_EQ(M(o, "success", "duplicates"), M(o, "success", "dlq")) << Describe(o);
}

// E-007: while the transaction is open read_committed sees nothing (not even the later plain
// record) though read_uncommitted sees them all; after commit everything is visible.
TEST(Integration, E007OpenTransactionPinsLso) {
  auto o = RunExperiment("E-007", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  EXPECT_EQ(M(o, "success", "visible_uncommitted_open"), 11) << Describe(o);
  EXPECT_LE(M(o, "success", "last_stable_offset_open"), 0) << Describe(o);
  EXPECT_EQ(M(o, "success", "high_watermark_open"), 11) << Describe(o);
}

// E-001: applied = commands, no duplicates, no mismatches, no stale cache reads (both
// invalidation strategies).
TEST(Integration, E001StandardPipeline) {
  for (const char* inv : {"del", "versioned"}) {
    auto o = RunExperiment("E-001", {{"invalidation", std::string(inv)}});
    EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << inv << Describe(o);
    EXPECT_EQ(M(o, "success", "published"), M(o, "success", "commands")) << Describe(o);
  }
}

// E-008: the naive mode's DB reads are counted in MySQL and dwarf the defended mode's.
TEST(Integration, E008CacheStampede) {
  auto o = RunExperiment("E-008", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  EXPECT_EQ(M(o, "failure", "db_reads"), M(o, "failure", "client_loads")) << Describe(o);
  EXPECT_EQ(M(o, "success", "errors"), 0) << Describe(o);
  EXPECT_LT(o.seconds, 60) << Describe(o);
}

// E-009 (stops and kills brokers of the shared stack): acks=1 loses acknowledged records,
// acks=all + min ISR 2 does not, and ISR < 2 is rejected with NOT_ENOUGH_REPLICAS.
TEST(Integration, E009AcksDurability) {
  auto o = RunExperiment("E-009", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  EXPECT_LE(M(o, "failure", "lost_acked"), M(o, "failure", "acknowledged")) << Describe(o);
}

}  // namespace
}  // namespace lab::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
