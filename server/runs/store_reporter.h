// The RunReporter a runner talks to while its run executes: steps, progress and artifacts go to
// the store (and so to GET /runs/{id} and its event stream), pipeline signals to the observer.
//
// The progress contract (domain::RunReporter::Progress): a runner reports 0..100 of the mode it
// is running; this reporter maps it into the mode's window of the whole run (SetWindow), so the
// run's progress moves once from 0 to 100 across all repetitions and modes.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "domain/ports.h"
#include "server/runs/run_observer.h"
#include "server/store/run_store.h"

namespace lab::server {

class StoreReporter final : public domain::RunReporter {
 public:
  StoreReporter(RunStore& store, RunObserver& observer, std::string run_id)
      : store_(store), observer_(observer), run_id_(std::move(run_id)) {}
  ~StoreReporter() override { EndPipelineSignals(); }
  StoreReporter(const StoreReporter&) = delete;
  StoreReporter& operator=(const StoreReporter&) = delete;

  // The run's gauges stop being measured: called before its final state is stored, so that
  // whoever sees the run ended sees its series gone too.
  void EndPipelineSignals();
  // The part [lo, hi] of the run's 0..100 that the next mode covers, and the label its steps
  // carry ("success", "#2 failure"; "" for the run's own steps).
  void SetWindow(double lo, double hi, std::string mode);

  void Step(std::string_view message) override;
  void Progress(double percent) override;
  void Created(std::string_view mode, const domain::Artifact& artifact) override;
  void Gauge(std::string_view name, const std::map<std::string, std::string>& labels,
             double value) override;
  void Count(std::string_view name, const std::map<std::string, std::string>& labels,
             double increment) override;

 private:
  RunStore& store_;
  RunObserver& observer_;
  std::string run_id_;
  double lo_ = 0;
  double hi_ = 100;
  double current_ = 0;
  std::string mode_;
  std::string last_step_;
  std::mutex gauges_mu_;
  std::set<std::pair<std::string, std::map<std::string, std::string>>> gauges_;  // gauges_mu_
};

}  // namespace lab::server
