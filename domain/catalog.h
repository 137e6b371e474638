// The experiment catalog (EXPERIMENTS.md as data): what each experiment claims, its modes and
// parameters with bounds, the stack parts it needs, the resources it must hold alone, and the
// criteria its verdict is decided by.
#pragma once

#include <string>
#include <vector>

#include "domain/parameters.h"
#include "domain/verdict.h"

namespace lab::domain {

// Stack parts, as named in the API and in preflight checks.
inline constexpr const char* kPartKafka = "kafka";
inline constexpr const char* kPartRegistry = "schema-registry";
inline constexpr const char* kPartMysql = "mysql";
inline constexpr const char* kPartRedis = "redis";
inline constexpr const char* kPartRedisCluster = "redis-cluster";
inline constexpr const char* kPartToxiproxy = "toxiproxy";

// Exclusive resources: two runs holding the same one never overlap.
inline constexpr const char* kLockKafkaBrokers = "kafka-brokers";  // stops/kills brokers
inline constexpr const char* kLockRedisCluster = "redis-cluster-topology";
inline constexpr const char* kLockMysqlServer = "mysql-server";
inline constexpr const char* kLockRedisServer = "redis-server";
inline constexpr const char* kLockNetwork = "toxiproxy";

struct ModeSpec {
  std::string name;         // "failure" | "success" | "check"
  std::string description;  // the anti-pattern or the practice it runs
};

struct ExperimentSpec {
  std::string id;
  std::string title;
  std::string category;  // stack | core | advanced | redis-ops | resilience
  std::string claim;
  std::string how;      // what is run
  std::string reading;  // how to read the evidence
  std::vector<ModeSpec> modes;
  std::vector<ParameterSpec> parameters;
  std::vector<std::string> requires_parts;
  std::vector<std::string> exclusive;
  std::vector<Condition> criteria;
  int default_timeout_seconds = 120;
};

// Every experiment of EXPERIMENTS.md, in catalog order.
const std::vector<ExperimentSpec>& Catalog();
const ExperimentSpec* FindExperiment(std::string_view id);

// A run's own parameters besides the experiment's: repeat count and timeout bounds.
inline constexpr int kMaxRepeat = 20;
inline constexpr int kMinTimeoutSeconds = 5;
inline constexpr int kMaxTimeoutSeconds = 3600;

}  // namespace lab::domain
