// E-018 through the HTTP API on the real stack: members really overrun max.poll.interval.ms and
// are dropped from the group; the side effects are recounted here from MariaDB and the events
// from the topic, not taken from the run's own numbers. Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runners/kafka/kafka_client.h"
#include "tests/integration/api_harness.h"
#include "tests/integration/redis_support.h"

namespace lab::testing {
namespace {

std::pair<std::string, std::string> NsAndTopicOf(const RunOutcome& o, const std::string& mode) {
  auto it = o.modes.find(mode);
  if (it == o.modes.end()) return {"", ""};
  auto d = nlohmann::json::parse(it->second.details_json, nullptr, false);
  if (!d.is_object()) return {"", ""};
  return {d.value("run_ns", ""), d.value("topic", "")};
}

double Scalar(const std::string& sql, const std::string& ns) {
  auto db = Mysql();
  if (!db) return -1;
  auto rows = db->Query(sql, {ns});
  return rows ? static_cast<double>(rows->Scalar()) : -1;
}

// The eager group with overrunning batches applies events twice; the tuned one applies each
// once and commits everything. Recounted: side effects and distinct events in MariaDB, the
// events in the topic.
TEST(Integration, E018RebalanceStorms) {
  auto o = RunKeptThroughApi("E-018", {{"events", std::int64_t{450}}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    const auto [ns, topic] = NsAndTopicOf(o, mode);
    ASSERT_FALSE(ns.empty()) << mode << Describe(o);
    const double rows = Scalar("SELECT COUNT(*) FROM side_effect WHERE run_ns = ?", ns);
    const double distinct =
        Scalar("SELECT COUNT(DISTINCT event_id) FROM side_effect WHERE run_ns = ?", ns);
    EXPECT_EQ(MetricOf(o, mode, "side_effects"), rows) << mode;
    EXPECT_EQ(MetricOf(o, mode, "duplicates"), rows - distinct) << mode;
    auto read = runners::kafka::ReadTopic(TestStackConfig().kafka_bootstrap, topic, 6,
                                          "read_committed", std::chrono::seconds(60));
    ASSERT_TRUE(read.complete) << read.error;
    EXPECT_EQ(read.messages.size(), 450u) << mode;
    EXPECT_EQ(distinct, 450) << mode;  // at least once: nothing lost in either mode
  }
  EXPECT_GT(MetricOf(o, "failure", "max_poll_exceeded"), 0);
  EXPECT_EQ(MetricOf(o, "success", "max_poll_exceeded"), 0);
  CleanupKept("E-018", o);
}

// practice=off: the success mode overruns like the failure mode and duplicates.
TEST(Integration, E018WithoutTuning) {
  auto o = RunThroughApi("E-018", {{"practice", std::string("off")}, {"events", std::int64_t{450}}},
                         {"success"});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "duplicates"), 0) << Describe(o);
}

}  // namespace
}  // namespace lab::testing
