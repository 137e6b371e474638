#include "runners/common/util.h"

#include <gtest/gtest.h>

#include "runners/redis/redis_client.h"

namespace lab::runners {
namespace {

// Names derived from run ids are safe for topics, SQL values and keys, and keep the unique tail.
TEST(Util, SafeName) {
  EXPECT_EQ(SafeName("Run-01:AB"), "run_01_ab");
  EXPECT_EQ(SafeName(std::string(50, 'a') + "XYZ").size(), 40u);
  EXPECT_EQ(SafeName(std::string(50, 'a') + "XYZ").substr(37), "xyz");
}

// Nearest-rank percentiles.
TEST(Util, Percentile) {
  EXPECT_EQ(Percentile({}, 0.5), 0);
  EXPECT_EQ(Percentile({3, 1, 2, 4}, 0.5), 2);
  EXPECT_EQ(Percentile({3, 1, 2, 4}, 0.99), 4);
  EXPECT_EQ(Percentile({5}, 0.01), 5);
}

}  // namespace
}  // namespace lab::runners

namespace lab::runners {
namespace {

// INFO fields are whole lines: a field whose name ends another's is not mistaken for it.
TEST(RedisInfo, FieldsAreWholeLines) {
  const std::string info =
      "# Clients\r\ncluster_connected_clients:9\r\nconnected_clients:3\r\nrun_id:abc\r\n"
      "cmdstat_publish:calls=12,usec=40\r\n";
  EXPECT_EQ(redis::InfoValue(info, "connected_clients"), "3");
  EXPECT_EQ(redis::InfoValue(info, "run_id"), "abc");
  EXPECT_EQ(redis::InfoValue(info, "cmdstat_publish"), "calls=12,usec=40");
  EXPECT_EQ(redis::InfoValue(info, "maxclients"), "");
  EXPECT_EQ(redis::InfoNumber(info, "connected_clients", -1), 3);
  EXPECT_EQ(redis::InfoNumber(info, "run_id", -1), -1);
  EXPECT_EQ(redis::InfoNumber(info, "absent", -7), -7);
}

}  // namespace
}  // namespace lab::runners
