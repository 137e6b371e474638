// N06: misaligned timeouts leave zombie work after the client gave up; a propagated deadline
// stops it.
// A real `lab-role valuation-service` calls a real `lab-role downstream-service` through a
// Toxiproxy proxy with a latency toxic (`latency_ms` on the answers), so every call outlasts the
// service's per-attempt timeout and the service retries: `retries` retries of
// `attempt_timeout_ms` each, `backoff_ms` doubling between them, far longer than the client waits.
// `clients` threads in this process send `requests` POST /value, each with X-Deadline-Ms = its
// start + `deadline_ms`, and give up after `deadline_ms` (their own timeout).
//   failure: --deadline ignore: the service neither checks nor passes the deadline; its retries
//            go on after every client has left.
//   success: --deadline propagate: no attempt starts past the deadline, each attempt's timeout
//            is capped by the time left, 504 once past it.
//            practice=off runs the success mode with --deadline ignore.
// The service always forwards the client's deadline as X-Client-Deadline-Ms (an observation
// header it never acts on), so the downstream, a separate process, counts the work it was asked
// to do after the client had left:
//   zombie_requests (received_after_deadline: calls that arrived after the client's deadline) and
//   zombie_s (zombie_ms_total / 1000: the sum of max(0, finish - deadline)), read from the
//   downstream's /stats once the service has nothing in flight and the downstream's count is
//   still (self_reported by the downstream; neither the client nor the service counts them).
//   client_gave_up (client timeouts + 504 answers) is what the clients saw (client_observed): a
//   mode where no client gave up is inconclusive. toxic_fired: a call through the proxy by the
//   runner took >= latency_ms (client_observed): else inconclusive.
//   downstream_calls / downstream_timeouts / timeouts_504 are the service's /metrics
//   (self_reported), cross-checked with the downstream's received count (calls_mismatch).
#include <algorithm>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/experiments/service_load.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;

class MisalignedTimeouts final : public ServiceExperiment {
 public:
  explicit MisalignedTimeouts(StackConfig config) : ServiceExperiment(std::move(config)) {}
  std::string_view ExperimentId() const override { return "N06"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const int clients = static_cast<int>(domain::GetInt(ctx.params, "clients"));
    const std::int64_t requests = domain::GetInt(ctx.params, "requests");
    const std::int64_t deadline_ms = domain::GetInt(ctx.params, "deadline_ms");
    const std::int64_t latency_ms = domain::GetInt(ctx.params, "latency_ms");
    const std::int64_t retries = domain::GetInt(ctx.params, "retries");
    const std::int64_t attempt_ms = domain::GetInt(ctx.params, "attempt_timeout_ms");
    const std::int64_t backoff_ms = domain::GetInt(ctx.params, "backoff_ms");
    const bool anti = mode == "failure" || domain::GetString(ctx.params, "practice") == "off";
    // The service's backoff doubles per retry: backoff, 2 x backoff, 4 x backoff...
    const std::int64_t chain_ms =
        (retries + 1) * attempt_ms + backoff_ms * ((std::int64_t{1} << retries) - 1);
    if (chain_ms <= deadline_ms || latency_ms <= attempt_ms) {
      return Inconclusive(std::move(result),
                          "parameters: the retry chain (" + std::to_string(chain_ms) +
                              " ms) must outlast deadline_ms and latency_ms must exceed "
                              "attempt_timeout_ms, or nothing is left to continue");
    }

    auto downstream = StartService(ctx, mode, result, "downstream-service", {}, "downstream");
    if (!downstream) return Inconclusive(std::move(result), downstream.error().message);
    auto proxy = ProxyToLoopback(ctx, mode, result, "downstream", downstream->port);
    if (!proxy) return Inconclusive(std::move(result), "toxiproxy: " + proxy.error().message);
    const std::string proxy_url = "http://127.0.0.1:" + std::to_string(*proxy);
    if (auto s = AddToxic(ctx, mode, "downstream", "latency", "downstream",
                          {{"latency", latency_ms}, {"jitter", 0}});
        !s) {
      return Inconclusive(std::move(result), "toxiproxy: " + s.error().message);
    }
    // Enough workers and queue that nothing is rejected: the retries themselves are the load.
    const std::int64_t workers = std::max<std::int64_t>(8, 2 * clients);
    auto service = StartService(
        ctx, mode, result, "valuation-service",
        {"--workers", std::to_string(workers), "--queue", "1024", "--executor", "abort", "--db",
         "none", "--downstream", proxy_url, "--downstream-timeout-ms", std::to_string(attempt_ms),
         "--retries", std::to_string(retries), "--retry-backoff-ms", std::to_string(backoff_ms),
         "--deadline", anti ? "ignore" : "propagate"},
        "service");
    if (!service) return Inconclusive(std::move(result), service.error().message);
    Step(ctx, mode + ": " + std::to_string(requests) + " requests from " + std::to_string(clients) +
                  " clients, each gives up after " + std::to_string(deadline_ms) +
                  " ms; the service retries " + std::to_string(retries) + " x " +
                  std::to_string(attempt_ms) + " ms (" +
                  (anti ? "deadline ignored" : "deadline propagated") + "), dependency +" +
                  std::to_string(latency_ms) + " ms (toxic)");
    Progress(ctx, 20);

    LoadSpec spec;
    spec.base_url = service->BaseUrl();
    spec.clients = clients;
    spec.max_requests = requests;
    spec.duration = std::chrono::milliseconds(requests * (deadline_ms + 500) + 5000);
    spec.timeout = std::chrono::milliseconds(deadline_ms);
    spec.deadline_ms = deadline_ms;
    const LoadTotals load = RunLoad(spec, ctx.stop);
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");

    // The zombie work ends when the service has nothing in flight and the downstream has seen
    // its last call (bounded by the whole chain of every request, plus a margin).
    nlohmann::json metrics;
    nlohmann::json stats;
    double last_received = -1;
    auto still_since = SteadyClock::now();
    const auto settle = std::chrono::milliseconds(latency_ms + 300);
    const bool drained = WaitUntil(
        [&] {
          auto m = GetJson(*service, "/metrics");
          auto s = GetJson(*downstream, "/stats");
          if (!m || !s) return false;
          metrics = *m;
          stats = *s;
          const double received = JsonNumber(stats, "received");
          if (received != last_received) {
            last_received = received;
            still_since = SteadyClock::now();
          }
          return JsonNumber(metrics, "in_flight") == 0 &&
                 SteadyClock::now() - still_since >= settle;
        },
        std::chrono::milliseconds(chain_ms * requests / workers + chain_ms + 10000), ctx.stop,
        100ms);
    // Is the toxic really slowing the dependency? One call of the runner's own through the proxy.
    const ServiceReply direct =
        HttpCall("GET", proxy_url + "/ping", std::chrono::milliseconds(latency_ms + 3000));
    (void)RemoveToxic(ctx, mode, "downstream", "latency");
    StopService(ctx, *service, result);
    StopService(ctx, *downstream, result);
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    if (!drained) {
      return Inconclusive(std::move(result),
                          "the service did not drain (in_flight > 0 or the downstream still "
                          "receiving) within the bound; counts would be partial");
    }
    const double received = JsonNumber(stats, "received");
    const double with_deadline = JsonNumber(stats, "with_deadline");
    const double after_deadline = JsonNumber(stats, "received_after_deadline");
    const double zombie_ms = JsonNumber(stats, "zombie_ms_total");
    const double calls = JsonNumber(metrics, "downstream_calls");
    const double dtimeouts = JsonNumber(metrics, "downstream_timeouts");
    const double t504 = JsonNumber(metrics, "timeouts_504");
    if (received < 0 || with_deadline < 0 || after_deadline < 0 || zombie_ms < 0 || calls < 0 ||
        dtimeouts < 0 || t504 < 0) {
      return Inconclusive(std::move(result),
                          "the downstream's /stats or the service's /metrics lack a counter: " +
                              stats.dump() + " " + metrics.dump());
    }
    const std::int64_t gave_up = load.timeouts + load.status_504;
    auto& m = result.metrics;
    m["requests"] = static_cast<double>(load.requests);
    m["client_gave_up"] = static_cast<double>(gave_up);
    m["client_timeouts"] = static_cast<double>(load.timeouts);
    m["client_504"] = static_cast<double>(load.status_504);
    m["client_ok"] = static_cast<double>(load.ok);
    m["client_errors"] =
        static_cast<double>(load.failures + load.status_other + load.status_503 + load.status_429);
    m["zombie_requests"] = after_deadline;
    m["zombie_s"] = zombie_ms / 1000.0;
    m["zombie_ms_per_request"] =
        load.requests > 0 ? zombie_ms / static_cast<double>(load.requests) : 0;
    m["downstream_received"] = received;
    m["downstream_with_deadline"] = with_deadline;
    m["downstream_calls"] = calls;
    m["downstream_timeouts"] = dtimeouts;
    m["timeouts_504"] = t504;
    m["calls_mismatch"] = std::abs(calls - received);
    m["direct_call_ms"] = direct.ms;
    m["toxic_fired"] = direct.ms >= 0.9 * static_cast<double>(latency_ms) ? 1 : 0;
    m["retry_chain_ms"] = static_cast<double>(chain_ms);
    result.details_json =
        nlohmann::json(
            {{"deadline", anti ? "ignore" : "propagate"},
             {"service_metrics", metrics},
             {"downstream_stats", stats},
             {"client_sample_errors", load.sample_errors},
             {"provenance",
              {{"requests", "client_observed"},
               {"client_gave_up", "client_observed"},
               {"client_timeouts", "client_observed"},
               {"client_504", "client_observed"},
               {"client_ok", "client_observed"},
               {"client_errors", "client_observed"},
               {"zombie_requests", "self_reported (the downstream process)"},
               {"zombie_s", "self_reported (the downstream process)"},
               {"zombie_ms_per_request", "self_reported (the downstream process) / requests"},
               {"downstream_received", "self_reported (the downstream process)"},
               {"downstream_with_deadline", "self_reported (the downstream process)"},
               {"downstream_calls", "self_reported (the service)"},
               {"downstream_timeouts", "self_reported (the service)"},
               {"timeouts_504", "self_reported (the service)"},
               {"calls_mismatch", "service vs downstream"},
               {"direct_call_ms", "client_observed"},
               {"toxic_fired", "client_observed"},
               {"retry_chain_ms",
                "by_design: (retries + 1) x attempt_timeout_ms + retries x "
                "backoff_ms"}}},
             {"sources",
              {{"zombie_requests",
                "the downstream's /stats received_after_deadline: calls that arrived after the "
                "client's deadline (X-Client-Deadline-Ms)"},
               {"zombie_s", "the downstream's /stats zombie_ms_total / 1000"},
               {"client_gave_up", "client-side timeouts (curl, after deadline_ms) + 504 answers"},
               {"toxic_fired",
                "the runner's own GET through the proxy took >= 0.9 x latency_ms"}}}})
            .dump();
    Step(ctx, mode + ": clients gave up " + std::to_string(gave_up) + "/" +
                  std::to_string(load.requests) + "; downstream received " +
                  std::to_string(static_cast<std::int64_t>(received)) + " calls, " +
                  std::to_string(static_cast<std::int64_t>(after_deadline)) +
                  " after the client's deadline, zombie work " + Fixed(zombie_ms / 1000) +
                  " s; direct call through the proxy " +
                  std::to_string(static_cast<std::int64_t>(direct.ms)) + " ms");
    if (direct.status == 0 || m["toxic_fired"] == 0) {
      return Inconclusive(std::move(result),
                          "the latency toxic did not fire: a call through the proxy took " +
                              std::to_string(static_cast<std::int64_t>(direct.ms)) + " ms" +
                              (direct.status == 0 ? " (" + direct.error + ")" : ""));
    }
    if (gave_up == 0) {
      return Inconclusive(std::move(result), "no client gave up: nothing to leave zombie work");
    }
    Progress(ctx, 100);
    return result;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeMisalignedTimeouts(const StackConfig& config) {
  return std::make_unique<MisalignedTimeouts>(config);
}

}  // namespace lab::runners
