// The production RunObserver: each event as one `event=… key=value` log line on std::clog and
// the matching Prometheus metrics of API.md in LabMetrics.
#pragma once

#include "server/metrics/lab_metrics.h"
#include "server/runs/run_observer.h"

namespace lab::server {

class RunTelemetry final : public RunObserver {
 public:
  explicit RunTelemetry(LabMetrics& metrics) : metrics_(metrics) {}

  void AdmissionRejected(const std::string& reason) override;
  void QueueDepth(std::size_t depth) override;
  void Executing(const std::string& experiment, int delta) override;
  void Step(const std::string& run_id, std::string_view text) override;
  void Ended(const RunEnded& run) override;
  void Trouble(const std::string& run_id, std::string_view event, std::string_view detail) override;
  void StackDirty(bool dirty) override;
  void PipelineGauge(std::string_view name, const std::map<std::string, std::string>& labels,
                     double value) override;
  void PipelineGaugeEnded(std::string_view name,
                          const std::map<std::string, std::string>& labels) override;
  void PipelineCount(std::string_view name, const std::map<std::string, std::string>& labels,
                     double increment) override;

 private:
  LabMetrics& metrics_;
};

}  // namespace lab::server
