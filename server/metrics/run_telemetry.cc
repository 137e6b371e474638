#include "server/metrics/run_telemetry.h"

#include <iostream>

namespace lab::server {

void RunTelemetry::AdmissionRejected(const std::string& reason) {
  metrics_.AdmissionRejected(reason);
}

void RunTelemetry::QueueDepth(std::size_t depth) {
  metrics_.SetQueueDepth(static_cast<double>(depth));
}

void RunTelemetry::Executing(const std::string& experiment, int delta) {
  metrics_.RunActive(experiment, delta);
}

void RunTelemetry::Step(const std::string& run_id, std::string_view text) {
  std::clog << "event=run.step run=" << run_id << " message=\"" << text << "\"\n";
}

void RunTelemetry::Ended(const RunEnded& run) {
  metrics_.RunFinished(run.experiment, run.state, run.verdict, run.seconds);
  if (run.verdict != "none") metrics_.SetLastVerdict(run.experiment, run.verdict);
  std::clog << "event=run.finished run=" << run.run_id << " experiment=" << run.experiment
            << " state=" << run.state << " verdict=" << run.verdict << " seconds=" << run.seconds
            << "\n";
}

void RunTelemetry::Trouble(const std::string& run_id, std::string_view event,
                           std::string_view detail) {
  std::clog << "event=" << event << " run=" << run_id << " detail=\"" << detail << "\"\n";
}

void RunTelemetry::StackDirty(bool dirty) { metrics_.SetStackDirty(dirty); }

void RunTelemetry::PipelineGauge(std::string_view name,
                                 const std::map<std::string, std::string>& labels, double value) {
  metrics_.PipelineGauge(name, labels, value);
}

void RunTelemetry::PipelineGaugeEnded(std::string_view name,
                                      const std::map<std::string, std::string>& labels) {
  metrics_.PipelineGaugeEnded(name, labels);
}

void RunTelemetry::PipelineCount(std::string_view name,
                                 const std::map<std::string, std::string>& labels,
                                 double increment) {
  metrics_.PipelineCount(name, labels, increment);
}

}  // namespace lab::server
