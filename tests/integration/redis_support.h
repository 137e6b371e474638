// What the Redis experiments' tests share: a metric of a run, connections to the stack, the
// standalone Redis's settings an experiment may change (to compare before and after a run), and
// a run through the API that is retried once — visibly — when it was inconclusive only because a
// client library failed.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runners/mysql/mysql_client.h"
#include "runners/redis/redis_client.h"
#include "tests/integration/harness.h"

namespace lab::testing {

// The metric of `mode`, or -1e9 when the run has no such mode or metric.
double MetricOf(const RunOutcome& o, const std::string& mode, const std::string& metric);
// The details of `mode` as JSON (an empty object when absent or unparsable).
nlohmann::json DetailsOf(const RunOutcome& o, const std::string& mode);
// Waits up to 60 s until Kafka reports no under-replicated partition (a test failure, naming
// how many were left, when it does not happen).
void ExpectFullyReplicated();
// "lab_*" proxies and toxics on any proxy, as Toxiproxy lists them now ("" = clean).
std::string ToxiproxyLeftovers();

// Connections to the stack's standalone Redis and MariaDB (nullptr, with a test failure, when
// they cannot be opened).
std::unique_ptr<runners::redis::Connection> Redis();
std::unique_ptr<runners::mysql::Connection> Mysql();

// CONFIG GET of the settings experiments change, ACL USERS, and the number of connected clients
// other than ours (`connected_clients` - 1), read now.
std::map<std::string, std::string> RedisSettings();

// RunThroughApi; when the verdict is inconclusive and the run reported client-library failures,
// the run is repeated once and the retry is printed (a test never hides it).
RunOutcome RunRedisExperiment(const std::string& id,
                              const std::map<std::string, domain::ParamValue>& params);

// The run's step log has no postflight complaint (the stack, Redis settings included, is as
// before).
bool PostflightClean(const RunOutcome& o);

}  // namespace lab::testing
