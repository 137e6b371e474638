// Ports: the small interfaces the domain's users implement (runners, stack probes, clocks).
// They carry no I/O themselves; implementations live in runners/ and server/.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "domain/parameters.h"
#include "domain/verdict.h"

namespace lab::domain {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() const = 0;
};

// Something a run created on the stack: "kafka-topic", "mysql-table", "redis-prefix",
// "consumer-group", "process".
struct Artifact {
  std::string kind;
  std::string name;
};

// How a runner tells the world what it is doing. Implemented by the worker, which stores
// each step (streamed over SSE) and the progress.
class RunReporter {
 public:
  virtual ~RunReporter() = default;
  virtual void Step(std::string_view message) = 0;
  // 0..100 of the mode being run (RunMode) or of the cleanup; the server maps it into the run's
  // whole 0..100 (server/runs/store_reporter.h).
  virtual void Progress(double percent) = 0;
  // Recorded as it happens, so that cleanup after a crash or a cancel knows what exists.
  virtual void Created(std::string_view mode, const Artifact& artifact) = 0;
  // The pipeline's own signals while a run executes (API.md metric names without labels
  // beyond those listed there): lab_outbox_backlog, lab_outbox_oldest_age_seconds,
  // lab_consumer_lag{group,topic}, lab_kafka_under_replicated_partitions (gauges) and
  // lab_dlq_messages_total, lab_cache_requests_total{result}, lab_db_queries_total (counters).
  // Unknown names are ignored by the server.
  virtual void Gauge(std::string_view /*name*/,
                     const std::map<std::string, std::string>& /*labels*/, double /*value*/) {}
  virtual void Count(std::string_view /*name*/,
                     const std::map<std::string, std::string>& /*labels*/, double /*increment*/) {}
};

struct RunContext {
  std::string run_id;
  std::string ns;  // the namespace for everything the run creates, derived from the run id
  ParamMap params;
  bool keep_artifacts = false;
  std::stop_token stop;  // cancellation and the per-run timeout
  RunReporter* reporter = nullptr;
  int repetition = 0;  // 0-based, for `repeat`
};

struct ModeResult {
  ModeMetrics metrics;              // the numbers the verdict is decided by
  std::string details_json = "{}";  // everything else the mode recorded (JSON object)
  std::vector<Artifact> artifacts;
  std::optional<std::string> inconclusive;  // the runner could not decide, and why
  // Failures of the client library (e.g. librdkafka 2.0.2's fatal idempotence error), kept
  // apart from the phenomenon under test.
  std::vector<std::string> client_library_failures;
};

class ExperimentRunner {
 public:
  virtual ~ExperimentRunner() = default;
  virtual std::string_view ExperimentId() const = 0;
  // Runs one mode on fresh resources under ctx.ns; returns what it observed.
  virtual ModeResult RunMode(const RunContext& ctx, const std::string& mode) = 0;
  // Removes what the run created (called also after failure and cancel, unless keep_artifacts).
  virtual void Cleanup(const RunContext& ctx, const std::vector<Artifact>& created) = 0;
  // Settings that matter for reproducibility (JSON object text): client configs, topic configs.
  virtual std::string ConfigurationJson() const { return "{}"; }
};

struct PartHealth {
  std::string part;
  bool ok = false;
  double latency_ms = 0;
  std::string version;  // what the part reports about itself, when it answered
  std::string detail;   // why it is not ok, or extra facts (brokers, cluster state)
};

// Asks the stack how it is. Used for preflight/postflight, /readyz and the stack check.
class StackProbe {
 public:
  virtual ~StackProbe() = default;
  virtual std::vector<PartHealth> Check(const std::vector<std::string>& parts,
                                        std::chrono::milliseconds timeout) = 0;
};

}  // namespace lab::domain
