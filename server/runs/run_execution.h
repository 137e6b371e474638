// One run executed to its end on a worker thread, in the phases every run goes through:
//   preflight    the parts the experiment needs are healthy, or the run ends inconclusive;
//   repetitions  each mode of each repetition through the runner, its evidence kept, a verdict
//                decided per repetition;
//   cleanup      what the run created is removed, also after a failure, a cancel or a timeout;
//   postflight   the parts are checked again (a part left unhealthy marks the stack dirty), and
//                the cleanup is judged (what it could not remove is kept for the retrier);
//   finish       the final state with the evidence, through RunLifecycle.
// RunExecutor (run_executor.h) builds one per run, after the run was started.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "domain/catalog.h"
#include "domain/ports.h"
#include "server/runs/artifact_cleanup.h"
#include "server/runs/run_evidence.h"
#include "server/runs/run_lifecycle.h"
#include "server/runs/run_observer.h"
#include "server/runs/stack_health.h"
#include "server/runs/store_reporter.h"
#include "server/store/run_store.h"

namespace lab::server {

// Waits until `limit` has passed (true) or `done` is requested (false). The run's timeout is such
// a wait on its own thread; a test injects one that does not take a real second.
using DeadlineWait = std::function<bool(std::chrono::seconds limit, std::stop_token done)>;
bool WaitOnSteadyClock(std::chrono::seconds limit, std::stop_token done);

struct ExecutorOptions {
  std::chrono::milliseconds probe_timeout{3000};
  // Called (on the worker) after a run ended with a pending cleanup: wakes the retrier.
  std::function<void(const std::string& run_id)> on_cleanup_pending;
  DeadlineWait deadline_wait = WaitOnSteadyClock;
};

// How a claimed run is stopped from outside: a cancel (who asked is kept) or its timeout.
struct RunControl {
  std::stop_source stop;
  std::atomic<bool> cancelled{false};
  std::atomic<bool> timed_out{false};

  // The first cancel wins; later ones change nothing.
  void Cancel(const Actor& by);
  Actor CancelledBy() const;

 private:
  mutable std::mutex by_mu_;
  Actor cancelled_by_;  // guarded by by_mu_
};

// What an execution works with; owned by the RunExecutor.
struct ExecutionParts {
  RunStore& store;
  RunLifecycle& lifecycle;
  RunObserver& observer;
  domain::StackProbe* probe;  // null: no preflight or postflight
  StackHealth& health;
  const ExecutorOptions& options;
};

class RunExecution {
 public:
  RunExecution(const ExecutionParts& parts, const RunRecord& running,
               const domain::ExperimentSpec& spec, domain::ExperimentRunner& runner,
               RunControl& control);
  ~RunExecution();
  RunExecution(const RunExecution&) = delete;
  RunExecution& operator=(const RunExecution&) = delete;

  // The phases, in order; returns when the run's final state is stored.
  void Run();

 private:
  bool Preflight();
  void Repetitions();
  // One repetition's modes; false when the run must not go on (stopped, or a mode threw).
  bool Repetition(int repetition, int& step_index);
  void CleanUp();
  void Postflight();
  void JudgeTheCleanup();
  RunOutcome Ending() const;
  void Finish(RunOutcome outcome);
  domain::RunContext ContextFor(int repetition);

  ExecutionParts parts_;
  const std::string run_id_;
  const std::string experiment_;
  const domain::ExperimentSpec& spec_;
  domain::ExperimentRunner& runner_;
  RunControl& control_;
  const domain::RunRequest request_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  StoreReporter reporter_;
  CleanupReporter cleanup_reporter_{&reporter_};
  RunEvidence evidence_;
  std::jthread watchdog_;

  std::vector<domain::VerdictDecision> decisions_;
  std::optional<std::string> run_error_;  // a mode threw: the run failed
  int last_repetition_ = 0;
  std::vector<domain::Artifact> artifacts_;  // what the run recorded, as cleanup saw it
  std::optional<std::string> cleanup_thrown_;
  std::vector<domain::PartHealth> after_;  // the postflight's health
  std::optional<CleanupRecord> cleanup_record_;
};

}  // namespace lab::server
