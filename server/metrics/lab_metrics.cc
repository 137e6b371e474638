#include "server/metrics/lab_metrics.h"

#include <prometheus/text_serializer.h>

namespace lab::server {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

// Every family of API.md, declared in one place: a list, one family a few lines, kept together
// so the names can be read against the contract.
LabMetrics::LabMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  http_requests_ = &BuildCounter()
                        .Name("lab_http_requests_total")
                        .Help("HTTP requests by route template, method and status code")
                        .Register(r);
  http_duration_ = &BuildHistogram()
                        .Name("lab_http_request_duration_seconds")
                        .Help("HTTP request handling time by route template")
                        .Register(r);
  runs_total_ = &BuildCounter()
                     .Name("lab_runs_total")
                     .Help("Finished runs by experiment, final state and verdict")
                     .Register(r);
  run_duration_ = &BuildHistogram()
                       .Name("lab_run_duration_seconds")
                       .Help("Run duration from start to end, by experiment")
                       .Register(r);
  last_verdict_ = &BuildGauge()
                       .Name("lab_experiment_last_verdict")
                       .Help("1 for the latest verdict of each experiment")
                       .Register(r);
  run_active_ =
      &BuildGauge().Name("lab_run_active").Help("Runs of the experiment executing now").Register(r);
  admission_rejections_ = &BuildCounter()
                               .Name("lab_admission_rejections_total")
                               .Help("Runs refused at admission, by reason")
                               .Register(r);
  queue_depth_ =
      &BuildGauge().Name("lab_queue_depth").Help("Runs waiting in the queue").Register(r).Add({});
  workers_busy_ =
      &BuildGauge().Name("lab_workers_busy").Help("Workers executing a run").Register(r).Add({});
  workers_total_ =
      &BuildGauge().Name("lab_workers_total").Help("Workers in the pool").Register(r).Add({});
  stack_dirty_ = &BuildGauge()
                      .Name("lab_stack_dirty")
                      .Help("1 while a postflight check says the stack has not recovered")
                      .Register(r)
                      .Add({});
  for (const char* name : {"lab_outbox_backlog", "lab_outbox_oldest_age_seconds",
                           "lab_consumer_lag", "lab_kafka_under_replicated_partitions"}) {
    pipeline_gauges_[name] =
        &BuildGauge().Name(name).Help("pipeline signal during runs").Register(r);
  }
  for (const char* name :
       {"lab_dlq_messages_total", "lab_cache_requests_total", "lab_db_queries_total"}) {
    pipeline_counters_[name] =
        &BuildCounter().Name(name).Help("pipeline signal during runs").Register(r);
  }
  // Families with fixed label sets get their series up front, so dashboards see zeros, not gaps.
  pipeline_gauges_["lab_outbox_backlog"]->Add({});
  pipeline_gauges_["lab_outbox_oldest_age_seconds"]->Add({});
  pipeline_gauges_["lab_kafka_under_replicated_partitions"]->Add({});
  pipeline_counters_["lab_dlq_messages_total"]->Add({});
  pipeline_counters_["lab_db_queries_total"]->Add({});
  // A labelled series exists from its first increment, which rate() does not see: hit and miss
  // exist from the start, so the first cached run shows on the cache panels.
  pipeline_counters_["lab_cache_requests_total"]->Add({{"result", "hit"}});
  pipeline_counters_["lab_cache_requests_total"]->Add({{"result", "miss"}});
  families_ = {
      {"lab_http_requests_total", "counter",
       "HTTP requests by route template, method and status code"},
      {"lab_http_request_duration_seconds", "histogram",
       "HTTP request handling time by route template"},
      {"lab_runs_total", "counter", "Finished runs by experiment, final state and verdict"},
      {"lab_run_duration_seconds", "histogram", "Run duration from start to end, by experiment"},
      {"lab_experiment_last_verdict", "gauge", "1 for the latest verdict of each experiment"},
      {"lab_run_active", "gauge", "Runs of the experiment executing now"},
      {"lab_admission_rejections_total", "counter", "Runs refused at admission, by reason"},
      {"lab_consumer_lag", "gauge", "pipeline signal during runs"},
      {"lab_cache_requests_total", "counter", "pipeline signal during runs"},
  };
}

void LabMetrics::ObserveHttp(const std::string& route, const std::string& method, int code,
                             double seconds) {
  http_requests_->Add({{"route", route}, {"method", method}, {"code", std::to_string(code)}})
      .Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
  http_duration_->Add({{"route", route}}, kBuckets).Observe(seconds);
}

void LabMetrics::RunFinished(const std::string& experiment, std::string_view state,
                             std::string_view verdict, double seconds) {
  runs_total_
      ->Add({{"experiment", experiment},
             {"state", std::string(state)},
             {"verdict", std::string(verdict)}})
      .Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {0.1, 0.5, 1,   2.5, 5,   10,  20,
                                                                   30,  60,  120, 300, 600, 1800};
  run_duration_->Add({{"experiment", experiment}}, kBuckets).Observe(seconds);
}

void LabMetrics::SetLastVerdict(const std::string& experiment, std::string_view verdict) {
  for (const char* v : {"confirmed", "refuted", "inconclusive"}) {
    last_verdict_->Add({{"experiment", experiment}, {"verdict", v}}).Set(verdict == v ? 1 : 0);
  }
}

void LabMetrics::RunActive(const std::string& experiment, int delta) {
  run_active_->Add({{"experiment", experiment}}).Increment(delta);
}

void LabMetrics::AdmissionRejected(const std::string& reason) {
  admission_rejections_->Add({{"reason", reason}}).Increment();
}

void LabMetrics::PipelineGauge(std::string_view name,
                               const std::map<std::string, std::string>& labels, double value) {
  if (auto it = pipeline_gauges_.find(name); it != pipeline_gauges_.end()) {
    it->second->Add(labels).Set(value);
  }
}

void LabMetrics::PipelineGaugeEnded(std::string_view name,
                                    const std::map<std::string, std::string>& labels) {
  auto it = pipeline_gauges_.find(name);
  if (it == pipeline_gauges_.end()) return;
  auto& gauge = it->second->Add(labels);
  if (labels.empty()) {
    gauge.Set(0);
  } else {
    it->second->Remove(&gauge);
  }
}

void LabMetrics::PipelineCount(std::string_view name,
                               const std::map<std::string, std::string>& labels, double increment) {
  if (auto it = pipeline_counters_.find(name); it != pipeline_counters_.end() && increment >= 0) {
    it->second->Add(labels).Increment(increment);
  }
}

std::string LabMetrics::Serialize() const {
  std::string text = prometheus::TextSerializer().Serialize(registry_->Collect());
  // prometheus-cpp leaves out a family with no series; dashboards and scrapers should still
  // see every contract name, so announce those with their HELP and TYPE lines.
  for (const auto& f : families_) {
    if (text.find("# TYPE " + f.name + " ") == std::string::npos) {
      text += "# HELP " + f.name + " " + f.help + "\n# TYPE " + f.name + " " + f.type + "\n";
    }
  }
  return text;
}

}  // namespace lab::server
