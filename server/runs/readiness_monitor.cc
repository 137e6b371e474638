#include "server/runs/readiness_monitor.h"

namespace lab::server {

ReadinessMonitor::ReadinessMonitor(domain::StackProbe& probe, StackHealth& health,
                                   std::vector<std::string> parts,
                                   std::chrono::milliseconds timeout,
                                   std::chrono::milliseconds interval, OnRecovered on_recovered)
    : probe_(probe),
      health_(health),
      parts_(std::move(parts)),
      timeout_(timeout),
      interval_(interval),
      on_recovered_(std::move(on_recovered)) {}

ReadinessMonitor::~ReadinessMonitor() {
  if (thread_.joinable()) {
    thread_.request_stop();
    wake_.notify_all();
    thread_.join();
  }
}

void ReadinessMonitor::Start() {
  thread_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
}

std::optional<ReadinessMonitor::Snapshot> ReadinessMonitor::Latest() const {
  std::lock_guard lock(mu_);
  return latest_;
}

void ReadinessMonitor::Loop(const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    Snapshot snap{probe_.Check(parts_, timeout_), std::chrono::system_clock::now()};
    for (const auto& recovered : health_.ClearHealthy(snap.parts)) {
      if (on_recovered_) on_recovered_(recovered);
    }
    std::unique_lock lock(mu_);
    latest_ = std::move(snap);
    wake_.wait_for(lock, stop, interval_, [] { return false; });
  }
}

}  // namespace lab::server
