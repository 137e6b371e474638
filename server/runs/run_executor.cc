#include "server/runs/run_executor.h"

#include <condition_variable>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include "domain/verdict.h"
#include "server/json_codec.h"
#include "server/runs/artifact_cleanup.h"
#include "server/runs/step_text.h"

namespace lab::server {
namespace {

const Actor kSystem{"system", ""};

// Stores steps and progress as the runner reports them; maps a mode's 0..100 into the run's
// overall window so the progress bar moves once across all repetitions and modes.
class StoreReporter : public domain::RunReporter {
 public:
  StoreReporter(RunStore& store, LabMetrics& metrics, std::string run_id)
      : store_(store), metrics_(metrics), run_id_(std::move(run_id)) {}
  ~StoreReporter() override { EndPipelineSignals(); }
  // The run's gauges stop being measured: before its final state is stored, so that whoever
  // sees the run ended sees its series gone too.
  void EndPipelineSignals() {
    std::lock_guard lock(gauges_mu_);
    for (const auto& [name, labels] : gauges_) metrics_.PipelineGaugeEnded(name, labels);
    gauges_.clear();
  }
  StoreReporter(const StoreReporter&) = delete;
  StoreReporter& operator=(const StoreReporter&) = delete;

  void SetWindow(double lo, double hi, std::string mode) {
    lo_ = lo;
    hi_ = hi;
    mode_ = std::move(mode);
    Progress(0);
  }

  void Step(std::string_view message) override {
    std::string text = StepText(mode_, message);
    last_step_ = text;
    (void)store_.AppendStep(run_id_, text);
    (void)store_.UpdateProgress(run_id_, current_, last_step_);
    std::clog << "event=run.step run=" << run_id_ << " message=\"" << text << "\"\n";
  }

  void Progress(double percent) override {
    double p = std::clamp(percent, 0.0, 100.0);
    current_ = lo_ + (hi_ - lo_) * p / 100.0;
    (void)store_.UpdateProgress(run_id_, current_, last_step_);
  }

  void Created(std::string_view mode, const domain::Artifact& artifact) override {
    (void)store_.RecordArtifact(run_id_, std::string(mode), artifact);
  }

  void Gauge(std::string_view name, const std::map<std::string, std::string>& labels,
             double value) override {
    metrics_.PipelineGauge(name, labels, value);
    std::lock_guard lock(gauges_mu_);
    gauges_.emplace(std::string(name), labels);
  }
  void Count(std::string_view name, const std::map<std::string, std::string>& labels,
             double increment) override {
    metrics_.PipelineCount(name, labels, increment);
  }

 private:
  RunStore& store_;
  LabMetrics& metrics_;
  std::string run_id_;
  double lo_ = 0;
  double hi_ = 100;
  double current_ = 0;
  std::string mode_;
  std::string last_step_;
  std::mutex gauges_mu_;
  std::set<std::pair<std::string, std::map<std::string, std::string>>> gauges_;  // gauges_mu_
};

Json HealthToJson(const std::vector<domain::PartHealth>& parts) {
  Json out = Json::object();
  for (const auto& p : parts) {
    out[p.part] = {
        {"ok", p.ok}, {"latency_ms", p.latency_ms}, {"version", p.version}, {"detail", p.detail}};
  }
  return out;
}

std::string Unhealthy(const std::vector<domain::PartHealth>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!p.ok) out += (out.empty() ? "" : "; ") + p.part + ": " + p.detail;
  }
  return out;
}

}  // namespace

RunExecutor::RunExecutor(RunStore& store, std::map<std::string, domain::ExperimentRunner*> runners,
                         domain::StackProbe* probe, LabMetrics& metrics, StackHealth& health,
                         ExecutorOptions options)
    : store_(store),
      runners_(std::move(runners)),
      probe_(probe),
      metrics_(metrics),
      health_(health),
      options_(options) {}

bool RunExecutor::Cancel(const std::string& id, const Actor& actor) {
  std::lock_guard lock(active_mu_);
  auto it = active_.find(id);
  if (it == active_.end()) return false;
  {
    std::lock_guard by(it->second->by_mu);
    if (!it->second->cancelled.exchange(true)) it->second->cancelled_by = actor;
  }
  it->second->stop.request_stop();
  return true;
}

int RunExecutor::CancelAll(const Actor& actor) {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(active_mu_);
    for (const auto& [id, _] : active_) ids.push_back(id);
  }
  int n = 0;
  for (const auto& id : ids) n += Cancel(id, actor) ? 1 : 0;
  return n;
}

bool RunExecutor::IsRunning(const std::string& id) const {
  std::lock_guard lock(active_mu_);
  return active_.count(id) > 0;
}

void RunExecutor::Claim(const std::string& id) {
  std::lock_guard lock(active_mu_);
  active_.try_emplace(id, std::make_shared<Active>());
}

void RunExecutor::Execute(const QueuedRun& run) {
  std::shared_ptr<Active> active;
  {
    std::lock_guard lock(active_mu_);
    auto [it, inserted] = active_.try_emplace(run.id, std::make_shared<Active>());
    active = it->second;
  }
  metrics_.RunActive(run.experiment, 1);
  try {
    ExecuteChecked(run, *active);
  } catch (const std::exception& e) {
    // Last line of defence: nothing escapes a worker thread.
    std::clog << "event=run.crashed run=" << run.id << " error=\"" << e.what() << "\"\n";
    RunTransition t;
    t.to = domain::RunState::kFailed;
    t.verdict = domain::Verdict::kInconclusive;
    t.verdict_reason = "the run failed inside the server";
    t.error = std::string("internal error: ") + e.what();
    t.audit_action = "run.failed";
    (void)store_.Transition(run.id, t, kSystem);
  }
  metrics_.RunActive(run.experiment, -1);
  std::lock_guard lock(active_mu_);
  active_.erase(run.id);
}

void RunExecutor::ExecuteChecked(const QueuedRun& queued, Active& active) {
  const auto started = std::chrono::steady_clock::now();
  const domain::ExperimentSpec* spec = domain::FindExperiment(queued.experiment);
  auto runner_it = runners_.find(queued.experiment);
  auto record = store_.Get(queued.id);
  if (!record.ok() || !record->has_value() || spec == nullptr || runner_it == runners_.end()) {
    std::clog << "event=run.skipped run=" << queued.id << " reason=\"not runnable\"\n";
    return;
  }
  if (active.cancelled) {  // cancelled after a worker claimed it, before it started
    const Actor by = active.CancelledBy();
    RunTransition t;
    t.to = domain::RunState::kCancelled;
    t.error = "cancelled by " + by.name + " before it started";
    t.audit_action = "run.cancelled";
    if (auto done = store_.Transition(queued.id, t, by); done.ok())
      metrics_.RunFinished(queued.experiment, "cancelled", "none", 0);
    return;
  }
  RunTransition start;
  start.to = domain::RunState::kRunning;
  start.audit_action = "run.started";
  auto running = store_.Transition(queued.id, start, kSystem);
  if (!running.ok()) {  // e.g. cancelled while it waited
    std::clog << "event=run.not_started run=" << queued.id << " reason=\""
              << running.error().message << "\"\n";
    return;
  }
  domain::ExperimentRunner& runner = *runner_it->second;
  domain::RunRequest request = RequestFromJson(*spec, Json::parse(running->request_json));
  StoreReporter reporter(store_, metrics_, queued.id);

  // The per-run timeout: a watchdog that asks the run to stop when the deadline passes.
  std::jthread watchdog([&active, seconds = request.timeout_seconds](std::stop_token done) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    if (!cv.wait_for(lock, done, std::chrono::seconds(seconds), [] { return false; }) &&
        !done.stop_requested()) {
      active.timed_out = true;
      active.stop.request_stop();
    }
  });

  Json result = {{"evidence", Json::object()},
                 {"configuration", Json::parse(runner.ConfigurationJson(), nullptr, false)}};
  if (result["configuration"].is_discarded()) result["configuration"] = Json::object();
  result["configuration"]["request"] = RequestToJson(request);

  // The cleanup's durable record, given to the final transition (pending: what is left).
  std::optional<CleanupRecord> cleanup_record;
  auto finish = [&](domain::RunState state, std::optional<domain::Verdict> verdict,
                    std::string reason, std::optional<std::string> error) {
    watchdog.request_stop();
    reporter.EndPipelineSignals();
    auto artifacts = store_.Artifacts(queued.id);
    if (artifacts.ok()) result["artifacts"] = ArtifactsByMode(*artifacts);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    result["duration_seconds"] = seconds;
    RunTransition t;
    t.to = state;
    t.verdict = verdict;
    t.verdict_reason = std::move(reason);
    t.result_json = result.dump();
    t.error = std::move(error);
    t.audit_action = "run." + std::string(domain::ToString(state));
    t.cleanup = cleanup_record;
    Actor actor = kSystem;
    if (state == domain::RunState::kCancelled) actor = active.CancelledBy();
    auto done = store_.Transition(queued.id, t, actor);
    if (!done.ok()) {
      std::clog << "event=run.store_failed run=" << queued.id << " error=\"" << done.error().message
                << "\"\n";
    }
    if (done.ok() && cleanup_record && cleanup_record->state == CleanupRecord::kPending &&
        options_.on_cleanup_pending) {
      options_.on_cleanup_pending(queued.id);
    }
    std::string verdict_text = verdict ? std::string(domain::ToString(*verdict)) : "none";
    metrics_.RunFinished(queued.experiment, domain::ToString(state), verdict_text, seconds);
    if (verdict) metrics_.SetLastVerdict(queued.experiment, verdict_text);
    std::clog << "event=run.finished run=" << queued.id << " experiment=" << queued.experiment
              << " state=" << domain::ToString(state) << " verdict=" << verdict_text
              << " seconds=" << seconds << "\n";
  };

  // Preflight: the parts this experiment needs must be healthy before anything starts.
  if (probe_ != nullptr && !spec->requires_parts.empty()) {
    reporter.Step("preflight: checking " + std::to_string(spec->requires_parts.size()) +
                  " stack parts");
    auto health = probe_->Check(spec->requires_parts, options_.probe_timeout);
    result["stack"] = HealthToJson(health);
    std::string bad = Unhealthy(health);
    if (!bad.empty()) {
      reporter.Step("preflight failed: " + bad);
      finish(domain::RunState::kFailed, domain::Verdict::kInconclusive,
             "the stack is not healthy, so the run did not start: " + bad,
             "preflight failed: " + bad);
      return;
    }
  }

  std::vector<domain::VerdictDecision> decisions;
  Json repetitions = Json::array();
  Json client_failures = Json::array();
  Json mode_seconds = Json::object();
  std::optional<std::string> run_error;
  const int total_steps = request.repeat * static_cast<int>(request.modes.size());
  int step_index = 0;
  domain::RunContext last_ctx;
  for (int rep = 0; rep < request.repeat && !active.stop.stop_requested() && !run_error; ++rep) {
    domain::RunContext ctx;
    ctx.run_id = queued.id;
    ctx.ns = RunNamespace(queued.id, rep);
    ctx.params = request.params;
    ctx.keep_artifacts = request.keep_artifacts;
    ctx.stop = active.stop.get_token();
    ctx.reporter = &reporter;
    ctx.repetition = rep;
    last_ctx = ctx;
    domain::EvidenceMetrics metrics;
    std::map<std::string, std::string> inconclusive;
    Json evidence = Json::object();
    for (const auto& mode : request.modes) {
      if (active.stop.stop_requested()) break;
      double lo = 100.0 * step_index / total_steps;
      double hi = 100.0 * (step_index + 1) / total_steps;
      reporter.SetWindow(lo, hi,
                         request.repeat > 1 ? "#" + std::to_string(rep + 1) + " " + mode : mode);
      reporter.Step("started");
      auto mode_started = std::chrono::steady_clock::now();
      domain::ModeResult outcome;
      try {
        outcome = runner.RunMode(ctx, mode);
      } catch (const std::exception& e) {
        run_error = "mode " + mode + " failed: " + e.what();
        reporter.Step(*run_error);
        break;
      }
      double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - mode_started).count();
      mode_seconds[mode] = secs;
      for (const auto& a : outcome.artifacts) reporter.Created(mode, a);
      Json details = Json::parse(outcome.details_json, nullptr, false);
      evidence[mode] = {{"metrics", outcome.metrics},
                        {"details", details.is_discarded() ? Json(outcome.details_json) : details}};
      if (outcome.inconclusive) {
        evidence[mode]["inconclusive"] = *outcome.inconclusive;
        inconclusive[mode] = *outcome.inconclusive;
      }
      for (const auto& f : outcome.client_library_failures) {
        client_failures.push_back({{"mode", mode}, {"repetition", rep}, {"failure", f}});
      }
      metrics[mode] = outcome.metrics;
      reporter.Step("finished in " + std::to_string(secs).substr(0, 5) + " s");
      ++step_index;
    }
    if (active.stop.stop_requested() || run_error) {
      result["evidence"] = evidence;
      break;
    }
    auto decision = domain::DecideVerdict(spec->criteria, metrics, inconclusive);
    decisions.push_back(decision);
    result["evidence"] = evidence;
    repetitions.push_back({{"index", rep},
                           {"verdict", std::string(domain::ToString(decision.verdict))},
                           {"reason", decision.reason},
                           {"evidence", evidence}});
  }
  if (request.repeat > 1) result["repetitions"] = repetitions;
  result["client_library_failures"] = client_failures;
  result["mode_seconds"] = mode_seconds;

  // Cleanup runs whatever happened, with its own token: a cancel must not cut it short. What it
  // could not remove is judged after the postflight (the runner reports its failures as steps
  // and returns) and recorded with the final state, for the retrier.
  reporter.SetWindow(100, 100, "");
  std::vector<domain::Artifact> artifacts;
  if (auto created = store_.Artifacts(queued.id); created.ok()) {
    for (const auto& r : *created) artifacts.push_back(r.artifact);
  }
  std::optional<std::string> cleanup_thrown;
  CleanupReporter cleanup_reporter(&reporter);
  if (request.keep_artifacts) {
    reporter.Step("cleanup skipped: keep_artifacts is set, the artifacts stay for inspection");
  } else {
    domain::RunContext cleanup_ctx = last_ctx;
    cleanup_ctx.stop = std::stop_token();
    cleanup_ctx.run_id = queued.id;
    cleanup_ctx.reporter = &cleanup_reporter;
    try {
      reporter.Step("cleanup: removing " + std::to_string(artifacts.size()) + " artifacts");
      runner.Cleanup(cleanup_ctx, artifacts);
    } catch (const std::exception& e) {
      reporter.Step(std::string("cleanup failed: ") + e.what());
      result["cleanup_error"] = e.what();
      cleanup_thrown = e.what();
    }
  }

  // Postflight: a run that leaves the stack unhealthy marks it dirty.
  std::vector<domain::PartHealth> after;
  if (probe_ != nullptr && !spec->requires_parts.empty()) {
    auto health = probe_->Check(spec->requires_parts, options_.probe_timeout);
    after = health;
    result["postflight"] = HealthToJson(health);
    std::string bad = Unhealthy(health);
    for (const auto& part : health_.Record(health, "after run " + queued.id)) {
      reporter.Step("postflight: recovered: " + part);
      (void)store_.AppendAudit("stack.recovered", part.substr(0, part.find(' ')), "",
                               Json{{"was", part}, {"checked_after", queued.id}}.dump(
                                   -1, ' ', false, Json::error_handler_t::replace),
                               Actor{"system", ""});
    }
    metrics_.SetStackDirty(health_.dirty());
    if (!bad.empty()) reporter.Step("postflight: the stack has not recovered: " + bad);
  }

  if (!request.keep_artifacts && !artifacts.empty()) {
    auto verdict = JudgeCleanup(artifacts, cleanup_thrown, cleanup_reporter.errors(), after);
    cleanup_record.emplace();
    if (verdict.finished()) {
      cleanup_record->state = CleanupRecord::kDone;
      cleanup_record->reason = "the run's cleanup";
    } else {
      cleanup_record->state = CleanupRecord::kPending;
      cleanup_record->reason = "the run's cleanup could not finish";
      cleanup_record->artifacts = verdict.remaining;
      cleanup_record->last_error = verdict.error;
      result["cleanup_pending"] = {{"artifacts", verdict.remaining.size()},
                                   {"error", verdict.error}};
      reporter.Step("cleanup pending: " + std::to_string(verdict.remaining.size()) +
                    " artifacts left (" + verdict.error + "); retried when the stack is healthy");
    }
  }

  if (active.timed_out) {
    finish(domain::RunState::kFailed, domain::Verdict::kInconclusive,
           "the run timed out after " + std::to_string(request.timeout_seconds) + " s",
           "timed out after " + std::to_string(request.timeout_seconds) + " s");
  } else if (active.cancelled) {
    finish(domain::RunState::kCancelled, std::nullopt, "",
           "cancelled by " + active.CancelledBy().name);
  } else if (run_error) {
    finish(domain::RunState::kFailed, domain::Verdict::kInconclusive, *run_error, run_error);
  } else {
    auto verdict = domain::AggregateRepeats(decisions);
    finish(domain::RunState::kCompleted, verdict.verdict, verdict.reason, std::nullopt);
  }
}

}  // namespace lab::server
