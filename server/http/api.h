// The API: every resource of API.md as a function from HttpRequest to HttpResponse. It never
// sees a socket; http_server.cc carries requests to it.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "domain/ports.h"
#include "server/http/auth.h"
#include "server/http/host_allowlist.h"
#include "server/http/http_types.h"
#include "server/http/rate_limiter.h"
#include "server/metrics/lab_metrics.h"
#include "server/runs/cleanup_retrier.h"
#include "server/runs/readiness_monitor.h"
#include "server/runs/run_service.h"
#include "server/store/run_store.h"

namespace lab::server {

struct ApiOptions {
  std::string web_root;          // the static UI
  std::string openapi_json;      // served at /openapi.json
  bool allow_anonymous = false;  // loopback and no tokens
  int retry_after_seconds = 5;   // for 503 queue full
  std::chrono::milliseconds sse_poll{200};
  int max_event_streams = 64;  // each open stream polls the store; beyond this, 503
  std::string listen_host = "127.0.0.1";
  std::vector<std::string> allowed_hosts;  // beyond loopback and listen_host (HostAllowlist)
};

class Api {
 public:
  Api(RunStore& store, RunService& runs, LabMetrics& metrics, ReadinessMonitor* readiness,
      StackHealth& health, TokenTable tokens, RateLimiter& limiter, std::set<std::string> available,
      ApiOptions options, CleanupRetrier* cleanups = nullptr);

  HttpResponse Handle(const HttpRequest& request);

 private:
  struct Authorised {
    Principal principal;
    std::optional<HttpResponse> refusal;
  };

  // One route: method, path shape ("*" stands for an id), its metrics label, who may call it
  // (nullopt: anyone, without rate limit or token) and its handler. api_routes.cc lists them.
  struct Call {
    const HttpRequest& req;
    const std::vector<std::string>& parts;
    const Principal& who;
  };
  struct RouteSpec {
    const char* method;
    std::vector<const char*> shape;
    const char* name;
    std::optional<Role> role;
    HttpResponse (*handle)(Api&, const Call&);
  };
  static const std::vector<RouteSpec>& Routes();
  // The methods the routes at this path answer, for a 405's Allow (HEAD left implicit).
  static std::string AllowedAt(const std::vector<std::string>& parts);

  HttpResponse Route(const HttpRequest& request, std::string& route);
  std::optional<HttpResponse> RateLimit(const HttpRequest& request);
  Authorised Authorise(const HttpRequest& request, Role needed);
  std::optional<HttpResponse> CheckSameOrigin(const HttpRequest& request);
  std::optional<HttpResponse> CheckHost(const HttpRequest& request);
  void AuditRefusal(const HttpRequest& request, const std::string& why);

  HttpResponse Health();
  HttpResponse Ready();
  HttpResponse Metrics();
  HttpResponse ListExperiments();
  HttpResponse GetExperiment(const std::string& id);
  HttpResponse CreateRun(const HttpRequest& request, const std::string& experiment,
                         const Principal& who);
  HttpResponse AdmissionResponse(const Admission& admission);
  HttpResponse ListRuns(const HttpRequest& request);
  HttpResponse GetRun(const std::string& id);
  HttpResponse RunEvents(const HttpRequest& request, const std::string& id);
  HttpResponse RunReport(const HttpRequest& request, const std::string& id);
  HttpResponse CancelRun(const HttpRequest& request, const std::string& id, const Principal& who);
  HttpResponse RemoveArtifacts(const HttpRequest& request, const std::string& id,
                               const Principal& who);
  HttpResponse SetHalt(const HttpRequest& request, const Principal& who);
  HttpResponse LiftHalt(const HttpRequest& request, const Principal& who);
  HttpResponse HaltStatus();
  HttpResponse ListAudit(const HttpRequest& request);
  HttpResponse VerifyAudit();

  RunStore& store_;
  RunService& runs_;
  LabMetrics& metrics_;
  ReadinessMonitor* readiness_;  // nullptr: no stack parts in /readyz
  StackHealth& health_;
  CleanupRetrier* cleanups_;  // nullptr: cleanups are queued but nobody retries them here
  TokenTable tokens_;
  RateLimiter& limiter_;
  std::set<std::string> available_;
  ApiOptions options_;
  HostAllowlist hosts_;
  std::shared_ptr<const std::string> openapi_body_;  // options_.openapi_json, shared
  // Event streams open now; shared with each stream, which counts itself out when destroyed.
  std::shared_ptr<std::atomic<int>> open_streams_ = std::make_shared<std::atomic<int>>(0);

  // Finished runs never change: their JSON is kept to answer GET /runs/{id} without the store.
  std::mutex cache_mu_;
  // Shared with the responses that send them, never modified once built.
  std::map<std::string, std::shared_ptr<const std::string>> finished_run_json_;  // cache_mu_
  // A finished run's cleanup can still change (retried, DELETE /runs/{id}/artifacts): the cache
  // holds bodies built at this store cleanup_generation() and is emptied when it moves.
  std::uint64_t cache_cleanup_generation_ = 0;  // guarded by cache_mu_

  // The catalog changes only when a run finishes (its last verdict): cached per generation.
  std::mutex catalog_mu_;
  std::uint64_t catalog_generation_ = ~std::uint64_t{0};  // guarded by catalog_mu_
  // Shared, never modified once built: the lock only guards the pointer, and responses send
  // the body from it (a 27 KB copy per request page-faulted in freshly trimmed heap pages).
  std::shared_ptr<const std::string> catalog_body_;  // guarded by catalog_mu_

  std::mutex ready_mu_;
  std::chrono::steady_clock::time_point ready_at_{};  // guarded by ready_mu_
  std::string ready_body_;                            // guarded by ready_mu_
  int ready_status_ = 0;                              // guarded by ready_mu_
  std::optional<CleanupCounts> ready_cleanups_;       // the counts ready_body_ shows; ready_mu_
};

}  // namespace lab::server
