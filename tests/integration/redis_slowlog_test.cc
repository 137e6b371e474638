// E-047 through the API on the real stack: the slow commands show in every client's p99 and in
// the server's SLOWLOG, which this test reads itself; the run's settings are back afterwards.
#include <gtest/gtest.h>

#include "runners/redis/redis_client.h"
#include "tests/integration/api_harness.h"

namespace lab::testing {
namespace {

double SlowlogMetric(const RunOutcome& o, const std::string& metric) {
  auto mode = o.modes.find("check");
  if (mode == o.modes.end()) return -1e9;
  auto m = mode->second.metrics.find(metric);
  return m == mode->second.metrics.end() ? -1e9 : m->second;
}

std::string ConfigValue(runners::redis::Connection& conn, const std::string& name) {
  auto r = conn.Command({"CONFIG", "GET", name});
  return r && r->elements.size() == 2 ? r->elements[1].str : "?";
}

// Confirmed; the injected commands are in SLOWLOG as this test reads it, none of the load's
// GET/SET is, and the thresholds the run lowered are restored.
TEST(Integration, E047SlowlogNamesTheCulprit) {
  auto config = TestStackConfig();
  auto conn = runners::redis::Connection::Open(config.redis_host, config.redis_port,
                                               std::chrono::milliseconds(2000));
  ASSERT_TRUE(conn) << conn.error().message;
  const std::string slower_than = ConfigValue(**conn, "slowlog-log-slower-than");
  const std::string latency_threshold = ConfigValue(**conn, "latency-monitor-threshold");
  auto before = (*conn)->Command({"SLOWLOG", "GET", "1"});
  ASSERT_TRUE(before);
  const long long last_id = before->elements.empty() ? -1 : before->elements[0].elements[0].integer;

  auto o = RunThroughApi("E-047", {{"seconds", std::int64_t{2}}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  EXPECT_GT(SlowlogMetric(o, "p99_injected_ms"), SlowlogMetric(o, "p99_baseline_ms"))
      << Describe(o);

  auto after = (*conn)->Command({"SLOWLOG", "GET", "1024"});
  ASSERT_TRUE(after);
  int injected = 0;
  int load = 0;
  for (const auto& e : after->elements) {
    if (e.elements.size() < 4 || e.elements[0].integer <= last_id) continue;
    const std::string command = e.elements[3].elements[0].str;
    if (command == "KEYS" || command == "keys" || command == "SORT" || command == "sort" ||
        command == "EVAL" || command == "eval") {
      ++injected;
    } else if (command == "GET" || command == "get" || command == "SET" || command == "set") {
      ++load;
    }
  }
  EXPECT_GE(injected, SlowlogMetric(o, "slow_injected")) << Describe(o);
  EXPECT_GT(injected, 0);
  EXPECT_EQ(load, 0);
  EXPECT_EQ(ConfigValue(**conn, "slowlog-log-slower-than"), slower_than);
  EXPECT_EQ(ConfigValue(**conn, "latency-monitor-threshold"), latency_threshold);
}

}  // namespace
}  // namespace lab::testing
