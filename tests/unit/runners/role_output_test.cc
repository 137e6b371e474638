#include <gtest/gtest.h>

#include "runners/experiments/experiment_base.h"

namespace lab::runners {
namespace {

// Keys are matched whole: E-006 once read "unassigned=member=…" as an assignment because it
// searched for the text "assigned=".
TEST(RoleOutput, LastValueMatchesTheWholeKey) {
  const std::string log = "assigned=0\nunassigned=member= rebalances=1\n";
  EXPECT_EQ(LastRoleValue(log, "assigned"), "0");
  EXPECT_EQ(LastRoleValue(log, "unassigned"), "member= rebalances=1");
  EXPECT_EQ(LastRoleValue(log, "signed"), std::nullopt);
}

TEST(RoleOutput, LastValueIsTheLatestLine) {
  EXPECT_EQ(LastRoleValue("assigned=3\nconsumed=10\nassigned=1\n", "assigned"), "1");
  EXPECT_EQ(LastRoleValue("", "assigned"), std::nullopt);
  // A line cut off by a process still writing counts with what it has so far.
  EXPECT_EQ(LastRoleValue("assigned=2\nassig", "assigned"), "2");
}

TEST(RoleOutput, RepeatedKeysKeepTheirOrderAndValuesMayHoldEquals) {
  auto values = ParseRoleOutput("parse_failure=0@1 a=b\nnoise without equals\nparse_failure=2@7\n");
  auto [first, last] = values.equal_range("parse_failure");
  ASSERT_EQ(std::distance(first, last), 2);
  EXPECT_EQ(first->second, "0@1 a=b");
  EXPECT_EQ(std::next(first)->second, "2@7");
  EXPECT_EQ(values.size(), 2u);
}

}  // namespace
}  // namespace lab::runners
