#include "server/runs/run_service.h"

#include "domain/run_locks.h"
#include "domain/sha256.h"
#include "server/json_codec.h"

namespace lab::server {

RunService::RunService(RunStore& store, RunQueue& queue, RunExecutor& executor,
                       RunLifecycle& lifecycle, RunObserver& observer)
    : store_(store),
      queue_(queue),
      executor_(executor),
      lifecycle_(lifecycle),
      observer_(observer),
      id_rng_(std::random_device{}()) {}

domain::Result<Recovery> RunService::Recover() {
  auto recovery = lifecycle_.Recover();
  if (!recovery.ok()) return recovery;
  for (const auto& run : recovery->queued) {
    const auto* spec = domain::FindExperiment(run.experiment);
    const auto locks = spec ? domain::LocksFor(*spec) : domain::RunLocks{};
    queue_.PushRecovered(QueuedRun{run.id, run.experiment, locks.exclusive, locks.shared});
  }
  auto halt = store_.GetSetting("halt");
  if (halt.ok() && halt->has_value()) {
    std::lock_guard lock(halt_mu_);
    halt_reason_ = **halt;
    queue_.SetPaused(true);
  }
  QueueChanged();
  return recovery;
}

Admission RunService::Admit(const domain::ExperimentSpec& spec, const domain::RunRequest& request,
                            const std::optional<std::string>& key, const Actor& actor) {
  using Outcome = Admission::Outcome;
  if (auto closed = Closed()) return *closed;
  Admission out;
  const std::string request_json = RequestToJson(request).dump();
  const std::string body_hash = domain::Sha256Hex(spec.id + "\n" + request_json);
  // The key's earlier run: the same request is answered with it, another one is refused.
  auto earlier = [&](const IdempotencyRecord& rec) {
    out.outcome = rec.body_hash == body_hash ? Outcome::kReplayed : Outcome::kKeyReused;
    out.run_id = rec.run_id;
    return out;
  };
  if (key) {
    auto found = store_.FindIdempotencyKey(actor.name, *key);
    if (!found.ok()) {
      out.error = found.error();
      return out;
    }
    if (found->has_value()) return earlier(**found);
  }
  // The place in the queue is reserved before the run is committed, so the bound holds under
  // concurrent requests.
  if (!queue_.TryReserve()) {
    observer_.AdmissionRejected("queue_full");
    out.outcome = Outcome::kQueueFull;
    out.detail = std::to_string(queue_.capacity());
    return out;
  }
  RunRecord run;
  run.id = NewRunId();
  run.experiment = spec.id;
  run.request_json = request_json;
  auto inserted = store_.InsertQueued(run, actor, key, body_hash);
  if (!inserted.ok()) {
    queue_.CancelReservation();
    if (key && inserted.error().code == domain::ErrorCode::kConflict) {  // a concurrent twin won
      auto found = store_.FindIdempotencyKey(actor.name, *key);
      if (found.ok() && found->has_value()) return earlier(**found);
    }
    out.error = inserted.error();
    return out;
  }
  const auto locks = domain::LocksFor(spec);
  queue_.PushReserved(QueuedRun{inserted->id, spec.id, locks.exclusive, locks.shared});
  QueueChanged();
  out.outcome = Outcome::kQueued;
  out.run = std::move(inserted).value();
  return out;
}

std::optional<Admission> RunService::Closed() {
  Admission out;
  if (auto reason = HaltReason()) {
    observer_.AdmissionRejected("halted");
    out.outcome = Admission::Outcome::kHalted;
    out.detail = *reason;
    return out;
  }
  if (draining_) {
    observer_.AdmissionRejected("shutting_down");
    out.outcome = Admission::Outcome::kDraining;
    return out;
  }
  return std::nullopt;
}

Cancellation RunService::Cancel(const std::string& id, const Actor& actor) {
  using Outcome = Cancellation::Outcome;
  Cancellation out;
  auto look = [&]() -> bool {  // false: the store failed or there is no such run
    auto run = store_.Get(id);
    if (!run.ok()) {
      out.error = run.error();
      return false;
    }
    out.run = *run;
    if (!out.run) out.outcome = Outcome::kUnknown;
    return out.run.has_value();
  };
  if (!look()) return out;
  if (domain::IsTerminal(out.run->state)) {
    out.outcome = Outcome::kFinished;
    return out;
  }
  // A run not yet finished is either waiting in the queue or claimed by the executor (a worker
  // claims it under the queue's lock as it takes it), so one look at each settles it.
  if (out.run->state == domain::RunState::kQueued && queue_.Remove(id)) {
    auto done = lifecycle_.CancelBeforeStart(id, out.run->experiment, actor);
    QueueChanged();
    if (!done.ok()) {
      out.outcome = Outcome::kFailed;
      out.error = done.error();
      return out;
    }
    out.outcome = Outcome::kCancelled;
    out.run = *done;
    return out;
  }
  if (executor_.Cancel(id, actor)) {
    out.outcome = Outcome::kRequested;
    return out;
  }
  // Neither waiting nor claimed: it finished between the first look and now.
  if (!look()) return out;
  out.outcome = domain::IsTerminal(out.run->state) ? Outcome::kFinished : Outcome::kNotHere;
  return out;
}

domain::Result<HaltResult> RunService::Halt(const std::string& reason, const Actor& actor) {
  if (auto s = store_.SetSetting("halt", reason, "halt.set", actor); !s.ok()) return s.error();
  {
    std::lock_guard lock(halt_mu_);
    halt_reason_ = reason;
  }
  queue_.SetPaused(true);
  HaltResult out;
  out.cancelled_runs = executor_.CancelAll(actor);
  out.queued_runs_waiting = queue_.Depth();
  return out;
}

domain::Status RunService::LiftHalt(const Actor& actor) {
  if (auto s = store_.SetSetting("halt", std::nullopt, "halt.lifted", actor); !s.ok()) return s;
  {
    std::lock_guard lock(halt_mu_);
    halt_reason_.reset();
  }
  queue_.SetPaused(false);
  return {};
}

std::optional<std::string> RunService::HaltReason() const {
  std::lock_guard lock(halt_mu_);
  return halt_reason_;
}

int RunService::Drain() {
  draining_ = true;
  queue_.SetPaused(true);
  return executor_.CancelAll(Actor{"system", ""});
}

std::string RunService::NewRunId() {
  std::lock_guard lock(id_mu_);
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id = "r";
  std::uint64_t v = id_rng_();
  for (int i = 0; i < 12; ++i) {
    id.push_back(kDigits[v % 36]);
    v /= 36;
  }
  return id;
}

}  // namespace lab::server
