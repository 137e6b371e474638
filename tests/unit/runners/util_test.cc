#include "runners/common/util.h"

#include <gtest/gtest.h>

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
