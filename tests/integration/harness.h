// Drives runners directly (MakeRunners + a recording RunReporter), the way a worker does:
// defaults from the catalog, each mode in turn, the verdict from the catalog's criteria,
// cleanup at the end.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "domain/catalog.h"
#include "domain/ports.h"
#include "domain/verdict.h"
#include "runners/stack_config.h"

namespace lab::testing {

class RecordingReporter final : public domain::RunReporter {
 public:
  void Step(std::string_view message) override;
  void Progress(double percent) override;
  void Created(std::string_view mode, const domain::Artifact& artifact) override;
  std::vector<domain::Artifact> artifacts() const;
  std::vector<std::string> steps() const;
  bool echo = false;
  // Called on the runner's thread as each step is logged, so a test can act at an exact point
  // of a run (e.g. stop it while a fault is active) instead of guessing from outside.
  std::function<void(std::string_view)> on_step;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> steps_;           // guarded by mu_
  std::vector<domain::Artifact> artifacts_;  // guarded by mu_
};

struct RunOutcome {
  std::map<std::string, domain::ModeResult> modes;
  domain::VerdictDecision verdict;
  double seconds = 0;
  std::vector<domain::Artifact> artifacts;
  std::vector<std::string> steps;  // the run's step log, when the run went through the API
};

runners::StackConfig TestStackConfig();

// Runs `modes` (empty: all of the experiment's) with the catalog defaults overridden by `params`.
RunOutcome RunExperiment(const std::string& id,
                         const std::map<std::string, domain::ParamValue>& params,
                         std::vector<std::string> modes = {}, bool echo = false,
                         std::stop_token stop = {}, const std::string& ns_hint = "",
                         std::function<void(std::string_view)> on_step = {});

std::string Describe(const RunOutcome& outcome);
// The experiment's own cleanup over the artifacts a keep_artifacts run left (topics, groups,
// rows, keys, Redis settings), once a test has recounted them.
void CleanupKept(const std::string& id, const RunOutcome& outcome);

}  // namespace lab::testing
