// The client side of the resilience scenarios that run against a real HTTP service under test
// (N03, N04, N06): a load generator and a health prober that live in the experiment's process,
// outside the service, so latency, rejections and timeouts are measured where a caller sees
// them; and the ServiceExperiment base that starts `lab-role valuation-service` /
// `downstream-service`, learns their ports from their logs and reads their JSON counters.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "runners/experiments/experiment_base.h"

namespace lab::runners {

// One HTTP exchange as the caller saw it. status 0: no answer (timed_out, or error says why).
struct ServiceReply {
  long status = 0;
  bool timed_out = false;
  std::string error;  // libcurl's message when there was no answer
  double ms = 0;      // wall time of the exchange, measured by the caller
  std::string body;
};

// A blocking request with a total timeout (libcurl, one easy handle per request, no reuse:
// the service answers one request per connection). `headers` as "Name: value". A `stop`
// requested while it waits aborts it (error "cancelled").
ServiceReply HttpCall(const std::string& method, const std::string& url,
                      std::chrono::milliseconds timeout,
                      const std::vector<std::string>& headers = {},
                      const std::stop_token* stop = nullptr);

// Epoch milliseconds (the X-Deadline-Ms header's clock).
std::int64_t EpochMillis();

// `value` with `digits` decimals, for step messages.
std::string Fixed(double value, int digits = 1);

struct LoadSpec {
  std::string base_url;  // http://127.0.0.1:PORT
  int clients = 8;       // concurrent client threads, each one request at a time
  std::chrono::milliseconds duration{3000};  // stop starting requests after this
  std::int64_t max_requests = 0;             // 0: as many as fit in `duration`
  std::chrono::milliseconds timeout{5000};   // the client's own patience per request
  // > 0: each request carries X-Deadline-Ms = its start + deadline_ms (epoch ms).
  std::int64_t deadline_ms = 0;
  std::chrono::milliseconds pause{0};  // between one client's requests
};

// What the clients saw, counted by the clients (the caller's view of the service).
struct LoadTotals {
  std::int64_t requests = 0;
  std::int64_t ok = 0;  // 2xx
  std::int64_t status_503 = 0;
  std::int64_t status_429 = 0;
  std::int64_t status_504 = 0;
  std::int64_t status_other = 0;
  std::int64_t timeouts = 0;  // the client gave up (its timeout)
  std::int64_t failures = 0;  // no answer for another reason (refused, reset)
  std::vector<double> ok_ms;  // latency of the 2xx answers
  std::vector<double> all_ms;
  std::vector<std::string> sample_errors;  // the first few transport errors
  double seconds = 0;                      // wall time of the load
};

// Runs the load to its end (duration / max_requests / stop), blocking.
LoadTotals RunLoad(const LoadSpec& spec, const std::stop_token& stop);

// GETs `url` every `interval` with `timeout` from its own thread. A probe that timed out counts
// its latency as the timeout (a lower bound: the caller waited at least that long).
class Prober {
 public:
  Prober(std::string url, std::chrono::milliseconds interval, std::chrono::milliseconds timeout)
      : url_(std::move(url)), interval_(interval), timeout_(timeout) {}
  ~Prober() { Stop(); }
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  void Start();
  void Stop();
  // Read after Stop().
  std::int64_t probes() const { return static_cast<std::int64_t>(latency_ms_.size()); }
  std::int64_t ok() const { return ok_; }
  std::int64_t timeouts() const { return timeouts_; }
  std::int64_t failures() const { return failures_; }  // not 200 and not a timeout
  const std::vector<double>& latency_ms() const { return latency_ms_; }

 private:
  void Run(const std::stop_token& stop);
  std::string url_;
  std::chrono::milliseconds interval_;
  std::chrono::milliseconds timeout_;
  std::int64_t ok_ = 0;             // written by the thread, read after Stop()
  std::int64_t timeouts_ = 0;       // written by the thread, read after Stop()
  std::int64_t failures_ = 0;       // written by the thread, read after Stop()
  std::vector<double> latency_ms_;  // written by the thread, read after Stop()
  std::jthread thread_;
};

// A role process that serves HTTP on 127.0.0.1:port.
struct ServiceProcess {
  ChildProcess process;
  int port = 0;
  std::string label;
  std::string BaseUrl() const { return "http://127.0.0.1:" + std::to_string(port); }
};

// A JSON counter of a service (`/metrics`, `/stats`), or -1 when absent or not a number.
double JsonNumber(const nlohmann::json& j, const std::string& key);

class ServiceExperiment : public ExperimentBase {
 protected:
  explicit ServiceExperiment(StackConfig config) : ExperimentBase(std::move(config)) {}

  // Starts `lab-role <role> --ns NS --mode MODE --port 0 <args>` and waits (bounded) for its
  // reported `listening` value (the port). The process is recorded for cleanup by StartRole.
  domain::Result<ServiceProcess> StartService(const domain::RunContext& ctx,
                                              const std::string& mode, domain::ModeResult& result,
                                              const std::string& role,
                                              const std::vector<std::string>& args,
                                              const std::string& label) const;
  // GET base/path as JSON (bounded); an error when it does not answer 200 with an object.
  static domain::Result<nlohmann::json> GetJson(const ServiceProcess& service,
                                                const std::string& path);
  // SIGTERM, bounded wait for its final reported values (killed after the wait).
  RoleOutcome StopService(const domain::RunContext& ctx, ServiceProcess& service,
                          domain::ModeResult& result) const;
};

}  // namespace lab::runners
