// Executes one run on a worker thread: preflight, each repetition and mode through the
// experiment's runner, the verdict from the evidence, cleanup (also after failure, timeout and
// cancel), postflight, and the final state — each step stored and audited.
#pragma once

#include <atomic>
#include <chrono>
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
};

class RunExecutor {
 public:
  RunExecutor(RunStore& store, std::map<std::string, domain::ExperimentRunner*> runners,
              domain::StackProbe* probe, LabMetrics& metrics, StackHealth& health,
              ExecutorOptions options = {});

  // Runs `run` to a terminal state. Never throws.
  void Execute(const QueuedRun& run);

  // Cancels a running run (its cleanup still runs). False when it is not running here.
  bool Cancel(const std::string& id, const Actor& actor);
  // Cancels every running run (halt, shutdown); returns how many.
  int CancelAll(const Actor& actor);
  bool IsRunning(const std::string& id) const;

 private:
  struct Active {
    std::stop_source stop;
    std::atomic<bool> cancelled{false};
    std::atomic<bool> timed_out{false};
    Actor cancelled_by;  // written before `cancelled` is set
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
