// E-046 and E-048 through the HTTP API of the real server: Redis really killed and restarted,
// a subscriber really dropped by the server, a consumer really SIGKILLed. After each run the
// Redis settings the run changed (maxclients, client-output-buffer-limit) are as before.
// Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include <thread>

#include "tests/integration/api_harness.h"
#include "tests/integration/redis_support.h"

namespace lab::testing {
namespace {

using namespace std::chrono_literals;

// The settings, with the connection count allowed to settle (the run's clients are gone, the
// server's own probe connections come and go).
long long Clients(const std::map<std::string, std::string>& settings) {
  auto it = settings.find("other_clients");
  return it == settings.end() || it->second == "?" ? -1 : std::stoll(it->second);
}

void ExpectRedisAsBefore(const std::map<std::string, std::string>& before) {
  auto after = RedisSettings();
  for (int i = 0; i < 50 && Clients(after) > Clients(before) + 2; ++i) {
    std::this_thread::sleep_for(100ms);
    after = RedisSettings();
  }
  for (const auto& [name, value] : before) {
    if (name == "other_clients") continue;
    EXPECT_EQ(after[name], value) << name;
  }
  EXPECT_GE(Clients(after), 0);
  EXPECT_LE(Clients(after), Clients(before) + 2);
}

// Immediate reconnects storm: many more attempts per second than with backoff; every client is
// served again with backoff; maxclients is back to what it was (CONFIG SET does not survive the
// restart, so the run set it twice and restored it).
TEST(Integration, E046ReconnectStorm) {
  const auto before = RedisSettings();
  auto o = RunRedisExperiment("E-046", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_GT(MetricOf(o, mode, "redis_down_ms"), 0) << mode;
    EXPECT_GT(MetricOf(o, mode, "accepted_after_restart"), 0) << mode;
    EXPECT_EQ(MetricOf(o, mode, "unserved"), 0) << mode << Describe(o);
    EXPECT_EQ(MetricOf(o, mode, "broken"), MetricOf(o, mode, "clients")) << mode;
  }
  EXPECT_GE(MetricOf(o, "failure", "peak_attempts_per_s"),
            3 * MetricOf(o, "success", "peak_attempts_per_s"));
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
  ExpectRedisAsBefore(before);
}

// practice=off: the success mode reconnects at once as well, so its attempts are not 3x fewer.
TEST(Integration, E046WithoutBackoff) {
  const auto before = RedisSettings();
  auto o = RunRedisExperiment("E-046", {{"practice", std::string("off")}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  ExpectRedisAsBefore(before);
}

// The subscriber is dropped and what was published after that reached no one; the stream's
// consumer group delivers every entry, c1's pending batch included.
TEST(Integration, E048PubsubVsStreams) {
  const auto before = RedisSettings();
  auto o = RunRedisExperiment("E-048", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  EXPECT_EQ(MetricOf(o, "failure", "published"), MetricOf(o, "failure", "published_server"));
  EXPECT_EQ(MetricOf(o, "failure", "received"), MetricOf(o, "failure", "received_reported"));
  EXPECT_GT(MetricOf(o, "failure", "unrouted"), 0) << Describe(o);
  EXPECT_LE(MetricOf(o, "failure", "received"), MetricOf(o, "failure", "delivered_by_server"));
  EXPECT_EQ(MetricOf(o, "success", "received"), MetricOf(o, "success", "published"));
  EXPECT_EQ(MetricOf(o, "success", "reclaimed"), MetricOf(o, "success", "pending_of_killed"));
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
  ExpectRedisAsBefore(before);
}

// practice=off: nobody claims the dead consumer's entries; they stay pending and are lost.
TEST(Integration, E048WithoutReclaim) {
  auto o = RunRedisExperiment("E-048", {{"practice", std::string("off")}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "lost"), MetricOf(o, "success", "pending_of_killed"))
      << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "pending_after"), 0);
}

}  // namespace
}  // namespace lab::testing
