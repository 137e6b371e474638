// The pipeline's own signals while a mode runs (API.md: lab_outbox_backlog,
// lab_outbox_oldest_age_seconds, lab_consumer_lag{group,topic},
// lab_kafka_under_replicated_partitions), measured on the stack from what the mode has created so
// far and reported as gauges through the run's reporter, so Prometheus and Grafana see a run's
// backlog and lag as it happens. The sampler only reads (plain SELECTs, metadata, ListOffsets,
// OffsetFetch); the experiment's evidence never comes from it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "domain/ports.h"
#include "runners/stack_config.h"

namespace lab::runners {

// Lag of a group on one topic: per partition, the high watermark minus the committed offset;
// a partition the group has not committed on yet counts whole (high - low). nullopt when the
// group has committed on no partition of the topic (it does not consume it).
struct PartitionOffsets {
  std::int64_t low = 0;
  std::int64_t high = 0;
  std::int64_t committed = -1;  // < 0: nothing committed
};
std::optional<std::int64_t> GroupLag(const std::vector<PartitionOffsets>& partitions);

class PipelineSampler {
 public:
  // Starts sampling every `period` on its own thread; `reporter` must outlive the sampler.
  PipelineSampler(StackConfig config, domain::RunReporter& reporter,
                  std::chrono::milliseconds period);
  // Stops and joins. What it reported stays until the server ends the run (server/runs), which
  // resets the unlabelled gauges and removes the per-group series.
  ~PipelineSampler();
  PipelineSampler(const PipelineSampler&) = delete;
  PipelineSampler& operator=(const PipelineSampler&) = delete;

  // Something the mode created; topics, groups and MySQL rows are what the sampler watches.
  void Track(const domain::Artifact& artifact);

 private:
  class Clients;
  void Loop(std::stop_token stop);
  void SampleOnce(const std::stop_token& stop);

  StackConfig config_;
  domain::RunReporter& reporter_;
  std::chrono::milliseconds period_;
  std::mutex mu_;
  std::set<std::string> topics_;      // guarded by mu_
  std::set<std::string> groups_;      // guarded by mu_
  std::set<std::string> run_nss_;     // guarded by mu_
  std::unique_ptr<Clients> clients_;  // only the sampling thread touches them
  std::jthread thread_;               // last: joined before the members above go
};

}  // namespace lab::runners
