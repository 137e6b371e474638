// E-010 and E-050 through the HTTP API of the real server, against the real Redis Cluster (and
// the standalone Redis for E-050). The confirmed runs keep their keys so this test recounts them
// from the stack with its own connections before the experiment's cleanup removes them; the
// client's counts of error replies must equal the servers' INFO errorstats deltas.
// Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runners/redis/cluster_admin.h"
#include "tests/integration/api_harness.h"
#include "tests/integration/redis_support.h"

namespace lab::testing {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

// The cluster's masters that own slots, as the cluster says now.
std::vector<std::string> Masters() {
  std::vector<std::string> out;
  const auto view = runners::redis::ReadClusterView(TestStackConfig().redis_cluster_seeds, 3000ms);
  for (const auto& n : view.nodes) {
    if (n.master && !n.slots.empty()) out.push_back(n.addr);
  }
  EXPECT_GE(out.size(), 2u) << view.problems;
  return out;
}

// Keys matching `pattern` on `addr` (SCAN), or -1 when they cannot be counted.
long long ScanCount(const std::string& addr, const std::string& pattern) {
  auto [host, port] = runners::redis::SplitHostPort(addr);
  auto conn = runners::redis::Connection::Open(host, port, 3000ms);
  if (!conn) return -1;
  long long n = 0;
  std::string cursor = "0";
  for (int i = 0; i < 100000; ++i) {
    auto r = (*conn)->Command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (!r || r->elements.size() != 2) return -1;
    cursor = r->elements[0].str;
    n += static_cast<long long>(r->elements[1].elements.size());
    if (cursor == "0") return n;
  }
  return -1;
}

long long ClusterCount(const std::string& pattern) {
  long long n = 0;
  for (const auto& m : Masters()) {
    const long long c = ScanCount(m, pattern);
    if (c < 0) return -1;
    n += c;
  }
  return n;
}

long long StandaloneCount(const std::string& pattern) {
  const auto config = TestStackConfig();
  return ScanCount(config.redis_host + ":" + std::to_string(config.redis_port), pattern);
}

std::string PrefixOf(const RunOutcome& o, const std::string& mode) {
  auto it = o.modes.find(mode);
  if (it == o.modes.end()) return "";
  return Json::parse(it->second.details_json).value("key_prefix", "");
}

// Plain keys fail (CROSSSLOT or MOVED/EXECABORT) and nothing is half-written; hash-tagged keys
// work and a stale slot map is corrected by MOVED. Every client count equals the masters'
// errorstat delta; no key is left (recounted on every master before cleanup).
TEST(Integration, E010ClusterMultiKey) {
  auto o = RunKeptThroughApi("E-010", {});
  std::map<std::string, long long> left;
  for (const char* mode : {"failure", "success"}) {
    const std::string prefix = PrefixOf(o, mode);
    ASSERT_FALSE(prefix.empty()) << Describe(o);
    left[mode] = ClusterCount(prefix + "*");
  }
  CleanupKept("E-010", o);

  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_EQ(MetricOf(o, mode, "crossslot_errors"), MetricOf(o, mode, "crossslot_server"))
        << mode << Describe(o);
    EXPECT_EQ(MetricOf(o, mode, "moved_client"), MetricOf(o, mode, "moved_server")) << mode;
    EXPECT_EQ(MetricOf(o, mode, "error_replies"), MetricOf(o, mode, "errors_server")) << mode;
    EXPECT_EQ(MetricOf(o, mode, "partial_writes"), 0) << mode;
    EXPECT_EQ(MetricOf(o, mode, "values_mismatched"), 0) << mode;
    EXPECT_EQ(left[mode], 0) << mode;
    EXPECT_EQ(MetricOf(o, mode, "keys_left"), left[mode]) << mode;
  }
  // Every plain-key operation is refused: 5 operations x 20 rounds.
  EXPECT_EQ(MetricOf(o, "failure", "ops_failed"), 100);
  EXPECT_EQ(MetricOf(o, "failure", "ops"), 100);
  EXPECT_GT(MetricOf(o, "failure", "crossslot_server"), 0);
  // The stale client was redirected once per slot it used, and nothing else moved.
  EXPECT_EQ(MetricOf(o, "success", "moved_stale_server"), MetricOf(o, "success", "stale_slots"));
  EXPECT_EQ(MetricOf(o, "success", "moved_stale_client"),
            MetricOf(o, "success", "moved_stale_server"));
  EXPECT_EQ(MetricOf(o, "success", "moved_server"), MetricOf(o, "success", "moved_stale_server"));
  EXPECT_EQ(MetricOf(o, "success", "crossslot_server"), 0);
  EXPECT_EQ(MetricOf(o, "success", "ops"), 200);
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_EQ(ClusterCount(PrefixOf(o, mode) + "*"), 0) << mode;
  }
}

// practice=off: the success mode uses plain keys, so its operations fail as well.
TEST(Integration, E010WithoutHashTags) {
  auto o = RunRedisExperiment("E-010", {{"practice", std::string("off")}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "ops_failed"), MetricOf(o, "success", "ops"));
  EXPECT_EQ(MetricOf(o, "success", "crossslot_errors"), MetricOf(o, "success", "crossslot_server"));
  EXPECT_GT(MetricOf(o, "success", "crossslot_server"), 0);
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
}

// The code written for one node works on the standalone Redis and breaks on the cluster (multi-key
// DEL, KEYS and the one-node SCAN loop, SELECT always; the transaction and the Lua script as their
// keys fall); the rewrite works on both. The listings are recounted on the stack before cleanup.
TEST(Integration, E050ClusterModeBreaks) {
  auto o = RunKeptThroughApi("E-050", {});
  const std::string fp = PrefixOf(o, "failure");
  const std::string sp = PrefixOf(o, "success");
  ASSERT_FALSE(fp.empty() || sp.empty()) << Describe(o);
  const long long items_cluster = ClusterCount(fp + "item:*");
  const long long items_standalone = StandaloneCount(fp + "item:*");
  const long long carts_cluster = ClusterCount(fp + "cart:*");
  const long long carts_standalone = StandaloneCount(fp + "cart:*");
  const long long rewritten_carts = ClusterCount(sp + "{cart}:*");
  // The node the single-node code ran its keyless commands on (a master: earlier faults may have
  // made the first seed a replica).
  const std::string keyless_node =
      Json::parse(o.modes["failure"].details_json).value("cluster_node_for_keyless_commands", "");
  const long long keys_node = ScanCount(keyless_node, fp + "item:*");
  CleanupKept("E-050", o);

  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_EQ(MetricOf(o, mode, "operations"), 7) << mode;
    EXPECT_EQ(MetricOf(o, mode, "errors_cluster"), MetricOf(o, mode, "errors_server_cluster"))
        << mode << Describe(o);
    EXPECT_EQ(MetricOf(o, mode, "errors_standalone"), 0) << mode;
    EXPECT_EQ(MetricOf(o, mode, "errors_server_standalone"), 0) << mode;
    EXPECT_EQ(MetricOf(o, mode, "items_stored_cluster"), 20) << mode;
    EXPECT_EQ(MetricOf(o, mode, "items_stored_standalone"), 20) << mode;
  }
  // The per-operation table: the four operations that always break on the cluster.
  const Json table = Json::parse(o.modes["failure"].details_json).at("operations");
  ASSERT_EQ(table.size(), 7u);
  for (int i : {0, 2, 3, 5}) {
    EXPECT_TRUE(table[i]["standalone"]["ok"].get<bool>()) << table[i].dump();
    EXPECT_FALSE(table[i]["cluster"]["ok"].get<bool>()) << table[i].dump();
  }
  EXPECT_GE(MetricOf(o, "failure", "failed_cluster"), 4);
  EXPECT_GT(MetricOf(o, "failure", "errors_server_cluster"), 0);
  // The recount: the items are all on the cluster, the one node listed only its own share.
  EXPECT_EQ(items_cluster, 20);
  EXPECT_EQ(items_standalone, 20);
  EXPECT_EQ(keys_node, MetricOf(o, "failure", "keys_listed_cluster"));
  EXPECT_LT(MetricOf(o, "failure", "keys_listed_cluster"), 20);
  EXPECT_EQ(MetricOf(o, "failure", "scan_listed_cluster"), keys_node);
  // The refused DEL left the cluster's carts; the standalone DEL and the rewrite's removed theirs.
  EXPECT_EQ(carts_cluster, 3);
  EXPECT_EQ(carts_standalone, 0);
  EXPECT_EQ(rewritten_carts, 0);
  EXPECT_EQ(MetricOf(o, "success", "keys_listed_cluster"), 20);
  EXPECT_EQ(MetricOf(o, "success", "scan_listed_cluster"), 20);
  EXPECT_EQ(MetricOf(o, "success", "errors_server_cluster"), 0);
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
  // Cleanup removed every key of the run on both targets.
  for (const std::string& p : {fp, sp}) {
    EXPECT_EQ(ClusterCount(p + "*"), 0) << p;
    EXPECT_EQ(StandaloneCount(p + "*"), 0) << p;
  }
}

// practice=off: the success mode runs the original code, so it breaks on the cluster too.
TEST(Integration, E050WithoutRewrite) {
  auto o = RunRedisExperiment("E-050", {{"practice", std::string("off")}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "failed_standalone"), 0) << Describe(o);
  EXPECT_GE(MetricOf(o, "success", "failed_cluster"), 4) << Describe(o);
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
}

}  // namespace
}  // namespace lab::testing
