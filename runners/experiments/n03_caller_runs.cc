// N03: a caller-runs executor blocks its caller under overload; abort + a bulkhead per
// dependency keeps the service responsive.
// A real `lab-role valuation-service` (one acceptor thread that also answers GET /healthz, a
// bounded pool of `workers` threads and `queue` slots) calls a real `lab-role
// downstream-service` that takes `downstream_ms` per call; each request also does `work_ms` of
// its own work. `clients` threads in this process flood POST /value for `seconds` (20 ms
// between one client's requests) while a prober GETs /healthz every 20 ms (timeout 1 s), both
// from outside the service.
//   failure: --executor caller-runs: a full queue runs the request on the acceptor thread, so
//            nothing is accepted (health probes included) until it finishes.
//   success: --executor abort --bulkhead `bulkhead`: a full queue answers 503 at once, more than
//            `bulkhead` concurrent downstream calls answer 429 at once.
//            practice=off runs the success mode with caller-runs and no bulkhead.
// Where the numbers come from:
//   probe_p50_ms / probe_p99_ms / probe_timeouts / probe_failures: the prober (client_observed;
//     a probe that timed out counts as the timeout, a lower bound).
//   rejected_client_seen (503 + 429), ok, client_timeouts: what the flooding clients were
//     answered (client_observed).
//   caller_runs, acceptor_busy_ms, rejected_503/429: the service's /metrics (self_reported),
//     cross-checked: rejected_mismatch = |service's rejections - clients' rejections|.
//   downstream_received: the downstream's own /stats (a separate process, self_reported).
//   saturated (1/0): the pool was really full: caller_runs > 0 or rejections seen by clients;
//     else the mode is inconclusive (the flood did not overload anything).
#include <algorithm>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/experiments/service_load.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
constexpr auto kProbeInterval = 20ms;
constexpr auto kProbeTimeout = 1000ms;

class CallerRuns final : public ServiceExperiment {
 public:
  explicit CallerRuns(StackConfig config) : ServiceExperiment(std::move(config)) {}
  std::string_view ExperimentId() const override { return "N03"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const int clients = static_cast<int>(domain::GetInt(ctx.params, "clients"));
    const std::int64_t seconds = domain::GetInt(ctx.params, "seconds");
    const std::int64_t workers = domain::GetInt(ctx.params, "workers");
    const std::int64_t queue = domain::GetInt(ctx.params, "queue");
    const std::int64_t work_ms = domain::GetInt(ctx.params, "work_ms");
    const std::int64_t downstream_ms = domain::GetInt(ctx.params, "downstream_ms");
    const std::int64_t bulkhead = domain::GetInt(ctx.params, "bulkhead");
    const bool anti = mode == "failure" || domain::GetString(ctx.params, "practice") == "off";

    auto downstream = StartService(ctx, mode, result, "downstream-service",
                                   {"--delay-ms", std::to_string(downstream_ms)}, "downstream");
    if (!downstream) return Inconclusive(std::move(result), downstream.error().message);
    std::vector<std::string> args = {"--workers",
                                     std::to_string(workers),
                                     "--queue",
                                     std::to_string(queue),
                                     "--work-ms",
                                     std::to_string(work_ms),
                                     "--downstream",
                                     downstream->BaseUrl(),
                                     "--downstream-timeout-ms",
                                     std::to_string(downstream_ms + 2000),
                                     "--db",
                                     "none"};
    if (anti) {
      args.insert(args.end(), {"--executor", "caller-runs", "--bulkhead", "0"});
    } else {
      args.insert(args.end(), {"--executor", "abort", "--bulkhead", std::to_string(bulkhead)});
    }
    auto service = StartService(ctx, mode, result, "valuation-service", args, "service");
    if (!service) return Inconclusive(std::move(result), service.error().message);
    Step(ctx, mode + ": " + std::to_string(clients) + " clients flood POST /value for " +
                  std::to_string(seconds) + " s (" +
                  (anti ? "caller-runs" : "abort + bulkhead " + std::to_string(bulkhead)) +
                  ", workers " + std::to_string(workers) + ", queue " + std::to_string(queue) +
                  "); health probe every 20 ms");
    Progress(ctx, 20);

    Prober prober(service->BaseUrl() + "/healthz", kProbeInterval, kProbeTimeout);
    prober.Start();
    LoadSpec spec;
    spec.base_url = service->BaseUrl();
    spec.clients = clients;
    spec.duration = std::chrono::seconds(seconds);
    spec.timeout = 5000ms;
    spec.pause = 20ms;  // a client answered at once does not spin on 2 cores
    const LoadTotals load = RunLoad(spec, ctx.stop);
    prober.Stop();
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");

    auto metrics = GetJson(*service, "/metrics");
    auto stats = GetJson(*downstream, "/stats");
    StopService(ctx, *service, result);
    StopService(ctx, *downstream, result);
    if (!metrics) return Inconclusive(std::move(result), metrics.error().message);
    if (!stats) return Inconclusive(std::move(result), stats.error().message);
    if (prober.probes() == 0) return Inconclusive(std::move(result), "no health probe completed");
    if (load.requests == 0) return Inconclusive(std::move(result), "no request was sent");
    if (load.failures > 0 && load.ok == 0) {
      return Inconclusive(
          std::move(result),
          "clients could not reach the service: " +
              (load.sample_errors.empty() ? std::string("?") : load.sample_errors.front()));
    }
    const double caller_runs = JsonNumber(*metrics, "caller_runs");
    const double busy_ms = JsonNumber(*metrics, "acceptor_busy_ms");
    const double r503 = JsonNumber(*metrics, "rejected_503");
    const double r429 = JsonNumber(*metrics, "rejected_429");
    const double served = JsonNumber(*metrics, "requests");
    const double received = JsonNumber(*stats, "received");
    if (caller_runs < 0 || busy_ms < 0 || r503 < 0 || r429 < 0 || received < 0) {
      return Inconclusive(std::move(result),
                          "the service's /metrics or the downstream's /stats lack a counter: " +
                              metrics->dump() + " " + stats->dump());
    }
    const std::int64_t rejected_seen = load.status_503 + load.status_429;
    const bool saturated = caller_runs > 0 || rejected_seen > 0;

    auto& m = result.metrics;
    m["probe_p50_ms"] = Percentile(prober.latency_ms(), 0.50);
    m["probe_p99_ms"] = Percentile(prober.latency_ms(), 0.99);
    m["probe_max_ms"] = Percentile(prober.latency_ms(), 1.0);
    m["probes"] = static_cast<double>(prober.probes());
    m["probe_timeouts"] = static_cast<double>(prober.timeouts());
    m["probe_failures"] = static_cast<double>(prober.failures());
    m["requests"] = static_cast<double>(load.requests);
    m["ok"] = static_cast<double>(load.ok);
    m["rejected_client_seen"] = static_cast<double>(rejected_seen);
    m["rejected_503_client_seen"] = static_cast<double>(load.status_503);
    m["rejected_429_client_seen"] = static_cast<double>(load.status_429);
    m["client_timeouts"] = static_cast<double>(load.timeouts);
    m["client_errors"] = static_cast<double>(load.failures + load.status_other);
    m["ok_p99_ms"] = Percentile(load.ok_ms, 0.99);
    m["requests_per_s"] = load.seconds > 0 ? static_cast<double>(load.requests) / load.seconds : 0;
    m["caller_runs"] = caller_runs;
    m["acceptor_busy_ms"] = busy_ms;
    m["rejected_503"] = r503;
    m["rejected_429"] = r429;
    m["rejected_mismatch"] = std::abs(r503 + r429 - static_cast<double>(rejected_seen));
    m["service_requests"] = served;
    m["downstream_received"] = received;
    m["saturated"] = saturated ? 1 : 0;
    result.details_json =
        nlohmann::json(
            {{"executor", anti ? "caller-runs" : "abort"},
             {"bulkhead", anti ? 0 : bulkhead},
             {"service_metrics", *metrics},
             {"downstream_stats", *stats},
             {"client_sample_errors", load.sample_errors},
             {"provenance",
              {{"probe_p50_ms", "client_observed"},
               {"probe_p99_ms", "client_observed"},
               {"probe_max_ms", "client_observed"},
               {"probes", "client_observed"},
               {"probe_timeouts", "client_observed"},
               {"probe_failures", "client_observed"},
               {"requests", "client_observed"},
               {"ok", "client_observed"},
               {"rejected_client_seen", "client_observed"},
               {"rejected_503_client_seen", "client_observed"},
               {"rejected_429_client_seen", "client_observed"},
               {"client_timeouts", "client_observed"},
               {"client_errors", "client_observed"},
               {"ok_p99_ms", "client_observed"},
               {"requests_per_s", "client_observed"},
               {"caller_runs", "self_reported"},
               {"acceptor_busy_ms", "self_reported"},
               {"rejected_503", "self_reported"},
               {"rejected_429", "self_reported"},
               {"rejected_mismatch", "self_reported vs client_observed"},
               {"service_requests", "self_reported"},
               {"downstream_received", "self_reported (the downstream process)"},
               {"saturated", "self_reported caller_runs or client_observed rejections"}}},
             {"sources",
              {{"probe_p99_ms",
                "GET /healthz every 20 ms from the runner (1 s timeout; a timed-out probe "
                "counts as 1000 ms), nearest-rank p99 over the flood"},
               {"rejected_client_seen", "HTTP 503 + 429 answers the flooding clients received"},
               {"caller_runs", "the service's /metrics: requests run on the acceptor thread"},
               {"acceptor_busy_ms",
                "the service's /metrics: time the acceptor spent running requests"}}}})
            .dump();
    Step(ctx, mode + ": probe p50 " + Fixed(m["probe_p50_ms"]) + " ms, p99 " +
                  Fixed(m["probe_p99_ms"]) + " ms, timeouts " + std::to_string(prober.timeouts()) +
                  "/" + std::to_string(prober.probes()) + "; clients ok " +
                  std::to_string(load.ok) + ", 503 " + std::to_string(load.status_503) + ", 429 " +
                  std::to_string(load.status_429) + ", timed out " + std::to_string(load.timeouts) +
                  "; service caller_runs " +
                  std::to_string(static_cast<std::int64_t>(caller_runs)) + ", acceptor busy " +
                  std::to_string(static_cast<std::int64_t>(busy_ms)) + " ms");
    if (!saturated) {
      return Inconclusive(std::move(result),
                          "the flood did not saturate the pool: no caller-runs and no rejection "
                          "(raise clients or work_ms)");
    }
    Progress(ctx, 100);
    return result;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeCallerRuns(const StackConfig& config) {
  return std::make_unique<CallerRuns>(config);
}

}  // namespace lab::runners
