// Executes one run on a worker thread: preflight, each repetition and mode through the
// experiment's runner, the verdict from the evidence, cleanup (also after failure, timeout and
// cancel), postflight, and the final state — each step stored and audited.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>

#include "domain/catalog.h"
#include "domain/ports.h"
#include "server/metrics/lab_metrics.h"
#include "server/runs/run_queue.h"
#include "server/runs/stack_health.h"
#include "server/store/run_store.h"

namespace lab::server {

struct ExecutorOptions {
  std::chrono::milliseconds probe_timeout{3000};
  // Called (on the worker) after a run ended with a pending cleanup: wakes the retrier.
  std::function<void(const std::string& run_id)> on_cleanup_pending;
};

class RunExecutor {
 public:
  RunExecutor(RunStore& store, std::map<std::string, domain::ExperimentRunner*> runners,
              domain::StackProbe* probe, LabMetrics& metrics, StackHealth& health,
              ExecutorOptions options = {});

  // Registers a run a worker is taking from the queue (called under the queue's lock), so a
  // cancel finds it from that moment on, before Execute has started it.
  void Claim(const std::string& id);
  // Runs `run` to a terminal state. Never throws. A run cancelled after its Claim ends
  // cancelled without running.
  void Execute(const QueuedRun& run);

  // Cancels a claimed or running run (its cleanup still runs). False when it is not here.
  bool Cancel(const std::string& id, const Actor& actor);
  // Cancels every running run (halt, shutdown); returns how many.
  int CancelAll(const Actor& actor);
  bool IsRunning(const std::string& id) const;

 private:
  struct Active {
    std::stop_source stop;
    std::atomic<bool> cancelled{false};
    std::atomic<bool> timed_out{false};
    // Who cancelled: written once, by the first cancel, under `by_mu`.
    Actor CancelledBy() const {
      std::lock_guard lock(by_mu);
      return cancelled_by;
    }
    mutable std::mutex by_mu;
    Actor cancelled_by;
  };

  void ExecuteChecked(const QueuedRun& run, Active& active);

  RunStore& store_;
  std::map<std::string, domain::ExperimentRunner*> runners_;
  domain::StackProbe* probe_;
  LabMetrics& metrics_;
  StackHealth& health_;
  ExecutorOptions options_;
  mutable std::mutex active_mu_;
  std::map<std::string, std::shared_ptr<Active>> active_;  // guarded by active_mu_
};

}  // namespace lab::server
