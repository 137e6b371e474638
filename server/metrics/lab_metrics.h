// The control plane's Prometheus metrics (API.md names), held in one prometheus-cpp registry
// that /metrics serialises with the text serializer (no second HTTP server).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lab::server {

class LabMetrics {
 public:
  LabMetrics();

  void ObserveHttp(const std::string& route, const std::string& method, int code, double seconds);
  void RunFinished(const std::string& experiment, std::string_view state, std::string_view verdict,
                   double seconds);
  void SetLastVerdict(const std::string& experiment, std::string_view verdict);
  void RunActive(const std::string& experiment, int delta);
  void AdmissionRejected(const std::string& reason);
  void SetQueueDepth(double depth) { queue_depth_->Set(depth); }
  void SetWorkersBusy(double busy) { workers_busy_->Set(busy); }
  void SetWorkersTotal(double total) { workers_total_->Set(total); }
  void SetStackDirty(bool dirty) { stack_dirty_->Set(dirty ? 1 : 0); }
  // Pipeline signals reported by runners; names outside API.md's list are ignored.
  void PipelineGauge(std::string_view name, const std::map<std::string, std::string>& labels,
                     double value);
  void PipelineCount(std::string_view name, const std::map<std::string, std::string>& labels,
                     double increment);
  // A run that reported this gauge has ended: a series without labels goes back to 0 (nothing is
  // being measured), one with labels (a run's consumer group) is removed, so series do not pile
  // up run after run.
  void PipelineGaugeEnded(std::string_view name, const std::map<std::string, std::string>& labels);

  std::string Serialize() const;

 private:
  struct FamilyInfo {
    std::string name;
    std::string type;
    std::string help;
  };
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<FamilyInfo> families_;  // every family, to announce those without samples yet
  prometheus::Family<prometheus::Counter>* http_requests_;
  prometheus::Family<prometheus::Histogram>* http_duration_;
  prometheus::Family<prometheus::Counter>* runs_total_;
  prometheus::Family<prometheus::Histogram>* run_duration_;
  prometheus::Family<prometheus::Gauge>* last_verdict_;
  prometheus::Family<prometheus::Gauge>* run_active_;
  prometheus::Family<prometheus::Counter>* admission_rejections_;
  prometheus::Gauge* queue_depth_;
  prometheus::Gauge* workers_busy_;
  prometheus::Gauge* workers_total_;
  prometheus::Gauge* stack_dirty_;
  std::map<std::string, prometheus::Family<prometheus::Gauge>*, std::less<>> pipeline_gauges_;
  std::map<std::string, prometheus::Family<prometheus::Counter>*, std::less<>> pipeline_counters_;
};

}  // namespace lab::server
