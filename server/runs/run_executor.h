// Takes claimed runs to their end on worker threads: a run claimed from the queue is started
// through RunLifecycle and executed in phases by a RunExecution (run_execution.h); a cancel or a
// halt reaches it here through its RunControl, from the moment it is claimed.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "domain/ports.h"
#include "server/runs/run_execution.h"
#include "server/runs/run_lifecycle.h"
#include "server/runs/run_observer.h"
#include "server/runs/run_queue.h"
#include "server/runs/stack_health.h"
#include "server/store/run_store.h"

namespace lab::server {

class RunExecutor {
 public:
  RunExecutor(RunStore& store, RunLifecycle& lifecycle, RunObserver& observer,
              std::map<std::string, domain::ExperimentRunner*> runners, domain::StackProbe* probe,
              StackHealth& health, ExecutorOptions options = {});

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
  void Start(const QueuedRun& queued, RunControl& control);

  RunStore& store_;
  RunLifecycle& lifecycle_;
  RunObserver& observer_;
  std::map<std::string, domain::ExperimentRunner*> runners_;
  domain::StackProbe* probe_;
  StackHealth& health_;
  ExecutorOptions options_;
  mutable std::mutex active_mu_;
  std::map<std::string, std::shared_ptr<RunControl>> active_;  // guarded by active_mu_
};

}  // namespace lab::server
