// Redis semantics experiments through the HTTP API of the real server (E-013, E-049): each run
// completes with its verdict, and its evidence is recounted from the stack where the artifacts
// can be kept, or checked against an independent server view. Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runners/experiments/experiment_base.h"
#include "runners/mysql/mysql_client.h"
#include "runners/redis/redis_client.h"
#include "tests/integration/api_harness.h"
#include "tests/integration/harness.h"
#include "tests/integration/redis_support.h"

namespace lab::testing {
namespace {

using Json = nlohmann::json;

// One phase of E-013 recounted from the kept rows and keys, independently of the runner.
struct Recount {
  std::string phase;
  double keys_present = 0;
  double mismatches = 0;
  double committed = 0;  // SUM(version - 1): committed transactions
  double rows = 0;
};

Recount RecountPhase(runners::mysql::Connection& db, runners::redis::Connection& rc,
                     const std::string& run_ns, const Json& phase) {
  Recount out;
  out.phase = phase.value("phase", "");
  const std::string prefix = phase.value("key_prefix", "");
  const std::int64_t base = phase.value("item_id_base", std::int64_t{0});
  auto rows = db.Query(
      "SELECT item_id, value FROM cache_truth WHERE run_ns = ? AND item_id > ? AND item_id <= ?",
      {run_ns, base, base + 1000000});
  EXPECT_TRUE(rows.ok());
  if (!rows) return out;
  auto sum = db.Query(
      "SELECT SUM(version - 1) FROM cache_truth WHERE run_ns = ? AND item_id > ? AND item_id <= ?",
      {run_ns, base, base + 1000000});
  EXPECT_TRUE(sum.ok());
  if (sum) out.committed = static_cast<double>(sum->Scalar());
  for (const auto& row : rows->rows) {
    ++out.rows;
    auto got = rc.Command({"GET", prefix + *row[0]});
    EXPECT_TRUE(got.ok());
    if (!got || got->is_nil()) continue;
    ++out.keys_present;
    if (got->str.substr(0, got->str.find(':')) != *row[1]) ++out.mismatches;
  }
  return out;
}

// E-013: the Lua read-modify-write diverges (rolled-back deltas stay in the cache), both fixes do
// not. The kept rows and keys are recounted here: the runner's mismatches and present keys are
// what the stack holds, and the writers' own commit count is what SUM(version - 1) says.
TEST(Integration, E013LuaCacheDivergence) {
  RunOutcome o = RunKeptThroughApi("E-013", {});
  std::vector<std::pair<std::string, Recount>> recounts;  // (mode, recount)
  {
    auto db = Mysql();
    auto rc = Redis();
    ASSERT_TRUE(db && rc);
    for (const char* mode : {"failure", "success"}) {
      const Json details = Json::parse(o.modes[mode].details_json);
      for (const auto& phase : details.value("phases", Json::array())) {
        recounts.emplace_back(mode, RecountPhase(*db, *rc, details.value("run_ns", ""), phase));
      }
    }
  }
  CleanupKept("E-013", o);

  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  ASSERT_EQ(recounts.size(), 3u) << Describe(o);
  for (const auto& [mode, r] : recounts) {
    const std::string suffix = mode == "failure" ? "" : "_" + r.phase;
    EXPECT_EQ(r.rows, 20) << r.phase;
    EXPECT_EQ(MetricOf(o, mode, "mismatches" + suffix), r.mismatches) << r.phase << Describe(o);
    EXPECT_EQ(MetricOf(o, mode, "writes_committed" + suffix), r.committed)
        << r.phase << Describe(o);
    EXPECT_GT(MetricOf(o, mode, "writes_rolled_back" + suffix), 0) << r.phase;
    if (mode == "success") {
      EXPECT_EQ(MetricOf(o, mode, "keys_compared" + suffix), r.keys_present) << r.phase;
    } else {
      EXPECT_EQ(MetricOf(o, mode, "keys_compared"), r.keys_present);
      EXPECT_GT(r.mismatches, 0) << Describe(o);
    }
  }
}

// practice=off: both fixes are replaced by the Lua read-modify-write, so they diverge as well.
TEST(Integration, E013WithoutPractice) {
  auto o = RunThroughApi("E-013", {{"practice", std::string("off")}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_GT(MetricOf(o, "failure", "mismatches"), 0) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "mismatches_invalidate"), 0) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "mismatches_versioned"), 0) << Describe(o);
}

// The run's restricted ACL users, from its artifacts.
std::vector<std::string> AclUsersOf(const RunOutcome& o) {
  std::vector<std::string> users;
  for (const auto& a : o.artifacts)
    if (a.kind == runners::kArtifactRedisAclUser) users.push_back(a.name);
  return users;
}

// E-049: the gate (MONITOR) names exactly the commands the restricted user is refused; ACL LOG
// (another server view) agrees; the rewritten workload passes; no ACL user of the run is left.
TEST(Integration, E049RestrictedCommandsGate) {
  const auto before = RedisSettings();
  auto o = RunRedisExperiment("E-049", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  EXPECT_GT(MetricOf(o, "failure", "failed_restricted"), 0) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_EQ(MetricOf(o, mode, "gate_forbidden"), MetricOf(o, mode, "failed_restricted"))
        << mode << Describe(o);
    EXPECT_EQ(MetricOf(o, mode, "acl_log_denied"), MetricOf(o, mode, "failed_restricted"))
        << mode << Describe(o);
    EXPECT_EQ(MetricOf(o, mode, "gate_commands_seen"), MetricOf(o, mode, "workload_commands"))
        << mode << Describe(o);
  }
  const auto users = AclUsersOf(o);
  EXPECT_EQ(users.size(), 2u) << Describe(o);
  auto rc = Redis();
  ASSERT_TRUE(rc);
  auto list = rc->Command({"ACL", "LIST"});
  ASSERT_TRUE(list.ok());
  for (const auto& entry : list->elements) {
    for (const auto& user : users)
      EXPECT_EQ(entry.str.find("user " + user + " "), std::string::npos) << entry.str;
  }
  EXPECT_EQ(RedisSettings()["acl_users"], before.at("acl_users"));
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
}

// practice=off: the success mode runs the original workload, which the restricted user refuses.
TEST(Integration, E049WithoutRewrite) {
  auto o = RunThroughApi("E-049", {{"practice", std::string("off")}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "failed_restricted"), 0) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "gate_matches"), 1) << Describe(o);
}

}  // namespace
}  // namespace lab::testing
