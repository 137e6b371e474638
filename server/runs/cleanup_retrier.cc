#include "server/runs/cleanup_retrier.h"

#include <algorithm>
#include <iostream>

#include "domain/catalog.h"
#include "server/json_codec.h"
#include "server/time_format.h"

namespace lab::server {
namespace {

const Actor kSystem{"system", ""};

// The parts `cleanup` needs that the latest probe found unhealthy ("" when none). A part the
// probe does not watch (toxiproxy) cannot be judged and is tried.
std::string UnhealthyNeeded(const CleanupRecord& cleanup,
                            const std::vector<domain::PartHealth>& health) {
  std::string out;
  for (const auto& part : PartsForArtifacts(cleanup.artifacts)) {
    auto it = std::find_if(health.begin(), health.end(),
                           [&](const domain::PartHealth& p) { return p.part == part; });
    if (it != health.end() && !it->ok) out += (out.empty() ? "" : "; ") + part + ": " + it->detail;
  }
  return out;
}

// Steps a retried cleanup reports, appended to the finished run's log.
class StepLogReporter final : public domain::RunReporter {
 public:
  StepLogReporter(RunStore& store, std::string run_id)
      : store_(store), run_id_(std::move(run_id)) {}
  void Step(std::string_view message) override {
    (void)store_.AppendStep(run_id_, "cleanup retry: " + std::string(message));
  }
  void Progress(double) override {}
  void Created(std::string_view, const domain::Artifact&) override {}

 private:
  RunStore& store_;
  std::string run_id_;
};

}  // namespace

CleanupRetrier::CleanupRetrier(RunStore& store, const domain::Clock& clock, Attempt attempt,
                               Health health, CleanupRetrierOptions options)
    : store_(store),
      clock_(clock),
      attempt_(std::move(attempt)),
      health_(std::move(health)),
      options_(options) {
  RefreshCounts();
}

CleanupRetrier::~CleanupRetrier() { Stop(); }

void CleanupRetrier::Start() {
  thread_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
}

void CleanupRetrier::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  wake_.notify_all();
  thread_.join();
}

void CleanupRetrier::Wake() {
  RefreshCounts();
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  wake_.notify_all();
}

CleanupCounts CleanupRetrier::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

void CleanupRetrier::RefreshCounts() {
  auto counted = store_.CountCleanups();
  if (!counted.ok()) return;  // the last count stays; the next pass tries again
  std::lock_guard lock(mu_);
  counts_ = *counted;
}

std::chrono::seconds CleanupRetrier::Backoff(int attempts) const {
  auto wait = options_.first_backoff;
  for (int i = 1; i < attempts && wait < options_.max_backoff; ++i) wait *= 2;
  return std::min(wait, options_.max_backoff);
}

int CleanupRetrier::RunDue(const std::stop_token& stop) {
  std::lock_guard pass(pass_mu_);
  int attempted = 0;
  auto due = store_.DueCleanups(FormatTime(clock_.Now()));
  if (!due.ok()) {
    std::clog << "event=cleanup.retry_failed error=\"" << due.error().message << "\"\n";
    return 0;
  }
  std::optional<std::vector<domain::PartHealth>> health;
  if (!due->empty() && health_) health = health_();
  for (const auto& cleanup : *due) {
    if (stop.stop_requested()) break;
    if (cleanup.artifacts.empty()) {  // nothing the retrier may remove: done
      (void)store_.CompleteCleanup(cleanup.run_id, cleanup.attempts, kSystem);
      continue;
    }
    if (!health || !UnhealthyNeeded(cleanup, *health).empty()) continue;  // retried when healthy
    ++attempted;
    const int attempt_no = cleanup.attempts + 1;
    CleanupVerdict verdict;
    try {
      verdict = attempt_(cleanup);
    } catch (const std::exception& e) {
      verdict.remaining = cleanup.artifacts;
      verdict.error = std::string("the attempt failed inside the server: ") + e.what();
    }
    if (verdict.finished()) {
      (void)store_.AppendStep(cleanup.run_id,
                              "cleanup retry " + std::to_string(attempt_no) + ": finished, " +
                                  std::to_string(cleanup.artifacts.size()) + " artifacts removed");
      auto s = store_.CompleteCleanup(cleanup.run_id, attempt_no, kSystem);
      std::clog << "event=cleanup.completed run=" << cleanup.run_id << " attempts=" << attempt_no
                << (s.ok() ? "" : " store_error=\"" + s.error().message + "\"") << "\n";
      continue;
    }
    CleanupRecord next = cleanup;
    next.attempts = attempt_no;
    next.artifacts = verdict.remaining;
    next.last_error = verdict.error;
    const bool give_up = attempt_no >= options_.max_attempts;
    next.state = give_up ? CleanupRecord::kGivenUp : CleanupRecord::kPending;
    next.next_attempt_at = FormatTime(clock_.Now() + Backoff(attempt_no));
    (void)store_.AppendStep(
        cleanup.run_id,
        "cleanup retry " + std::to_string(attempt_no) + ": " +
            std::to_string(verdict.remaining.size()) + " artifacts left: " + verdict.error +
            (give_up ? " (given up after " + std::to_string(attempt_no) +
                           " attempts: DELETE /runs/" + cleanup.run_id + "/artifacts tries again)"
                     : " (next attempt at " + next.next_attempt_at + ")"));
    auto s = store_.RecordCleanupAttempt(next);
    std::clog << "event=cleanup.attempt_failed run=" << cleanup.run_id << " attempt=" << attempt_no
              << " left=" << verdict.remaining.size() << " error=\"" << verdict.error << "\""
              << (s.ok() ? "" : " store_error=\"" + s.error().message + "\"") << "\n";
  }
  RefreshCounts();
  return attempted;
}

void CleanupRetrier::Loop(const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    try {
      RunDue(stop);
    } catch (const std::exception& e) {  // nothing escapes the thread
      std::clog << "event=cleanup.retry_failed error=\"" << e.what() << "\"\n";
    }
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, stop, options_.poll, [this] { return woken_; });
    woken_ = false;
  }
}

domain::Result<int> SweepRunsNeverCleaned(RunStore& store) {
  auto ids = store.RunsNeverCleaned();
  if (!ids.ok()) return ids.error();
  int queued = 0;
  for (const auto& id : *ids) {
    auto created = store.Artifacts(id);
    if (!created.ok()) return created.error();
    std::vector<domain::Artifact> artifacts;
    for (const auto& r : *created) artifacts.push_back(r.artifact);
    auto run = store.Get(id);
    std::string state = run.ok() && run->has_value() ? std::string(domain::ToString((*run)->state))
                                                     : std::string("finished");
    auto q = store.QueueCleanup(
        id, RetryableArtifacts(artifacts),
        "swept at start: the run ended " + state + " and its cleanup never ran to its end",
        "run.cleanup.swept", kSystem);
    if (!q.ok()) return q.error();
    ++queued;
  }
  return queued;
}

CleanupRetrier::Attempt RunnerCleanupAttempt(
    RunStore& store, std::map<std::string, domain::ExperimentRunner*> runners,
    domain::StackProbe* probe, std::chrono::milliseconds probe_timeout) {
  return [&store, runners = std::move(runners), probe,
          probe_timeout](const CleanupRecord& cleanup) -> CleanupVerdict {
    CleanupVerdict cannot;
    cannot.remaining = cleanup.artifacts;
    auto run = store.Get(cleanup.run_id);
    if (!run.ok() || !run->has_value()) {
      cannot.error = "the run cannot be read: " + (run.ok() ? "gone" : run.error().message);
      return cannot;
    }
    const RunRecord& r = **run;
    auto it = runners.find(r.experiment);
    const domain::ExperimentSpec* spec = domain::FindExperiment(r.experiment);
    if (it == runners.end() || spec == nullptr) {
      cannot.error = "no runner for " + r.experiment + " in this server";
      return cannot;
    }
    Json stored = Json::parse(r.request_json, nullptr, false);
    if (!stored.is_object()) stored = Json::object();
    domain::RunRequest request = RequestFromJson(*spec, stored);
    StepLogReporter log(store, r.id);
    domain::RunContext ctx;
    ctx.run_id = r.id;
    ctx.repetition = std::max(0, request.repeat - 1);
    ctx.ns = RunNamespace(r.id, ctx.repetition);
    ctx.params = request.params;
    ctx.reporter = &log;
    return AttemptCleanup(*it->second, ctx, cleanup.artifacts, probe, probe_timeout);
  };
}

}  // namespace lab::server
