#include "runners/experiments/experiment_base.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "runners/common/util.h"
#include "runners/kafka/kafka_client.h"
#include "runners/net/toxiproxy.h"
#include "runners/redis/cluster_admin.h"
#include "runners/redis/redis_client.h"
#include "runners/registry/schema_registry.h"
#include "runners/runner_wire.h"

namespace lab::runners {
namespace {

// Tables whose rows carry run_ns (migrations/mysql); cleanup deletes a run's rows from each.
const char* const kRunTables[] = {
    "orders",           "outbox_event",     "processed_event", "order_projection",
    "side_effect",      "replay_audit",     "product",         "db_read_log",
    "cache_truth",      "lock_interval",    "fenced_write",    "fenced_resource",
    "transfer_account", "transfer_request", "transfer_log",    "transfer_dlq",
    "coupon_stock",     "coupon_issue",     "backfill_item",   "backfill_checkpoint",
    "kafka_txn",        "txn_effect",       "valuation"};

bool IsOurChild(pid_t pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/cmdline").c_str(), "rb");
  if (f == nullptr) return false;
  char buf[4096];
  size_t n = std::fread(buf, 1, sizeof buf, f);
  std::fclose(f);
  return std::string(buf, n).find("lab-role") != std::string::npos;
}

}  // namespace

std::string ExperimentBase::RedisPrefix(const domain::RunContext& ctx, const std::string& mode) {
  return "lab:" + SafeName(ctx.ns) + ":" + mode + ":";
}

std::string ExperimentBase::Topic(const domain::RunContext& ctx, const std::string& mode,
                                  const std::string& suffix) {
  return "lab." + SafeName(ctx.ns) + "." + mode + "." + suffix;
}

std::string ExperimentBase::RunNs(const domain::RunContext& ctx, const std::string& mode) {
  return SafeName(ctx.ns) + "_" + mode +
         (ctx.repetition > 0 ? "_r" + std::to_string(ctx.repetition) : "");
}

std::string ExperimentBase::Group(const domain::RunContext& ctx, const std::string& mode,
                                  const std::string& suffix) {
  return "lab." + SafeName(ctx.ns) + "." + mode + "." + suffix;
}

void ExperimentBase::Step(const domain::RunContext& ctx, const std::string& message) {
  if (ctx.reporter != nullptr) ctx.reporter->Step(message);
}

void ExperimentBase::Progress(const domain::RunContext& ctx, double percent) {
  if (ctx.reporter != nullptr) ctx.reporter->Progress(percent);
}

void ExperimentBase::Created(const domain::RunContext& ctx, const std::string& mode,
                             domain::ModeResult& result, const std::string& kind,
                             const std::string& name) {
  domain::Artifact artifact{kind, name};
  if (ctx.reporter != nullptr) ctx.reporter->Created(mode, artifact);
  result.artifacts.push_back(std::move(artifact));
}

std::chrono::milliseconds ExperimentBase::RoleWait(std::int64_t units,
                                                   std::chrono::milliseconds base) {
  return base + std::chrono::milliseconds(10 * std::max<std::int64_t>(0, units));
}

std::chrono::milliseconds ExperimentBase::ReadBackWait(std::int64_t units) {
  return std::chrono::seconds(30) + std::chrono::milliseconds(std::max<std::int64_t>(0, units));
}

mysql::MysqlConfig MysqlSettingsFor(const StackConfig& config) {
  mysql::MysqlConfig mc;
  mc.host = config.mysql_host;
  mc.port = config.mysql_port;
  mc.user = config.mysql_user;
  mc.password = config.mysql_password;
  mc.database = config.mysql_database;
  return mc;
}

mysql::MysqlConfig ExperimentBase::MysqlSettings() const { return MysqlSettingsFor(config_); }

domain::Result<std::unique_ptr<mysql::Connection>> ExperimentBase::OpenMysqlWithSchema() const {
  auto conn = mysql::Connection::Open(MysqlSettings());
  if (!conn) return conn.error();
  static std::mutex mu;
  static bool applied = false;  // guarded by mu
  std::lock_guard lock(mu);
  if (!applied) {
    auto dir = FindRepoPath(config_.mysql_migrations_dir);
    if (!dir) {
      return domain::MakeError(domain::ErrorCode::kNotFound,
                               "migrations dir " + config_.mysql_migrations_dir + " not found");
    }
    auto done = mysql::ApplyMigrations(**conn, *dir);
    if (!done) return done.error();
    applied = true;
  }
  return conn;
}

domain::Result<std::unique_ptr<mysql::Connection>> ExperimentBase::PreparePipeline(
    const domain::RunContext& ctx, const std::string& mode, domain::ModeResult& result,
    const std::vector<std::pair<std::string, int>>& topics, const std::string& group) const {
  auto conn = OpenMysqlWithSchema();
  if (!conn) return domain::MakeError(conn.error().code, "mysql: " + conn.error().message);
  Created(ctx, mode, result, kArtifactRows, RunNs(ctx, mode));
  for (const auto& [topic, partitions] : topics) {
    if (auto s = CreateTopic(ctx, mode, result, topic, partitions); !s)
      return domain::MakeError(s.error().code, "kafka: " + s.error().message);
  }
  if (!group.empty()) Created(ctx, mode, result, kArtifactGroup, group);
  return conn;
}

domain::Status ExperimentBase::CreateTopic(const domain::RunContext& ctx, const std::string& mode,
                                           domain::ModeResult& result, const std::string& topic,
                                           int partitions,
                                           const std::map<std::string, std::string>& configs,
                                           int replication) const {
  auto admin = kafka::Admin::Create(config_.kafka_bootstrap);
  if (!admin) return admin.error();
  std::map<std::string, std::string> all = {{"min.insync.replicas", "2"}};
  for (const auto& [k, v] : configs) all[k] = v;
  auto s =
      (*admin)->CreateTopic(topic, partitions, replication, all, std::chrono::milliseconds(15000));
  if (!s) return s;
  Created(ctx, mode, result, kArtifactTopic, topic);
  // Wait until every partition has a leader, so the first produce does not race the creation.
  WaitUntil(
      [&] {
        auto md = (*admin)->Metadata(topic, std::chrono::milliseconds(2000));
        if (!md || static_cast<int>(md->partitions.size()) != partitions) return false;
        for (const auto& p : md->partitions) {
          if (p.leader < 0) return false;
        }
        return true;
      },
      std::chrono::milliseconds(10000), ctx.stop, std::chrono::milliseconds(100));
  return {};
}

std::string ExperimentBase::RoleBinary() const {
  auto found = FindRepoPath(config_.role_binary);
  if (found) return *found;
  auto beside = FindRepoPath("lab-role");  // next to the server/test binary in build/
  return beside ? *beside : config_.role_binary;
}

void ExperimentBase::Cleanup(const domain::RunContext& ctx,
                             const std::vector<domain::Artifact>& created) {
  if (ctx.keep_artifacts) return;
  std::vector<std::string> topics;
  std::vector<std::string> groups;
  for (const auto& a : created) {
    if (a.kind == kArtifactProcess) {
      pid_t pid = static_cast<pid_t>(std::stol(a.name));
      if (pid > 1 && IsOurChild(pid)) ::kill(pid, SIGKILL);
    } else if (a.kind == kArtifactTopic) {
      topics.push_back(a.name);
    } else if (a.kind == kArtifactGroup) {
      groups.push_back(a.name);
    }
  }
  if (!topics.empty() || !groups.empty()) {
    if (auto admin = kafka::Admin::Create(config_.kafka_bootstrap)) {
      // A member killed a moment ago still holds its group until the coordinator's session
      // timeout (6 s) expires, and a non-empty group cannot be deleted: retry, bounded.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      for (const auto& g : groups) {
        for (;;) {
          auto s = (*admin)->DeleteGroup(g, std::chrono::milliseconds(5000));
          if (s) break;
          if (std::chrono::steady_clock::now() >= deadline) {
            Step(ctx, "cleanup: " + s.error().message);
            break;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
      }
      if (auto s = (*admin)->DeleteTopics(topics, std::chrono::milliseconds(15000)); !s) {
        Step(ctx, "cleanup: " + s.error().message);
      }
    }
  }
  for (const auto& a : created) {
    if (a.kind == kArtifactRows) {
      if (auto conn = mysql::Connection::Open(MysqlSettings())) {
        for (const char* table : kRunTables) {
          auto s =
              (*conn)->Exec(std::string("DELETE FROM ") + table + " WHERE run_ns = ?", {a.name});
          if (!s && (*conn)->last_errno() != 1146) Step(ctx, "cleanup: " + s.error().message);
        }
      } else {
        Step(ctx, "cleanup: " + conn.error().message);
      }
    } else if (a.kind == kArtifactMysqlTable) {
      if (a.name.empty() ||
          a.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos) {
        Step(ctx, "cleanup: not a table name: " + a.name);
      } else if (auto conn = mysql::Connection::Open(MysqlSettings())) {
        if (auto s = (*conn)->Execute("DROP TABLE IF EXISTS " + a.name); !s)
          Step(ctx, "cleanup: " + s.error().message);
      } else {
        Step(ctx, "cleanup: " + conn.error().message);
      }
    } else if (a.kind == kArtifactRedis) {
      if (auto conn = redis::Connection::Open(config_.redis_host, config_.redis_port,
                                              std::chrono::milliseconds(2000))) {
        std::string cursor = "0";
        do {
          auto reply = (*conn)->Command({"SCAN", cursor, "MATCH", a.name + "*", "COUNT", "1000"});
          if (!reply || reply->elements.size() != 2) break;
          cursor = reply->elements[0].str;
          std::vector<std::string> del = {"DEL"};
          for (const auto& k : reply->elements[1].elements) del.push_back(k.str);
          if (del.size() > 1) (void)(*conn)->Command(del);
        } while (cursor != "0");
      }
    } else if (a.kind == kArtifactSubject) {
      registry::RegistryClient client(config_.registry_url);
      (void)client.DeleteSubject(a.name);
    } else if (a.kind == kArtifactProxy) {
      if (auto s = DeleteProxyRetrying(a.name); !s) Step(ctx, "cleanup: " + s.error().message);
    }
  }
  CleanupCluster(ctx, created);
  // Newest first: a setting changed twice in one run goes back to the value it had before the
  // first change.
  for (auto it = created.rbegin(); it != created.rend(); ++it) {
    if (it->kind == kArtifactRedisConfig || it->kind == kArtifactRedisAclUser)
      RestoreRedis(ctx, *it);
  }
}

std::string ExperimentBase::ProxyName(const domain::RunContext& ctx, const std::string& mode,
                                      const std::string& what) {
  return "lab_" + SafeName(ctx.ns) + "_" + SafeName(mode) + "_" + SafeName(what);
}

domain::Result<int> ExperimentBase::ProxyToLoopback(const domain::RunContext& ctx,
                                                    const std::string& mode,
                                                    domain::ModeResult& result,
                                                    const std::string& what,
                                                    int upstream_port) const {
  const std::string name = ProxyName(ctx, mode, what);
  Created(ctx, mode, result, kArtifactProxy, name);
  auto port = net::Toxiproxy(config_.toxiproxy_url)
                  .CreateProxy(name, "127.0.0.1:" + std::to_string(upstream_port));
  if (port) {
    Step(ctx, mode + ": toxiproxy proxy " + name + " 127.0.0.1:" + std::to_string(*port) +
                  " -> 127.0.0.1:" + std::to_string(upstream_port));
  }
  return port;
}

domain::Status ExperimentBase::DeleteProxyRetrying(const std::string& name) const {
  domain::Status s;
  for (int i = 0; i < 5; ++i) {  // bounded: Toxiproxy busy closing the proxy's connections
    s = net::Toxiproxy(config_.toxiproxy_url).DeleteProxy(name);
    if (s) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return s;
}

domain::Status ExperimentBase::RemoveProxy(const domain::RunContext& ctx, const std::string& mode,
                                           const std::string& what) const {
  const std::string proxy = ProxyName(ctx, mode, what);
  auto s = DeleteProxyRetrying(proxy);
  Step(ctx, mode + ": toxiproxy proxy " + proxy + " removed" +
                (s ? "" : " failed: " + s.error().message + " (cleanup tries again)"));
  return s;
}

domain::Status ExperimentBase::AddToxic(const domain::RunContext& ctx, const std::string& mode,
                                        const std::string& what, const std::string& type,
                                        const std::string& stream,
                                        const nlohmann::json& attributes) const {
  const std::string proxy = ProxyName(ctx, mode, what);
  auto s = net::Toxiproxy(config_.toxiproxy_url).AddToxic(proxy, type, type, stream, attributes);
  if (s) Step(ctx, mode + ": fault on: " + type + " " + attributes.dump() + " on " + proxy);
  return s;
}

domain::Status ExperimentBase::RemoveToxic(const domain::RunContext& ctx, const std::string& mode,
                                           const std::string& what, const std::string& type) const {
  const std::string proxy = ProxyName(ctx, mode, what);
  auto s = net::Toxiproxy(config_.toxiproxy_url).RemoveToxic(proxy, type);
  Step(ctx, mode + ": fault off: " + type + " on " + proxy +
                (s ? "" : " failed: " + s.error().message + " (cleanup deletes the proxy)"));
  return s;
}

domain::Result<std::unique_ptr<redis::Connection>> ExperimentBase::OpenRedis(
    std::chrono::milliseconds timeout) const {
  return redis::Connection::Open(config_.redis_host, config_.redis_port, timeout);
}

domain::Status ExperimentBase::SetRedisConfig(const domain::RunContext& ctx,
                                              const std::string& mode, domain::ModeResult& result,
                                              const std::string& parameter,
                                              const std::string& value) const {
  auto conn = OpenRedis();
  if (!conn) return conn.error();
  auto before = (*conn)->Command({"CONFIG", "GET", parameter});
  if (!before) return before.error();
  if (before->elements.size() != 2) {
    return domain::MakeError(domain::ErrorCode::kInternal,
                             "redis: CONFIG GET " + parameter + " returned no value");
  }
  Created(ctx, mode, result, kArtifactRedisConfig, parameter + "=" + before->elements[1].str);
  auto set = (*conn)->Command({"CONFIG", "SET", parameter, value});
  if (!set) return set.error();
  if (set->is_error()) {
    return domain::MakeError(domain::ErrorCode::kInternal,
                             "redis: CONFIG SET " + parameter + ": " + set->str);
  }
  Step(ctx, mode + ": redis " + parameter + " = " + value + " (was " + before->elements[1].str +
                ", restored by cleanup)");
  return {};
}

domain::Status ExperimentBase::CreateRedisAclUser(const domain::RunContext& ctx,
                                                  const std::string& mode,
                                                  domain::ModeResult& result,
                                                  const std::string& user,
                                                  const std::vector<std::string>& rules) const {
  auto conn = OpenRedis();
  if (!conn) return conn.error();
  Created(ctx, mode, result, kArtifactRedisAclUser, user);
  std::vector<std::string> argv = {"ACL", "SETUSER", user, "reset"};
  argv.insert(argv.end(), rules.begin(), rules.end());
  auto set = (*conn)->Command(argv);
  if (!set) return set.error();
  if (set->is_error()) {
    return domain::MakeError(domain::ErrorCode::kInternal,
                             "redis: ACL SETUSER " + user + ": " + set->str);
  }
  return {};
}

bool ExperimentBase::AllBrokersKnow(const std::string& topic, int partitions,
                                    const std::stop_token& stop) const {
  std::stringstream list(config_.kafka_bootstrap);
  std::string address;
  while (std::getline(list, address, ',')) {
    auto admin = kafka::Admin::Create(address);
    if (!admin) return false;
    const bool known = WaitUntil(
        [&] {
          auto md = (*admin)->Metadata(topic, std::chrono::milliseconds(2000));
          if (!md || md->partitions.size() != static_cast<std::size_t>(partitions)) return false;
          return std::all_of(md->partitions.begin(), md->partitions.end(),
                             [](const kafka::PartitionInfo& p) { return p.leader >= 0; });
        },
        std::chrono::milliseconds(10000), stop, std::chrono::milliseconds(100));
    if (!known) return false;
  }
  return true;
}

bool ExperimentBase::WaitFullyReplicated(const domain::RunContext& ctx, nlohmann::json& details,
                                         std::chrono::milliseconds timeout,
                                         const std::string& after) const {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> urp;
  auto admin = kafka::Admin::Create(config_.kafka_bootstrap);
  const bool whole =
      admin && WaitUntil(
                   [&] {
                     auto u = (*admin)->UnderReplicatedPartitions(std::chrono::milliseconds(5000));
                     urp = u ? *u : std::vector<std::string>{u.error().message};
                     return urp.empty();
                   },
                   timeout, std::stop_token(), std::chrono::milliseconds(500));
  details["cluster_fully_replicated_after_ms"] =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  details["cluster_fully_replicated"] = whole;
  if (!whole) {
    details["under_replicated_at_end"] = urp;
    Step(ctx, "warning: " + std::to_string(urp.size()) + " partitions still under-replicated " +
                  std::to_string(timeout.count() / 1000) + " s after " + after);
  }
  return whole;
}

domain::Result<std::unique_ptr<redis::ClusterClient>> ExperimentBase::OpenCluster(
    std::chrono::milliseconds timeout) const {
  return redis::ClusterClient::Open(config_.redis_cluster_seeds, timeout);
}

domain::Result<std::string> ExperimentBase::RecordClusterTopology(
    const domain::RunContext& ctx, const std::string& mode, domain::ModeResult& result) const {
  const auto view = redis::ReadSettledClusterView(
      config_.redis_cluster_seeds, std::chrono::milliseconds(2000), std::chrono::seconds(20));
  if (view.nodes.empty() || !view.problems.empty()) {
    return domain::MakeError(domain::ErrorCode::kUnavailable,
                             "redis cluster not healthy before the run: " +
                                 (view.problems.empty() ? "no node answered" : view.problems));
  }
  Created(ctx, mode, result, kArtifactClusterTopology, view.topology);
  return view.topology;
}

domain::Status ExperimentBase::ClusterFault(const domain::RunContext& ctx, const std::string& mode,
                                            domain::ModeResult& result, const std::string& verb,
                                            int n) const {
  if (verb == "pause" || verb == "kill")
    Created(ctx, mode, result, kArtifactClusterFault, verb + ":" + std::to_string(n));
  return StackFault(ctx, {"cluster", verb, std::to_string(n)}, std::chrono::seconds(60));
}

void ExperimentBase::CleanupCluster(const domain::RunContext& ctx,
                                    const std::vector<domain::Artifact>& created) const {
  // Nodes first (a paused or dead node blocks every later step), then the topology, then keys.
  for (auto it = created.rbegin(); it != created.rend(); ++it) {
    if (it->kind != kArtifactClusterFault) continue;
    const auto colon = it->name.find(':');
    if (colon == std::string::npos) continue;
    const std::string verb = it->name.substr(0, colon) == "pause" ? "resume" : "start";
    if (auto s = StackFault(ctx, {"cluster", verb, it->name.substr(colon + 1)},
                            std::chrono::seconds(60));
        !s) {
      Step(ctx, "cleanup: redis cluster " + verb + " " + it->name.substr(colon + 1) + ": " +
                    s.error().message);
    }
  }
  for (const auto& a : created) {
    if (a.kind != kArtifactClusterTopology) continue;
    auto s = redis::RestoreTopology(config_.redis_cluster_seeds, a.name, std::chrono::seconds(60),
                                    [&](const std::string& m) { Step(ctx, "cleanup: " + m); });
    if (!s) Step(ctx, "cleanup: " + s.error().message);
    break;  // the first recorded is the topology before the run
  }
  for (const auto& a : created) {
    if (a.kind != kArtifactClusterKeys) continue;
    const auto view =
        redis::ReadClusterView(config_.redis_cluster_seeds, std::chrono::milliseconds(2000));
    redis::NodePool pool(std::chrono::milliseconds(2000));
    for (const auto& node : view.nodes) {
      if (!node.master || node.Failing()) continue;
      std::string cursor = "0";
      for (int i = 0; i < 100000; ++i) {  // bounded: 100M keys at COUNT 1000
        auto reply = pool.Run(node.addr, {"SCAN", cursor, "MATCH", a.name + "*", "COUNT", "1000"});
        if (!reply || reply->elements.size() != 2) break;
        cursor = reply->elements[0].str;
        auto conn = pool.Get(node.addr);
        std::vector<std::vector<std::string>> dels;
        for (const auto& k : reply->elements[1].elements) dels.push_back({"UNLINK", k.str});
        if (!dels.empty() && conn) (void)(*conn)->Pipeline(dels);
        if (cursor == "0") break;
      }
    }
  }
}

void ExperimentBase::RestoreRedis(const domain::RunContext& ctx,
                                  const domain::Artifact& artifact) const {
  auto conn = OpenRedis();
  if (!conn) {
    Step(ctx, "cleanup: redis: " + conn.error().message);
    return;
  }
  std::vector<std::string> argv;
  if (artifact.kind == kArtifactRedisAclUser) {
    argv = {"ACL", "DELUSER", artifact.name};
  } else {
    const auto eq = artifact.name.find('=');
    if (eq == std::string::npos) return;
    argv = {"CONFIG", "SET", artifact.name.substr(0, eq), artifact.name.substr(eq + 1)};
  }
  auto reply = (*conn)->Command(argv);
  if (!reply || reply->is_error()) {
    Step(ctx, "cleanup: redis " + argv[0] + " " + argv[1] + " " + argv[2] + ": " +
                  (reply ? reply->str : reply.error().message));
  }
}

std::string RoleOutcome::Value(const std::string& key, const std::string& def) const {
  auto it = values.find(key);
  return it == values.end() ? def : it->second;
}

namespace {

// The key/value pairs of one "@lab" line of a role (none for a host's event or a malformed one).
std::vector<std::pair<std::string, std::string>> RoleLineValues(const nlohmann::json& m) {
  auto text = [&](const char* name) -> std::optional<std::string> {
    auto it = m.find(name);
    if (it == m.end()) return std::nullopt;
    if (it->is_string()) return it->get<std::string>();
    if (it->is_number_integer()) return std::to_string(it->get<std::int64_t>());
    return std::nullopt;
  };
  const std::string& t = m["t"].get_ref<const std::string&>();
  std::vector<std::pair<std::string, std::string>> out;
  if (t == "value") {
    auto key = text("key");
    auto value = text("value");
    if (key && value) out.emplace_back(*key, *value);
  } else if (t == "failpoint") {
    if (auto point = text("point")) {
      out.emplace_back("failpoint", *point);
      if (auto count = text("count")) out.emplace_back("count", *count);
      if (auto action = text("action")) out.emplace_back("action", *action);
    }
  } else if (t == "error") {
    if (auto message = text("m")) out.emplace_back("error", *message);
  }
  return out;
}

}  // namespace

std::multimap<std::string, std::string> ParseRoleOutput(const std::string& output) {
  std::multimap<std::string, std::string> values;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    auto m = wire::ParseLine(line);
    if (!m) continue;  // not ours: a client library's log, or cut off mid-write
    for (auto& [key, value] : RoleLineValues(*m)) {
      values.emplace(std::move(key), std::move(value));  // equal keys keep their order
    }
  }
  return values;
}

std::optional<std::string> LastRoleValue(const std::string& output, const std::string& key) {
  auto values = ParseRoleOutput(output);
  auto [first, last] = values.equal_range(key);
  if (first == last) return std::nullopt;
  return std::prev(last)->second;
}

std::string RoleLogText(const std::string& output, std::size_t max_chars) {
  std::string text;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    auto m = wire::ParseLine(line);
    if (!m) {
      text += line + "\n";
      continue;
    }
    std::string said;
    for (const auto& [key, value] : RoleLineValues(*m)) {
      said += (said.empty() ? "" : " ") + key + "=" + value;
    }
    text += (said.empty() ? line : said) + "\n";
  }
  return text.size() > max_chars ? text.substr(text.size() - max_chars) : text;
}

std::map<std::string, int> EventIdCounts(const std::vector<kafka::Message>& messages) {
  std::map<std::string, int> counts;
  for (const auto& m : messages) {
    for (const auto& [k, v] : m.headers) {
      if (k == "event_id") {
        ++counts[v];
        break;
      }
    }
  }
  return counts;
}

domain::Result<ChildProcess> ExperimentBase::StartRole(
    const domain::RunContext& ctx, const std::string& mode, domain::ModeResult& result,
    const std::string& role, const std::vector<std::string>& args, const std::string& label) const {
  std::vector<std::string> argv = {RoleBinary(),   role,
                                   "--bootstrap",  config_.kafka_bootstrap,
                                   "--mysql-host", config_.mysql_host,
                                   "--mysql-port", std::to_string(config_.mysql_port),
                                   "--mysql-user", config_.mysql_user,
                                   "--mysql-db",   config_.mysql_database,
                                   "--redis-host", config_.redis_host,
                                   "--redis-port", std::to_string(config_.redis_port)};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string log = (std::filesystem::temp_directory_path() /
                     ("lab-" + SafeName(ctx.ns) + "-" + mode + "-" + label + ".log"))
                        .string();
  std::remove(log.c_str());
  auto child = ChildProcess::Spawn(argv, log, {{"LAB_MYSQL_PASSWORD", config_.mysql_password}});
  if (!child) return child.error();
  Created(ctx, mode, result, kArtifactProcess, std::to_string(child->pid()));
  Step(ctx,
       mode + ": started " + role + " (" + label + ", pid " + std::to_string(child->pid()) + ")");
  return child;
}

RoleOutcome ExperimentBase::WaitRole(const domain::RunContext& ctx, ChildProcess& process,
                                     std::chrono::milliseconds timeout, domain::ModeResult& result,
                                     const std::string& label) const {
  RoleOutcome outcome;
  auto status = process.Wait(timeout, ctx.stop);
  if (!status) {
    process.Kill();
    Step(ctx, label + ": did not finish in time (or the run was cancelled); killed");
  } else {
    outcome.finished = true;
    outcome.status = *status;
  }
  outcome.values = ParseRoleOutput(process.ReadLog());
  for (const auto& [key, value] : outcome.values) {
    if (key == "client_library_failure")
      result.client_library_failures.push_back(label + ": " + value);
    if (key == "error") Step(ctx, label + ": error=" + value);
    if (key == "failpoint") {
      Step(ctx, label + ": failpoint=" + value + " count=" + outcome.Value("count") +
                    " action=" + outcome.Value("action"));
    }
  }
  if (outcome.finished) Step(ctx, label + ": " + outcome.status.Describe());
  std::remove(process.log_path().c_str());
  return outcome;
}

RoleOutcome ExperimentBase::RunRole(const domain::RunContext& ctx, const std::string& mode,
                                    domain::ModeResult& result, const std::string& role,
                                    const std::vector<std::string>& args, const std::string& label,
                                    std::chrono::milliseconds timeout) const {
  auto child = StartRole(ctx, mode, result, role, args, label);
  if (!child) {
    Step(ctx, label + ": " + child.error().message);
    return {};
  }
  return WaitRole(ctx, *child, timeout, result, label);
}

domain::Status ExperimentBase::StackFault(const domain::RunContext& ctx,
                                          const std::vector<std::string>& args,
                                          std::chrono::milliseconds timeout) const {
  auto script = FindRepoPath(config_.stack_script);
  if (!script) {
    return domain::MakeError(domain::ErrorCode::kUnavailable,
                             "stack script " + config_.stack_script + " not found");
  }
  std::vector<std::string> argv = {"/bin/bash", *script};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string text;
  for (const auto& a : args) text += " " + a;
  auto out = RunCommand(argv, timeout);
  if (!out) return out.error();
  std::string said = out->output;
  while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
  Step(ctx, "fault:" + text + " -> " + said);
  if (!out->status.exited || out->status.code != 0) {
    return domain::MakeError(domain::ErrorCode::kUnavailable,
                             "stack.sh" + text + ": " + out->status.Describe() + ": " + said);
  }
  return {};
}

std::int64_t ExperimentBase::Count(domain::ModeResult& result, mysql::Connection& conn,
                                   const std::string& sql,
                                   const std::vector<mysql::Param>& params) const {
  auto rows = conn.Query(sql, params);
  if (rows) return rows->Scalar();
  if (!result.inconclusive) {
    result.inconclusive = "a count could not be taken (" + sql.substr(0, 80) +
                          (sql.size() > 80 ? "..." : "") + "): " + rows.error().message;
  }
  return -1;
}

std::int64_t ExperimentBase::TryCount(mysql::Connection& conn, const std::string& sql,
                                      const std::vector<mysql::Param>& params) {
  auto rows = conn.Query(sql, params);
  return rows ? rows->Scalar() : -1;
}

domain::ModeResult Inconclusive(domain::ModeResult result, const std::string& why) {
  result.inconclusive = why;
  return result;
}

}  // namespace lab::runners
