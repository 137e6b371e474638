// E-011 through the HTTP API of the real server, against the stack's Redis Cluster: real client
// threads load the masters, and each master's own INFO commandstats says how many GETs it served.
// The evidence must agree with itself (the per-master counts add up to ops_server, the ratio is
// theirs) and the run's keys must be gone from every master afterwards.
// Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

#include "runners/experiments/experiment_base.h"
#include "runners/redis/cluster_admin.h"
#include "tests/integration/api_harness.h"
#include "tests/integration/redis_support.h"

namespace lab::testing {
namespace {

using namespace std::chrono_literals;

// The mode's ops_<port> metrics (one per master), by port.
std::map<std::string, double> PerMasterOps(const RunOutcome& o, const std::string& mode) {
  std::map<std::string, double> ops;
  auto it = o.modes.find(mode);
  if (it == o.modes.end()) return ops;
  for (const auto& [name, value] : it->second.metrics) {
    if (name.rfind("ops_", 0) != 0) continue;
    const std::string port = name.substr(4);
    if (!port.empty() && std::all_of(port.begin(), port.end(), ::isdigit)) ops[port] = value;
  }
  return ops;
}

// Keys under the run's cluster prefixes still on a master (SCAN of every master), -1 when a
// master cannot be read.
long long KeysLeft(const RunOutcome& o) {
  const auto view = runners::redis::ReadClusterView(TestStackConfig().redis_cluster_seeds, 3000ms);
  runners::redis::NodePool pool(3000ms);
  long long left = 0;
  for (const auto& a : o.artifacts) {
    if (a.kind != runners::kArtifactClusterKeys) continue;
    for (const auto& node : view.nodes) {
      if (!node.master) continue;
      std::string cursor = "0";
      for (int i = 0; i < 10000; ++i) {
        auto r = pool.Run(node.addr, {"SCAN", cursor, "MATCH", a.name + "*", "COUNT", "1000"});
        if (!r || r->elements.size() != 2) return -1;
        left += static_cast<long long>(r->elements[1].elements.size());
        cursor = r->elements[0].str;
        if (cursor == "0") break;
      }
    }
  }
  return left;
}

// Each mode's per-master GET counts add up to ops_server, load_ratio is their max over their
// min, and the clients' own count of GETs sent is all but (at most 1%) of what the masters served.
void ExpectConsistentEvidence(const RunOutcome& o, const std::string& mode) {
  const auto ops = PerMasterOps(o, mode);
  ASSERT_GE(ops.size(), 2u) << mode << Describe(o);
  double sum = 0;
  double max = 0;
  double min = 1e300;
  for (const auto& [port, n] : ops) {
    sum += n;
    max = std::max(max, n);
    min = std::min(min, n);
    EXPECT_GT(MetricOf(o, mode, "cpu_" + port + "_ms"), 0) << mode << " " << port;
  }
  EXPECT_EQ(sum, MetricOf(o, mode, "ops_server")) << mode;
  ASSERT_GT(min, 0) << mode;
  EXPECT_NEAR(MetricOf(o, mode, "load_ratio"), max / min, 1e-9) << mode;
  const double sent = MetricOf(o, mode, "reads_sent");
  EXPECT_LE(sent, sum) << mode;
  EXPECT_GE(sent, 0.99 * sum) << mode;
  EXPECT_EQ(MetricOf(o, mode, "reads"), sent + MetricOf(o, mode, "cache_hits")) << mode;
  EXPECT_GE(MetricOf(o, mode, "p99_ms"), MetricOf(o, mode, "p50_ms")) << mode;
}

// One hot key makes its master serve several times the GETs of the others and raises p99;
// copies on every master plus a local cache even the load out (the masters' own counters) and
// lower p99. The evidence is self-consistent, the stack is clean and the keys are gone.
TEST(Integration, E011HotKeySpreads) {
  auto o = RunRedisExperiment("E-011", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) ExpectConsistentEvidence(o, mode);
  const double masters = static_cast<double>(PerMasterOps(o, "success").size());
  EXPECT_EQ(MetricOf(o, "failure", "hot_masters"), 1);
  EXPECT_EQ(MetricOf(o, "failure", "cache_hits"), 0);
  EXPECT_EQ(MetricOf(o, "success", "hot_masters"), masters);
  EXPECT_GT(MetricOf(o, "success", "cache_hits"), 0);
  EXPECT_GE(MetricOf(o, "failure", "load_ratio"), 2 * MetricOf(o, "success", "load_ratio"));
  EXPECT_GT(MetricOf(o, "failure", "p99_ms"), MetricOf(o, "success", "p99_ms"));
  const auto details = nlohmann::json::parse(o.modes["failure"].details_json);
  EXPECT_EQ(details["provenance"].value("ops_server", ""), "server_counter");
  EXPECT_EQ(details["masters"].size(), PerMasterOps(o, "failure").size());
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
  EXPECT_EQ(KeysLeft(o), 0);
}

// practice=off: the success mode reads the single hot key without a cache, so one master still
// serves most GETs and the claim is refuted.
TEST(Integration, E011WithoutSplitting) {
  auto o = RunRedisExperiment("E-011", {{"practice", std::string("off")}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "hot_masters"), 1);
  EXPECT_EQ(MetricOf(o, "success", "cache_hits"), 0);
  EXPECT_GT(MetricOf(o, "success", "load_ratio"), 2) << Describe(o);
  ExpectConsistentEvidence(o, "success");
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
  EXPECT_EQ(KeysLeft(o), 0);
}

}  // namespace
}  // namespace lab::testing
