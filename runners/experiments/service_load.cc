#include "runners/experiments/service_load.h"

#include <curl/curl.h>
#include <signal.h>

#include <cstdio>
#include <mutex>

#include "runners/common/c_handle.h"
#include "runners/common/util.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;

size_t Append(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() < 65536) body->append(data, size * count);  // bounded: JSON counters only
  return size * count;
}

// libcurl's progress callback: non-zero aborts the transfer (a cancelled run).
int AbortOnStop(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* stop = static_cast<const std::stop_token*>(user);
  return stop != nullptr && stop->stop_requested() ? 1 : 0;
}

}  // namespace

std::int64_t EpochMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Fixed(double value, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, value);
  return buf;
}

ServiceReply HttpCall(const std::string& method, const std::string& url,
                      std::chrono::milliseconds timeout, const std::vector<std::string>& headers,
                      const std::stop_token* stop) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  ServiceReply reply;
  const auto start = SteadyClock::now();
  CHandle<CURL, curl_easy_cleanup> curl(curl_easy_init());
  if (!curl) {
    reply.error = "curl_easy_init failed";
    return reply;
  }
  CHandle<curl_slist, curl_slist_free_all> list;
  for (const auto& h : headers) {
    curl_slist* next = curl_slist_append(list.get(), h.c_str());
    if (next == nullptr) break;
    (void)list.release();
    list.reset(next);
  }
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply.body);
  if (list) curl_easy_setopt(h, CURLOPT_HTTPHEADER, list.get());
  if (stop != nullptr) {
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &AbortOnStop);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, const_cast<std::stop_token*>(stop));
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  }
  if (method == "POST") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
  }
  const CURLcode rc = curl_easy_perform(h);
  reply.ms = MsSince(start);
  if (rc != CURLE_OK) {
    reply.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    reply.error = rc == CURLE_ABORTED_BY_CALLBACK ? "cancelled" : curl_easy_strerror(rc);
    return reply;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

LoadTotals RunLoad(const LoadSpec& spec, const std::stop_token& stop) {
  LoadTotals totals;
  std::mutex mu;  // guards totals
  std::atomic<std::int64_t> next{0};
  const auto start = SteadyClock::now();
  const auto end = start + spec.duration;
  {
    std::vector<std::jthread> clients;
    for (int c = 0; c < spec.clients; ++c) {
      clients.emplace_back([&] {
        while (!stop.stop_requested() && SteadyClock::now() < end) {
          const std::int64_t k = next.fetch_add(1);
          if (spec.max_requests > 0 && k >= spec.max_requests) break;
          std::vector<std::string> headers;
          if (spec.deadline_ms > 0)
            headers.push_back("X-Deadline-Ms: " + std::to_string(EpochMillis() + spec.deadline_ms));
          const ServiceReply r =
              HttpCall("POST", spec.base_url + "/value?id=" + std::to_string(k + 1), spec.timeout,
                       headers, &stop);
          {
            std::lock_guard lock(mu);
            ++totals.requests;
            totals.all_ms.push_back(r.ms);
            if (r.status >= 200 && r.status < 300) {
              ++totals.ok;
              totals.ok_ms.push_back(r.ms);
            } else if (r.status == 503) {
              ++totals.status_503;
            } else if (r.status == 429) {
              ++totals.status_429;
            } else if (r.status == 504) {
              ++totals.status_504;
            } else if (r.status != 0) {
              ++totals.status_other;
            } else if (r.timed_out) {
              ++totals.timeouts;
            } else {
              ++totals.failures;
              if (totals.sample_errors.size() < 5) totals.sample_errors.push_back(r.error);
            }
          }
          if (spec.pause.count() > 0) SleepFor(spec.pause, stop);
        }
      });
    }
  }  // joined
  totals.seconds = MsSince(start) / 1000.0;
  return totals;
}

void Prober::Start() {
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void Prober::Stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

void Prober::Run(const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    const auto start = SteadyClock::now();
    const ServiceReply r = HttpCall("GET", url_, timeout_, {}, &stop);
    if (r.error == "cancelled") break;  // stopped mid-probe: not an answer the service gave
    if (r.status == 200) {
      ++ok_;
      latency_ms_.push_back(r.ms);
    } else if (r.timed_out) {
      ++timeouts_;
      latency_ms_.push_back(std::max(r.ms, static_cast<double>(timeout_.count())));
    } else {
      ++failures_;
      latency_ms_.push_back(r.ms);
    }
    const auto spent = SteadyClock::now() - start;
    if (spent < interval_) {
      SleepFor(std::chrono::duration_cast<std::chrono::milliseconds>(interval_ - spent), stop);
    }
  }
}

double JsonNumber(const nlohmann::json& j, const std::string& key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return -1;
  return it->get<double>();
}

domain::Result<ServiceProcess> ServiceExperiment::StartService(
    const domain::RunContext& ctx, const std::string& mode, domain::ModeResult& result,
    const std::string& role, const std::vector<std::string>& args, const std::string& label) const {
  // The service writes its rows under "<ns>_<mode>": RunNs's value, repetition suffix included.
  const std::string ns = SafeName(ctx.ns);
  std::vector<std::string> argv = {"--ns",   ns, "--mode", RunNs(ctx, mode).substr(ns.size() + 1),
                                   "--port", "0"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto child = StartRole(ctx, mode, result, role, argv, label);
  if (!child) return child.error();
  ServiceProcess service{std::move(*child), 0, label};
  std::string port;
  WaitUntil(
      [&] {
        auto v = LastRoleValue(service.process.ReadLog(), "listening");
        if (v) port = *v;
        return v.has_value();
      },
      15s, ctx.stop, 20ms);
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos) {
    std::string log = RoleLogText(service.process.ReadLog());
    service.process.Kill();
    return domain::MakeError(domain::ErrorCode::kUnavailable,
                             label + " (" + role +
                                 ") did not report listening (its port) within 15 s" +
                                 (log.empty() ? "" : ": " + log));
  }
  service.port = std::stoi(port);
  Step(ctx, mode + ": " + label + " listening on 127.0.0.1:" + port);
  return service;
}

domain::Result<nlohmann::json> ServiceExperiment::GetJson(const ServiceProcess& service,
                                                          const std::string& path) {
  const ServiceReply r = HttpCall("GET", service.BaseUrl() + path, 3000ms);
  if (r.status != 200) {
    return domain::MakeError(domain::ErrorCode::kUnavailable,
                             service.label + " GET " + path + ": " +
                                 (r.status ? "HTTP " + std::to_string(r.status) : r.error));
  }
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object()) {
    return domain::MakeError(domain::ErrorCode::kInternal,
                             service.label + " GET " + path + ": not a JSON object");
  }
  return j;
}

RoleOutcome ServiceExperiment::StopService(const domain::RunContext& ctx, ServiceProcess& service,
                                           domain::ModeResult& result) const {
  service.process.Signal(SIGTERM);
  return WaitRole(ctx, service.process, 15s, result, service.label);
}

}  // namespace lab::runners
