// lab-role downstream-service: the dependency of the valuation service, a real HTTP server the
// experiments put behind a Toxiproxy proxy. Any request waits --delay-ms (default 0) and answers
// 200 {"value": id x 100}; a thread per connection (at most 512 at once), so it is never the
// bottleneck the experiments measure. It counts what it received on its own side of the wire:
// received, with_deadline, received_after_deadline (arrival later than the client's deadline),
// zombie_ms_total (sum of max(0, finish - deadline): work done after the client had given up),
// last_arrival_ms. The deadline is X-Client-Deadline-Ms when present (the valuation service
// forwards the client's deadline as that observation header in every mode), else X-Deadline-Ms.
// GET /stats answers them as JSON (and is not counted); SIGTERM reports them (Emit).
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "runners/roles/role_common.h"
#include "runners/service/clock.h"
#include "runners/service/deadline.h"
#include "runners/service/http_wire.h"

namespace lab::runners::roles {
namespace {

using namespace std::chrono_literals;
namespace svc = lab::runners::service;

class Downstream {
 public:
  explicit Downstream(const RoleArgs& args)
      : port_(static_cast<int>(args.Int("port", 0))),
        delay_(std::chrono::milliseconds(args.Int("delay-ms", 0))) {}

  int Run() {
    auto listener = svc::Listener::Open(port_, 1024);
    if (!listener) {
      EmitError(listener.error().message);
      return 1;
    }
    Emit("listening", std::int64_t{listener->port()});
    while (!StopRequested()) {
      const int fd = listener->Accept(100ms);
      if (fd < 0) continue;
      if (connections_.load() >= 512) {  // bounded: answer later connections at once, uncounted
        svc::WriteResponse(fd, 503, R"({"error":"too many connections"})");
        svc::CloseSocket(fd);
        continue;
      }
      ++connections_;
      std::thread([this, fd] {
        Serve(fd);
        --connections_;
      }).detach();
    }
    for (int i = 0; i < 300 && connections_.load() > 0; ++i) std::this_thread::sleep_for(10ms);
    const nlohmann::json j = Stats();
    for (const auto& [key, value] : j.items()) {
      if (value.is_number_integer()) Emit(key, value.get<std::int64_t>());
    }
    return 0;
  }

 private:
  void Serve(int fd) {
    auto request = svc::ReadRequest(fd, 5000ms);
    if (!request) {
      svc::CloseSocket(fd);
      return;
    }
    if (request->path == "/stats") {
      svc::WriteResponse(fd, 200, Stats().dump());
      svc::CloseSocket(fd);
      return;
    }
    const std::int64_t arrival = svc::EpochMs();
    auto deadline = svc::ParseDeadlineMs(request->Header("x-client-deadline-ms"));
    if (!deadline) deadline = svc::ParseDeadlineMs(request->Header(svc::kDeadlineHeader));
    {
      std::lock_guard lock(mu_);
      ++received_;
      last_arrival_ms_ = arrival;
      if (deadline) {
        ++with_deadline_;
        if (arrival > *deadline) ++received_after_deadline_;
      }
    }
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    const std::int64_t id = std::atoll(svc::QueryParam(request->query, "id").c_str());
    svc::WriteResponse(fd, 200, nlohmann::json({{"value", id * 100}}).dump());
    svc::CloseSocket(fd);
    const std::int64_t finish = svc::EpochMs();
    std::lock_guard lock(mu_);
    ++answered_;
    if (deadline && finish > *deadline) zombie_ms_total_ += finish - *deadline;
  }

  nlohmann::json Stats() {
    std::lock_guard lock(mu_);
    return {{"received", received_},
            {"answered", answered_},
            {"with_deadline", with_deadline_},
            {"received_after_deadline", received_after_deadline_},
            {"zombie_ms_total", zombie_ms_total_},
            {"last_arrival_ms", last_arrival_ms_},
            {"connections", connections_.load()}};
  }

  const int port_;
  const std::chrono::milliseconds delay_;
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::int64_t received_ = 0;                 // guarded by mu_
  std::int64_t answered_ = 0;                 // guarded by mu_
  std::int64_t with_deadline_ = 0;            // guarded by mu_
  std::int64_t received_after_deadline_ = 0;  // guarded by mu_
  std::int64_t zombie_ms_total_ = 0;          // guarded by mu_
  std::int64_t last_arrival_ms_ = 0;          // guarded by mu_
};

}  // namespace

int RunDownstreamService(const RoleArgs& args) {
  StopOnSigterm();
  Downstream downstream(args);
  return downstream.Run();
}

}  // namespace lab::runners::roles
