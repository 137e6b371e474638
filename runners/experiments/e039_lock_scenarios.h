// The lock scenarios E-039A and E-039B share (implemented in e039_lock_scenarios.cc): real
// `lab-role lock-holder` processes contend for one Redis lock per scenario while the runner
// injects the scenario's fault (SIGSTOP, SIGKILL) at the moment a holder entered its critical
// section; overlapping critical sections are then counted from lock_interval.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runners/experiments/experiment_base.h"

namespace lab::runners {

// How the holders of a scenario treat the lock and the resource.
struct LockPractice {
  bool writes = false;       // holders write the scenario's fenced_resource row (E-039B)
  bool fenced = false;       // the store refuses a token older than the newest it accepted
  bool safe_unlock = false;  // compare-and-delete instead of DEL
};

// What one scenario left. `inconclusive` is set when it could not decide (a holder that failed,
// a fault that did not fire, a count that could not be taken); the numbers are then partial.
struct ScenarioOutcome {
  std::string scenario;
  std::string inconclusive;
  std::int64_t overlaps = -1;  // pairs of overlapping sections of different holders (read back)
  double overlap_ms = 0;       // their summed overlap
  bool paused = false;         // pause: /proc/<pid>/stat showed state T after SIGSTOP
  double pause_ms = 0;         // pause: SIGSTOP to SIGCONT, runner's clock
  bool killed = false;         // crash_restart: waitpid reported SIGKILL
  int foreign_reported = 0;    // holders' own unlock lines: DEL removed another holder's value
  int foreign_verified = 0;    // runner: a live lock of a holder still inside was gone
  int kept_foreign = 0;        // compare-and-delete left another holder's lock in place
  int writes_accepted = 0;     // holders' own write lines
  int writes_refused = 0;
  nlohmann::json details = nlohmann::json::object();
};

class LockScenarios : public ExperimentBase {
 public:
  static const std::vector<std::string>& Scenarios();  // pause, unsafe_unlock, ...

 protected:
  explicit LockScenarios(StackConfig config) : ExperimentBase(std::move(config)) {}

  // Runs `scenario` with fresh holders under the run's Redis prefix and run_ns.
  ScenarioOutcome RunScenario(const domain::RunContext& ctx, const std::string& mode,
                              domain::ModeResult& result, mysql::Connection& db,
                              const std::string& scenario, const LockPractice& practice) const;
  // "lab:<ns>:<mode>[_rN]:": the run's lock and token keys live under it.
  static std::string KeyPrefix(const domain::RunContext& ctx, const std::string& mode);
};

}  // namespace lab::runners
