// Retries the cleanups that could not finish (run_cleanups, state pending): on its own thread,
// when the parts their artifacts live on are healthy (the readiness monitor's latest probe, never
// a probe of its own), with a backoff between attempts that ran and a bound on them. Success marks
// the cleanup done and audits it; each failed attempt keeps its error (the row's last_error and a
// line in the run's step log). It survives restarts because everything it knows is in SQLite.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "domain/ports.h"
#include "server/runs/artifact_cleanup.h"
#include "server/store/run_store.h"

namespace lab::server {

struct CleanupRetrierOptions {
  std::chrono::milliseconds poll{5000};    // how often due cleanups are looked for (also on Wake)
  std::chrono::seconds first_backoff{30};  // after the first failed attempt; doubles each time
  std::chrono::seconds max_backoff{1800};  // the longest wait between two attempts
  int max_attempts = 10;                   // attempts that ran; then given_up (DELETE re-arms)
};

class CleanupRetrier {
 public:
  // One attempt at a pending cleanup: what is left. A throw counts as an attempt that failed.
  using Attempt = std::function<CleanupVerdict(const CleanupRecord&)>;
  // The parts' latest health; nullopt while not known yet (then nothing is attempted).
  using Health = std::function<std::optional<std::vector<domain::PartHealth>>()>;

  CleanupRetrier(RunStore& store, const domain::Clock& clock, Attempt attempt, Health health,
                 CleanupRetrierOptions options = {});
  ~CleanupRetrier();
  CleanupRetrier(const CleanupRetrier&) = delete;
  CleanupRetrier& operator=(const CleanupRetrier&) = delete;

  // Starts the thread (the first pass at once).
  void Start();
  // Stops and joins the thread; an attempt in progress ends first (a cleanup is never cut short).
  void Stop();
  // A cleanup was queued or re-armed: refresh the counts and look at once.
  void Wake();

  // One pass on the caller's thread: each due cleanup whose parts are healthy is attempted once.
  // Returns how many were attempted; stops between attempts when `stop` fires. (The thread calls
  // it; tests call it directly.)
  int RunDue(const std::stop_token& stop = {});
  // As last counted: /readyz reads it without touching the store.
  CleanupCounts counts() const;
  void RefreshCounts();

 private:
  std::chrono::seconds Backoff(int attempts) const;
  void Loop(const std::stop_token& stop);

  RunStore& store_;
  const domain::Clock& clock_;
  Attempt attempt_;
  Health health_;
  CleanupRetrierOptions options_;
  mutable std::mutex mu_;
  std::condition_variable_any wake_;
  bool woken_ = false;    // guarded by mu_
  CleanupCounts counts_;  // guarded by mu_
  std::mutex pass_mu_;    // one pass at a time (the thread, or a test)
  std::jthread thread_;   // last: stopped and joined first
};

// At start: every finished run that was not kept and whose cleanup never ran to its end (a
// server killed mid-run, or runs older than run_cleanups) gets a pending cleanup of its
// retryable artifacts, audited as run.cleanup.swept. Returns how many were queued.
domain::Result<int> SweepRunsNeverCleaned(RunStore& store);

// The production attempt: the run's experiment runner cleans up (its steps go to the run's step
// log), then the artifacts' parts are probed and the cleanup judged (AttemptCleanup).
CleanupRetrier::Attempt RunnerCleanupAttempt(
    RunStore& store, std::map<std::string, domain::ExperimentRunner*> runners,
    domain::StackProbe* probe, std::chrono::milliseconds probe_timeout);

}  // namespace lab::server
