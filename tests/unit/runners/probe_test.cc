#include <gtest/gtest.h>

#include <chrono>

#include "runners/runner_factory.h"
#include "runners/stack_probe.h"

namespace lab::runners {
namespace {

StackConfig DeadStack() {
  // Port 1 on loopback: nothing listens there, connections are refused at once.
  StackConfig c;
  c.kafka_bootstrap = "127.0.0.1:1";
  c.registry_url = "http://127.0.0.1:1/apis/ccompat/v7";
  c.mysql_port = 1;
  c.redis_port = 1;
  c.redis_cluster_seeds = {"127.0.0.1:1"};
  c.toxiproxy_url = "http://127.0.0.1:1";
  return c;
}

// With no stack, the probe answers promptly, every part not ok, each with a reason.
TEST(StackProbe, DeadStackAnswersPromptlyWithReasons) {
  auto probe = MakeStackProbe(DeadStack());
  auto start = std::chrono::steady_clock::now();
  auto health = probe->Check({}, std::chrono::milliseconds(1000));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(4));
  ASSERT_EQ(health.size(), 6u);
  for (const auto& h : health) {
    EXPECT_FALSE(h.ok) << h.part;
    EXPECT_FALSE(h.detail.empty()) << h.part;
  }
}

// The first settings seen are the baseline; a later change is named with its first value, and
// putting it back makes the drift disappear.
TEST(RedisBaseline, NamesWhatDiffersFromTheFirstCheck) {
  RedisBaseline baseline;
  const std::map<std::string, std::string> first = {{"maxclients", "10000"},
                                                    {"acl_users", "default"}};
  EXPECT_EQ(baseline.Drift(first), "");
  EXPECT_EQ(baseline.Drift(first), "");
  auto changed = first;
  changed["maxclients"] = "300";
  changed["acl_users"] = "default,lab_x";
  EXPECT_EQ(baseline.Drift(changed),
            "acl_users=default,lab_x (was default); maxclients=300 (was 10000)");
  EXPECT_EQ(baseline.Drift(first), "");
}

// E-000 over a dead stack completes with every part unreachable, counted in `unreachable`.
TEST(StackCheck, DeadStackCountsUnreachableParts) {
  auto runners = MakeRunners(DeadStack());
  domain::ExperimentRunner* e000 = nullptr;
  for (auto& r : runners) {
    if (r->ExperimentId() == "E-000") e000 = r.get();
  }
  ASSERT_NE(e000, nullptr);
  domain::RunContext ctx;
  ctx.run_id = "t";
  ctx.ns = "t";
  ctx.params["timeout_ms"] = std::int64_t{500};
  auto result = e000->RunMode(ctx, "check");
  EXPECT_EQ(result.metrics["unreachable"], 6);
  EXPECT_EQ(result.metrics["mysql.reachable"], 0);
  EXPECT_FALSE(result.inconclusive.has_value());
}

}  // namespace
}  // namespace lab::runners
