// E-039A and E-039B through the HTTP API of the real server: real lock-holder processes, a real
// SIGSTOP and SIGKILL, overlaps and stale writes counted from MariaDB. E-039B's writes are
// recounted here from the rows a keep_artifacts run left. Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include "tests/integration/api_harness.h"
#include "tests/integration/redis_support.h"

namespace lab::testing {
namespace {

using Json = nlohmann::json;

// Each scenario overlaps; the fault guards fired; every foreign unlock the runner saw in Redis
// was one a holder reported (the runner checks at exits only, so it sees no more).
TEST(Integration, E039ALockFailures) {
  const auto before = RedisSettings();
  auto o = RunRedisExperiment("E-039A", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* scenario : {"pause", "unsafe_unlock", "timeout_retry", "crash_restart"}) {
    EXPECT_GT(MetricOf(o, "failure", std::string("overlaps_") + scenario), 0)
        << scenario << Describe(o);
    EXPECT_GT(MetricOf(o, "failure", std::string("overlap_ms_") + scenario), 0) << scenario;
  }
  EXPECT_EQ(MetricOf(o, "failure", "holder_paused"), 1);
  EXPECT_GT(MetricOf(o, "failure", "pause_ms"), 500);  // longer than the default TTL
  EXPECT_EQ(MetricOf(o, "failure", "holder_killed"), 1);
  EXPECT_LE(MetricOf(o, "failure", "foreign_unlocks_verified"),
            MetricOf(o, "failure", "foreign_unlocks"));
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
  EXPECT_EQ(RedisSettings()["acl_users"], before.at("acl_users"));
}

// fenced_write recounted: accepted, refused and stale writes per mode are what the rows say.
struct Writes {
  double accepted = 0;
  double refused = 0;
  double stale_accepted = 0;
  double stale_refused = 0;
};

Writes RecountWrites(runners::mysql::Connection& db, const std::string& run_ns) {
  Writes w;
  auto rows = db.Query(
      "SELECT w.outcome, EXISTS (SELECT 1 FROM fenced_write p WHERE p.run_ns = w.run_ns AND "
      "p.scenario = w.scenario AND p.id < w.id AND p.token > w.token) FROM fenced_write w "
      "WHERE w.run_ns = ?",
      {run_ns});
  EXPECT_TRUE(rows.ok());
  if (!rows) return w;
  for (const auto& row : rows->rows) {
    const bool accepted = row[0].value_or("") == "accepted";
    const bool stale = row[1].value_or("0") == "1";
    ++(accepted ? w.accepted : w.refused);
    if (stale) ++(accepted ? w.stale_accepted : w.stale_refused);
  }
  return w;
}

// Without fencing stale writes land; with it the store refuses every one, and compare-and-delete
// keeps other holders' locks. The counts match the rows left by the run.
TEST(Integration, E039BFencingTokens) {
  RunOutcome o = RunKeptThroughApi("E-039B", {});
  std::map<std::string, Writes> recount;
  if (auto db = Mysql()) {
    for (const char* mode : {"failure", "success"}) {
      const Json details = Json::parse(o.modes[mode].details_json, nullptr, false);
      if (details.is_object()) recount[mode] = RecountWrites(*db, details.value("run_ns", ""));
    }
  }
  CleanupKept("E-039B", o);

  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  ASSERT_EQ(recount.size(), 2u) << Describe(o);
  for (const auto& [mode, w] : recount) {
    EXPECT_EQ(MetricOf(o, mode, "writes_accepted"), w.accepted) << mode << Describe(o);
    EXPECT_EQ(MetricOf(o, mode, "writes_refused"), w.refused) << mode;
    EXPECT_EQ(MetricOf(o, mode, "stale_writes_accepted"), w.stale_accepted) << mode;
    EXPECT_EQ(MetricOf(o, mode, "stale_writes_refused"), w.stale_refused) << mode;
  }
  EXPECT_GT(recount["failure"].stale_accepted, 0);
  EXPECT_EQ(recount["success"].stale_accepted, 0);
  EXPECT_GT(recount["success"].stale_refused, 0);
  EXPECT_GT(MetricOf(o, "success", "foreign_unlocks_prevented"), 0) << Describe(o);
}

// practice=off: the success mode runs without the fence and with DEL, and is refuted.
TEST(Integration, E039BWithoutFencing) {
  auto o = RunRedisExperiment("E-039B", {{"practice", std::string("off")}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "stale_writes_accepted"), 0) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "stale_writes_refused"), 0) << Describe(o);
}

}  // namespace
}  // namespace lab::testing
