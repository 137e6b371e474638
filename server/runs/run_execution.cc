#include "server/runs/run_execution.h"

#include <condition_variable>

#include "domain/verdict.h"
#include "server/json_codec.h"

namespace lab::server {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<domain::Artifact> RecordedArtifacts(RunStore& store, const std::string& run_id) {
  std::vector<domain::Artifact> out;
  if (auto created = store.Artifacts(run_id); created.ok()) {
    for (const auto& r : *created) out.push_back(r.artifact);
  }
  return out;
}

}  // namespace

bool WaitOnSteadyClock(std::chrono::seconds limit, std::stop_token done) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  return !cv.wait_for(lock, done, limit, [] { return false; }) && !done.stop_requested();
}

void RunControl::Cancel(const Actor& by) {
  {
    std::lock_guard lock(by_mu_);
    if (!cancelled.exchange(true)) cancelled_by_ = by;
  }
  stop.request_stop();
}

Actor RunControl::CancelledBy() const {
  std::lock_guard lock(by_mu_);
  return cancelled_by_;
}

RunExecution::RunExecution(const ExecutionParts& parts, const RunRecord& running,
                           const domain::ExperimentSpec& spec, domain::ExperimentRunner& runner,
                           RunControl& control)
    : parts_(parts),
      run_id_(running.id),
      experiment_(running.experiment),
      spec_(spec),
      runner_(runner),
      control_(control),
      request_(RequestFromJson(spec, Json::parse(running.request_json))),
      reporter_(parts.store, parts.observer, running.id),
      evidence_(runner, request_),
      // The per-run timeout: asks the run to stop when the deadline passes.
      watchdog_([this](std::stop_token done) {
        if (parts_.options.deadline_wait(std::chrono::seconds(request_.timeout_seconds), done)) {
          control_.timed_out = true;
          control_.stop.request_stop();
        }
      }) {}

RunExecution::~RunExecution() { watchdog_.request_stop(); }

void RunExecution::Run() {
  if (!Preflight()) return;
  Repetitions();
  CleanUp();
  Postflight();
  JudgeTheCleanup();
  Finish(Ending());
}

bool RunExecution::Preflight() {
  if (parts_.probe == nullptr || spec_.requires_parts.empty()) return true;
  reporter_.Step("preflight: checking " + std::to_string(spec_.requires_parts.size()) +
                 " stack parts");
  auto health = parts_.probe->Check(spec_.requires_parts, parts_.options.probe_timeout);
  evidence_.Preflight(health);
  const std::string bad = UnhealthyParts(health);
  if (bad.empty()) return true;
  reporter_.Step("preflight failed: " + bad);
  RunOutcome outcome;
  outcome.state = domain::RunState::kFailed;
  outcome.verdict = domain::Verdict::kInconclusive;
  outcome.reason = "the stack is not healthy, so the run did not start: " + bad;
  outcome.error = "preflight failed: " + bad;
  Finish(std::move(outcome));
  return false;
}

domain::RunContext RunExecution::ContextFor(int repetition) {
  domain::RunContext ctx;
  ctx.run_id = run_id_;
  ctx.ns = RunNamespace(run_id_, repetition);
  ctx.params = request_.params;
  ctx.keep_artifacts = request_.keep_artifacts;
  ctx.stop = control_.stop.get_token();
  ctx.reporter = &reporter_;
  ctx.repetition = repetition;
  return ctx;
}

void RunExecution::Repetitions() {
  int step_index = 0;
  for (int rep = 0; rep < request_.repeat; ++rep) {
    if (control_.stop.stop_requested()) break;
    last_repetition_ = rep;
    if (!Repetition(rep, step_index)) break;
  }
}

bool RunExecution::Repetition(int rep, int& step_index) {
  const domain::RunContext ctx = ContextFor(rep);
  const int total_steps = request_.repeat * static_cast<int>(request_.modes.size());
  domain::EvidenceMetrics metrics;
  std::map<std::string, std::string> inconclusive;
  for (const auto& mode : request_.modes) {
    if (control_.stop.stop_requested()) break;
    reporter_.SetWindow(100.0 * step_index / total_steps, 100.0 * (step_index + 1) / total_steps,
                        request_.repeat > 1 ? "#" + std::to_string(rep + 1) + " " + mode : mode);
    reporter_.Step("started");
    const auto mode_started = std::chrono::steady_clock::now();
    domain::ModeResult outcome;
    try {
      outcome = runner_.RunMode(ctx, mode);
    } catch (const std::exception& e) {
      run_error_ = "mode " + mode + " failed: " + e.what();
      reporter_.Step(*run_error_);
      break;
    }
    const double seconds = SecondsSince(mode_started);
    evidence_.Mode(rep, mode, outcome, seconds);
    if (outcome.inconclusive) inconclusive[mode] = *outcome.inconclusive;
    metrics[mode] = outcome.metrics;
    reporter_.Step("finished in " + std::to_string(seconds).substr(0, 5) + " s");
    ++step_index;
  }
  if (control_.stop.stop_requested() || run_error_) {
    evidence_.EndRepetition(rep, nullptr);
    return false;
  }
  decisions_.push_back(domain::DecideVerdict(spec_.criteria, metrics, inconclusive));
  evidence_.EndRepetition(rep, &decisions_.back());
  return true;
}

// Runs whatever happened, with its own token: a cancel must not cut it short. What it could not
// remove is judged after the postflight (the runner reports its failures as steps and returns).
void RunExecution::CleanUp() {
  reporter_.SetWindow(100, 100, "");
  artifacts_ = RecordedArtifacts(parts_.store, run_id_);
  if (request_.keep_artifacts) {
    reporter_.Step("cleanup skipped: keep_artifacts is set, the artifacts stay for inspection");
    return;
  }
  domain::RunContext ctx = ContextFor(last_repetition_);
  ctx.stop = std::stop_token();
  ctx.reporter = &cleanup_reporter_;
  try {
    reporter_.Step("cleanup: removing " + std::to_string(artifacts_.size()) + " artifacts");
    runner_.Cleanup(ctx, artifacts_);
  } catch (const std::exception& e) {
    reporter_.Step(std::string("cleanup failed: ") + e.what());
    evidence_.CleanupThrew(e.what());
    cleanup_thrown_ = e.what();
  }
}

// A run that leaves the stack unhealthy marks it dirty; one that finds a part healthy again
// clears it.
void RunExecution::Postflight() {
  if (parts_.probe == nullptr || spec_.requires_parts.empty()) return;
  after_ = parts_.probe->Check(spec_.requires_parts, parts_.options.probe_timeout);
  evidence_.Postflight(after_);
  for (const auto& part : parts_.health.Record(after_, "after run " + run_id_)) {
    reporter_.Step("postflight: recovered: " + part);
    (void)parts_.store.AppendAudit("stack.recovered", part.substr(0, part.find(' ')), "",
                                   Json{{"was", part}, {"checked_after", run_id_}}.dump(
                                       -1, ' ', false, Json::error_handler_t::replace),
                                   Actor{"system", ""});
  }
  parts_.observer.StackDirty(parts_.health.dirty());
  if (const std::string bad = UnhealthyParts(after_); !bad.empty())
    reporter_.Step("postflight: the stack has not recovered: " + bad);
}

// The cleanup's durable record, stored with the final state (pending: what is left, for the
// retrier).
void RunExecution::JudgeTheCleanup() {
  if (request_.keep_artifacts || artifacts_.empty()) return;
  auto verdict = JudgeCleanup(artifacts_, cleanup_thrown_, cleanup_reporter_.errors(), after_);
  cleanup_record_.emplace();
  if (verdict.finished()) {
    cleanup_record_->state = CleanupRecord::kDone;
    cleanup_record_->reason = "the run's cleanup";
    return;
  }
  cleanup_record_->state = CleanupRecord::kPending;
  cleanup_record_->reason = "the run's cleanup could not finish";
  cleanup_record_->artifacts = verdict.remaining;
  cleanup_record_->last_error = verdict.error;
  evidence_.CleanupPending(verdict.remaining.size(), verdict.error);
  reporter_.Step("cleanup pending: " + std::to_string(verdict.remaining.size()) +
                 " artifacts left (" + verdict.error + "); retried when the stack is healthy");
}

RunOutcome RunExecution::Ending() const {
  RunOutcome outcome;
  const std::string limit = std::to_string(request_.timeout_seconds) + " s";
  if (control_.timed_out) {
    outcome.state = domain::RunState::kFailed;
    outcome.verdict = domain::Verdict::kInconclusive;
    outcome.reason = "the run timed out after " + limit;
    outcome.error = "timed out after " + limit;
  } else if (control_.cancelled) {
    outcome.state = domain::RunState::kCancelled;
    outcome.error = "cancelled by " + control_.CancelledBy().name;
    outcome.actor = control_.CancelledBy();
  } else if (run_error_) {
    outcome.state = domain::RunState::kFailed;
    outcome.verdict = domain::Verdict::kInconclusive;
    outcome.reason = *run_error_;
    outcome.error = run_error_;
  } else {
    auto verdict = domain::AggregateRepeats(decisions_);
    outcome.verdict = verdict.verdict;
    outcome.reason = verdict.reason;
  }
  return outcome;
}

void RunExecution::Finish(RunOutcome outcome) {
  watchdog_.request_stop();
  reporter_.EndPipelineSignals();
  std::vector<ArtifactRecord> artifacts;
  if (auto recorded = parts_.store.Artifacts(run_id_); recorded.ok()) artifacts = *recorded;
  outcome.seconds = SecondsSince(started_);
  outcome.result_json = evidence_.Text(artifacts, outcome.seconds);
  outcome.cleanup = cleanup_record_;
  auto done = parts_.lifecycle.Finish(run_id_, experiment_, outcome);
  if (done.ok() && cleanup_record_ && cleanup_record_->state == CleanupRecord::kPending &&
      parts_.options.on_cleanup_pending) {
    parts_.options.on_cleanup_pending(run_id_);
  }
}

}  // namespace lab::server
