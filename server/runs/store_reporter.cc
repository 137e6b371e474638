#include "server/runs/store_reporter.h"

#include <algorithm>

#include "server/runs/step_text.h"

namespace lab::server {

void StoreReporter::EndPipelineSignals() {
  std::lock_guard lock(gauges_mu_);
  for (const auto& [name, labels] : gauges_) observer_.PipelineGaugeEnded(name, labels);
  gauges_.clear();
}

void StoreReporter::SetWindow(double lo, double hi, std::string mode) {
  lo_ = lo;
  hi_ = hi;
  mode_ = std::move(mode);
  Progress(0);
}

void StoreReporter::Step(std::string_view message) {
  std::string text = StepText(mode_, message);
  last_step_ = text;
  (void)store_.AppendStep(run_id_, text);
  (void)store_.UpdateProgress(run_id_, current_, last_step_);
  observer_.Step(run_id_, text);
}

void StoreReporter::Progress(double percent) {
  double p = std::clamp(percent, 0.0, 100.0);
  current_ = lo_ + (hi_ - lo_) * p / 100.0;
  (void)store_.UpdateProgress(run_id_, current_, last_step_);
}

void StoreReporter::Created(std::string_view mode, const domain::Artifact& artifact) {
  (void)store_.RecordArtifact(run_id_, std::string(mode), artifact);
}

void StoreReporter::Gauge(std::string_view name, const std::map<std::string, std::string>& labels,
                          double value) {
  observer_.PipelineGauge(name, labels, value);
  std::lock_guard lock(gauges_mu_);
  gauges_.emplace(std::string(name), labels);
}

void StoreReporter::Count(std::string_view name, const std::map<std::string, std::string>& labels,
                          double increment) {
  observer_.PipelineCount(name, labels, increment);
}

}  // namespace lab::server
