// N03, N04 and N06 through the HTTP API of the real server: a real valuation-service and a real
// downstream-service (lab-role processes), flooded and probed from outside, a real Toxiproxy
// latency toxic. Each confirmed run is checked against counts taken elsewhere than the run's own
// arithmetic (MariaDB's `valuation` rows recounted here, the downstream process's /stats against
// the service's /metrics and the clients' view); each practice=off run must be refuted; no
// `lab_*` proxy is left in Toxiproxy. Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <thread>

#include "runners/experiments/experiment_base.h"
#include "runners/registry/http_client.h"
#include "tests/integration/api_harness.h"
#include "tests/integration/redis_support.h"

namespace lab::testing {
namespace {

using Json = nlohmann::json;

double Num(const Json& j, const std::string& key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : -1e9;
}

// The Toxiproxy proxies whose name starts with "lab_" (the runs' own), or -1 when Toxiproxy
// does not answer.
int LabProxies() {
  const auto env = StackEnv();
  auto it = env.find("LAB_TOXIPROXY_URL");
  const std::string url = it != env.end() ? it->second : "http://127.0.0.1:18474";
  auto r = runners::registry::HttpRequest("GET", url + "/proxies", "", "",
                                          std::chrono::milliseconds(3000));
  if (!r || r->status != 200) return -1;
  auto j = Json::parse(r->body, nullptr, false);
  if (!j.is_object()) return -1;
  int n = 0;
  for (const auto& [name, proxy] : j.items()) n += name.rfind("lab_", 0) == 0 ? 1 : 0;
  return n;
}

// A run retried once, visibly, when it was inconclusive only because a client library failed.
RunOutcome RunService(const std::string& id,
                      const std::map<std::string, domain::ParamValue>& params, bool keep = false) {
  auto o = keep ? RunKeptThroughApi(id, params) : RunThroughApi(id, params);
  bool library = false;
  for (const auto& [mode, r] : o.modes) library |= !r.client_library_failures.empty();
  if (o.verdict.verdict == domain::Verdict::kInconclusive && library) {
    std::printf("retrying %s once: inconclusive with a client-library failure\n%s\n", id.c_str(),
                Describe(o).c_str());
    if (keep) CleanupKept(id, o);
    o = keep ? RunKeptThroughApi(id, params) : RunThroughApi(id, params);
  }
  return o;
}

// N03: caller-runs makes the health probe wait behind work run on the acceptor thread; abort +
// bulkhead rejects visibly and the probe stays fast. The service's own rejection count equals
// the 503/429s the clients received; the downstream (another process) received exactly the calls
// the service says it made.
TEST(Integration, N03CallerRuns) {
  auto o = RunService("N03", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  EXPECT_GT(MetricOf(o, "failure", "caller_runs"), 0) << Describe(o);
  EXPECT_GT(MetricOf(o, "failure", "acceptor_busy_ms"), 0) << Describe(o);
  EXPECT_GE(MetricOf(o, "failure", "probe_p99_ms"), 10 * MetricOf(o, "success", "probe_p99_ms"));
  EXPECT_GT(MetricOf(o, "success", "rejected_client_seen"), 0);
  EXPECT_EQ(MetricOf(o, "success", "probe_timeouts"), 0);
  EXPECT_EQ(MetricOf(o, "failure", "rejected_client_seen"), 0) << "caller-runs never rejects";
  for (const char* mode : {"failure", "success"}) {
    const Json d = DetailsOf(o, mode);
    EXPECT_EQ(MetricOf(o, mode, "rejected_mismatch"), 0) << mode << Describe(o);
    EXPECT_EQ(Num(d["service_metrics"], "downstream_calls"), Num(d["downstream_stats"], "received"))
        << mode << d.dump();
    EXPECT_GE(MetricOf(o, mode, "probes"), 10) << mode;  // fewer when they wait
  }
  EXPECT_EQ(LabProxies(), 0);
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
}

// practice=off: the success mode runs caller-runs as well: its probe is as slow and it rejects
// nothing, so the verdict is refuted.
TEST(Integration, N03WithoutPractice) {
  auto o = RunService("N03", {{"practice", std::string("off")}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "caller_runs"), 0) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "rejected_client_seen"), 0);
}

// N04: the transaction held across the slow call exhausts the pool (timeouts seen by the service
// and as 503s by the clients, idle-in-transaction connections seen by MariaDB); the call outside
// the transaction has none at the same load. The valuation rows are recounted here: one per ok
// answer (an answer that timed out on the client may have landed too).
TEST(Integration, N04ConnectionHeld) {
  auto o = RunService("N04", {}, true);
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  auto db = Mysql();
  ASSERT_NE(db, nullptr);
  for (const char* mode : {"failure", "success"}) {
    const std::string ns = DetailsOf(o, mode).value("run_ns", "");
    ASSERT_FALSE(ns.empty()) << mode << Describe(o);
    auto rows = db->Query("SELECT COUNT(*) FROM valuation WHERE run_ns = ?", {ns});
    ASSERT_TRUE(rows.ok()) << rows.error().message;
    const double recount = static_cast<double>(rows->Scalar());
    EXPECT_EQ(recount, MetricOf(o, mode, "rows")) << mode;
    EXPECT_GE(recount, MetricOf(o, mode, "ok")) << mode;
    EXPECT_LE(recount, MetricOf(o, mode, "ok") + MetricOf(o, mode, "client_timeouts")) << mode;
    EXPECT_EQ(MetricOf(o, mode, "toxic_fired"), 1) << mode;
    EXPECT_GE(MetricOf(o, mode, "ok_min_ms"), 0.9 * 400) << mode;
    EXPECT_EQ(MetricOf(o, mode, "pool_timeouts_mismatch"), 0) << mode << Describe(o);
    EXPECT_GT(MetricOf(o, mode, "service_connections_seen"), 0) << mode;
  }
  EXPECT_GT(MetricOf(o, "failure", "pool_timeouts"), 0);
  EXPECT_GT(MetricOf(o, "failure", "idle_in_tx_max"), 0);
  EXPECT_EQ(MetricOf(o, "success", "pool_timeouts"), 0);
  EXPECT_GT(MetricOf(o, "success", "ok_per_s"), MetricOf(o, "failure", "ok_per_s"));
  // Kept for the recount, so postflight saw the run's proxies; its cleanup removes them.
  CleanupKept("N04", o);
  EXPECT_EQ(LabProxies(), 0);
}

// practice=off: the success mode holds the transaction across the call too, and its pool times
// out: refuted.
TEST(Integration, N04WithoutPractice) {
  auto o = RunService("N04", {{"practice", std::string("off")}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "pool_timeouts"), 0) << Describe(o);
}

// N04 stopped while its clients load the service (the toxic on): it returns "cancelled" within
// seconds, and its service and downstream processes, its proxy (and the toxic with it) and its
// valuation rows are gone.
TEST(Integration, N04StopCleansUp) {
  std::stop_source stop;
  std::chrono::steady_clock::time_point stopped_at{};
  std::jthread stopper;
  // 1.5 s into the load: requests in flight, connections held in open transactions.
  auto on_step = [&](std::string_view step) {
    if (step.find("clients for") != std::string_view::npos && !stopper.joinable()) {
      stopper = std::jthread([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        stopped_at = std::chrono::steady_clock::now();
        stop.request_stop();
      });
    }
  };
  auto o = RunExperiment("N04", {}, {"failure"}, false, stop.get_token(), "", on_step);
  if (stopper.joinable()) stopper.join();
  ASSERT_TRUE(stop.stop_requested()) << "the load never started\n" << Describe(o);
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, std::chrono::seconds(20));
  EXPECT_EQ(o.modes["failure"].inconclusive.value_or(""), "cancelled") << Describe(o);
  int processes = 0;
  std::string run_ns;
  for (const auto& a : o.artifacts) {
    if (a.kind == runners::kArtifactRows) run_ns = a.name;
    if (a.kind != runners::kArtifactProcess) continue;
    ++processes;
    std::ifstream cmdline("/proc/" + a.name + "/cmdline");
    std::string text((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text.find("lab-role"), std::string::npos) << "process " << a.name << " still runs";
  }
  EXPECT_EQ(processes, 2);  // the downstream and the service
  ASSERT_FALSE(run_ns.empty());
  auto db = Mysql();
  ASSERT_NE(db, nullptr);
  auto rows = db->Query("SELECT COUNT(*) FROM valuation WHERE run_ns = ?", {run_ns});
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  EXPECT_EQ(rows->Scalar(), 0);
  EXPECT_EQ(LabProxies(), 0);
}

// N06: with the deadline ignored, the downstream (its own count) receives calls after every
// client has left; with it propagated, none. Its counts agree with the service's call count, and
// the clients really gave up.
TEST(Integration, N06MisalignedTimeouts) {
  auto o = RunService("N06", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  for (const char* mode : {"failure", "success"}) {
    const Json d = DetailsOf(o, mode);
    EXPECT_EQ(MetricOf(o, mode, "zombie_requests"),
              Num(d["downstream_stats"], "received_after_deadline"))
        << mode;
    EXPECT_EQ(MetricOf(o, mode, "calls_mismatch"), 0) << mode << Describe(o);
    EXPECT_GT(MetricOf(o, mode, "client_gave_up"), 0) << mode;
    EXPECT_EQ(MetricOf(o, mode, "toxic_fired"), 1) << mode;
    EXPECT_EQ(MetricOf(o, mode, "client_ok"), 0) << mode;
  }
  // Every attempt of a request (1 + 3 retries) may come after its deadline, no more.
  EXPECT_LE(MetricOf(o, "failure", "zombie_requests"), 4 * MetricOf(o, "failure", "requests"));
  EXPECT_GT(MetricOf(o, "failure", "zombie_s"), 0);
  EXPECT_EQ(MetricOf(o, "success", "zombie_requests"), 0);
  EXPECT_EQ(LabProxies(), 0);
  EXPECT_TRUE(PostflightClean(o)) << Describe(o);
}

// practice=off: the success mode ignores the deadline too, so the downstream sees zombie calls:
// refuted.
TEST(Integration, N06WithoutPractice) {
  auto o = RunService("N06", {{"practice", std::string("off")}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "zombie_requests"), 0) << Describe(o);
}

}  // namespace
}  // namespace lab::testing
