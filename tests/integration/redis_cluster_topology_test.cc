// E-044 and E-045 on the real Redis Cluster: slots really migrate under load, a master is really
// killed and its replica promoted. After every run — confirmed, flipped, or cancelled in the
// middle of a migration or while the replica is paused — every node reports the topology it had
// before (slot owners, roles, 6 members connected, no open slot).
// Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "runners/experiments/experiment_base.h"
#include "runners/redis/cluster_admin.h"
#include "tests/integration/api_harness.h"
#include "tests/integration/redis_support.h"

namespace lab::testing {
namespace {

using namespace std::chrono_literals;

// The cluster as every node sees it now.
runners::redis::ClusterView Cluster() {
  return runners::redis::ReadClusterView(TestStackConfig().redis_cluster_seeds, 2000ms);
}

// The view settles within seconds of a restore (gossip); waits for it, bounded.
void ExpectClusterAsBefore(const runners::redis::ClusterView& before) {
  auto now = Cluster();
  for (int i = 0; i < 50 && (now.topology != before.topology || !now.problems.empty()); ++i) {
    std::this_thread::sleep_for(200ms);
    now = Cluster();
  }
  EXPECT_EQ(now.topology, before.topology);
  EXPECT_EQ(now.problems, "");
  EXPECT_EQ(now.nodes.size(), 6u);
}

// Keys under the run's cluster key prefixes, counted by SCAN on every master.
long long KeysLeft(const RunOutcome& o) {
  long long left = 0;
  runners::redis::NodePool pool(2000ms);
  for (const auto& a : o.artifacts) {
    if (a.kind != runners::kArtifactClusterKeys) continue;
    for (const auto& n : Cluster().nodes) {
      if (!n.master) continue;
      std::string cursor = "0";
      for (int i = 0; i < 10000; ++i) {
        auto r = pool.Run(n.addr, {"SCAN", cursor, "MATCH", a.name + "*", "COUNT", "1000"});
        if (!r || r->elements.size() != 2) return -1;
        cursor = r->elements[0].str;
        left += static_cast<long long>(r->elements[1].elements.size());
        if (cursor == "0") break;
      }
    }
  }
  return left;
}

runners::redis::ClusterView HealthyCluster() {
  auto view = Cluster();
  EXPECT_EQ(view.problems, "") << "the cluster is not healthy before the test";
  return view;
}

// Both clients run through two migrations: the naive one fails on ASK/MOVED, the cluster-aware
// one never does and loses nothing; the masters' own counters agree with what the clients saw.
TEST(Integration, E044OnlineResharding) {
  const auto before = HealthyCluster();
  auto o = RunRedisExperiment("E-044", {{"keys", std::int64_t{500}}, {"slots", std::int64_t{10}}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_EQ(MetricOf(o, mode, "slots_migrated"), 10) << mode;
    EXPECT_EQ(MetricOf(o, mode, "slots_moved_back"), 10) << mode;
    EXPECT_EQ(MetricOf(o, mode, "keys_read_back"), 500) << mode;
    EXPECT_EQ(MetricOf(o, mode, "ask_client"), MetricOf(o, mode, "ask_server")) << mode;
    EXPECT_EQ(MetricOf(o, mode, "moved_client"), MetricOf(o, mode, "moved_server")) << mode;
    EXPECT_EQ(MetricOf(o, mode, "topology_restored"), 1) << mode;
  }
  EXPECT_EQ(MetricOf(o, "failure", "client_errors"),
            MetricOf(o, "failure", "ask_client") + MetricOf(o, "failure", "moved_client"));
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
  ExpectClusterAsBefore(before);
  EXPECT_EQ(KeysLeft(o), 0);
}

// practice=off: the success mode's client treats redirections as errors as well.
TEST(Integration, E044WithoutClusterClient) {
  const auto before = HealthyCluster();
  auto o = RunThroughApi(
      "E-044",
      {{"practice", std::string("off")}, {"keys", std::int64_t{200}}, {"slots", std::int64_t{5}}},
      {"success"});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "client_errors"), 0) << Describe(o);
  ExpectClusterAsBefore(before);
}

// Cancelled while a slot is half migrated (IMPORTING on one master, MIGRATING on the other):
// cleanup closes it and moves every slot back.
TEST(Integration, E044CancelledMidMigrationRestoresSlots) {
  const auto before = HealthyCluster();
  std::stop_source stop;
  std::atomic<bool> migrating{false};
  std::vector<std::string> steps;
  auto on_step = [&](std::string_view step) {
    steps.emplace_back(step);
    if (step.find("migrating 20 slots") != std::string_view::npos) migrating = true;
  };
  // Stopped 300 ms into the first migration: some slots moved, one half-way (batches of 10).
  std::jthread stopper([&](std::stop_token done) {
    while (!migrating && !done.stop_requested()) std::this_thread::sleep_for(10ms);
    std::this_thread::sleep_for(300ms);
    stop.request_stop();
  });
  auto o = RunExperiment("E-044", {{"keys", std::int64_t{4000}}}, {"failure"}, false,
                         stop.get_token(), "", on_step);
  ASSERT_TRUE(stop.stop_requested()) << Describe(o);
  EXPECT_EQ(o.modes["failure"].inconclusive.value_or(""), "cancelled") << Describe(o);
  // The stop really left work for cleanup: an open slot closed, slots moved back.
  std::string restores;
  for (const auto& s : steps)
    if (s.find("restore: ") != std::string::npos) restores += s + "\n";
  EXPECT_NE(restores.find("open slot"), std::string::npos) << restores;
  EXPECT_NE(restores.find("moved back"), std::string::npos) << restores;
  ExpectClusterAsBefore(before);
  // Every key came back with its slot and was deleted: none stranded on a node that does not
  // own its slot (closing both sides of the open slot did strand them).
  EXPECT_EQ(KeysLeft(o), 0) << restores;
}

// The replica is cut off while the master acknowledges writes alone, then the master dies: the
// plain writer loses exactly those writes; with WAIT, none it counted as durable. The killed
// node is back, in its role.
TEST(Integration, E045FailoverDrill) {
  const auto before = HealthyCluster();
  auto o = RunRedisExperiment("E-045", {{"writes", std::int64_t{50}}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_EQ(MetricOf(o, mode, "replica_links_cut"), 1) << mode;
    EXPECT_GT(MetricOf(o, mode, "unavailability_ms"), 0) << mode;
    EXPECT_EQ(MetricOf(o, mode, "roles_restored"), 1) << mode;
    // The writes acknowledged while the replica was cut off are the ones lost, in both modes.
    EXPECT_EQ(MetricOf(o, mode, "lost_acked"), 50) << mode << Describe(o);
  }
  EXPECT_EQ(MetricOf(o, "failure", "lost_durable"), 50);
  EXPECT_GE(MetricOf(o, "success", "not_durable"), 50);
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
  ExpectClusterAsBefore(before);
}

// practice=off: without WAIT the success mode counts the doomed writes as durable.
TEST(Integration, E045WithoutWait) {
  const auto before = HealthyCluster();
  auto o = RunThroughApi("E-045", {{"practice", std::string("off")}, {"writes", std::int64_t{20}}},
                         {"success"});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "lost_durable"), 20) << Describe(o);
  ExpectClusterAsBefore(before);
}

// Cancelled while the replica is paused and cut off: cleanup resumes it and the cluster is as
// before (the master was never killed).
TEST(Integration, E045CancelledWhileReplicaPausedRestoresCluster) {
  const auto before = HealthyCluster();
  std::stop_source stop;
  bool resumed_by_cleanup = false;
  auto on_step = [&](std::string_view step) {
    if (step.find("replication link cut") != std::string_view::npos) stop.request_stop();
    if (stop.stop_requested() && step.find("cluster resume") != std::string_view::npos)
      resumed_by_cleanup = true;
  };
  auto o = RunExperiment("E-045", {}, {"failure"}, false, stop.get_token(), "", on_step);
  ASSERT_TRUE(stop.stop_requested()) << Describe(o);
  EXPECT_EQ(o.modes["failure"].inconclusive.value_or(""), "cancelled") << Describe(o);
  EXPECT_TRUE(resumed_by_cleanup) << Describe(o);
  ExpectClusterAsBefore(before);
}

}  // namespace
}  // namespace lab::testing
