#include "server/runs/run_lifecycle.h"

namespace lab::server {
namespace {

const Actor kSystem{"system", ""};

}  // namespace

domain::Result<Recovery> RunLifecycle::Recover() {
  auto recovery = store_.Recover();
  if (recovery.ok()) {
    for (const auto& id : recovery->interrupted)
      observer_.Trouble(id, "run.interrupted", "server restarted");
  }
  return recovery;
}

domain::Result<RunRecord> RunLifecycle::Start(const std::string& id) {
  RunTransition start;
  start.to = domain::RunState::kRunning;
  start.audit_action = "run.started";
  return store_.Transition(id, start, kSystem);
}

domain::Result<RunRecord> RunLifecycle::CancelBeforeStart(const std::string& id,
                                                          const std::string& experiment,
                                                          const Actor& by) {
  RunTransition t;
  t.to = domain::RunState::kCancelled;
  t.error = "cancelled by " + by.name + " before it started";
  t.audit_action = "run.cancelled";
  auto done = store_.Transition(id, t, by);
  if (done.ok()) observer_.Ended({id, experiment, "cancelled", "none", 0});
  return done;
}

domain::Result<RunRecord> RunLifecycle::Finish(const std::string& id, const std::string& experiment,
                                               const RunOutcome& outcome) {
  RunTransition t;
  t.to = outcome.state;
  t.verdict = outcome.verdict;
  t.verdict_reason = outcome.reason;
  t.result_json = outcome.result_json;
  t.error = outcome.error;
  t.audit_action = "run." + std::string(domain::ToString(outcome.state));
  t.cleanup = outcome.cleanup;
  auto done = store_.Transition(id, t, outcome.actor);
  if (!done.ok()) observer_.Trouble(id, "run.store_failed", done.error().message);
  const std::string_view verdict = outcome.verdict ? domain::ToString(*outcome.verdict) : "none";
  observer_.Ended({id, experiment, domain::ToString(outcome.state), verdict, outcome.seconds});
  return done;
}

void RunLifecycle::FailInside(const std::string& id, const std::string& experiment,
                              const std::string& error) {
  observer_.Trouble(id, "run.crashed", error);
  RunOutcome outcome;
  outcome.state = domain::RunState::kFailed;
  outcome.verdict = domain::Verdict::kInconclusive;
  outcome.reason = "the run failed inside the server";
  outcome.error = "internal error: " + error;
  (void)Finish(id, experiment, outcome);
}

}  // namespace lab::server
