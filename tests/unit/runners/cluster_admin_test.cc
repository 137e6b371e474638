// CLUSTER NODES parsing and the topology text postflight compares: what a real 7.0 node prints
// (a replica, a migrating slot, a failing node) reads as the same topology, and the problems
// (open slots, failing or disconnected members) are named.
#include "runners/redis/cluster_admin.h"

#include <gtest/gtest.h>

#include "runners/redis/redis_client.h"

namespace lab::runners::redis {
namespace {

// As printed by redis 7.0.15 on the stack's cluster (ids shortened).
const char* kNodes =
    "b1 127.0.0.1:17005@27005 slave a3 0 1796658359597 3 connected\n"
    "a1 127.0.0.1:17001@27001 myself,master - 0 1796658358000 1 connected 0-5460\n"
    "a2 127.0.0.1:17002@27002 master - 0 1796658359597 2 connected 5461-10922\n"
    "a3 127.0.0.1:17003@27003 master - 0 1796658359000 3 connected 10923-16383\n"
    "b2 127.0.0.1:17004@27004 slave a2 0 1796658359000 2 connected\n";

TEST(ClusterNodes, ParsesRolesSlotsAndAddresses) {
  auto nodes = ParseClusterNodes(kNodes);
  ASSERT_EQ(nodes.size(), 5u);
  EXPECT_EQ(nodes[0].addr, "127.0.0.1:17005");
  EXPECT_FALSE(nodes[0].master);
  EXPECT_EQ(nodes[0].master_id, "a3");
  EXPECT_TRUE(nodes[1].myself);
  ASSERT_EQ(nodes[1].slots.size(), 1u);
  EXPECT_EQ(nodes[1].slots[0], std::make_pair(0, 5460));
  EXPECT_EQ(TopologyText(nodes),
            "127.0.0.1:17001 master 0-5460; 127.0.0.1:17002 master 5461-10922; "
            "127.0.0.1:17003 master 10923-16383; 127.0.0.1:17004 replica-of 127.0.0.1:17002; "
            "127.0.0.1:17005 replica-of 127.0.0.1:17003");
  EXPECT_EQ(TopologyProblems(nodes), "");
}

// The masters that serve slots, sorted: a replica is not one, nor an old master restarted with
// no slots (it shows as a slotless master until gossip says it is a replica).
TEST(ClusterNodes, ServingMastersAreTheSlotOwners) {
  auto nodes = ParseClusterNodes(std::string(kNodes) +
                                 "c1 127.0.0.1:17006@27006 master - 0 1796658359000 4 connected\n");
  EXPECT_EQ(ServingMasters(nodes),
            (std::vector<std::string>{"127.0.0.1:17001", "127.0.0.1:17002", "127.0.0.1:17003"}));
}

// A slot being migrated shows on the source's own line; single slots and gaps in the ranges
// change the text, so a moved slot is a different topology.
TEST(ClusterNodes, OpenSlotsAndMovedSlotsAreSeen) {
  auto nodes = ParseClusterNodes(
      "a1 127.0.0.1:17001@27001 myself,master - 0 0 1 connected 0-99 101-5460 [100->-a2]\n"
      "a2 127.0.0.1:17002@27002 master - 0 0 2 connected 100 5461-16383\n");
  ASSERT_EQ(nodes[0].open_slots.size(), 1u);
  EXPECT_EQ(nodes[0].open_slots[0].slot, 100);
  EXPECT_TRUE(nodes[0].open_slots[0].migrating);
  EXPECT_EQ(nodes[0].open_slots[0].peer_id, "a2");
  auto importing = ParseClusterNodes(
      "a2 127.0.0.1:17002@27002 myself,master - 0 0 2 connected 5461-16383 [100-<-a1]\n");
  ASSERT_EQ(importing[0].open_slots.size(), 1u);
  EXPECT_FALSE(importing[0].open_slots[0].migrating);
  EXPECT_EQ(importing[0].open_slots[0].peer_id, "a1");
  EXPECT_EQ(TopologyText(nodes),
            "127.0.0.1:17001 master 0-99,101-5460; 127.0.0.1:17002 master 100,5461-16383");
  EXPECT_EQ(TopologyProblems(nodes), "127.0.0.1:17001 has 1 slot(s) migrating or importing");
}

TEST(ClusterNodes, FailingAndDisconnectedMembersAreProblems) {
  auto nodes = ParseClusterNodes(
      "a1 127.0.0.1:17001@27001 master,fail - 0 0 1 disconnected 0-16383\n"
      "b1 127.0.0.1:17004@27004 myself,slave a1 0 0 1 connected\n"
      "garbage line\n");
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_TRUE(nodes[0].Failing());
  EXPECT_FALSE(nodes[1].Failing());
  EXPECT_EQ(TopologyProblems(nodes),
            "127.0.0.1:17001 flagged master,fail; 127.0.0.1:17001 not connected");
}

TEST(ErrorStats, CountsByPrefix) {
  const std::string info =
      "# Errorstats\r\nerrorstat_CROSSSLOT:count=3\r\nerrorstat_MOVED:count=12\r\n";
  EXPECT_EQ(ErrorStat(info, "CROSSSLOT"), 3);
  EXPECT_EQ(ErrorStat(info, "MOVED"), 12);
  EXPECT_EQ(ErrorStat(info, "ASK"), 0);
}

TEST(HostPort, SplitsAtTheLastColon) {
  EXPECT_EQ(SplitHostPort("127.0.0.1:17001"), std::make_pair(std::string("127.0.0.1"), 17001));
  EXPECT_EQ(SplitHostPort("localhost"), std::make_pair(std::string("localhost"), 6379));
  EXPECT_EQ(SplitHostPort("h:x").second, 0);
}

}  // namespace
}  // namespace lab::runners::redis
