// Every change of a run's state, in one place: queued → running → completed / failed /
// cancelled, queued → cancelled, running → interrupted (recovery after a restart). Each is one
// store transaction (RunStore::Transition checks it against domain/run.h and writes the
// audit entry with it) and is told to the observer once, here.
#pragma once

#include <optional>
#include <string>

#include "domain/run.h"
#include "domain/verdict.h"
#include "server/runs/run_observer.h"
#include "server/store/run_store.h"

namespace lab::server {

// How an executed run ends.
struct RunOutcome {
  domain::RunState state = domain::RunState::kCompleted;
  std::optional<domain::Verdict> verdict;
  std::string reason;
  std::optional<std::string> error;
  std::optional<std::string> result_json;  // the evidence (none when the server failed)
  std::optional<CleanupRecord> cleanup;    // written with the final state
  Actor actor{"system", ""};               // who ended it (the canceller)
  double seconds = 0;
};

class RunLifecycle {
 public:
  RunLifecycle(RunStore& store, RunObserver& observer) : store_(store), observer_(observer) {}

  // After a crash: running runs become interrupted; the queued ones are returned, in order.
  domain::Result<Recovery> Recover();
  // queued → running. Fails when the run is no longer queued (cancelled while it waited).
  domain::Result<RunRecord> Start(const std::string& id);
  // queued → cancelled, before it ran (taken out of the queue, or claimed but not started).
  domain::Result<RunRecord> CancelBeforeStart(const std::string& id, const std::string& experiment,
                                              const Actor& by);
  // running → its terminal state, with the evidence and the cleanup's record.
  domain::Result<RunRecord> Finish(const std::string& id, const std::string& experiment,
                                   const RunOutcome& outcome);
  // → failed, inconclusive: the server itself failed while executing the run.
  void FailInside(const std::string& id, const std::string& experiment, const std::string& error);

 private:
  RunStore& store_;
  RunObserver& observer_;
};

}  // namespace lab::server
