// N04: a DB connection held across slow I/O exhausts the pool; the same call outside the
// transaction does not.
// A real `lab-role valuation-service` with a pool of `pool` MariaDB connections (a wait longer
// than `pool_timeout_ms` answers 503 and counts a pool timeout) writes one `valuation` row per
// request and calls a real `lab-role downstream-service` through a Toxiproxy proxy whose latency
// toxic adds `latency_ms` to every answer. `clients` threads in this process send POST /value
// for `seconds` (the same load in both modes).
//   failure: --db tx-around-call: take a connection, BEGIN, INSERT, the slow call, COMMIT: the
//            connection idles in an open transaction for the whole call.
//   success: --db call-outside-tx: the slow call first, then connection, BEGIN, INSERT, COMMIT.
//            practice=off runs the success mode with tx-around-call.
// Where the numbers come from:
//   pool_timeouts, pool_waits, pool_wait_ms_total: the service's /metrics (self_reported),
//     cross-checked with the 503s the clients received (client_observed; the queue is larger
//     than the clients, so a 503 can only be a pool timeout).
//   ok, client_503, requests_per_s, ok_p50_ms: what the clients saw (client_observed).
//   idle_in_tx_max / idle_in_tx_samples: MariaDB's own view, sampled every 50 ms during the load:
//     the service's connections (its sockets, found in /proc) that PROCESSLIST shows as Sleep
//     for >= 100 ms (TIME_MS) while INFORMATION_SCHEMA.INNODB_TRX has a transaction open on
//     them: a connection held in a transaction while doing nothing (waiting for the slow call)
//     (server_counter).
//   rows: `valuation` rows of the run read back from MariaDB after the service stopped
//     (read_back); rows_missing = ok answers without a row (must be 0).
//   toxic_fired (1/0): every ok answer took >= 0.9 x latency_ms (client_observed) and a call of
//     the runner's own through the proxy did too; else inconclusive.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/experiments/service_load.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
// A connection idle this long inside a transaction is waiting for something else than the
// database (between a short transaction's own statements it is idle for a millisecond or so).
constexpr int kIdleMs = 100;

// The local ports of `pid`'s TCP connections to `remote_port` (/proc/PID/fd socket inodes
// matched against /proc/PID/net/tcp): how MariaDB's PROCESSLIST names the service's connections
// (HOST = "127.0.0.1:<local port>"), so only the service's own transactions are counted.
std::set<int> ConnectionPorts(pid_t pid, int remote_port) {
  std::set<std::string> inodes;
  std::error_code ec;
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& entry : std::filesystem::directory_iterator(fd_dir, ec)) {
    const std::string target = std::filesystem::read_symlink(entry.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::set<int> ports;
  std::ifstream tcp("/proc/" + std::to_string(pid) + "/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  while (std::getline(tcp, line)) {
    std::istringstream in(line);
    std::string sl, local, remote, st, queues, tr, retrnsmt, uid, timeout, inode;
    if (!(in >> sl >> local >> remote >> st >> queues >> tr >> retrnsmt >> uid >> timeout >> inode))
      continue;
    const auto lc = local.find(':');
    const auto rc = remote.find(':');
    if (lc == std::string::npos || rc == std::string::npos || inodes.count(inode) == 0) continue;
    if (std::stoi(remote.substr(rc + 1), nullptr, 16) != remote_port) continue;
    ports.insert(std::stoi(local.substr(lc + 1), nullptr, 16));
  }
  return ports;
}

// MariaDB's view of the service's connections: transactions open on a connection that has been
// doing nothing (PROCESSLIST command Sleep) for at least kIdleMs, sampled every 50 ms.
class IdleTxSampler {
 public:
  IdleTxSampler(mysql::MysqlConfig config, pid_t service_pid)
      : config_(std::move(config)), pid_(service_pid) {}
  ~IdleTxSampler() { Stop(); }
  void Start() {
    thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
  }
  void Stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }
  std::int64_t max() const { return max_; }
  std::int64_t samples() const { return samples_; }
  std::int64_t samples_with_idle() const { return with_idle_; }
  std::int64_t connections_max() const { return connections_max_; }
  const std::string& error() const { return error_; }

 private:
  void Run(const std::stop_token& stop) {
    auto conn = mysql::Connection::Open(config_);
    if (!conn) {
      error_ = conn.error().message;
      return;
    }
    while (!stop.stop_requested()) {
      const std::set<int> ports = ConnectionPorts(pid_, config_.port);
      connections_max_ =
          std::max<std::int64_t>(connections_max_, static_cast<std::int64_t>(ports.size()));
      std::int64_t idle = 0;
      if (!ports.empty()) {
        std::string in;
        for (int p : ports)
          in += (in.empty() ? "'" : ",'") + config_.host + ":" + std::to_string(p) + "'";
        auto rows = (*conn)->Query(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX t "
            "JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
            "WHERE p.COMMAND = 'Sleep' AND p.TIME_MS >= " +
            std::to_string(kIdleMs) + " AND p.HOST IN (" + in + ")");
        if (!rows) {
          error_ = rows.error().message;
          return;
        }
        idle = rows->Scalar();
      }
      ++samples_;
      if (idle > 0) ++with_idle_;
      max_ = std::max(max_, idle);
      SleepFor(50ms, stop);
    }
  }
  mysql::MysqlConfig config_;
  pid_t pid_;
  std::int64_t max_ = 0;              // written by the thread, read after Stop()
  std::int64_t samples_ = 0;          // written by the thread, read after Stop()
  std::int64_t with_idle_ = 0;        // written by the thread, read after Stop()
  std::int64_t connections_max_ = 0;  // written by the thread, read after Stop()
  std::string error_;                 // written by the thread, read after Stop()
  std::jthread thread_;
};

class ConnectionHeld final : public ServiceExperiment {
 public:
  explicit ConnectionHeld(StackConfig config) : ServiceExperiment(std::move(config)) {}
  std::string_view ExperimentId() const override { return "N04"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const int clients = static_cast<int>(domain::GetInt(ctx.params, "clients"));
    const std::int64_t seconds = domain::GetInt(ctx.params, "seconds");
    const std::int64_t pool = domain::GetInt(ctx.params, "pool");
    const std::int64_t pool_timeout_ms = domain::GetInt(ctx.params, "pool_timeout_ms");
    const std::int64_t latency_ms = domain::GetInt(ctx.params, "latency_ms");
    const bool anti = mode == "failure" || domain::GetString(ctx.params, "practice") == "off";
    const std::string run_ns = RunNs(ctx, mode);

    auto db = OpenMysqlWithSchema();
    if (!db) return Inconclusive(std::move(result), "mysql: " + db.error().message);
    Created(ctx, mode, result, kArtifactRows, run_ns);
    auto downstream = StartService(ctx, mode, result, "downstream-service", {}, "downstream");
    if (!downstream) return Inconclusive(std::move(result), downstream.error().message);
    auto proxy = ProxyToLoopback(ctx, mode, result, "downstream", downstream->port);
    if (!proxy) return Inconclusive(std::move(result), "toxiproxy: " + proxy.error().message);
    const std::string proxy_url = "http://127.0.0.1:" + std::to_string(*proxy);
    if (auto s = AddToxic(ctx, mode, "downstream", "latency", "downstream",
                          {{"latency", latency_ms}, {"jitter", 0}});
        !s) {
      return Inconclusive(std::move(result), "toxiproxy: " + s.error().message);
    }
    auto service = StartService(
        ctx, mode, result, "valuation-service",
        {"--workers", std::to_string(clients + 2), "--queue", std::to_string(4 * clients + 16),
         "--executor", "abort", "--db", anti ? "tx-around-call" : "call-outside-tx", "--pool",
         std::to_string(pool), "--pool-timeout-ms", std::to_string(pool_timeout_ms), "--downstream",
         proxy_url, "--downstream-timeout-ms", std::to_string(latency_ms + 5000), "--retries", "0"},
        "service");
    if (!service) return Inconclusive(std::move(result), service.error().message);
    Step(ctx, mode + ": " + std::to_string(clients) + " clients for " + std::to_string(seconds) +
                  " s; pool " + std::to_string(pool) + " connections, pool timeout " +
                  std::to_string(pool_timeout_ms) + " ms, dependency +" +
                  std::to_string(latency_ms) + " ms (toxic); " +
                  (anti ? "transaction around the call" : "call outside the transaction"));
    Progress(ctx, 20);

    IdleTxSampler sampler(MysqlSettings(), service->process.pid());
    sampler.Start();
    LoadSpec spec;
    spec.base_url = service->BaseUrl();
    spec.clients = clients;
    spec.duration = std::chrono::seconds(seconds);
    spec.timeout = std::chrono::milliseconds(latency_ms + pool_timeout_ms + 5000);
    const LoadTotals load = RunLoad(spec, ctx.stop);
    sampler.Stop();
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    auto metrics = GetJson(*service, "/metrics");
    const ServiceReply direct =
        HttpCall("GET", proxy_url + "/ping", std::chrono::milliseconds(latency_ms + 3000));
    (void)RemoveToxic(ctx, mode, "downstream", "latency");
    StopService(ctx, *service, result);  // every transaction ended before the read-back
    StopService(ctx, *downstream, result);
    if (!metrics) return Inconclusive(std::move(result), metrics.error().message);
    if (!sampler.error().empty())
      return Inconclusive(std::move(result), "mysql sampler: " + sampler.error());
    const std::int64_t rows =
        Count(result, **db, "SELECT COUNT(*) FROM valuation WHERE run_ns = ?", {run_ns});
    if (rows < 0) return Inconclusive(std::move(result), "mysql: cannot count valuation rows");
    const double pool_timeouts = JsonNumber(*metrics, "pool_timeouts");
    const double pool_waits = JsonNumber(*metrics, "pool_waits");
    const double pool_wait_ms = JsonNumber(*metrics, "pool_wait_ms_total");
    const double service_ok = JsonNumber(*metrics, "ok");
    const double r503 = JsonNumber(*metrics, "rejected_503");
    if (pool_timeouts < 0 || pool_waits < 0 || pool_wait_ms < 0 || service_ok < 0 || r503 < 0) {
      return Inconclusive(std::move(result),
                          "the service's /metrics lack a counter: " + metrics->dump());
    }
    const double min_ok_ms =
        load.ok_ms.empty() ? 0 : *std::min_element(load.ok_ms.begin(), load.ok_ms.end());
    const bool fired = direct.status != 0 && direct.ms >= 0.9 * static_cast<double>(latency_ms) &&
                       (load.ok == 0 || min_ok_ms >= 0.9 * static_cast<double>(latency_ms));

    auto& m = result.metrics;
    m["requests"] = static_cast<double>(load.requests);
    m["ok"] = static_cast<double>(load.ok);
    m["client_503"] = static_cast<double>(load.status_503);
    m["client_timeouts"] = static_cast<double>(load.timeouts);
    m["client_errors"] =
        static_cast<double>(load.failures + load.status_other + load.status_429 + load.status_504);
    m["ok_per_s"] = load.seconds > 0 ? static_cast<double>(load.ok) / load.seconds : 0;
    m["ok_p50_ms"] = Percentile(load.ok_ms, 0.5);
    m["ok_min_ms"] = min_ok_ms;
    m["pool_timeouts"] = pool_timeouts;
    m["pool_waits"] = pool_waits;
    m["pool_wait_ms_total"] = pool_wait_ms;
    m["pool_wait_ms_avg"] = pool_waits > 0 ? pool_wait_ms / pool_waits : 0;
    m["service_ok"] = service_ok;
    m["rejected_503"] = r503;
    m["pool_timeouts_mismatch"] = std::abs(pool_timeouts - static_cast<double>(load.status_503));
    m["idle_in_tx_max"] = static_cast<double>(sampler.max());
    m["idle_in_tx_samples"] = static_cast<double>(sampler.samples_with_idle());
    m["processlist_samples"] = static_cast<double>(sampler.samples());
    m["service_connections_seen"] = static_cast<double>(sampler.connections_max());
    m["rows"] = static_cast<double>(rows);
    m["rows_missing"] = static_cast<double>(std::max<std::int64_t>(0, load.ok - rows));
    m["direct_call_ms"] = direct.ms;
    m["toxic_fired"] = fired ? 1 : 0;
    m["pool"] = static_cast<double>(pool);
    result.details_json =
        nlohmann::json(
            {{"db", anti ? "tx-around-call" : "call-outside-tx"},
             {"run_ns", run_ns},
             {"service_metrics", *metrics},
             {"client_sample_errors", load.sample_errors},
             {"provenance",
              {{"requests", "client_observed"},
               {"ok", "client_observed"},
               {"client_503", "client_observed"},
               {"client_timeouts", "client_observed"},
               {"client_errors", "client_observed"},
               {"ok_per_s", "client_observed"},
               {"ok_p50_ms", "client_observed"},
               {"ok_min_ms", "client_observed"},
               {"pool_timeouts", "self_reported"},
               {"pool_waits", "self_reported"},
               {"pool_wait_ms_total", "self_reported"},
               {"pool_wait_ms_avg", "self_reported"},
               {"service_ok", "self_reported"},
               {"rejected_503", "self_reported"},
               {"pool_timeouts_mismatch", "self_reported vs client_observed"},
               {"idle_in_tx_max", "server_counter"},
               {"idle_in_tx_samples", "server_counter"},
               {"processlist_samples", "server_counter"},
               {"service_connections_seen", "/proc of the service process"},
               {"rows", "read_back"},
               {"rows_missing", "client_observed vs read_back"},
               {"direct_call_ms", "client_observed"},
               {"toxic_fired", "client_observed"},
               {"pool", "by_design"}}},
             {"sources",
              {{"idle_in_tx_max",
                "max over 50 ms samples of INNODB_TRX joined with PROCESSLIST, COMMAND = Sleep "
                "for TIME_MS >= 100, HOST = one of the service's own connections (its sockets "
                "in /proc): transactions open on connections idle in them"},
               {"rows",
                "SELECT COUNT(*) FROM valuation WHERE run_ns = ? after the service stopped"},
               {"pool_timeouts", "the service's /metrics: pool waits longer than pool_timeout_ms"},
               {"client_503", "HTTP 503 answers the clients received"},
               {"toxic_fired",
                "the runner's own GET through the proxy and every ok answer took >= 0.9 x "
                "latency_ms"}}}})
            .dump();
    Step(ctx, mode + ": clients ok " + std::to_string(load.ok) + ", 503 " +
                  std::to_string(load.status_503) + "; service pool timeouts " +
                  std::to_string(static_cast<std::int64_t>(pool_timeouts)) + ", waits " +
                  std::to_string(static_cast<std::int64_t>(pool_waits)) +
                  "; MariaDB idle-in-transaction max " + std::to_string(sampler.max()) +
                  "; valuation rows " + std::to_string(rows) + "; direct call " +
                  std::to_string(static_cast<std::int64_t>(direct.ms)) + " ms");
    if (!fired) {
      return Inconclusive(
          std::move(result),
          "the latency toxic did not fire: the runner's call through the proxy took " +
              std::to_string(static_cast<std::int64_t>(direct.ms)) + " ms, the fastest ok answer " +
              std::to_string(static_cast<std::int64_t>(min_ok_ms)) + " ms");
    }
    if (load.requests == 0) return Inconclusive(std::move(result), "no request was sent");
    Progress(ctx, 100);
    return result;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeConnectionHeld(const StackConfig& config) {
  return std::make_unique<ConnectionHeld>(config);
}

}  // namespace lab::runners
