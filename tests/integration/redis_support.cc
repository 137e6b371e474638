#include "tests/integration/redis_support.h"

#include <gtest/gtest.h>

#include <iostream>

#include "runners/experiments/experiment_base.h"
#include "runners/kafka/kafka_client.h"
#include "runners/net/toxiproxy.h"
#include "tests/e2e/lab_process.h"
#include "tests/integration/api_harness.h"

namespace lab::testing {

double MetricOf(const RunOutcome& o, const std::string& mode, const std::string& metric) {
  auto it = o.modes.find(mode);
  if (it == o.modes.end()) return -1e9;
  auto m = it->second.metrics.find(metric);
  return m == it->second.metrics.end() ? -1e9 : m->second;
}

nlohmann::json DetailsOf(const RunOutcome& o, const std::string& mode) {
  auto it = o.modes.find(mode);
  if (it == o.modes.end()) return nlohmann::json::object();
  auto d = nlohmann::json::parse(it->second.details_json, nullptr, false);
  return d.is_object() ? d : nlohmann::json::object();
}

void ExpectFullyReplicated() {
  auto admin = runners::kafka::Admin::Create(TestStackConfig().kafka_bootstrap);
  ASSERT_TRUE(admin);
  std::vector<std::string> urp;
  EXPECT_TRUE(e2e::WaitFor(
      [&] {
        auto u = (*admin)->UnderReplicatedPartitions(std::chrono::milliseconds(5000));
        urp = u ? *u : std::vector<std::string>{"metadata: " + u.error().message};
        return urp.empty();
      },
      std::chrono::seconds(60)))
      << urp.size() << " under-replicated, e.g. " << (urp.empty() ? "" : urp.front());
}

std::string ToxiproxyLeftovers() {
  const auto env = StackEnv();
  auto it = env.find("LAB_TOXIPROXY_URL");
  runners::net::Toxiproxy toxiproxy(it != env.end() ? it->second : "http://127.0.0.1:18474");
  auto proxies = toxiproxy.ListProxies();
  if (!proxies) return "toxiproxy: " + proxies.error().message;
  std::string left;
  for (const auto& p : *proxies) {
    if (p.name.rfind("lab_", 0) == 0) left += " proxy " + p.name;
    for (const auto& t : p.toxics) left += " toxic " + t + "@" + p.name;
  }
  return left;
}

std::unique_ptr<runners::redis::Connection> Redis() {
  auto config = TestStackConfig();
  auto conn = runners::redis::Connection::Open(config.redis_host, config.redis_port,
                                               std::chrono::milliseconds(3000));
  EXPECT_TRUE(conn.ok()) << (conn ? "" : conn.error().message);
  return conn ? std::move(*conn) : nullptr;
}

std::unique_ptr<runners::mysql::Connection> Mysql() {
  auto conn = runners::mysql::Connection::Open(runners::MysqlSettingsFor(TestStackConfig()));
  EXPECT_TRUE(conn.ok()) << (conn ? "" : conn.error().message);
  return conn ? std::move(*conn) : nullptr;
}

std::map<std::string, std::string> RedisSettings() {
  std::map<std::string, std::string> out;
  auto rc = Redis();
  if (!rc) return out;
  for (const char* name : {"maxclients", "client-output-buffer-limit", "slowlog-log-slower-than",
                           "slowlog-max-len", "latency-monitor-threshold"}) {
    auto r = rc->Command({"CONFIG", "GET", name});
    out[name] = r && r->elements.size() == 2 ? r->elements[1].str : "?";
  }
  auto users = rc->Command({"ACL", "USERS"});
  for (const auto& u : users ? users->elements : std::vector<runners::redis::Reply>{})
    out["acl_users"] += u.str + ",";
  auto info = rc->Command({"INFO", "clients"});
  const std::string field = "connected_clients:";
  const auto at = info ? info->str.find(field) : std::string::npos;
  out["other_clients"] = at == std::string::npos
                             ? "?"
                             : std::to_string(std::stoll(info->str.substr(at + field.size())) - 1);
  return out;
}

RunOutcome RunRedisExperiment(const std::string& id,
                              const std::map<std::string, domain::ParamValue>& params) {
  RunOutcome o = RunThroughApi(id, params);
  bool client_failure = false;
  for (const auto& [mode, r] : o.modes) client_failure |= !r.client_library_failures.empty();
  if (o.verdict.verdict != domain::Verdict::kInconclusive || !client_failure) return o;
  std::cerr << "RETRY " << id
            << ": inconclusive with client-library failures, run once more:" << Describe(o) << "\n";
  return RunThroughApi(id, params);
}

bool PostflightClean(const RunOutcome& o) {
  for (const auto& step : o.steps)
    if (step.find("postflight:") != std::string::npos) return false;
  return true;
}

}  // namespace lab::testing
