// What every experiment runner shares: the stack endpoints, names derived from the run's
// namespace (topics, run_ns values in MySQL, Redis key prefixes, group ids), recording what was
// created (through the reporter, as it happens), and the cleanup of those artifacts.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "domain/ports.h"
#include "runners/common/process.h"
#include "runners/kafka/kafka_client.h"
#include "runners/mysql/mysql_client.h"
#include "runners/redis/redis_client.h"
#include "runners/stack_config.h"

namespace lab::runners {

// Artifact kinds this library creates.
inline constexpr const char* kArtifactTopic = "kafka-topic";
inline constexpr const char* kArtifactGroup = "consumer-group";
inline constexpr const char* kArtifactRows = "mysql-rows";     // name = run_ns value
inline constexpr const char* kArtifactRedis = "redis-prefix";  // name = key prefix
inline constexpr const char* kArtifactProcess = "process";     // name = pid
inline constexpr const char* kArtifactSubject = "registry-subject";
// A Redis setting the run changed: name = "<parameter>=<value before the run>"; cleanup sets it
// back (CONFIG SET), so the stack is left as found whatever ends the run.
inline constexpr const char* kArtifactRedisConfig = "redis-config";
inline constexpr const char* kArtifactRedisAclUser = "redis-acl-user";  // name = ACL user
// Keys on the Redis Cluster: name = key prefix; cleanup deletes them on every master.
inline constexpr const char* kArtifactClusterKeys = "redis-cluster-prefix";
// The Redis Cluster's topology before the run changed it: name = redis::TopologyText; cleanup
// puts slots and roles back (redis::RestoreTopology).
inline constexpr const char* kArtifactClusterTopology = "redis-cluster-topology";
// A cluster node the run paused or killed: name = "pause:N" or "kill:N" (N = 1..6); cleanup
// resumes or starts it (before restoring the topology).
inline constexpr const char* kArtifactClusterFault = "redis-cluster-fault";
// A MySQL table of one run (E-014's dedup tables: a range-partitioned one, whose DROP PARTITION
// would remove other runs' rows in a shared table, and ones keyed like the real table, not by
// run_ns): name = table ([a-z0-9_]); cleanup DROP TABLE IF EXISTS.
inline constexpr const char* kArtifactMysqlTable = "mysql-table";
// A Toxiproxy proxy of one run and mode (ProxyToLoopback): name = the proxy's name; cleanup
// deletes it, and its toxics with it.
inline constexpr const char* kArtifactProxy = "toxiproxy-proxy";

// What a finished role process left: how it ended and what it reported.
struct RoleOutcome {
  bool finished = false;  // ended within the wait
  ExitStatus status;
  std::multimap<std::string, std::string> values;
  std::string Value(const std::string& key, const std::string& def = "") const;
  bool KilledByFailpoint() const { return status.signaled && status.signal == 9; }
};

// What a role reported on its log, as key -> value in the order printed (equal keys keep their
// order). Read with wire::ParseLine only (the "@lab" lines of runners/runner_wire.h): a value
// line is its key and value; the failpoint line is failpoint = its point, count, action; an
// error line is error = its message. Other lines (a client library's log, a line cut off while
// the role still writes) are skipped.
std::multimap<std::string, std::string> ParseRoleOutput(const std::string& output);
// The last value reported under `key`, or nullopt: exact keys, so "unassigned" never reads as
// "assigned".
std::optional<std::string> LastRoleValue(const std::string& output, const std::string& key);
// A role's log as a person reads it in a step: its "@lab" lines as `key=value` text, the
// other lines as they are; the last `max_chars` characters.
std::string RoleLogText(const std::string& output, std::size_t max_chars = 400);

// Distinct event ids (header `event_id`) of records read back, with how often each appeared.
std::map<std::string, int> EventIdCounts(const std::vector<kafka::Message>& messages);

// The MySQL endpoint and account of `config`, with the client's default timeouts.
mysql::MysqlConfig MysqlSettingsFor(const StackConfig& config);

class ExperimentBase : public domain::ExperimentRunner {
 public:
  void Cleanup(const domain::RunContext& ctx,
               const std::vector<domain::Artifact>& created) override;

 protected:
  explicit ExperimentBase(StackConfig config) : config_(std::move(config)) {}

  // "lab.<ns>.<mode>.<suffix>": unique per run and mode.
  static std::string Topic(const domain::RunContext& ctx, const std::string& mode,
                           const std::string& suffix);
  // "lab:<ns>:<mode>:": the prefix of every Redis key a mode writes (cleanup removes by it).
  static std::string RedisPrefix(const domain::RunContext& ctx, const std::string& mode);
  // The run_ns value of MySQL rows: "<ns>_<mode>".
  static std::string RunNs(const domain::RunContext& ctx, const std::string& mode);
  static std::string Group(const domain::RunContext& ctx, const std::string& mode,
                           const std::string& suffix);
  static void Step(const domain::RunContext& ctx, const std::string& message);
  static void Progress(const domain::RunContext& ctx, double percent);
  static void Created(const domain::RunContext& ctx, const std::string& mode,
                      domain::ModeResult& result, const std::string& kind, const std::string& name);

  mysql::MysqlConfig MysqlSettings() const;
  // Opens a connection and applies migrations/mysql once per process.
  domain::Result<std::unique_ptr<mysql::Connection>> OpenMysqlWithSchema() const;
  // Creates a topic (RF 3, min ISR 2 unless configs say otherwise), records it as an artifact.
  domain::Status CreateTopic(const domain::RunContext& ctx, const std::string& mode,
                             domain::ModeResult& result, const std::string& topic, int partitions,
                             const std::map<std::string, std::string>& configs = {},
                             int replication = 3) const;
  // The set-up the MySQL + Kafka pipeline experiments share, each part recorded as an artifact
  // as it is made (cleanup removes it whatever happens next): the MySQL schema and the run's
  // rows, `topics` (name, partitions), and the consumer `group` unless empty. The error names
  // the part that failed ("mysql: …", "kafka: …"), ready to be the inconclusive reason.
  domain::Result<std::unique_ptr<mysql::Connection>> PreparePipeline(
      const domain::RunContext& ctx, const std::string& mode, domain::ModeResult& result,
      const std::vector<std::pair<std::string, int>>& topics, const std::string& group) const;
  // Whether every broker answers `topic`'s metadata with all its partitions led (each asked
  // through a client bootstrapped on it alone), waiting up to 10 s per broker. librdkafka 2.0.2
  // fails the records queued for a just-created topic with _UNKNOWN_PARTITION when a broker that
  // has not yet learned the topic answers its metadata request (librdkafka #4401); on 2 busy
  // cores a broker can lag. Call it between creating a topic and producing to it.
  bool AllBrokersKnow(const std::string& topic, int partitions, const std::stop_token& stop) const;
  // After broker faults were undone: waits up to `timeout` until no partition is
  // under-replicated and records it in `details` (cluster_fully_replicated, its time, what was
  // still under-replicated); a warning step when it did not happen. Deliberately not cut short by
  // a stop: the next run needs the brokers whole.
  bool WaitFullyReplicated(const domain::RunContext& ctx, nlohmann::json& details,
                           std::chrono::milliseconds timeout, const std::string& after) const;
  // The role binary, resolved against the repo/build dirs.
  std::string RoleBinary() const;
  // Starts `lab-role <role>` with the stack's endpoints and `args`; records the process.
  domain::Result<ChildProcess> StartRole(const domain::RunContext& ctx, const std::string& mode,
                                         domain::ModeResult& result, const std::string& role,
                                         const std::vector<std::string>& args,
                                         const std::string& label) const;
  // Waits (bounded, cancellable) and collects its output; client-library failures it reported
  // are added to `result`.
  RoleOutcome WaitRole(const domain::RunContext& ctx, ChildProcess& process,
                       std::chrono::milliseconds timeout, domain::ModeResult& result,
                       const std::string& label) const;
  // Start + wait.
  RoleOutcome RunRole(const domain::RunContext& ctx, const std::string& mode,
                      domain::ModeResult& result, const std::string& role,
                      const std::vector<std::string>& args, const std::string& label,
                      std::chrono::milliseconds timeout) const;
  // How long a role or a read-back may take for `units` events: the bound the defaults need
  // plus a floor rate (100 events/s for a role, 1,000/s for a read-back), so a run at a
  // parameter's maximum is bounded by its own timeout_seconds, not cut off by a fixed wait.
  static std::chrono::milliseconds RoleWait(
      std::int64_t units, std::chrono::milliseconds base = std::chrono::seconds(60));
  static std::chrono::milliseconds ReadBackWait(std::int64_t units);
  // Runs the stack script (infra/stack.sh) with `args`, e.g. {"kafka", "pause", "2"}; the step
  // log gets its output. Fails when the script is missing or the fault did not take.
  domain::Status StackFault(const domain::RunContext& ctx, const std::vector<std::string>& args,
                            std::chrono::milliseconds timeout) const;
  // A connection to the standalone Redis of the stack.
  domain::Result<std::unique_ptr<redis::Connection>> OpenRedis(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) const;
  // CONFIG SET `parameter` `value` on the standalone Redis, after recording its current value
  // as an artifact (kArtifactRedisConfig), so cleanup restores it on every exit path.
  domain::Status SetRedisConfig(const domain::RunContext& ctx, const std::string& mode,
                                domain::ModeResult& result, const std::string& parameter,
                                const std::string& value) const;
  // ACL SETUSER `user` with `rules` (e.g. {"on", ">pw", "~*", "+@all", "-keys"}), recorded as
  // an artifact first so cleanup deletes the user on every exit path.
  domain::Status CreateRedisAclUser(const domain::RunContext& ctx, const std::string& mode,
                                    domain::ModeResult& result, const std::string& user,
                                    const std::vector<std::string>& rules) const;
  // A client of the stack's Redis Cluster (slot map loaded).
  domain::Result<std::unique_ptr<redis::ClusterClient>> OpenCluster(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) const;
  // Records the cluster's topology as an artifact (cleanup restores it) and returns it; fails
  // when the cluster is not healthy and consistent, so a run never starts on a broken cluster.
  domain::Result<std::string> RecordClusterTopology(const domain::RunContext& ctx,
                                                    const std::string& mode,
                                                    domain::ModeResult& result) const;
  // `infra/stack.sh cluster <verb> <n>` (pause, resume, kill, start) with pause and kill
  // recorded first, so cleanup undoes them whatever ends the run.
  domain::Status ClusterFault(const domain::RunContext& ctx, const std::string& mode,
                              domain::ModeResult& result, const std::string& verb, int n) const;
  // "lab_<ns>_<mode>_<what>": the Toxiproxy proxy of ProxyToLoopback.
  static std::string ProxyName(const domain::RunContext& ctx, const std::string& mode,
                               const std::string& what);
  // A Toxiproxy proxy in front of 127.0.0.1:`upstream_port`, recorded for cleanup before it is
  // made; returns the port it listens on (loopback, chosen by Toxiproxy).
  domain::Result<int> ProxyToLoopback(const domain::RunContext& ctx, const std::string& mode,
                                      domain::ModeResult& result, const std::string& what,
                                      int upstream_port) const;
  // A toxic named `type` on that proxy (e.g. "latency", stream "downstream", {"latency": 1500});
  // the step log records the fault and its removal.
  domain::Status AddToxic(const domain::RunContext& ctx, const std::string& mode,
                          const std::string& what, const std::string& type,
                          const std::string& stream, const nlohmann::json& attributes) const;
  domain::Status RemoveToxic(const domain::RunContext& ctx, const std::string& mode,
                             const std::string& what, const std::string& type) const;
  // Deletes the proxy (and its toxics) at the end of a mode; cleanup is the safety net.
  domain::Status RemoveProxy(const domain::RunContext& ctx, const std::string& mode,
                             const std::string& what) const;
  // A MySQL scalar (COUNT…) the evidence rests on. When it cannot be taken the mode is
  // inconclusive, naming the query and the error (the first such reason is kept), and -1 is
  // returned: a broken read is never a number a verdict can pass on.
  std::int64_t Count(domain::ModeResult& result, mysql::Connection& conn, const std::string& sql,
                     const std::vector<mysql::Param>& params) const;
  // The same scalar for a caller that handles -1 itself: a poll that asks again, a progress
  // reading.
  static std::int64_t TryCount(mysql::Connection& conn, const std::string& sql,
                               const std::vector<mysql::Param>& params);

  StackConfig config_;

 private:
  void RestoreRedis(const domain::RunContext& ctx, const domain::Artifact& artifact) const;
  domain::Status DeleteProxyRetrying(const std::string& name) const;
  void CleanupCluster(const domain::RunContext& ctx,
                      const std::vector<domain::Artifact>& created) const;
};

// An inconclusive ModeResult with the reason.
domain::ModeResult Inconclusive(domain::ModeResult result, const std::string& why);

}  // namespace lab::runners
