// N21: a circuit breaker contains a latency spike on a dependency and recovers by itself.
// A real `lab-role downstream-service` sits behind a Toxiproxy proxy of the run; a real
// `lab-role valuation-service` (`workers` threads, a queue of 2 x workers, each downstream call
// bounded by `call_timeout_ms`, the last good value per id served when a call fails) calls it
// through the proxy. This process offers an open-loop load of `rate` POST /value requests per
// second over 50 ids (each with its own client timeout) for `baseline_s`, then a latency toxic of
// `latency_ms` is put on the proxy's answers for `fault_s`, then removed, and the load goes on for
// `after_s`. A sampler reads the service's /metrics every 200 ms (breaker state, busy workers,
// queue) and the downstream's /stats is read at the fault's edges.
//   failure: no breaker: every request waits for a worker and a slow call; the queue fills,
//            requests are refused (503) or time out at the client.
//   success: a breaker (window 20 calls, min 10, failure or slow-call rate >= 50%, slow = 200 ms,
//            open for `open_ms`, 3 trial calls): once open, requests are answered at once with
//            the last good value (or 503 `X-Breaker: open`), trial calls test the dependency and
//            it closes by itself once they are fast. practice=off: no breaker.
// Where the numbers come from:
//   fault_fired / fault_latency_ms: this process's own call through the proxy to the downstream
//     during the fault (its wall time must reach 80% of latency_ms), read_back-like: measured.
//   p99_*_ms, error_pct_*, stale_pct_*: the load's own clock and answers, by send time: baseline
//     (until 50 ms before the toxic was asked for), during (the whole fault), settled (from fault
//     start + settle_ms to its end), after (the second half of `after_s`).
//   time_to_open_ms (MTTD): fault on -> the first answer the clients got with `X-Breaker: open`
//     or a last-good fallback while the breaker was open (client side); time_to_open_service_ms
//     is the service's own transition time (self_reported), kept beside it.
//   recovery_ms (MTTR): fault off -> start of the first 250 ms slot from which every slot to the
//     end is all fresh 200s within max(3 x baseline p99, baseline p99 + 50 ms) (client side);
//     time_to_close_ms: the service's transition to closed after the fault (self_reported).
//   downstream_calls_during: the downstream's own count of requests received during the fault
//     (minus this process's one call), independent of the service: the breaker stops calling.
//   breaker_opened / closed_at_end / transitions: the service's /metrics (self_reported), each
//     paired with a client-side number above; service_alive_at_end: the same process (pid) still
//     serving at the end (no restart).
#include <curl/curl.h>
#include <signal.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/c_handle.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/experiments/service_load.h"
#include "runners/registry/http_client.h"
#include "runners/service/clock.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;
constexpr int kIds = 50;
constexpr std::int64_t kSlotMs = 250;

// One request of the load, as the client saw it.
struct Sent {
  std::int64_t sent_ms = 0;  // epoch ms
  double ms = 0;             // until the answer or the client's timeout
  long status = 0;           // 0: no answer
  bool timed_out = false;
  bool breaker_open = false;  // answered with X-Breaker: open
  bool stale = false;         // answered with X-Fallback (the last good value)
  std::int64_t done_ms = 0;
  bool Fresh() const { return status == 200 && !stale; }
  bool Error() const { return status != 200; }
};

// An open-loop load: `rate` requests per second on a schedule, whatever the answers, each with
// the client's own timeout; libcurl's multi interface on one thread, so a slow service cannot
// slow down the offered load (closed-loop clients would wait and hide the spike).
class OpenLoopLoad {
 public:
  OpenLoopLoad(std::string base_url, std::int64_t rate, Ms timeout)
      : base_(std::move(base_url)), rate_(rate), timeout_(timeout) {}
  ~OpenLoopLoad() { Stop(); }
  void Start() {
    thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
  }
  // Stops sending and waits for the requests in flight (each ends by its timeout).
  void Stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }
  const std::vector<Sent>& sent() const { return sent_; }  // after Stop()
  std::int64_t not_sent() const { return not_sent_; }

 private:
  struct Pending {
    CHandle<CURL, curl_easy_cleanup> easy;
    std::size_t index = 0;
    SteadyClock::time_point start;
    std::string headers;
    std::string body;
  };
  static size_t OnData(char* data, size_t size, size_t count, void* user) {
    static_cast<std::string*>(user)->append(data, size * count);
    return size * count;
  }

  void Run(const std::stop_token& stop) {
    CHandle<CURLM, curl_multi_cleanup> multi(curl_multi_init());
    if (!multi) return;
    std::map<CURL*, std::unique_ptr<Pending>> pending;
    const auto interval = std::chrono::duration_cast<SteadyClock::duration>(
        std::chrono::duration<double>(1.0 / static_cast<double>(std::max<std::int64_t>(rate_, 1))));
    auto next = SteadyClock::now();
    std::int64_t k = 0;
    for (;;) {
      const auto now = SteadyClock::now();
      if (!stop.stop_requested()) {
        while (next <= now) {
          next += interval;
          if (pending.size() >= 4000) {  // bounded: the runner's own protection
            ++not_sent_;
            continue;
          }
          auto p = std::make_unique<Pending>();
          p->easy.reset(curl_easy_init());
          if (!p->easy) {
            ++not_sent_;
            continue;
          }
          CURL* e = p->easy.get();
          const std::string url = base_ + "/value?id=" + std::to_string(1 + k++ % kIds);
          curl_easy_setopt(e, CURLOPT_URL, url.c_str());
          curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
          curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
          curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
          curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
          curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_.count()));
          curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
          curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &OnData);
          curl_easy_setopt(e, CURLOPT_HEADERDATA, &p->headers);
          curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnData);
          curl_easy_setopt(e, CURLOPT_WRITEDATA, &p->body);
          p->index = sent_.size();
          p->start = SteadyClock::now();
          sent_.push_back({service::EpochMs(), 0, 0, false, false, false, 0});
          curl_multi_add_handle(multi.get(), e);
          pending[e] = std::move(p);
        }
      } else if (pending.empty()) {
        break;
      }
      int running = 0;
      curl_multi_perform(multi.get(), &running);
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi.get(), &left)) {
        if (msg->msg != CURLMSG_DONE) continue;
        auto it = pending.find(msg->easy_handle);
        if (it == pending.end()) continue;
        Pending& p = *it->second;
        Sent& s = sent_[p.index];
        s.ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - p.start).count();
        s.done_ms = service::EpochMs();
        if (msg->data.result == CURLE_OK) {
          curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &s.status);
          std::string lower = p.headers;
          std::transform(lower.begin(), lower.end(), lower.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
          s.breaker_open = lower.find("\nx-breaker: open") != std::string::npos;
          s.stale = lower.find("\nx-fallback:") != std::string::npos;
        } else {
          s.timed_out = msg->data.result == CURLE_OPERATION_TIMEDOUT;
        }
        curl_multi_remove_handle(multi.get(), msg->easy_handle);
        pending.erase(it);
      }
      const auto until_next = std::chrono::duration_cast<Ms>(next - SteadyClock::now());
      const int wait = stop.stop_requested()
                           ? 20
                           : static_cast<int>(std::clamp<std::int64_t>(until_next.count(), 0, 20));
      curl_multi_poll(multi.get(), nullptr, 0, wait, nullptr);
    }
  }

  std::string base_;
  std::int64_t rate_;
  Ms timeout_;
  std::vector<Sent> sent_;     // written by the thread, read after Stop()
  std::int64_t not_sent_ = 0;  // written by the thread, read after Stop()
  std::jthread thread_;
};

// The service's /metrics every 200 ms: breaker state, busy workers, queue.
struct ServiceSample {
  std::int64_t at_ms = 0;
  std::string breaker_state;
  double busy = 0;
  double queued = 0;
};

class MetricsSampler {
 public:
  explicit MetricsSampler(std::string url) : url_(std::move(url)) {}
  ~MetricsSampler() { Stop(); }
  void Start() {
    thread_ = std::jthread([this](std::stop_token stop) {
      while (!stop.stop_requested()) {
        auto r = registry::HttpRequest("GET", url_, "", "", 500ms);
        if (r && r->status == 200) {
          auto j = nlohmann::json::parse(r->body, nullptr, false);
          if (j.is_object()) {
            samples_.push_back({service::EpochMs(), j.value("breaker_state", "?"),
                                JsonNumber(j, "busy_workers"), JsonNumber(j, "queued")});
          }
        }
        SleepFor(200ms, stop);
      }
    });
  }
  void Stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }
  const std::vector<ServiceSample>& samples() const { return samples_; }  // after Stop()

 private:
  std::string url_;
  std::vector<ServiceSample> samples_;  // written by the thread, read after Stop()
  std::jthread thread_;
};

struct Window {
  std::int64_t n = 0;
  double p99 = 0;
  double p50 = 0;
  double error_pct = 0;
  double stale_pct = 0;
  std::int64_t timeouts = 0;
  std::int64_t refused = 0;  // 503/429 answers
};

Window Measure(const std::vector<Sent>& sent, std::int64_t from_ms, std::int64_t to_ms) {
  Window w;
  std::vector<double> ms;
  std::int64_t errors = 0;
  std::int64_t stale = 0;
  for (const auto& s : sent) {
    if (s.sent_ms < from_ms || s.sent_ms >= to_ms) continue;
    ++w.n;
    ms.push_back(s.ms);
    errors += s.Error() ? 1 : 0;
    stale += s.status == 200 && s.stale ? 1 : 0;
    w.timeouts += s.timed_out ? 1 : 0;
    w.refused += s.status == 503 || s.status == 429 ? 1 : 0;
  }
  if (w.n == 0) return w;
  w.p99 = Percentile(ms, 0.99);
  w.p50 = Percentile(ms, 0.50);
  w.error_pct = 100.0 * static_cast<double>(errors) / static_cast<double>(w.n);
  w.stale_pct = 100.0 * static_cast<double>(stale) / static_cast<double>(w.n);
  return w;
}

double StateNumber(const std::string& state) {
  if (state == "open") return 2;
  if (state == "half_open") return 1;
  return 0;
}

// The mode's parameters.
struct Params {
  std::int64_t rate = 0;
  std::int64_t latency_ms = 0;
  std::int64_t call_timeout_ms = 0;
  std::int64_t client_timeout_ms = 0;
  std::int64_t workers = 0;
  std::int64_t open_ms = 0;
  std::int64_t baseline_s = 0;
  std::int64_t fault_s = 0;
  std::int64_t after_s = 0;
  std::int64_t settle_ms = 0;
  bool breaker = false;
};

Params ReadParams(const domain::RunContext& ctx, const std::string& mode) {
  Params p;
  p.rate = domain::GetInt(ctx.params, "rate");
  p.latency_ms = domain::GetInt(ctx.params, "latency_ms");
  p.call_timeout_ms = domain::GetInt(ctx.params, "call_timeout_ms");
  p.client_timeout_ms = domain::GetInt(ctx.params, "client_timeout_ms");
  p.workers = domain::GetInt(ctx.params, "workers");
  p.open_ms = domain::GetInt(ctx.params, "open_ms");
  p.baseline_s = domain::GetInt(ctx.params, "baseline_s");
  p.fault_s = domain::GetInt(ctx.params, "fault_s");
  p.after_s = domain::GetInt(ctx.params, "after_s");
  p.settle_ms = domain::GetInt(ctx.params, "settle_ms");
  p.breaker = mode == "success" && domain::GetString(ctx.params, "practice") != "off";
  return p;
}

// Why a phase ended the mode inconclusive; nullopt: the run goes on.
using Abort = std::optional<std::string>;

domain::Result<nlohmann::json> NotRead() {
  return domain::MakeError(domain::ErrorCode::kInternal, "not read");
}

// What the phases of one mode's run share: the processes, the load and its sampler, the fault's
// edges (epoch ms) and what was read from the services.
struct BreakerRun {
  BreakerRun(const domain::RunContext& c, const std::string& m) : ctx(c), mode(m) {}
  const domain::RunContext& ctx;
  const std::string mode;
  domain::ModeResult result;
  Params p;
  std::optional<ServiceProcess> downstream;
  std::string proxy_url;
  std::optional<ServiceProcess> svc;
  pid_t service_pid = 0;
  std::optional<MetricsSampler> sampler;
  std::optional<OpenLoopLoad> load;
  std::int64_t start_ms = 0;
  std::int64_t baseline_end_ms = 0;
  std::int64_t fault_on_ms = 0;
  std::int64_t fault_off_ms = 0;
  std::int64_t end_ms = 0;
  double canary_ms = -1;
  std::string fault_error;
  domain::Result<nlohmann::json> before = NotRead();         // the downstream's /stats
  domain::Result<nlohmann::json> during = NotRead();         // the downstream's /stats
  domain::Result<nlohmann::json> final_metrics = NotRead();  // the service's /metrics
  bool alive = false;
};

// What the load and the service's transition log say about the fault.
struct Findings {
  Window base, all_fault, settled, after;
  std::int64_t first_open_answer_ms = 0;
  std::int64_t opened_service_ms = 0;
  std::int64_t closed_service_ms = 0;
  int opened = 0;
  nlohmann::json transitions_rel = nlohmann::json::array();
  std::int64_t recovered_slot_ms = -1;
  double downstream_during = 0;
};

class CircuitBreakerExperiment final : public ServiceExperiment {
 public:
  explicit CircuitBreakerExperiment(StackConfig config) : ServiceExperiment(std::move(config)) {}
  std::string_view ExperimentId() const override { return "N21"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    BreakerRun r(ctx, mode);
    r.p = ReadParams(ctx, mode);
    if (auto why = StartServices(r)) return Inconclusive(std::move(r.result), *why);
    RunLoadAroundFault(r);
    if (auto why = StopServices(r)) return Inconclusive(std::move(r.result), *why);
    Findings f;
    if (auto why = MeasureWindows(r, f)) return Inconclusive(std::move(r.result), *why);
    ReadTimeToOpen(r, f);
    FindRecovery(r, f);
    f.downstream_during = JsonNumber(*r.during, "received") - JsonNumber(*r.before, "received") -
                          (r.canary_ms >= 0 ? 1 : 0);
    RecordMetrics(r, f);
    RecordDetails(r, f);
    return std::move(r.result);
  }

 private:
  // The downstream behind a Toxiproxy proxy of the run, and the service calling it through it.
  Abort StartServices(BreakerRun& r) {
    auto downstream = StartService(r.ctx, r.mode, r.result, "downstream-service", {}, "downstream");
    if (!downstream) return downstream.error().message;
    r.downstream = std::move(*downstream);
    auto proxy = ProxyToLoopback(r.ctx, r.mode, r.result, "downstream", r.downstream->port);
    if (!proxy) return "toxiproxy: " + proxy.error().message;
    r.proxy_url = "http://127.0.0.1:" + std::to_string(*proxy);
    auto svc = StartService(r.ctx, r.mode, r.result, "valuation-service", ServiceArgs(r),
                            "valuation-service");
    if (!svc) return svc.error().message;
    r.svc = std::move(*svc);
    r.service_pid = r.svc->process.pid();
    Step(r.ctx, r.mode + ": " + std::to_string(r.p.rate) + " requests/s, " +
                    (r.p.breaker ? "breaker on (open " + std::to_string(r.p.open_ms) + " ms)"
                                 : std::string("no breaker")) +
                    "; calls bounded by " + std::to_string(r.p.call_timeout_ms) + " ms");
    return std::nullopt;
  }

  static std::vector<std::string> ServiceArgs(const BreakerRun& r) {
    std::vector<std::string> args = {"--workers",
                                     std::to_string(r.p.workers),
                                     "--queue",
                                     std::to_string(2 * r.p.workers),
                                     "--downstream",
                                     r.proxy_url,
                                     "--downstream-timeout-ms",
                                     std::to_string(r.p.call_timeout_ms),
                                     "--fallback",
                                     "last-good",
                                     "--breaker",
                                     r.p.breaker ? "on" : "off"};
    if (r.p.breaker) {
      for (const auto& a :
           {"--breaker-window", "20", "--breaker-min-calls", "10", "--breaker-failure-rate", "50",
            "--breaker-slow-ms", "200", "--breaker-slow-rate", "50", "--breaker-probes", "3"}) {
        args.emplace_back(a);
      }
      args.insert(args.end(), {"--breaker-open-ms", std::to_string(r.p.open_ms)});
    }
    return args;
  }

  // The open-loop load and the sampler run through baseline, fault and after; the downstream's
  // /stats is read at the fault's edges.
  void RunLoadAroundFault(BreakerRun& r) {
    r.sampler.emplace(r.svc->BaseUrl() + "/metrics");
    r.load.emplace(r.svc->BaseUrl(), r.p.rate, Ms(r.p.client_timeout_ms));
    r.start_ms = service::EpochMs();
    r.sampler->Start();
    r.load->Start();
    SleepFor(Ms(r.p.baseline_s * 1000), r.ctx.stop);
    Progress(r.ctx, 20);

    r.before = GetJson(*r.downstream, "/stats");
    // The baseline ends before the toxic is asked for: a request still in flight when it takes
    // effect belongs to neither side.
    r.baseline_end_ms = service::EpochMs() - 50;
    if (!r.ctx.stop.stop_requested()) InjectFault(r);
    r.during = GetJson(*r.downstream, "/stats");
    Progress(r.ctx, 60);
    if (r.fault_error.empty()) SleepFor(Ms(r.p.after_s * 1000), r.ctx.stop);
    r.end_ms = service::EpochMs();
    r.load->Stop();
    r.sampler->Stop();
  }

  // The latency toxic for fault_s, with this process's own call through the proxy as the proof
  // that it took.
  void InjectFault(BreakerRun& r) {
    if (auto s = AddToxic(r.ctx, r.mode, "downstream", "latency", "downstream",
                          {{"latency", r.p.latency_ms}, {"jitter", 0}});
        !s) {
      r.fault_error = "toxiproxy: " + s.error().message;
      return;
    }
    r.fault_on_ms = service::EpochMs();
    SleepFor(300ms, r.ctx.stop);
    // The fault, seen by this process through the proxy: its own call takes latency_ms.
    auto c = registry::HttpRequest("GET", r.proxy_url + "/quote?id=0", "", "",
                                   Ms(r.p.latency_ms + 3000));
    if (c && c->status == 200) r.canary_ms = c->total_ms;
    const std::int64_t left = r.fault_on_ms + r.p.fault_s * 1000 - service::EpochMs();
    if (left > 0) SleepFor(Ms(left), r.ctx.stop);
    r.fault_off_ms = service::EpochMs();
    if (auto s = RemoveToxic(r.ctx, r.mode, "downstream", "latency"); !s)
      r.fault_error = "toxiproxy: " + s.error().message;
  }

  // The service's last /metrics (and whether the same process still answers), then both
  // processes and the proxy go.
  Abort StopServices(BreakerRun& r) {
    r.final_metrics = GetJson(*r.svc, "/metrics");
    r.alive = r.final_metrics.ok() && r.svc->process.pid() == r.service_pid &&
              ::kill(r.service_pid, 0) == 0;
    StopService(r.ctx, *r.svc, r.result);
    StopService(r.ctx, *r.downstream, r.result);
    (void)RemoveProxy(r.ctx, r.mode, "downstream");
    if (r.ctx.stop.stop_requested()) return "cancelled";
    if (!r.fault_error.empty()) return r.fault_error;
    if (!r.final_metrics) return r.final_metrics.error().message;
    if (!r.before || !r.during) return "downstream /stats could not be read";
    return std::nullopt;
  }

  static Abort MeasureWindows(const BreakerRun& r, Findings& f) {
    const auto& sent = r.load->sent();
    f.base = Measure(sent, r.start_ms, r.baseline_end_ms);
    f.all_fault = Measure(sent, r.fault_on_ms, r.fault_off_ms);
    f.settled = Measure(sent, r.fault_on_ms + r.p.settle_ms, r.fault_off_ms);
    f.after = Measure(sent, r.fault_off_ms + r.p.after_s * 500, r.end_ms);
    if (f.base.n == 0 || f.settled.n == 0 || f.after.n == 0) {
      return "the load sent no request in a window (baseline " + std::to_string(f.base.n) +
             ", settled " + std::to_string(f.settled.n) + ", after " + std::to_string(f.after.n) +
             ")";
    }
    return std::nullopt;
  }

  // MTTD: client side, the first answer given because the breaker was open; service side, its
  // transitions (fast fallbacks only count once it had opened).
  static void ReadTimeToOpen(const BreakerRun& r, Findings& f) {
    const auto& sent = r.load->sent();
    for (const auto& s : sent) {
      if (s.sent_ms < r.fault_on_ms || s.status == 0) continue;
      if (s.breaker_open && (f.first_open_answer_ms == 0 || s.done_ms < f.first_open_answer_ms))
        f.first_open_answer_ms = s.done_ms;
    }
    const auto& transitions = (*r.final_metrics)["breaker_transitions"];
    if (transitions.is_array()) {
      for (const auto& t : transitions) {
        const std::int64_t at = t.value("t_ms", std::int64_t{0});
        const std::string to = t.value("to", "");
        f.transitions_rel.push_back({{"t_s", static_cast<double>(at - r.fault_on_ms) / 1000.0},
                                     {"from", t.value("from", "")},
                                     {"to", to},
                                     {"reason", t.value("reason", "")}});
        if (to == "open") {
          ++f.opened;
          if (f.opened_service_ms == 0 && at >= r.fault_on_ms) f.opened_service_ms = at;
        }
        if (to == "closed" && at >= r.fault_off_ms && f.closed_service_ms == 0)
          f.closed_service_ms = at;
      }
    }
    if (f.first_open_answer_ms == 0 && f.opened_service_ms > 0) {
      for (const auto& s : sent) {  // fallbacks answered after the breaker opened
        if (s.status == 200 && s.stale && s.done_ms >= f.opened_service_ms &&
            (f.first_open_answer_ms == 0 || s.done_ms < f.first_open_answer_ms))
          f.first_open_answer_ms = s.done_ms;
      }
    }
  }

  // MTTR, client side: slots of 250 ms by send time after the fault.
  static void FindRecovery(const BreakerRun& r, Findings& f) {
    const double normal_ms = std::max(3 * f.base.p99, f.base.p99 + 50);
    std::map<std::int64_t, std::vector<const Sent*>> slots;
    for (const auto& s : r.load->sent()) slots[(s.sent_ms - r.fault_on_ms) / kSlotMs].push_back(&s);
    for (std::int64_t t = r.fault_off_ms; t < r.end_ms - kSlotMs; t += kSlotMs) {
      bool all_good = true;
      for (std::int64_t u = t; u < r.end_ms - kSlotMs && all_good; u += kSlotMs) {
        auto it = slots.find((u - r.fault_on_ms) / kSlotMs);
        if (it == slots.end()) continue;
        for (const Sent* s : it->second) {
          if (s->sent_ms < u || s->sent_ms >= u + kSlotMs) continue;
          if (!s->Fresh() || s->ms > normal_ms) {
            all_good = false;
            break;
          }
        }
      }
      if (all_good) {
        f.recovered_slot_ms = t;
        return;
      }
    }
  }

  static void RecordMetrics(BreakerRun& r, const Findings& f) {
    const std::string end_state = r.final_metrics->value("breaker_state", "?");
    const auto latency = static_cast<double>(r.p.latency_ms);
    auto& m = r.result.metrics;
    m["fault_fired"] = r.canary_ms >= 0.8 * latency ? 1 : 0;
    m["fault_latency_ms"] = r.canary_ms;
    m["fault_ms"] = static_cast<double>(r.fault_off_ms - r.fault_on_ms);
    m["requests"] = static_cast<double>(r.load->sent().size());
    m["p99_baseline_ms"] = f.base.p99;
    m["p99_during_ms"] = f.all_fault.p99;
    m["p50_during_ms"] = f.all_fault.p50;
    m["p99_settled_ms"] = f.settled.p99;
    m["p99_settled_pct_of_latency"] = 100.0 * f.settled.p99 / latency;
    m["p99_after_ms"] = f.after.p99;
    m["error_pct_during"] = f.all_fault.error_pct;
    m["error_pct_settled"] = f.settled.error_pct;
    m["stale_pct_settled"] = f.settled.stale_pct;
    m["error_pct_after"] = f.after.error_pct;
    m["client_timeouts_during"] = static_cast<double>(f.all_fault.timeouts);
    m["refused_during"] = static_cast<double>(f.all_fault.refused);
    m["downstream_calls_during"] = f.downstream_during;
    m["breaker_opened"] = f.opened;
    m["service_alive_at_end"] = r.alive ? 1 : 0;
    m["recovered"] = f.recovered_slot_ms >= 0 ? 1 : 0;
    m["recovery_ms"] = f.recovered_slot_ms >= 0
                           ? static_cast<double>(f.recovered_slot_ms - r.fault_off_ms)
                           : static_cast<double>(r.end_ms - r.fault_off_ms);
    m["max_busy_workers"] = 0;
    m["max_queued"] = 0;
    for (const auto& s : r.sampler->samples()) {
      if (s.at_ms < r.fault_on_ms || s.at_ms >= r.fault_off_ms) continue;
      m["max_busy_workers"] = std::max(m["max_busy_workers"], s.busy);
      m["max_queued"] = std::max(m["max_queued"], s.queued);
    }
    m["service_short_circuits"] = JsonNumber(*r.final_metrics, "breaker_short_circuits");
    m["service_rejected_503"] = JsonNumber(*r.final_metrics, "rejected_503");
    if (r.p.breaker) {
      m["closed_at_end"] = end_state == "closed" ? 1 : 0;
      if (f.first_open_answer_ms > 0)
        m["time_to_open_ms"] = static_cast<double>(f.first_open_answer_ms - r.fault_on_ms);
      if (f.opened_service_ms > 0)
        m["time_to_open_service_ms"] = static_cast<double>(f.opened_service_ms - r.fault_on_ms);
      if (f.closed_service_ms > 0)
        m["time_to_close_ms"] = static_cast<double>(f.closed_service_ms - r.fault_off_ms);
    }
  }

  // The timeline the run page draws: 250 ms slots around the fault, by send time.
  static nlohmann::json Timeline(const BreakerRun& r) {
    nlohmann::json timeline = nlohmann::json::array();
    std::size_t si = 0;
    const auto& samples = r.sampler->samples();
    double state = 0;
    for (std::int64_t t = r.start_ms; t < r.end_ms; t += kSlotMs) {
      const Window w = Measure(r.load->sent(), t, t + kSlotMs);
      while (si < samples.size() && samples[si].at_ms < t + kSlotMs) {
        state = StateNumber(samples[si].breaker_state);
        ++si;
      }
      if (w.n == 0) continue;
      timeline.push_back({{"t_s", static_cast<double>(t - r.fault_on_ms) / 1000.0},
                          {"p99_ms", w.p99},
                          {"error_pct", w.error_pct},
                          {"breaker_state", r.p.breaker ? state : 0.0}});
    }
    return timeline;
  }

  static nlohmann::json ServiceDetails(const Params& p) {
    return {{"workers", p.workers},
            {"queue", 2 * p.workers},
            {"call_timeout_ms", p.call_timeout_ms},
            {"fallback", "last good value per id"},
            {"breaker", p.breaker ? nlohmann::json({{"window", 20},
                                                    {"min_calls", 10},
                                                    {"failure_rate_pct", 50},
                                                    {"slow_call_ms", 200},
                                                    {"slow_rate_pct", 50},
                                                    {"open_ms", p.open_ms},
                                                    {"probes", 3}})
                                  : nlohmann::json("off")}};
  }

  static nlohmann::json WindowDetails(const Findings& f) {
    return {{"baseline", {{"requests", f.base.n}, {"p50_ms", f.base.p50}, {"p99_ms", f.base.p99}}},
            {"during",
             {{"requests", f.all_fault.n},
              {"p50_ms", f.all_fault.p50},
              {"p99_ms", f.all_fault.p99},
              {"error_pct", f.all_fault.error_pct},
              {"timeouts", f.all_fault.timeouts},
              {"refused", f.all_fault.refused}}},
            {"settled",
             {{"requests", f.settled.n},
              {"p50_ms", f.settled.p50},
              {"p99_ms", f.settled.p99},
              {"error_pct", f.settled.error_pct},
              {"stale_pct", f.settled.stale_pct}}},
            {"after",
             {{"requests", f.after.n}, {"p99_ms", f.after.p99}, {"error_pct", f.after.error_pct}}}};
  }

  // Where each number comes from, for the reader of the evidence.
  static nlohmann::json Provenance() {
    return {{"fault_fired", "measured: this process's own call through the proxy"},
            {"fault_latency_ms", "measured"},
            {"p99_*_ms, error_pct_*, stale_pct_settled", "client: the load's clock and answers"},
            {"time_to_open_ms", "client: first X-Breaker: open answer after the fault"},
            {"time_to_open_service_ms", "self_reported: the service's transition log"},
            {"time_to_close_ms", "self_reported: the service's transition log"},
            {"recovery_ms", "client: fault off -> every later 250 ms slot fresh and fast"},
            {"downstream_calls_during", "server_counter: the downstream's own count"},
            {"breaker_opened, closed_at_end, service_short_circuits, "
             "max_busy_workers",
             "self_reported: the service's /metrics"},
            {"service_alive_at_end", "measured: the same pid answered /metrics at the end"}};
  }

  static void RecordDetails(BreakerRun& r, const Findings& f) {
    r.result.details_json =
        nlohmann::json(
            {{"service", ServiceDetails(r.p)},
             {"fault",
              {{"toxic", "latency " + std::to_string(r.p.latency_ms) + " ms on the answers"},
               {"proxy", ProxyName(r.ctx, r.mode, "downstream")}}},
             {"timeline", Timeline(r)},
             {"breaker_state_legend", "0 closed, 1 half-open, 2 open (service /metrics, 200 ms)"},
             {"breaker_transitions", f.transitions_rel},
             {"service_metrics_end", *r.final_metrics},
             {"windows", WindowDetails(f)},
             {"not_sent", r.load->not_sent()},
             {"provenance", Provenance()}})
            .dump();
    Step(r.ctx,
         r.mode + ": p99 baseline " + std::to_string(static_cast<int>(f.base.p99)) +
             " ms, during " + std::to_string(static_cast<int>(f.all_fault.p99)) + " ms, settled " +
             std::to_string(static_cast<int>(f.settled.p99)) + " ms, errors settled " +
             std::to_string(static_cast<int>(f.settled.error_pct)) + "%, downstream calls during " +
             std::to_string(static_cast<std::int64_t>(f.downstream_during)) + ", opened " +
             std::to_string(f.opened) + ", recovery " +
             std::to_string(static_cast<std::int64_t>(r.result.metrics["recovery_ms"])) + " ms");
    Progress(r.ctx, 100);
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeCircuitBreaker(const StackConfig& config) {
  return std::make_unique<CircuitBreakerExperiment>(config);
}

}  // namespace lab::runners
