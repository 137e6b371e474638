// N21 through the HTTP API of the real server: a real valuation-service calling a real
// downstream-service through a Toxiproxy proxy of the run, a real latency toxic, an open-loop
// load measured from outside. Checked here: the verdict, the evidence against itself (the
// timeline's breaker states against the service's transitions, the clients' numbers against the
// service's and the downstream's), no proxy or toxic left in Toxiproxy afterwards, and the flip
// (practice=off: no breaker) refuted. Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "runners/net/toxiproxy.h"
#include "tests/integration/api_harness.h"
#include "tests/integration/redis_support.h"

namespace lab::testing {
namespace {

using Json = nlohmann::json;

// Confirmed: without a breaker the latency spike shows in the clients' p99 and errors until it
// ends; with one, it opens within seconds (the service's own transition log agrees with the
// clients' first X-Breaker answer), the dependency stops receiving most calls (its own count),
// p99 is bounded, and it closes by itself after the fault (same process). Toxiproxy is clean.
TEST(Integration, N21CircuitBreakerContainsALatencySpike) {
  ASSERT_EQ(ToxiproxyLeftovers(), "");
  auto o = RunThroughApi("N21", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    EXPECT_EQ(MetricOf(o, mode, "fault_fired"), 1) << mode;
    EXPECT_GE(MetricOf(o, mode, "fault_latency_ms"), 800) << mode;  // latency_ms 1000
  }
  // The clients' MTTD against the service's own log: the first open answer comes after the
  // transition, within a second of it.
  const double client_open = MetricOf(o, "success", "time_to_open_ms");
  const double service_open = MetricOf(o, "success", "time_to_open_service_ms");
  EXPECT_GT(client_open, 0) << Describe(o);
  EXPECT_GE(client_open + 50, service_open) << Describe(o);
  EXPECT_LE(client_open - service_open, 1000) << Describe(o);
  // The dependency's own count: the breaker let far fewer calls reach it during the fault.
  EXPECT_GT(MetricOf(o, "failure", "downstream_calls_during"),
            2 * MetricOf(o, "success", "downstream_calls_during"))
      << Describe(o);
  // The timeline shows the breaker open (2) during the fault and closed (0) at its end, and the
  // transitions go closed -> open ... -> closed.
  const Json d = DetailsOf(o, "success");
  ASSERT_TRUE(d["timeline"].is_array());
  bool open_seen = false;
  for (const auto& slot : d["timeline"]) open_seen |= slot.value("breaker_state", 0.0) == 2;
  EXPECT_TRUE(open_seen);
  EXPECT_EQ(d["timeline"].back().value("breaker_state", -1.0), 0);
  const Json& transitions = d["breaker_transitions"];
  ASSERT_TRUE(transitions.is_array() && transitions.size() >= 3) << d.dump();
  EXPECT_EQ(transitions.front().value("to", ""), "open");
  EXPECT_EQ(transitions.back().value("to", ""), "closed");
  // The service counted at least the short-circuits the clients saw.
  EXPECT_GE(MetricOf(o, "success", "service_short_circuits"), 1);
  EXPECT_EQ(ToxiproxyLeftovers(), "");
}

// The flip: the success mode without a breaker cannot contain the spike: refuted.
TEST(Integration, N21WithoutBreakerIsRefuted) {
  auto o = RunThroughApi("N21", {{"practice", std::string("off")}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "breaker_opened"), 0);
  EXPECT_EQ(ToxiproxyLeftovers(), "");
}

// Cancelled while the latency toxic is on: the run ends cancelled, and its proxy, its toxic and
// its service processes are gone.
TEST(Integration, N21CancelledDuringTheFaultLeavesNothing) {
  ASSERT_EQ(ToxiproxyLeftovers(), "");
  const std::string id = QueueRun("N21", {}, {"failure"});
  ASSERT_FALSE(id.empty());
  const Json view = WaitForStep(id, "fault on:", std::chrono::seconds(60));
  ASSERT_EQ(view.value("state", ""), "running") << view.dump(2);
  EXPECT_NE(ToxiproxyLeftovers(), "");  // the run's proxy and toxic, as the fault is on
  auto r = ApiServer::Get().client().PostJson("/runs/" + id + "/cancel", Json::object());
  ASSERT_EQ(r.status, 202) << r.body;
  const ApiRun done = WaitRun(id, std::chrono::seconds(120));
  EXPECT_EQ(done.state, "cancelled") << done.view.dump(2);
  EXPECT_EQ(ToxiproxyLeftovers(), "");
  const Json artifacts = done.view.value("artifacts", Json::object());
  for (const auto& [mode, list] : artifacts.items()) {
    for (const auto& a : list) {
      if (a.value("kind", "") != "process") continue;
      const std::string pid = a.value("name", "");
      std::ifstream cmdline("/proc/" + pid + "/cmdline");
      const std::string argv((std::istreambuf_iterator<char>(cmdline)),
                             std::istreambuf_iterator<char>());
      EXPECT_EQ(argv.find("lab-role"), std::string::npos)
          << "process " << pid << " of " << mode << " still runs";
    }
  }
}

}  // namespace
}  // namespace lab::testing
