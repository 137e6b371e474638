#include "server/runs/run_executor.h"

#include <vector>

namespace lab::server {

RunExecutor::RunExecutor(RunStore& store, RunLifecycle& lifecycle, RunObserver& observer,
                         std::map<std::string, domain::ExperimentRunner*> runners,
                         domain::StackProbe* probe, StackHealth& health, ExecutorOptions options)
    : store_(store),
      lifecycle_(lifecycle),
      observer_(observer),
      runners_(std::move(runners)),
      probe_(probe),
      health_(health),
      options_(std::move(options)) {}

bool RunExecutor::Cancel(const std::string& id, const Actor& actor) {
  std::lock_guard lock(active_mu_);
  auto it = active_.find(id);
  if (it == active_.end()) return false;
  it->second->Cancel(actor);
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
  active_.try_emplace(id, std::make_shared<RunControl>());
}

void RunExecutor::Execute(const QueuedRun& run) {
  std::shared_ptr<RunControl> control;
  {
    std::lock_guard lock(active_mu_);
    control = active_.try_emplace(run.id, std::make_shared<RunControl>()).first->second;
  }
  observer_.Executing(run.experiment, 1);
  try {
    Start(run, *control);
  } catch (const std::exception& e) {
    // Last line of defence: nothing escapes a worker thread.
    lifecycle_.FailInside(run.id, run.experiment, e.what());
  }
  observer_.Executing(run.experiment, -1);
  std::lock_guard lock(active_mu_);
  active_.erase(run.id);
}

void RunExecutor::Start(const QueuedRun& queued, RunControl& control) {
  const domain::ExperimentSpec* spec = domain::FindExperiment(queued.experiment);
  auto runner = runners_.find(queued.experiment);
  if (spec == nullptr || runner == runners_.end()) {
    observer_.Trouble(queued.id, "run.skipped", "not runnable");
    return;
  }
  if (control.cancelled) {  // cancelled after a worker claimed it, before it started
    (void)lifecycle_.CancelBeforeStart(queued.id, queued.experiment, control.CancelledBy());
    return;
  }
  auto running = lifecycle_.Start(queued.id);
  if (!running.ok()) {  // e.g. cancelled while it waited
    observer_.Trouble(queued.id, "run.not_started", running.error().message);
    return;
  }
  const ExecutionParts parts{store_, lifecycle_, observer_, probe_, health_, options_};
  RunExecution(parts, *running, *spec, *runner->second, control).Run();
}

}  // namespace lab::server
