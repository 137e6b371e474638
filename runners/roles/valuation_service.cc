// lab-role valuation-service: the HTTP service under test of the resilience scenarios (N03, N04,
// N06, N21), the seed's valuation engine reduced to what they exercise. Each part can be switched
// per run between the anti-pattern and the practice:
//   - one ACCEPTOR thread accepts connections and reads each request (one per connection,
//     `Connection: close`); it answers GET /healthz and GET /metrics itself, and submits
//     POST /value?id=N to a BoundedExecutor (--workers, --queue; --executor abort|caller-runs);
//   - --bulkhead N: at most N concurrent downstream calls, over it 429 at once;
//   - --work-ms: the handler's own work; --db none|tx-around-call|call-outside-tx with a pool of
//     --pool MariaDB connections (--pool-timeout-ms; a wait over it is 503 + pool_timeouts), a
//     `valuation` row per answered request (run_ns = "<ns>_<mode>");
//   - --downstream URL: the dependency (through a Toxiproxy proxy in the experiments), each
//     attempt bounded by --downstream-timeout-ms, --retries with --retry-backoff-ms doubling;
//   - --deadline propagate|ignore: X-Deadline-Ms (epoch ms) caps every attempt and is passed on,
//     or is neither checked nor passed. The client's deadline is always forwarded as
//     X-Client-Deadline-Ms, an observation header the downstream counts zombie work with;
//   - --breaker off|on (runners/service/circuit_breaker.h): open -> 503 `X-Breaker: open` at once;
//   - --fallback none|last-good: a call short-circuited or failed answers 200 with the last value
//     the dependency gave for that id (header `X-Fallback: last-good`, counted as fallbacks), when
//     there is one; otherwise the status below.
//     A HALF_OPEN trial call is given at most --breaker-slow-ms: slower would count as slow
//     anyway, so waiting longer only keeps its caller waiting.
// Statuses: 200 valued; 503 queue full / pool timeout / breaker open; 429 bulkhead full; 504 the
// client's deadline passed (propagate); 502 the dependency failed or timed out on every attempt;
// 500 a database error.
// Reports `listening` (the port) once accepting; SIGTERM: stop accepting, finish queued work,
// report the counters (Emit), exit 0.
#include <curl/curl.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runners/common/c_handle.h"
#include "runners/common/util.h"
#include "runners/mysql/mysql_client.h"
#include "runners/roles/role_common.h"
#include "runners/service/bounded_executor.h"
#include "runners/service/circuit_breaker.h"
#include "runners/service/deadline.h"
#include "runners/service/http_wire.h"
#include "runners/service/resource_pool.h"

namespace lab::runners::roles {
namespace {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;
namespace svc = lab::runners::service;

enum class DbStep { kNone, kTxAroundCall, kCallOutsideTx };

struct Settings {
  std::string run_ns;
  int port = 0;
  int workers = 4;
  int queue = 16;
  svc::RejectionPolicy rejection = svc::RejectionPolicy::kAbort;
  int bulkhead = 0;
  Ms work{0};
  DbStep db = DbStep::kNone;
  int pool = 4;
  Ms pool_timeout{1000};
  std::string downstream;
  Ms downstream_timeout{1000};
  int retries = 0;
  Ms retry_backoff{50};
  bool propagate = true;
  bool breaker = false;
  svc::BreakerOptions breaker_options;
  bool fallback = false;
};

Settings Parse(const RoleArgs& args) {
  Settings s;
  s.run_ns = args.Get("ns", "ns") + "_" + args.Get("mode", "check");
  s.port = static_cast<int>(args.Int("port", 0));
  s.workers = static_cast<int>(args.Int("workers", 4));
  s.queue = static_cast<int>(args.Int("queue", 16));
  s.rejection = args.Get("executor", "abort") == "caller-runs" ? svc::RejectionPolicy::kCallerRuns
                                                               : svc::RejectionPolicy::kAbort;
  s.bulkhead = static_cast<int>(args.Int("bulkhead", 0));
  s.work = Ms(args.Int("work-ms", 0));
  const std::string db = args.Get("db", "none");
  s.db = db == "tx-around-call"    ? DbStep::kTxAroundCall
         : db == "call-outside-tx" ? DbStep::kCallOutsideTx
                                   : DbStep::kNone;
  s.pool = static_cast<int>(args.Int("pool", 4));
  s.pool_timeout = Ms(args.Int("pool-timeout-ms", 1000));
  s.downstream = args.Get("downstream", "");
  s.downstream_timeout = Ms(args.Int("downstream-timeout-ms", 1000));
  s.retries = static_cast<int>(args.Int("retries", 0));
  s.retry_backoff = Ms(args.Int("retry-backoff-ms", 50));
  s.propagate = args.Get("deadline", "propagate") != "ignore";
  s.breaker = args.Get("breaker", "off") == "on";
  s.fallback = args.Get("fallback", "none") == "last-good";
  auto& b = s.breaker_options;
  b.window = static_cast<int>(args.Int("breaker-window", 20));
  b.min_calls = static_cast<int>(args.Int("breaker-min-calls", std::min(10, b.window)));
  b.failure_rate_pct = static_cast<double>(args.Int("breaker-failure-rate", 50));
  b.slow_call = Ms(args.Int("breaker-slow-ms", 200));
  b.slow_rate_pct = static_cast<double>(args.Int("breaker-slow-rate", 50));
  b.open_wait = Ms(args.Int("breaker-open-ms", 2000));
  b.probes = static_cast<int>(args.Int("breaker-probes", 3));
  return s;
}

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

struct Reply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

Reply Json(int status, const nlohmann::json& j,
           std::vector<std::pair<std::string, std::string>> headers = {}) {
  return {status, j.dump(), std::move(headers)};
}

struct CallOutcome {
  bool ok = false;
  bool deadline_passed = false;
  bool short_circuited = false;
  bool bulkhead_full = false;
  int attempts = 0;
  std::int64_t value = 0;
  std::string error;
};

class ValuationService {
 public:
  explicit ValuationService(const RoleArgs& args)
      : s_(Parse(args)),
        executor_(s_.workers, s_.queue, s_.rejection, clock_),
        bulkhead_(s_.bulkhead),
        mysql_(MysqlFromArgs(args)) {
    if (s_.breaker) {
      breaker_ = std::make_unique<svc::CircuitBreaker>(
          s_.breaker_options, clock_, [this](const svc::BreakerTransition& t) {
            std::lock_guard lock(transitions_mu_);
            transitions_.push_back({{"t_ms", svc::EpochMs()},
                                    {"from", svc::ToString(t.from)},
                                    {"to", svc::ToString(t.to)},
                                    {"reason", t.reason}});
          });
    }
    if (s_.db != DbStep::kNone) {
      pool_ = std::make_unique<svc::ResourcePool<mysql::Connection>>(
          static_cast<std::size_t>(s_.pool), [this] { return mysql::Connection::Open(mysql_); },
          clock_);
    }
  }

  int Run() {
    auto listener = svc::Listener::Open(s_.port, 512);
    if (!listener) {
      EmitError(listener.error().message);
      return 1;
    }
    Emit("listening", std::int64_t{listener->port()});
    while (!StopRequested()) {
      const int fd = listener->Accept(100ms);
      if (fd < 0) continue;
      auto request = svc::ReadRequest(fd, 2000ms);
      if (!request) {
        svc::CloseSocket(fd);
        continue;
      }
      Route(fd, std::move(*request));
    }
    executor_.Shutdown();  // the queued requests are answered first
    PrintTotals();
    return 0;
  }

 private:
  void Route(int fd, svc::WireRequest request) {
    if (request.path == "/healthz") {
      svc::WriteResponse(fd, 200, "ok", {}, "text/plain");
      svc::CloseSocket(fd);
      return;
    }
    if (request.path == "/metrics") {
      svc::WriteResponse(fd, 200, Metrics().dump());
      svc::CloseSocket(fd);
      return;
    }
    if (request.path != "/value") {
      svc::WriteResponse(fd, 404, R"({"error":"not found"})");
      svc::CloseSocket(fd);
      return;
    }
    ++requests_;
    ++in_flight_;
    auto shared = std::make_shared<svc::WireRequest>(std::move(request));
    const auto submitted = executor_.Submit([this, fd, shared] { Answer(fd, Value(*shared)); });
    if (submitted == svc::BoundedExecutor::Submitted::kRejected) {
      Answer(fd, Json(503, {{"error", "queue full"}}, {{"X-Rejected", "queue-full"}}));
    }
  }

  void Answer(int fd, const Reply& reply) {
    switch (reply.status) {
      case 200:
        ++ok_;
        break;
      case 503:
        ++rejected_503_;
        break;
      case 429:
        ++rejected_429_;
        break;
      case 504:
        ++timeouts_504_;
        break;
      default:
        ++errors_;
    }
    svc::WriteResponse(fd, reply.status, reply.body, reply.headers);
    svc::CloseSocket(fd);
    --in_flight_;
  }

  Reply Value(const svc::WireRequest& request) {
    const std::int64_t id = std::atoll(svc::QueryParam(request.query, "id").c_str());
    const auto client_deadline = svc::ParseDeadlineMs(request.Header(svc::kDeadlineHeader));
    const auto deadline = s_.propagate ? client_deadline : std::nullopt;
    auto past_deadline = [&] { return deadline && svc::EpochMs() >= *deadline; };
    if (past_deadline()) return Json(504, {{"error", "deadline passed before the work started"}});
    if (s_.work.count() > 0) std::this_thread::sleep_for(s_.work);
    if (past_deadline()) return Json(504, {{"error", "deadline passed"}});

    const std::int64_t request_id = ++request_seq_;
    std::optional<svc::ResourcePool<mysql::Connection>::Lease> lease;
    if (s_.db == DbStep::kTxAroundCall) {  // the anti-pattern: the transaction spans the call
      if (auto r = TakeConnection(lease); r.status != 200) return r;
      if (auto s = (*lease)->Begin(); !s) return DbError(*lease, s.error().message);
      if (auto s = (*lease)->Exec("INSERT INTO valuation (run_ns, request_id, item_id, value, "
                                  "status, created_us) VALUES (?, ?, ?, 0, 'pending', ?)",
                                  {s_.run_ns, request_id, id, NowMicros()});
          !s) {
        return DbError(*lease, s.error().message);
      }
    }
    CallOutcome call;
    if (!s_.downstream.empty()) {
      call = CallDownstream(id, client_deadline, deadline);
    } else {
      call.ok = true;
      call.value = id * 100;
    }
    if (!call.ok) {
      if (lease) (void)(*lease)->Rollback();
      if (auto stale = LastGood(id); stale && (call.short_circuited || !call.error.empty())) {
        ++fallbacks_;
        std::vector<std::pair<std::string, std::string>> headers = {{"X-Fallback", "last-good"}};
        if (call.short_circuited) headers.emplace_back("X-Breaker", "open");
        return Json(200, {{"id", id}, {"value", *stale}, {"stale", true}}, std::move(headers));
      }
      if (call.short_circuited)
        return Json(503, {{"error", "breaker open"}}, {{"X-Breaker", "open"}});
      if (call.bulkhead_full)
        return Json(429, {{"error", "bulkhead full"}}, {{"X-Rejected", "bulkhead"}});
      if (call.deadline_passed)
        return Json(504, {{"error", "deadline passed"}, {"attempts", call.attempts}});
      return Json(502, {{"error", call.error}, {"attempts", call.attempts}});
    }
    if (s_.db == DbStep::kTxAroundCall) {
      if (auto s = (*lease)->Exec("UPDATE valuation SET value = ?, status = 'ok' WHERE run_ns = ? "
                                  "AND request_id = ?",
                                  {call.value, s_.run_ns, request_id});
          !s) {
        return DbError(*lease, s.error().message);
      }
      if (auto s = (*lease)->Commit(); !s) return DbError(*lease, s.error().message);
    } else if (s_.db == DbStep::kCallOutsideTx) {  // the practice: a short transaction after
      if (auto r = TakeConnection(lease); r.status != 200) return r;
      if (auto s = (*lease)->Begin(); !s) return DbError(*lease, s.error().message);
      if (auto s = (*lease)->Exec("INSERT INTO valuation (run_ns, request_id, item_id, value, "
                                  "status, created_us) VALUES (?, ?, ?, ?, 'ok', ?)",
                                  {s_.run_ns, request_id, id, call.value, NowMicros()});
          !s) {
        return DbError(*lease, s.error().message);
      }
      if (auto s = (*lease)->Commit(); !s) return DbError(*lease, s.error().message);
    }
    if (s_.fallback) {
      std::lock_guard lock(last_good_mu_);
      last_good_[id] = call.value;
    }
    return Json(200, {{"id", id}, {"value", call.value}, {"attempts", call.attempts}});
  }

  std::optional<std::int64_t> LastGood(std::int64_t id) {
    if (!s_.fallback) return std::nullopt;
    std::lock_guard lock(last_good_mu_);
    auto it = last_good_.find(id);
    if (it == last_good_.end()) return std::nullopt;
    return it->second;
  }

  Reply TakeConnection(std::optional<svc::ResourcePool<mysql::Connection>::Lease>& lease) {
    auto got = pool_->Acquire(s_.pool_timeout);
    if (!got) {
      if (got.error().code == domain::ErrorCode::kTimeout)
        return Json(503, {{"error", got.error().message}}, {{"X-Rejected", "pool-timeout"}});
      return Json(500, {{"error", "mysql: " + got.error().message}});
    }
    lease.emplace(std::move(*got));
    return {};
  }

  static Reply DbError(svc::ResourcePool<mysql::Connection>::Lease& lease,
                       const std::string& message) {
    if (lease->broken()) {
      lease.Discard();
    } else {
      (void)lease->Rollback();
    }
    return Json(500, {{"error", "mysql: " + message}});
  }

  // One call to the dependency with its retries, each attempt asking the breaker first.
  CallOutcome CallDownstream(std::int64_t id, std::optional<std::int64_t> client_deadline,
                             std::optional<std::int64_t> deadline) {
    CallOutcome out;
    if (!bulkhead_.TryEnter()) {
      out.bulkhead_full = true;
      return out;
    }
    for (int attempt = 0;; ++attempt) {
      if (attempt > 0) {
        const Ms wait =
            svc::RetryBackoff(attempt, s_.retry_backoff, svc::EpochMs(), deadline, s_.propagate);
        if (wait.count() > 0) std::this_thread::sleep_for(wait);
      }
      const auto plan = svc::PlanAttempt(attempt, s_.retries, svc::EpochMs(), deadline,
                                         s_.propagate, s_.downstream_timeout);
      if (!plan.start) {
        out.deadline_passed = plan.deadline_passed;
        break;
      }
      svc::CircuitBreaker::Permit permit{true, false, 0};
      if (breaker_) {
        permit = breaker_->TryAcquire();
        if (!permit.allowed) {
          out.short_circuited = true;
          break;
        }
      }
      Ms timeout = plan.timeout;
      if (permit.probe) timeout = std::min(timeout, s_.breaker_options.slow_call);
      ++out.attempts;
      ++downstream_calls_;
      const auto start = clock_.Now();
      bool timed_out = false;
      const bool ok = Attempt(id, client_deadline, deadline, timeout, out, timed_out);
      if (breaker_) breaker_->Record(permit, clock_.Now() - start, !ok);
      if (ok) {
        out.ok = true;
        break;
      }
      if (timed_out) {
        ++downstream_timeouts_;
        if (deadline && svc::EpochMs() >= *deadline) {
          out.deadline_passed = true;
          break;
        }
      } else {
        ++downstream_errors_;
      }
    }
    bulkhead_.Leave();
    return out;
  }

  bool Attempt(std::int64_t id, std::optional<std::int64_t> client_deadline,
               std::optional<std::int64_t> deadline, Ms timeout, CallOutcome& out,
               bool& timed_out) const {
    CHandle<CURL, curl_easy_cleanup> curl(curl_easy_init());
    if (!curl) {
      out.error = "curl_easy_init failed";
      return false;
    }
    CHandle<curl_slist, curl_slist_free_all> headers;
    curl_slist* list = nullptr;
    if (client_deadline) {
      list = curl_slist_append(
          list, (std::string(svc::kClientDeadlineHeader) + ": " + std::to_string(*client_deadline))
                    .c_str());
    }
    if (deadline) {
      list = curl_slist_append(list, ("X-Deadline-Ms: " + std::to_string(*deadline)).c_str());
    }
    headers.reset(list);
    std::string body;
    const std::string url = s_.downstream + "/quote?id=" + std::to_string(id);
    CURL* h = curl.get();
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(std::max<std::int64_t>(1, timeout.count())));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::max<std::int64_t>(1, timeout.count())));
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &AppendBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    if (headers) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    const CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
      timed_out = rc == CURLE_OPERATION_TIMEDOUT;
      out.error = std::string("downstream: ") + curl_easy_strerror(rc);
      return false;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
      out.error = "downstream: HTTP " + std::to_string(status);
      return false;
    }
    auto j = nlohmann::json::parse(body, nullptr, false);
    out.value = j.is_object() && j.contains("value") && j["value"].is_number_integer()
                    ? j["value"].get<std::int64_t>()
                    : id * 100;
    return true;
  }

  nlohmann::json Metrics() {
    const auto ex = executor_.stats();
    nlohmann::json j = {{"requests", requests_.load()},
                        {"ok", ok_.load()},
                        {"rejected_503", rejected_503_.load()},
                        {"rejected_429", rejected_429_.load()},
                        {"timeouts_504", timeouts_504_.load()},
                        {"errors", errors_.load()},
                        {"caller_runs", ex.caller_runs},
                        {"acceptor_busy_ms", ex.caller_run_ms},
                        {"executor_rejected", ex.rejected},
                        {"busy_workers", ex.busy},
                        {"queued", ex.queued},
                        {"completed", ex.completed},
                        {"bulkhead_rejected", bulkhead_.rejected()},
                        {"downstream_calls", downstream_calls_.load()},
                        {"downstream_errors", downstream_errors_.load()},
                        {"downstream_timeouts", downstream_timeouts_.load()},
                        {"in_flight", in_flight_.load()},
                        {"fallbacks", fallbacks_.load()},
                        {"pool_waits", 0},
                        {"pool_wait_ms_total", 0},
                        {"pool_timeouts", 0},
                        {"pool_max_in_use", 0},
                        {"breaker_state", breaker_ ? svc::ToString(breaker_->State()) : "off"},
                        {"breaker_short_circuits", breaker_ ? breaker_->short_circuited() : 0}};
    if (pool_) {
      const auto p = pool_->stats();
      j["pool_waits"] = p.waits;
      j["pool_wait_ms_total"] = p.wait_ms_total;
      j["pool_timeouts"] = p.timeouts;
      j["pool_max_in_use"] = p.max_in_use;
    }
    std::lock_guard lock(transitions_mu_);
    j["breaker_transitions"] = transitions_;
    return j;
  }

  void PrintTotals() {
    const nlohmann::json j = Metrics();
    for (const auto& [key, value] : j.items()) {
      if (value.is_number_integer()) Emit(key, value.get<std::int64_t>());
      if (value.is_number_float()) Emit(key, std::to_string(value.get<double>()));
      if (value.is_string()) Emit(key, value.get<std::string>());
    }
    Emit("breaker_transitions", std::int64_t(j["breaker_transitions"].size()));
  }

  const Settings s_;
  svc::SteadyClock clock_;
  svc::BoundedExecutor executor_;
  svc::Bulkhead bulkhead_;
  mysql::MysqlConfig mysql_;
  std::unique_ptr<svc::CircuitBreaker> breaker_;
  std::unique_ptr<svc::ResourcePool<mysql::Connection>> pool_;
  std::atomic<std::int64_t> requests_{0}, ok_{0}, rejected_503_{0}, rejected_429_{0},
      timeouts_504_{0}, errors_{0}, in_flight_{0}, request_seq_{0}, fallbacks_{0};
  std::atomic<std::int64_t> downstream_calls_{0}, downstream_errors_{0}, downstream_timeouts_{0};
  std::mutex last_good_mu_;
  std::map<std::int64_t, std::int64_t> last_good_;  // guarded by last_good_mu_
  std::mutex transitions_mu_;
  nlohmann::json transitions_ = nlohmann::json::array();  // guarded by transitions_mu_
};

}  // namespace

int RunValuationService(const RoleArgs& args) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  StopOnSigterm();
  ValuationService service(args);
  return service.Run();
}

}  // namespace lab::runners::roles
