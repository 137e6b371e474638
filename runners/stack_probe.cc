#include "runners/stack_probe.h"

#include <algorithm>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/kafka/kafka_client.h"
#include "runners/mysql/mysql_client.h"
#include "runners/net/toxiproxy.h"
#include "runners/redis/cluster_admin.h"
#include "runners/redis/redis_client.h"
#include "runners/registry/http_client.h"
#include "runners/registry/schema_registry.h"

namespace lab::runners {
namespace {

using domain::PartHealth;
using Ms = std::chrono::milliseconds;

constexpr Ms kStopSlice{100};  // how often a waiting probe looks at its stop token

PartHealth Stopped(const std::string& part) {
  return {part, false, 0, "", "not checked: the run was stopped before the part answered"};
}

PartHealth CheckKafka(const StackConfig& config, Ms timeout, const std::stop_token& stop) {
  PartHealth h{domain::kPartKafka, false, 0, "", ""};
  auto start = SteadyClock::now();
  auto admin = kafka::Admin::Create(config.kafka_bootstrap,
                                    {{"socket.connection.setup.timeout.ms",
                                      std::to_string(std::max<long long>(1000, timeout.count()))}});
  if (!admin) {
    h.detail = admin.error().message;
    return h;
  }
  // The metadata request in short slices (librdkafka keeps connecting in the background between
  // them), so a stop is seen within one slice instead of after the whole timeout.
  auto deadline = start + timeout;
  auto md = (*admin)->Metadata("", std::min(timeout, kStopSlice));
  while (!md && !stop.stop_requested() && SteadyClock::now() < deadline) {
    auto left = std::chrono::duration_cast<Ms>(deadline - SteadyClock::now());
    md = (*admin)->Metadata("", std::clamp(left, Ms(1), kStopSlice));
  }
  h.latency_ms = MsSince(start);
  if (stop.stop_requested() && !md) return Stopped(h.part);
  if (!md) {
    h.detail = md.error().message;
    return h;
  }
  std::ostringstream detail;
  detail << "brokers=" << md->brokers.size();
  for (const auto& [id, addr] : md->brokers) detail << " " << id << "@" << addr;
  h.ok = !md->brokers.empty();
  // The version as the brokers declare it: inter.broker.protocol.version of the first broker.
  if (!md->brokers.empty() && !stop.stop_requested()) {
    auto left = timeout - std::chrono::duration_cast<Ms>(SteadyClock::now() - start);
    auto configs = (*admin)->DescribeConfigs(RD_KAFKA_RESOURCE_BROKER,
                                             std::to_string(md->brokers.front().first),
                                             std::max(left, Ms(200)));
    if (configs) {
      auto it = configs->find("inter.broker.protocol.version");
      if (it != configs->end()) h.version = "inter.broker.protocol.version=" + it->second;
    } else {
      detail << "; version unknown: " << configs.error().message;
    }
  }
  detail << "; client librdkafka " << rd_kafka_version_str();
  h.detail = detail.str();
  return h;
}

PartHealth CheckRegistry(const StackConfig& config, Ms timeout) {
  PartHealth h{domain::kPartRegistry, false, 0, "", ""};
  registry::RegistryClient client(config.registry_url, timeout);
  auto start = SteadyClock::now();
  auto subjects = client.Subjects();
  h.latency_ms = MsSince(start);
  if (!subjects) {
    h.detail = subjects.error().message;
    return h;
  }
  h.ok = true;
  h.detail = "subjects=" + std::to_string(subjects->size());
  auto info = client.SystemInfo();
  if (info) {
    h.version = info->value("name", std::string("registry")) + " " +
                info->value("version", std::string("?"));
  } else {
    h.detail += "; version unknown: " + info.error().message;
  }
  return h;
}

PartHealth CheckMysql(const StackConfig& config, Ms timeout) {
  PartHealth h{domain::kPartMysql, false, 0, "", ""};
  mysql::MysqlConfig mc{
      config.mysql_host,     config.mysql_port, config.mysql_user, config.mysql_password,
      config.mysql_database, timeout,           timeout,           timeout};
  auto start = SteadyClock::now();
  auto conn = mysql::Connection::Open(mc);
  if (!conn) {
    h.latency_ms = MsSince(start);
    h.detail = conn.error().message;
    return h;
  }
  auto rows = (*conn)->Query("SELECT VERSION()");
  h.latency_ms = MsSince(start);
  if (!rows || rows->rows.empty() || !rows->rows[0][0]) {
    h.detail = rows ? "SELECT VERSION() returned nothing" : rows.error().message;
    return h;
  }
  h.ok = true;
  h.version = *rows->rows[0][0];
  return h;
}

// The settings experiments change (SetRedisConfig, CreateRedisAclUser): read for the drift check.
constexpr const char* kWatchedRedisSettings[] = {"maxclients", "client-output-buffer-limit",
                                                 "slowlog-log-slower-than", "slowlog-max-len",
                                                 "latency-monitor-threshold"};

// The watched settings and the ACL users, or an error text.
domain::Result<std::map<std::string, std::string>> RedisSettings(redis::Connection& conn) {
  std::vector<std::vector<std::string>> commands;
  for (const char* name : kWatchedRedisSettings) commands.push_back({"CONFIG", "GET", name});
  commands.push_back({"ACL", "USERS"});
  auto replies = conn.Pipeline(commands);
  if (!replies) return replies.error();
  std::map<std::string, std::string> settings;
  for (std::size_t i = 0; i + 1 < replies->size(); ++i) {
    const auto& r = (*replies)[i];
    settings[kWatchedRedisSettings[i]] = r.elements.size() == 2 ? r.elements[1].str : "?";
  }
  std::string users;
  for (const auto& u : replies->back().elements) users += (users.empty() ? "" : ",") + u.str;
  settings["acl_users"] = replies->back().is_error() ? "?" : users;
  return settings;
}

PartHealth CheckRedis(const StackConfig& config, Ms timeout, RedisBaseline* baseline) {
  PartHealth h{domain::kPartRedis, false, 0, "", ""};
  auto start = SteadyClock::now();
  auto conn = redis::Connection::Open(config.redis_host, config.redis_port, timeout);
  if (!conn) {
    h.latency_ms = MsSince(start);
    h.detail = conn.error().message;
    return h;
  }
  auto reply = (*conn)->Command({"INFO", "server"});
  h.latency_ms = MsSince(start);
  if (!reply || reply->is_error()) {
    h.detail = reply ? reply->str : reply.error().message;
    return h;
  }
  h.version = "redis " + redis::InfoValue(reply->str, "redis_version");
  h.detail = "mode=" + redis::InfoValue(reply->str, "redis_mode");
  h.ok = true;
  if (baseline == nullptr) return h;
  auto settings = RedisSettings(**conn);
  if (!settings) {
    h.ok = false;
    h.detail += "; settings not readable: " + settings.error().message;
  } else if (std::string drift = baseline->Drift(*settings); !drift.empty()) {
    h.ok = false;
    h.detail +=
        "; settings differ from the first check (not restored): " + drift +
        " (CONFIG SET / ACL DELUSER them back, or restart Redis: ./lab stack redis stop, then "
        "./lab stack redis start)";
  }
  return h;
}

// The cluster's topology (slot owners, roles) as every node sees it, against the first sight:
// a run that moved slots or failed over and did not put them back leaves the cluster unhealthy.
void CheckClusterTopology(const StackConfig& config, Ms timeout, RedisBaseline* baseline,
                          PartHealth& h) {
  const auto view = redis::ReadClusterView(config.redis_cluster_seeds, timeout);
  if (!view.problems.empty()) {
    h.ok = false;
    h.detail += "; " + view.problems;
    return;
  }
  if (std::string drift = baseline->Drift({{"topology", view.topology}}); !drift.empty()) {
    h.ok = false;
    h.detail += "; topology differs from the first check (not restored): " + drift +
                " (move the slots back / CLUSTER FAILOVER on the node that was master, or "
                "restart the lab server to accept this topology)";
  }
}

PartHealth CheckRedisCluster(const StackConfig& config, Ms timeout, const std::stop_token& stop,
                             RedisBaseline* baseline) {
  PartHealth h{domain::kPartRedisCluster, false, 0, "", ""};
  std::string last;
  for (const auto& seed : config.redis_cluster_seeds) {
    // Each seed may take the whole timeout; six of them must not outlive a stop.
    if (stop.stop_requested()) return Stopped(h.part);
    auto colon = seed.rfind(':');
    auto start = SteadyClock::now();
    auto conn =
        redis::Connection::Open(seed.substr(0, colon), std::stoi(seed.substr(colon + 1)), timeout);
    if (!conn) {
      last = conn.error().message;
      continue;
    }
    auto replies = (*conn)->Pipeline({{"CLUSTER", "INFO"}, {"INFO", "server"}});
    h.latency_ms = MsSince(start);
    if (!replies) {
      last = replies.error().message;
      continue;
    }
    const auto& info = (*replies)[0];
    if (info.is_error()) {
      last = seed + ": " + info.str;
      continue;
    }
    std::string state = redis::InfoValue(info.str, "cluster_state");
    h.ok = state == "ok";
    h.version = "redis " + redis::InfoValue((*replies)[1].str, "redis_version");
    h.detail = "seed=" + seed + " cluster_state=" + state +
               " known_nodes=" + redis::InfoValue(info.str, "cluster_known_nodes") +
               " cluster_size=" + redis::InfoValue(info.str, "cluster_size");
    if (h.ok && baseline != nullptr) CheckClusterTopology(config, timeout, baseline, h);
    return h;
  }
  h.detail = "no seed answered: " + last;
  return h;
}

PartHealth CheckToxiproxy(const StackConfig& config, Ms timeout) {
  PartHealth h{domain::kPartToxiproxy, false, 0, "", ""};
  auto r = registry::HttpRequest("GET", config.toxiproxy_url + "/version", "", "", timeout);
  if (!r) {
    h.detail = r.error().message;
    return h;
  }
  h.latency_ms = r->total_ms;
  if (r->status != 200) {
    h.detail = "GET /version: HTTP " + std::to_string(r->status);
    return h;
  }
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  h.version = "toxiproxy " + (j.is_object() ? j.value("version", r->body) : r->body);
  // Left as found: no run's proxy (named lab_*) is left, and no proxy has a toxic on it.
  auto proxies = net::Toxiproxy(config.toxiproxy_url, timeout).ListProxies();
  if (!proxies) {
    h.detail = proxies.error().message;
    return h;
  }
  std::string left;
  for (const auto& p : *proxies) {
    if (p.name.rfind("lab_", 0) == 0) left += (left.empty() ? "" : "; ") + ("proxy " + p.name);
    for (const auto& t : p.toxics)
      left += (left.empty() ? "" : "; ") + ("toxic " + t + " on " + p.name);
  }
  h.ok = left.empty();
  h.detail = left.empty() ? std::to_string(proxies->size()) + " proxies, no toxics"
                          : "left by a run or a fault command: " + left;
  return h;
}

PartHealth CheckOne(const StackConfig& config, const std::string& part, Ms timeout,
                    const std::stop_token& stop, RedisBaseline* baseline,
                    RedisBaseline* cluster_baseline) {
  if (stop.stop_requested()) return Stopped(part);
  if (part == domain::kPartKafka) return CheckKafka(config, timeout, stop);
  if (part == domain::kPartRegistry) return CheckRegistry(config, timeout);
  if (part == domain::kPartMysql) return CheckMysql(config, timeout);
  if (part == domain::kPartRedis) return CheckRedis(config, timeout, baseline);
  if (part == domain::kPartRedisCluster)
    return CheckRedisCluster(config, timeout, stop, cluster_baseline);
  if (part == domain::kPartToxiproxy) return CheckToxiproxy(config, timeout);
  return {part, false, 0, "", "unknown stack part"};
}

}  // namespace

std::string RedisBaseline::Drift(const std::map<std::string, std::string>& now) {
  std::lock_guard lock(mu_);
  if (!first_) {
    first_ = now;
    return "";
  }
  std::string drift;
  for (const auto& [name, value] : now) {
    auto was = first_->find(name);
    if (was == first_->end() || was->second == value) continue;
    drift += (drift.empty() ? "" : "; ") + name + "=" + value + " (was " + was->second + ")";
  }
  return drift;
}

domain::PartHealth RealStackProbe::CheckPart(const std::string& part, Ms timeout) const {
  return CheckOne(config_, part, timeout, {}, redis_baseline_.get(), cluster_baseline_.get());
}

std::vector<domain::PartHealth> RealStackProbe::Check(const std::vector<std::string>& parts,
                                                      Ms timeout) {
  return Check(parts, timeout, {});
}

std::vector<domain::PartHealth> RealStackProbe::Check(const std::vector<std::string>& parts,
                                                      Ms timeout, std::stop_token stop) {
  std::vector<std::string> wanted = parts;
  if (wanted.empty()) {
    wanted = {domain::kPartKafka, domain::kPartRegistry,     domain::kPartMysql,
              domain::kPartRedis, domain::kPartRedisCluster, domain::kPartToxiproxy};
  }
  // In parallel, each bounded by its client's timeout. A part that overruns anyway is reported
  // as not answering, and its thread (which owns copies of everything it uses) finishes alone.
  std::vector<std::future<domain::PartHealth>> futures;
  for (const auto& part : wanted) {
    auto promise = std::make_shared<std::promise<domain::PartHealth>>();
    futures.push_back(promise->get_future());
    std::thread([promise, config = config_, part, timeout, stop, baseline = redis_baseline_,
                 cluster = cluster_baseline_] {
      promise->set_value(CheckOne(config, part, timeout, stop, baseline.get(), cluster.get()));
    }).detach();
  }
  std::vector<domain::PartHealth> out;
  auto deadline = SteadyClock::now() + timeout * 2 + Ms(1000);
  for (size_t i = 0; i < wanted.size(); ++i) {
    // Waits in slices so that a stop ends the wait at once; MySQL's and Redis's connects cannot
    // be interrupted, so their threads are left to finish alone.
    bool ready = false;
    while (!(ready = futures[i].wait_for(Ms(0)) == std::future_status::ready) &&
           !stop.stop_requested() && SteadyClock::now() < deadline) {
      (void)futures[i].wait_until(std::min(deadline, SteadyClock::now() + kStopSlice));
    }
    if (ready) {
      out.push_back(futures[i].get());
    } else if (stop.stop_requested()) {
      out.push_back(Stopped(wanted[i]));
    } else {
      out.push_back({wanted[i], false, static_cast<double>(timeout.count()), "",
                     "did not answer within " + std::to_string(timeout.count()) + " ms"});
    }
  }
  return out;
}

}  // namespace lab::runners
