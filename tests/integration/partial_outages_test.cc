// E-023 against the real stack, through the HTTP API of the real server: a real shop-service
// under load while Redis (a toxic on its proxy), MariaDB (the same) and Kafka (all three brokers
// paused) go down in turn. Checked here: the verdict, the evidence against itself and against
// the stack (rows counted in MariaDB, the topic read back with a fresh consumer), the flip
// (practice=off refuted by the number that changed), and a run cancelled while the brokers are
// paused leaving every part running and Toxiproxy clean. Each test pauses every broker of the
// shared stack. Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "runners/common/process.h"
#include "runners/common/util.h"
#include "runners/experiments/e023_partial_outages.h"
#include "runners/experiments/experiment_base.h"
#include "runners/kafka/kafka_client.h"
#include "runners/net/toxiproxy.h"
#include "tests/e2e/lab_process.h"
#include "tests/integration/api_harness.h"
#include "tests/integration/redis_support.h"

namespace lab::testing {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

// Every part of the stack whole: infra/stack.sh status says every part is up (none paused), the
// three brokers are in the metadata with nothing under-replicated, Redis and MariaDB answer
// directly, and Toxiproxy holds nothing of a run.
void ExpectStackWhole() {
  auto script = runners::FindRepoPath("infra/stack.sh");
  ASSERT_TRUE(script);
  auto status = runners::RunCommand({"/bin/bash", *script, "status"}, 60s);
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_TRUE(status->status.exited && status->status.code == 0) << status->output;
  EXPECT_EQ(status->output.find("paused"), std::string::npos) << status->output;
  auto admin = runners::kafka::Admin::Create(TestStackConfig().kafka_bootstrap);
  ASSERT_TRUE(admin);
  auto md = (*admin)->Metadata("", 5000ms);
  ASSERT_TRUE(md) << md.error().message;
  EXPECT_EQ(md->brokers.size(), 3u);
  ExpectFullyReplicated();
  auto redis = Redis();
  ASSERT_TRUE(redis);
  auto pong = redis->Command({"PING"});
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->str, "PONG");
  auto db = Mysql();
  ASSERT_TRUE(db);
  EXPECT_TRUE(db->Query("SELECT 1").ok());
  EXPECT_EQ(ToxiproxyLeftovers(), "");
}

// A kept run through the API, repeated once (visibly) when it was inconclusive only because a
// client library failed (librdkafka 2.0.2 across the brokers' pause).
RunOutcome RunE023Kept(const std::map<std::string, domain::ParamValue>& params) {
  auto o = RunKeptThroughApi("E-023", params);
  bool library = false;
  for (const auto& [mode, r] : o.modes) library = library || !r.client_library_failures.empty();
  if (o.verdict.verdict == domain::Verdict::kInconclusive && library) {
    std::printf("RETRY: E-023 inconclusive with a client-library failure; retried once:\n%s\n",
                Describe(o).c_str());
    CleanupKept("E-023", o);
    o = RunKeptThroughApi("E-023", params);
  }
  return o;
}

// What the stack holds for one mode: the order rows, and the distinct order events in the topic.
struct Recount {
  std::set<std::int64_t> rows;
  std::set<std::int64_t> events;
  std::int64_t pending_outbox = -1;
};

Recount RecountMode(const Json& details) {
  Recount r;
  const std::string ns = details.value("run_ns", "");
  const std::string topic = details.value("topic", "");
  EXPECT_FALSE(ns.empty());
  auto db = Mysql();
  if (!db) return r;
  auto rows = db->Query("SELECT order_id FROM orders WHERE run_ns = ?", {ns});
  EXPECT_TRUE(rows.ok());
  if (rows) {
    for (const auto& row : rows->rows) r.rows.insert(std::stoll(row[0].value_or("0")));
  }
  auto pending =
      db->Query("SELECT COUNT(*) FROM outbox_event WHERE run_ns = ? AND published_at_us = 0", {ns});
  if (pending) r.pending_outbox = pending->Scalar();
  auto read =
      runners::kafka::ReadTopic(TestStackConfig().kafka_bootstrap, topic, 3, "read_committed", 60s);
  EXPECT_TRUE(read.complete) << topic << ": " << read.error;
  for (const auto& [event_id, n] : runners::EventIdCounts(read.messages)) {
    if (auto id = runners::OrderIdOfEvent(event_id, ns); id >= 0) r.events.insert(id);
  }
  return r;
}

// The defaults: confirmed. Each mode's faults fired; the failure mode collapsed (its p99 during
// the outages at least twice the success mode's) and lost events; the success mode stayed
// bounded, served stale reads and refused writes fast while MariaDB was gone, accumulated an
// outbox backlog while Kafka was paused and lost nothing. The rows and events are recounted here
// from the stack, and the stack is whole afterwards.
TEST(Integration, E023PartialOutagesDegradeWithThePractice) {
  ASSERT_EQ(ToxiproxyLeftovers(), "");
  auto o = RunE023Kept({});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    for (const char* part : {"redis", "mysql", "kafka"})
      EXPECT_EQ(MetricOf(o, mode, std::string(part) + "_fault_fired"), 1) << mode << " " << part;
    const Json d = DetailsOf(o, mode);
    ASSERT_TRUE(d.contains("provenance")) << mode;
    EXPECT_EQ(d["provenance"].value("lost", ""), "read_back");
    const Recount rc = RecountMode(d);
    EXPECT_EQ(static_cast<double>(rc.rows.size()), MetricOf(o, mode, "orders_in_db")) << mode;
    EXPECT_EQ(static_cast<double>(rc.events.size()), MetricOf(o, mode, "events_in_topic")) << mode;
    std::int64_t without_event = 0;
    for (auto id : rc.rows) without_event += rc.events.count(id) == 0 ? 1 : 0;
    EXPECT_EQ(static_cast<double>(without_event), MetricOf(o, mode, "committed_without_event"))
        << mode;
    // Every acknowledged order has a row: lost is acked_missing + committed_without_event.
    EXPECT_EQ(MetricOf(o, mode, "lost"), MetricOf(o, mode, "acked_missing") + without_event)
        << mode;
    EXPECT_LE(MetricOf(o, mode, "acked_orders"), static_cast<double>(rc.rows.size())) << mode;
  }
  // The success mode: the outbox drained, nothing lost, the degradation visible.
  const Recount ok = RecountMode(DetailsOf(o, "success"));
  EXPECT_EQ(ok.pending_outbox, 0);
  EXPECT_EQ(MetricOf(o, "success", "lost"), 0);
  EXPECT_GT(MetricOf(o, "success", "stale_reads_mysql"), 0) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "writes_refused_mysql"), 0) << Describe(o);
  EXPECT_LE(MetricOf(o, "success", "write_refused_p99_mysql_ms"), 1000) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "peak_outbox_backlog"), 0);
  // The failure mode: events of committed orders never reached the topic.
  EXPECT_GT(MetricOf(o, "failure", "committed_without_event"), 0) << Describe(o);
  EXPECT_GE(MetricOf(o, "failure", "p99_max_during_ms"),
            2 * MetricOf(o, "success", "p99_max_during_ms"));
  std::printf("E-023 run time %.1f s\n", o.seconds);
  CleanupKept("E-023", o);
  ExpectStackWhole();
}

// The flip: the success mode without the practice collapses like the failure mode: events of
// committed orders are lost and there is no outbox to accumulate: refuted.
TEST(Integration, E023WithoutThePracticeIsRefuted) {
  auto o = RunE023Kept({{"practice", std::string("off")}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "lost"), 0) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "peak_outbox_backlog"), 0);
  CleanupKept("E-023", o);
  ExpectStackWhole();
}

// Cancelled while every broker is paused (after the Redis and MariaDB outages): the run ends
// cancelled; every broker runs again, Redis and MariaDB answer, Toxiproxy holds no proxy or toxic
// of the run, and no lab-role process of it is left.
TEST(Integration, E023CancelledDuringAnOutageLeavesTheStackWhole) {
  ASSERT_EQ(ToxiproxyLeftovers(), "");
  const std::string id = QueueRun("E-023", {}, {"success"});
  ASSERT_FALSE(id.empty());
  const Json view = WaitForStep(id, "fault on: kafka", std::chrono::seconds(120));
  ASSERT_EQ(view.value("state", ""), "running") << view.dump(2);
  auto r = ApiServer::Get().client().PostJson("/runs/" + id + "/cancel", Json::object());
  ASSERT_EQ(r.status, 202) << r.body;
  const ApiRun done = WaitRun(id, std::chrono::seconds(240));
  EXPECT_EQ(done.state, "cancelled") << done.view.dump(2);
  const Json artifacts = done.view.value("artifacts", Json::object());
  bool paused_recorded = false;
  for (const auto& [mode, list] : artifacts.items()) {
    for (const auto& a : list) {
      paused_recorded |= a.value("kind", "") == "kafka-broker-paused";
      if (a.value("kind", "") != "process") continue;
      const std::string pid = a.value("name", "");
      std::ifstream cmdline("/proc/" + pid + "/cmdline");
      const std::string argv((std::istreambuf_iterator<char>(cmdline)),
                             std::istreambuf_iterator<char>());
      EXPECT_EQ(argv.find("lab-role"), std::string::npos)
          << "process " << pid << " of " << mode << " still runs";
    }
  }
  EXPECT_TRUE(paused_recorded) << done.view.dump(2);
  ExpectStackWhole();
}

}  // namespace
}  // namespace lab::testing
