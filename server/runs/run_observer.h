// What the outside learns of runs as they are admitted, executed and finished: the logs and the
// metrics. The run classes (RunService, RunLifecycle, RunExecution, StoreReporter) tell this
// port and never write to std::clog or LabMetrics themselves, so a test can watch a run's life
// and the production wiring (RunTelemetry) decides how it is shown.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace lab::server {

// A run that reached a terminal state, as metrics and logs see it.
struct RunEnded {
  std::string run_id;
  std::string experiment;
  std::string_view state;    // completed, failed, cancelled
  std::string_view verdict;  // confirmed, refuted, inconclusive, or "none"
  double seconds = 0;
};

class RunObserver {
 public:
  virtual ~RunObserver() = default;

  // Admission and the queue.
  virtual void AdmissionRejected(const std::string& reason) = 0;
  virtual void QueueDepth(std::size_t depth) = 0;

  // A worker executes (+1) or has finished executing (-1) a run of `experiment`.
  virtual void Executing(const std::string& experiment, int delta) = 0;
  virtual void Step(const std::string& run_id, std::string_view text) = 0;
  virtual void Ended(const RunEnded& run) = 0;
  // Something a run's execution could not do and that no state shows (a store write that
  // failed, a run that was not runnable, an exception caught at the worker's edge).
  virtual void Trouble(const std::string& run_id, std::string_view event,
                       std::string_view detail) = 0;
  virtual void StackDirty(bool dirty) = 0;

  // The pipeline signals runners report while a run executes (domain::RunReporter::Gauge/Count).
  virtual void PipelineGauge(std::string_view name,
                             const std::map<std::string, std::string>& labels, double value) = 0;
  virtual void PipelineGaugeEnded(std::string_view name,
                                  const std::map<std::string, std::string>& labels) = 0;
  virtual void PipelineCount(std::string_view name,
                             const std::map<std::string, std::string>& labels,
                             double increment) = 0;
};

}  // namespace lab::server
