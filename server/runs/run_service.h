// Admission and scheduling: the one way a run enters (idempotency, the halt switch, the shutdown
// drain and the queue's bound) and the ways it is stopped before it ends (cancel, halt, drain).
// It owns the decisions; the HTTP layer (server/http/api_runs.cc, api_control.cc) only maps what
// it returns to responses. State changes go through RunLifecycle, execution through RunExecutor.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "domain/catalog.h"
#include "domain/run_request.h"
#include "server/runs/run_executor.h"
#include "server/runs/run_lifecycle.h"
#include "server/runs/run_observer.h"
#include "server/runs/run_queue.h"
#include "server/store/run_store.h"

namespace lab::server {

struct Admission {
  enum class Outcome {
    kQueued,     // run: the new run
    kReplayed,   // run_id: the run this Idempotency-Key created before
    kKeyReused,  // run_id: the key was used with another request
    kHalted,     // detail: the halt's reason
    kDraining,   // the server is shutting down
    kQueueFull,  // detail: the queue's capacity
    kFailed,     // error: the store failed
  };
  Outcome outcome = Outcome::kFailed;
  RunRecord run;
  std::string run_id;
  std::string detail;
  domain::Error error;
};

struct Cancellation {
  enum class Outcome {
    kCancelled,  // it was waiting: now cancelled (run)
    kRequested,  // it is executing: asked to stop, its cleanup still runs (run)
    kFinished,   // already terminal (run)
    kUnknown,    // no such run
    kNotHere,    // neither waiting nor executing in this server (run, if known)
    kFailed,     // error: the store failed
  };
  Outcome outcome = Outcome::kFailed;
  std::optional<RunRecord> run;
  domain::Error error;
};

struct HaltResult {
  int cancelled_runs = 0;
  std::size_t queued_runs_waiting = 0;
};

class RunService {
 public:
  RunService(RunStore& store, RunQueue& queue, RunExecutor& executor, RunLifecycle& lifecycle,
             RunObserver& observer);

  // After a restart, before workers start: interrupted runs are marked, queued ones queued
  // again (beyond the bound if need be), and the halt switch is restored.
  domain::Result<Recovery> Recover();

  // The refusal every run gets now (halted, draining), if any; Admit checks it too.
  std::optional<Admission> Closed();
  Admission Admit(const domain::ExperimentSpec& spec, const domain::RunRequest& request,
                  const std::optional<std::string>& idempotency_key, const Actor& actor);
  Cancellation Cancel(const std::string& id, const Actor& actor);

  // Halt: no queued run starts and every executing run is cancelled, until LiftHalt.
  domain::Result<HaltResult> Halt(const std::string& reason, const Actor& actor);
  domain::Status LiftHalt(const Actor& actor);
  std::optional<std::string> HaltReason() const;
  // Shutdown: no new run is admitted, no queued run starts (it stays queued for the next
  // start), executing runs are cancelled. Returns how many were cancelled.
  int Drain();

  std::size_t QueueDepth() const { return queue_.Depth(); }

 private:
  std::string NewRunId();
  void QueueChanged() { observer_.QueueDepth(queue_.Depth()); }

  RunStore& store_;
  RunQueue& queue_;
  RunExecutor& executor_;
  RunLifecycle& lifecycle_;
  RunObserver& observer_;
  std::atomic<bool> draining_{false};

  mutable std::mutex halt_mu_;
  std::optional<std::string> halt_reason_;  // guarded by halt_mu_

  std::mutex id_mu_;
  std::mt19937_64 id_rng_;  // guarded by id_mu_
};

}  // namespace lab::server
