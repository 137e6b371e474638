#include <gtest/gtest.h>

#include "runners/experiments/experiment_base.h"
#include "runners/runner_wire.h"

namespace lab::runners {
namespace {

using wire::ValueLine;

std::string Lines(std::initializer_list<std::string> lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

TEST(RoleOutput, ValueLineIsOneAtLabJsonLine) {
  EXPECT_EQ(ValueLine("consumed", "120"), R"(@lab {"key":"consumed","t":"value","value":"120"})");
  EXPECT_EQ(
      wire::FailpointLine("after-commit-before-produce", 3),
      R"(@lab {"action":"SIGKILL","count":3,"point":"after-commit-before-produce","t":"failpoint"})");
}

// Keys are matched whole: E-006 once read "unassigned=member=…" as an assignment because it
// searched for the text "assigned=".
TEST(RoleOutput, LastValueMatchesTheWholeKey) {
  const std::string log =
      Lines({ValueLine("assigned", "0"), ValueLine("unassigned", "member= rebalances=1")});
  EXPECT_EQ(LastRoleValue(log, "assigned"), "0");
  EXPECT_EQ(LastRoleValue(log, "unassigned"), "member= rebalances=1");
  EXPECT_EQ(LastRoleValue(log, "signed"), std::nullopt);
}

TEST(RoleOutput, LastValueIsTheLatestLine) {
  EXPECT_EQ(LastRoleValue(Lines({ValueLine("assigned", "3"), ValueLine("consumed", "10"),
                                 ValueLine("assigned", "1")}),
                          "assigned"),
            "1");
  EXPECT_EQ(LastRoleValue("", "assigned"), std::nullopt);
  // A line cut off by a process still writing counts with what it has so far: the complete
  // lines; the cut one is not JSON yet and is skipped.
  const std::string cut = ValueLine("assigned", "3");
  EXPECT_EQ(
      LastRoleValue(ValueLine("assigned", "2") + "\n" + cut.substr(0, cut.size() - 4), "assigned"),
      "2");
}

TEST(RoleOutput, RepeatedKeysKeepTheirOrderAndValuesMayHoldEquals) {
  auto values = ParseRoleOutput(Lines({ValueLine("parse_failure", "0@1 a=b"),
                                       "noise without equals", ValueLine("parse_failure", "2@7")}));
  auto [first, last] = values.equal_range("parse_failure");
  ASSERT_EQ(std::distance(first, last), 2);
  EXPECT_EQ(first->second, "0@1 a=b");
  EXPECT_EQ(std::next(first)->second, "2@7");
  EXPECT_EQ(values.size(), 2u);
}

// Anything that is not an "@lab" line is a client library's log, even when it looks like the
// old key=value form.
TEST(RoleOutput, LinesThatAreNotOursAreSkipped) {
  auto values = ParseRoleOutput(Lines({"assigned=3", "%3|1700000000.123|FAIL|rdkafka#consumer-1|",
                                       "", ValueLine("assigned", "1"), "lab {\"t\":\"value\"}"}));
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(values.begin()->first, "assigned");
  EXPECT_EQ(values.begin()->second, "1");
}

TEST(RoleOutput, MalformedAtLabLinesAreSkipped) {
  auto values = ParseRoleOutput(Lines({
      "@lab {",
      "@lab ",
      "@lab [1,2]",
      R"(@lab {"key":"a","value":"1"})",        // no "t"
      R"(@lab {"t":7,"key":"a","value":"1"})",  // "t" not a string
      R"(@lab {"t":"value","key":"a"})",        // no value
      R"(@lab {"t":"value","key":["a"],"value":"1"})",
      R"(@lab {"t":"value","key":"a","value":{"x":1}})",
      R"(@lab {"t":"failpoint","count":1})",        // no point
      R"(@lab {"t":"step","m":"a host's event"})",  // not a role's
      ValueLine("kept", "yes"),
  }));
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(values.begin()->first, "kept");
}

TEST(RoleOutput, FailpointSurfacesAsFailpointCountAndAction) {
  auto values = ParseRoleOutput(
      Lines({ValueLine("consumed", "4"), wire::FailpointLine("after-commit-before-produce", 3)}));
  EXPECT_EQ(values.count("failpoint"), 1u);
  EXPECT_EQ(values.find("failpoint")->second, "after-commit-before-produce");
  EXPECT_EQ(values.find("count")->second, "3");
  EXPECT_EQ(values.find("action")->second, "SIGKILL");
  EXPECT_EQ(LastRoleValue(Lines({wire::FailpointLine("after-read-before-ack", 1)}), "failpoint"),
            "after-read-before-ack");
}

TEST(RoleOutput, FatalErrorSurfacesAsError) {
  auto values = ParseRoleOutput(Lines({wire::ErrorLine("mysql: connection refused")}));
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(values.begin()->first, "error");
  EXPECT_EQ(values.begin()->second, "mysql: connection refused");
}

TEST(RoleOutput, AnyValueRoundTrips) {
  const std::string tricky = "a=b c = d \"quoted\" 'single'\nsecond line\r\n\ttab \\ back@lab {}";
  const std::string line = ValueLine("error", tricky);
  EXPECT_EQ(line.find('\n'), std::string::npos);  // one line, whatever the value holds
  EXPECT_EQ(LastRoleValue(line + "\n", "error"), tricky);
  // Keys too, and an empty value is a value.
  EXPECT_EQ(LastRoleValue(ValueLine("k=ey \"x\"", "v") + "\n", "k=ey \"x\""), "v");
  EXPECT_EQ(LastRoleValue(ValueLine("empty", "") + "\n", "empty"), "");
}

TEST(RoleOutput, BytesThatAreNotUtf8DoNotThrow) {
  const std::string line = ValueLine("error", std::string("bad \xff\xfe byte"));
  EXPECT_TRUE(LastRoleValue(line + "\n", "error").has_value());
}

TEST(RoleOutput, LogTextReadsOurLinesAsKeyValue) {
  EXPECT_EQ(RoleLogText(Lines({ValueLine("listening", "4711"), "a library's line",
                               wire::FailpointLine("p", 2), wire::ErrorLine("boom")})),
            "listening=4711\na library's line\nfailpoint=p count=2 action=SIGKILL\nerror=boom\n");
  EXPECT_EQ(RoleLogText(Lines({ValueLine("k", "0123456789")}), 5), "6789\n");
}

}  // namespace
}  // namespace lab::runners
