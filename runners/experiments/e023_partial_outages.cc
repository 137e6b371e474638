// E-023: partial outages should degrade, not collapse. A real `lab-role shop-service` reads
// items through Redis in front of MariaDB and takes orders whose events must reach Kafka; it
// reaches Redis and MariaDB through Toxiproxy proxies of the run. Under a closed-loop load of
// `clients` threads of this process (every `write_every`-th request an order, the others item
// reads, each with the client's own timeout), three outages come in turn, each `outage_ms`
// long and `gap_ms` apart:
//   redis: a `timeout` toxic (timeout 0: every byte to Redis dropped, connections held) on the
//          service's Redis proxy; mysql: the same on its MariaDB proxy; kafka: all three brokers
//          paused (infra/stack.sh kafka pause N: SIGSTOP), then resumed.
//   failure (--practice naive): long client timeouts, no breaker, a Redis error fails the read,
//            cache keys expire, orders produced synchronously after the commit.
//   success (--practice degrade): breakers, bounded calls, reads bypass a dead cache, stale reads
//            when MariaDB is gone, writes refused at once when they cannot be made durable, the
//            outbox row in the order's transaction and the outbox-relay role publishing it.
//            practice=off: the success mode runs naive.
// Every fault is recorded before it is made (the proxies as artifacts: cleanup deletes them with
// their toxics; each paused broker as kArtifactBrokerPaused: cleanup resumes it) and undone by
// the mode itself on every path.
// Where the numbers come from:
//   <o>_fault_fired: this process's own probe through the proxy during the window (a Redis PING
//     / a MariaDB login that must not answer) and, for kafka, infra/stack.sh status reporting
//     the three brokers paused and a metadata request that must not answer (client_observed /
//     server_counter); <o>_service_errors: the service's /metrics deltas (self_reported).
//   p99_<o>_ms, error_pct_<o>, read_error_pct_<o>, stale_reads_mysql, writes_refused_mysql: the
//     clients' clock and answers, by send time inside the window (client_observed).
//   acked_orders: orders the clients were answered 2xx (client_observed); orders_in_db: rows
//     read back from MariaDB; events_in_topic: distinct order events read back from the topic
//     with a fresh consumer after every fault was undone and the outbox drained; lost =
//     acknowledged orders without a row + rows without an event (read_back).
//   peak_outbox_backlog: pending outbox rows counted in MariaDB every 250 ms during the kafka
//     outage (read_back).
#include "runners/experiments/e023_partial_outages.h"

#include <signal.h>

#include <algorithm>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/experiments/service_load.h"
#include "runners/service/clock.h"

namespace lab::runners {

WindowStats SummarizeWindow(const std::vector<ShopRequest>& requests, std::int64_t from_ms,
                            std::int64_t to_ms) {
  WindowStats w;
  std::vector<double> all;
  std::vector<double> refused;
  std::int64_t errors = 0;
  std::int64_t read_errors = 0;
  for (const auto& r : requests) {
    if (r.sent_ms < from_ms || r.sent_ms >= to_ms) continue;
    ++w.requests;
    all.push_back(r.ms);
    const bool ok = r.status >= 200 && r.status < 300;
    errors += ok ? 0 : 1;
    w.no_answer += r.status == 0 ? 1 : 0;
    if (r.write) {
      ++w.writes;
      w.writes_ok += ok ? 1 : 0;
      if (r.status == 503) {
        ++w.writes_refused;
        refused.push_back(r.ms);
      }
    } else {
      ++w.reads;
      read_errors += ok ? 0 : 1;
      w.stale_reads += ok && r.stale ? 1 : 0;
    }
  }
  if (w.requests == 0) return w;
  w.p99_ms = Percentile(all, 0.99);
  w.p50_ms = Percentile(all, 0.50);
  w.error_pct = 100.0 * static_cast<double>(errors) / static_cast<double>(w.requests);
  if (w.reads > 0)
    w.read_error_pct = 100.0 * static_cast<double>(read_errors) / static_cast<double>(w.reads);
  if (!refused.empty()) w.write_refused_p99_ms = Percentile(refused, 0.99);
  return w;
}

Reconciliation Reconcile(const std::set<std::int64_t>& acked,
                         const std::set<std::int64_t>& committed,
                         const std::set<std::int64_t>& published) {
  Reconciliation r;
  r.acked = static_cast<std::int64_t>(acked.size());
  r.committed = static_cast<std::int64_t>(committed.size());
  r.published = static_cast<std::int64_t>(published.size());
  for (auto id : acked) r.acked_missing += committed.count(id) == 0 ? 1 : 0;
  for (auto id : committed) r.committed_without_event += published.count(id) == 0 ? 1 : 0;
  for (auto id : published) r.events_without_order += committed.count(id) == 0 ? 1 : 0;
  r.lost = r.acked_missing + r.committed_without_event;
  return r;
}

std::int64_t OrderIdOfEvent(const std::string& event_id, const std::string& run_ns) {
  const std::string prefix = run_ns + "-";
  if (event_id.size() <= prefix.size() || event_id.compare(0, prefix.size(), prefix) != 0)
    return -1;
  const std::string rest = event_id.substr(prefix.size());
  if (rest.find_first_not_of("0123456789") != std::string::npos || rest.size() > 15) return -1;
  return std::stoll(rest);
}

namespace {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

// Broker N (infra/stack.sh numbering) paused by this run; name = N. Recorded before the pause,
// so whatever ends the run, Cleanup resumes it.
constexpr const char* kArtifactBrokerPaused = "kafka-broker-paused";
constexpr int kPartitions = 3;
const std::set<int> kBrokers = {1, 2, 3};

// The closed-loop load: `clients` threads, each one request at a time.
class ShopLoad {
 public:
  ShopLoad(std::string base, int clients, Ms timeout, std::int64_t items, std::int64_t write_every)
      : base_(std::move(base)),
        clients_(clients),
        timeout_(timeout),
        items_(items),
        write_every_(write_every) {}
  ~ShopLoad() { Stop(); }
  void Start() {
    for (int c = 0; c < clients_; ++c)
      threads_.emplace_back([this, c](std::stop_token stop) { Run(c, stop); });
  }
  void Stop() {
    for (auto& t : threads_) t.request_stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }
  std::vector<ShopRequest> Requests() const {  // after Stop()
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void Run(int client, const std::stop_token& stop) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(client) * 7919 + 17);
    std::vector<ShopRequest> mine;
    for (std::int64_t k = client; !stop.stop_requested(); ++k) {
      ShopRequest r;
      r.write = write_every_ > 0 && k % write_every_ == 0;
      r.id = r.write ? ++next_order_
                     : 1 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(items_));
      r.sent_ms = service::EpochMs();
      const ServiceReply reply =
          HttpCall(r.write ? "POST" : "GET",
                   base_ + (r.write ? "/order?id=" : "/item?id=") + std::to_string(r.id), timeout_,
                   {}, &stop);
      if (reply.error == "cancelled") break;  // not an answer the service gave
      r.ms = reply.ms;
      r.status = reply.status;
      r.stale = reply.status == 200 && reply.body.find("stale_ms") != std::string::npos;
      mine.push_back(r);
    }
    std::lock_guard lock(mu_);
    requests_.insert(requests_.end(), mine.begin(), mine.end());
  }

  std::string base_;
  int clients_;
  Ms timeout_;
  std::int64_t items_;
  std::int64_t write_every_;
  std::atomic<std::int64_t> next_order_{0};
  mutable std::mutex mu_;
  std::vector<ShopRequest> requests_;  // guarded by mu_
  std::vector<std::jthread> threads_;
};

struct Outage {
  std::string name;  // redis | mysql | kafka
  std::int64_t on_ms = 0;
  std::int64_t off_ms = 0;
  bool fired = false;
  std::string probe;  // what the probe saw
  double service_errors = 0;
  std::int64_t peak_backlog = 0;
};

class PartialOutagesExperiment final : public ServiceExperiment {
 public:
  explicit PartialOutagesExperiment(StackConfig config) : ServiceExperiment(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-023"; }

  void Cleanup(const domain::RunContext& ctx,
               const std::vector<domain::Artifact>& created) override {
    // A broker still paused (the runner died mid-outage) is resumed before anything else: the
    // topics cannot be deleted without it, and the stack must be left as found.
    std::set<int> paused;
    for (const auto& a : created) {
      if (a.kind == kArtifactBrokerPaused) paused.insert(std::stoi(a.name));
    }
    if (!paused.empty()) {
      if (auto left = Brokers(ctx, paused, "resume"); !left.empty())
        (void)Brokers(ctx, left, "resume");
    }
    ExperimentBase::Cleanup(ctx, created);
  }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    nlohmann::json details;
    std::set<int> paused;  // brokers this mode paused and has not resumed
    const std::string why = Run(ctx, mode, result, details, paused);
    if (!paused.empty()) {  // every exit path: the brokers run again before the mode ends
      const auto left = Brokers(ctx, paused, "resume");
      if (!left.empty()) Step(ctx, mode + ": brokers still paused; cleanup resumes them");
    }
    result.details_json = details.dump();
    if (!why.empty()) return Inconclusive(std::move(result), why);
    return result;
  }

 private:
  // `infra/stack.sh kafka <verb> N` for every N at once (a resume waits for the broker's health,
  // which needs the other voters back too). Returns the brokers whose command failed.
  std::set<int> Brokers(const domain::RunContext& ctx, const std::set<int>& ids,
                        const std::string& verb) const {
    std::set<int> failed;
    auto script = FindRepoPath(config_.stack_script);
    if (!script) {
      Step(ctx, "stack script " + config_.stack_script + " not found");
      return ids;
    }
    std::map<int, std::future<domain::Result<CommandOutput>>> runs;
    for (int id : ids) {
      runs[id] = std::async(std::launch::async, [&, id] {
        return RunCommand({"/bin/bash", *script, "kafka", verb, std::to_string(id)}, 150s);
      });
    }
    for (auto& [id, f] : runs) {
      auto out = f.get();
      const bool ok = out && out->status.exited && out->status.code == 0;
      if (!ok) failed.insert(id);
      std::string text = out ? out->output : out.error().message;
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
      if (text.size() > 300) text = text.substr(text.size() - 300);
      Step(ctx, "kafka " + verb + " " + std::to_string(id) + (ok ? ": " : " FAILED: ") + text);
    }
    return failed;
  }

  // How many brokers infra/stack.sh status reports paused (the process state T), or -1.
  int PausedBrokers() const {
    auto script = FindRepoPath(config_.stack_script);
    if (!script) return -1;
    auto out = RunCommand({"/bin/bash", *script, "status"}, 30s);
    if (!out) return -1;
    int n = 0;
    for (int id : kBrokers) {
      const std::string part = "kafka" + std::to_string(id);
      auto at = out->output.find("\n" + part + " ");
      if (at == std::string::npos) continue;
      const auto end = out->output.find('\n', at + 1);
      n += out->output.substr(at, end - at).find(" paused ") != std::string::npos ? 1 : 0;
    }
    return n;
  }

  std::string Probe(const std::string& name, int proxy_port, bool& fired) const {
    if (name == "redis") {
      auto c = redis::Connection::Open("127.0.0.1", proxy_port, 300ms);
      if (!c) {
        fired = true;
        return "connect: " + c.error().message;
      }
      auto r = (*c)->Command({"PING"});
      fired = !r.ok();
      return r ? "PING answered " + r->str : "PING: " + r.error().message;
    }
    if (name == "mysql") {
      mysql::MysqlConfig m = MysqlSettings();
      m.port = proxy_port;
      m.connect_timeout = m.read_timeout = m.write_timeout = 1000ms;
      auto c = mysql::Connection::Open(m);
      if (!c) {
        fired = true;
        return "login: " + c.error().message;
      }
      auto r = (*c)->Query("SELECT 1");
      fired = !r.ok();
      return r ? "SELECT 1 answered" : "SELECT 1: " + r.error().message;
    }
    const int paused = PausedBrokers();
    std::string seen = "infra/stack.sh status: " + std::to_string(paused) + "/3 brokers paused";
    auto admin = kafka::Admin::Create(config_.kafka_bootstrap);
    bool answered = true;
    if (admin) {
      auto md = (*admin)->Metadata("", 1000ms);
      answered = md.ok();
      seen += md ? "; metadata answered" : "; metadata: " + md.error().message;
    }
    fired = paused == 3 && !answered;
    return seen;
  }

  std::string Run(const domain::RunContext& ctx, const std::string& mode,
                  domain::ModeResult& result, nlohmann::json& details, std::set<int>& paused) {
    const std::int64_t outage_ms = domain::GetInt(ctx.params, "outage_ms");
    const std::int64_t gap_ms = domain::GetInt(ctx.params, "gap_ms");
    const std::int64_t clients = domain::GetInt(ctx.params, "clients");
    const std::int64_t client_timeout_ms = domain::GetInt(ctx.params, "client_timeout_ms");
    const std::int64_t items = domain::GetInt(ctx.params, "items");
    const std::int64_t write_every = domain::GetInt(ctx.params, "write_every");
    const std::int64_t message_timeout_ms = domain::GetInt(ctx.params, "message_timeout_ms");
    const bool degrade = mode == "success" && domain::GetString(ctx.params, "practice") != "off";
    const std::string ns = RunNs(ctx, mode);
    const std::string topic = Topic(ctx, mode, "orders");
    const std::string prefix = RedisPrefix(ctx, mode);
    details["run_ns"] = ns;
    details["topic"] = topic;
    details["practice"] = degrade ? "degrade" : "naive";

    auto conn = PreparePipeline(ctx, mode, result, {{topic, kPartitions}}, "");
    if (!conn) return conn.error().message;
    Created(ctx, mode, result, kArtifactRedis, prefix);
    std::string values;
    for (std::int64_t i = 1; i <= items; ++i) {
      values += (i > 1 ? "," : "") + std::string("('") + ns + "'," + std::to_string(i) +
                ",'item'," + std::to_string(100 + i) + ",1)";
    }
    if (auto s = (*conn)->Execute(
            "INSERT INTO product (run_ns, product_id, name, price, version) VALUES " + values);
        !s) {
      return "mysql: " + s.error().message;
    }
    auto redis_proxy = ProxyToLoopback(ctx, mode, result, "redis", config_.redis_port);
    if (!redis_proxy) return "toxiproxy: " + redis_proxy.error().message;
    auto mysql_proxy = ProxyToLoopback(ctx, mode, result, "mysql", config_.mysql_port);
    if (!mysql_proxy) return "toxiproxy: " + mysql_proxy.error().message;
    if (!AllBrokersKnow(topic, kPartitions, ctx.stop)) {
      if (ctx.stop.stop_requested()) return "cancelled";
      return "not every broker knew the new topic within 10 s (librdkafka #4401)";
    }
    auto svc = StartService(
        ctx, mode, result, "shop-service",
        {"--key-prefix", prefix, "--topic", topic, "--practice", degrade ? "degrade" : "naive",
         "--redis-port", std::to_string(*redis_proxy), "--mysql-port", std::to_string(*mysql_proxy),
         "--message-timeout-ms", std::to_string(message_timeout_ms)},
        "shop-service");
    if (!svc) return svc.error().message;
    std::optional<ChildProcess> relay;
    if (degrade) {
      auto started =
          StartRole(ctx, mode, result, "outbox-relay",
                    {"--ns", ns, "--topic", topic, "--batch", "500", "--idle-exit-ms", "600000"},
                    "outbox-relay");
      if (!started) return "could not start the outbox-relay: " + started.error().message;
      relay = std::move(*started);
    }
    // Every item read once: the cache is warm before the first outage.
    for (std::int64_t i = 1; i <= items && !ctx.stop.stop_requested(); ++i)
      (void)HttpCall("GET", svc->BaseUrl() + "/item?id=" + std::to_string(i), 2000ms);
    Progress(ctx, 10);

    ShopLoad load(svc->BaseUrl(), static_cast<int>(clients), Ms(client_timeout_ms), items,
                  write_every);
    const std::int64_t start_ms = service::EpochMs();
    load.Start();
    SleepFor(1000ms, ctx.stop);
    const std::int64_t baseline_end_ms = service::EpochMs();

    std::vector<Outage> outages(3);
    outages[0].name = "redis";
    outages[1].name = "mysql";
    outages[2].name = "kafka";
    std::string error;
    for (std::size_t k = 0; k < outages.size() && error.empty(); ++k) {
      if (ctx.stop.stop_requested()) break;
      Outage& o = outages[k];
      auto before = GetJson(*svc, "/metrics");
      const int port = o.name == "redis" ? *redis_proxy : *mysql_proxy;
      if (o.name == "kafka") {
        for (int id : kBrokers) {
          Created(ctx, mode, result, kArtifactBrokerPaused, std::to_string(id));
          paused.insert(id);
        }
        if (!Brokers(ctx, kBrokers, "pause").empty()) {
          error = "a broker could not be paused";
          break;
        }
      } else if (auto s = AddToxic(ctx, mode, o.name, "timeout", "upstream", {{"timeout", 0}});
                 !s) {
        error = "toxiproxy: " + s.error().message;
        break;
      }
      o.on_ms = service::EpochMs();
      Step(ctx, mode + ": fault on: " + o.name + " down for " + std::to_string(outage_ms) + " ms");
      SleepFor(300ms, ctx.stop);
      // The probe runs beside the backlog sampling; the fault stays on until it has its answer
      // (infra/stack.sh status can take a second), so what it saw is the fault.
      auto probe = std::async(std::launch::async, [&, port] {
        bool fired = false;
        std::string seen = Probe(o.name, port, fired);
        return std::make_pair(fired, seen);
      });
      auto probe_done = [&] { return probe.wait_for(0ms) == std::future_status::ready; };
      while (!ctx.stop.stop_requested() &&
             (service::EpochMs() < o.on_ms + outage_ms || !probe_done())) {
        if (o.name == "kafka") {  // the outbox accumulating, counted in MariaDB
          const std::int64_t pending = TryCount(
              **conn, "SELECT COUNT(*) FROM outbox_event WHERE run_ns = ? AND published_at_us = 0",
              {ns});
          o.peak_backlog = std::max(o.peak_backlog, pending);
        }
        SleepFor(Ms(std::clamp<std::int64_t>(o.on_ms + outage_ms - service::EpochMs(), 20, 250)),
                 ctx.stop);
      }
      std::tie(o.fired, o.probe) = probe.get();
      Step(ctx, mode + ": " + o.name + " probe: " + o.probe);
      o.off_ms = service::EpochMs();
      if (o.name == "kafka") {
        const auto left = Brokers(ctx, paused, "resume");
        for (int id : std::set<int>(paused))
          if (left.count(id) == 0) paused.erase(id);
        if (!left.empty()) error = "a broker could not be resumed";
      } else if (auto s = RemoveToxic(ctx, mode, o.name, "timeout"); !s) {
        error = "toxiproxy: " + s.error().message;
      }
      auto after = GetJson(*svc, "/metrics");
      if (before && after) {
        const std::string key = o.name == "redis"   ? "redis_errors"
                                : o.name == "mysql" ? "db_errors"
                                                    : "kafka_errors";
        o.service_errors = JsonNumber(*after, key) - JsonNumber(*before, key);
      }
      Progress(ctx, 20 + 20 * static_cast<double>(k));
      SleepFor(Ms(gap_ms), ctx.stop);
    }
    const std::int64_t end_ms = service::EpochMs();
    load.Stop();
    if (ctx.stop.stop_requested()) return "cancelled";
    if (!error.empty()) return error;
    WaitFullyReplicated(ctx, details, 30s, "the brokers were resumed");

    // The outbox drains, then the relay stops; the service prints its own counters.
    if (relay) {
      const bool drained = WaitUntil(
          [&] {
            return TryCount(**conn,
                            "SELECT COUNT(*) FROM outbox_event WHERE run_ns = ? AND "
                            "published_at_us = 0",
                            {ns}) == 0;
          },
          30s, ctx.stop, 100ms);
      if (ctx.stop.stop_requested()) return "cancelled";
      details["outbox_drained"] = drained;
      relay->Signal(SIGTERM);
      WaitRole(ctx, *relay, 10s, result, "outbox-relay");
    }
    auto final_metrics = GetJson(*svc, "/metrics");
    StopService(ctx, *svc, result);
    (void)RemoveProxy(ctx, mode, "redis");
    (void)RemoveProxy(ctx, mode, "mysql");
    if (final_metrics) details["service_metrics_end"] = *final_metrics;

    // Read back: the order rows and the events in the topic.
    auto rows = (*conn)->Query("SELECT order_id FROM orders WHERE run_ns = ?", {ns});
    if (!rows) return "mysql: " + rows.error().message;
    std::set<std::int64_t> committed;
    for (const auto& r : rows->rows) committed.insert(std::stoll(r[0].value_or("0")));
    auto read = kafka::ReadTopic(config_.kafka_bootstrap, topic, kPartitions, "read_committed",
                                 ReadBackWait(static_cast<std::int64_t>(committed.size())));
    if (!read.complete) return "read-back: " + read.error;
    std::set<std::int64_t> published;
    for (const auto& [event_id, n] : EventIdCounts(read.messages)) {
      if (const auto id = OrderIdOfEvent(event_id, ns); id >= 0) published.insert(id);
    }
    const auto requests = load.Requests();
    std::set<std::int64_t> acked;
    for (const auto& r : requests)
      if (r.write && r.status >= 200 && r.status < 300) acked.insert(r.id);
    const Reconciliation rec = Reconcile(acked, committed, published);

    auto& m = result.metrics;
    const WindowStats base = SummarizeWindow(requests, start_ms, baseline_end_ms);
    m["requests"] = static_cast<double>(requests.size());
    m["p99_baseline_ms"] = base.p99_ms;
    double p99_max = 0;
    double read_error_max = 0;
    nlohmann::json windows = {{"baseline",
                               {{"requests", base.requests},
                                {"p50_ms", base.p50_ms},
                                {"p99_ms", base.p99_ms},
                                {"error_pct", base.error_pct}}}};
    for (const auto& o : outages) {
      const WindowStats w = SummarizeWindow(requests, o.on_ms, o.off_ms);
      if (w.requests == 0) return "the load sent no request during the " + o.name + " outage";
      m[o.name + "_fault_fired"] = o.fired ? 1 : 0;
      m[o.name + "_service_errors"] = o.service_errors;
      m[o.name + "_outage_ms"] = static_cast<double>(o.off_ms - o.on_ms);
      m["p99_" + o.name + "_ms"] = w.p99_ms;
      m["error_pct_" + o.name] = w.error_pct;
      m["read_error_pct_" + o.name] = w.read_error_pct;
      p99_max = std::max(p99_max, w.p99_ms);
      read_error_max = std::max(read_error_max, w.read_error_pct);
      windows[o.name] = {{"from_s", static_cast<double>(o.on_ms - start_ms) / 1000.0},
                         {"to_s", static_cast<double>(o.off_ms - start_ms) / 1000.0},
                         {"requests", w.requests},
                         {"reads", w.reads},
                         {"writes", w.writes},
                         {"p50_ms", w.p50_ms},
                         {"p99_ms", w.p99_ms},
                         {"error_pct", w.error_pct},
                         {"read_error_pct", w.read_error_pct},
                         {"stale_reads", w.stale_reads},
                         {"writes_ok", w.writes_ok},
                         {"writes_refused", w.writes_refused},
                         {"write_refused_p99_ms", w.write_refused_p99_ms},
                         {"no_answer", w.no_answer},
                         {"probe", o.probe},
                         {"service_errors", o.service_errors}};
      if (o.name == "mysql") {
        m["stale_reads_mysql"] = static_cast<double>(w.stale_reads);
        m["writes_refused_mysql"] = static_cast<double>(w.writes_refused);
        m["write_refused_p99_mysql_ms"] = w.write_refused_p99_ms;
      }
      if (o.name == "kafka") m["peak_outbox_backlog"] = static_cast<double>(o.peak_backlog);
    }
    const WindowStats after = SummarizeWindow(requests, outages.back().off_ms + gap_ms / 2, end_ms);
    m["p99_max_during_ms"] = p99_max;
    m["read_error_pct_max"] = read_error_max;
    m["error_pct_after"] = after.requests > 0 ? after.error_pct : 100;
    // A paused broker keeps the bytes already sent to it and appends them when it resumes: the
    // first requests of the outage land late. Only records queued after the first request
    // timeout (= message timeout) can expire inside the outage, so it must be twice as long.
    m["outage_over_message_timeout"] = outage_ms >= 2 * message_timeout_ms ? 1 : 0;
    m["acked_orders"] = static_cast<double>(rec.acked);
    m["orders_in_db"] = static_cast<double>(rec.committed);
    m["events_in_topic"] = static_cast<double>(rec.published);
    m["acked_missing"] = static_cast<double>(rec.acked_missing);
    m["committed_without_event"] = static_cast<double>(rec.committed_without_event);
    m["events_without_order"] = static_cast<double>(rec.events_without_order);
    m["lost"] = static_cast<double>(rec.lost);
    windows["after"] = {
        {"requests", after.requests}, {"p99_ms", after.p99_ms}, {"error_pct", after.error_pct}};
    details["windows"] = windows;
    details["service"] = {{"practice", degrade ? "degrade" : "naive"},
                          {"cache_ttl_ms", 1000},
                          {"message_timeout_ms", message_timeout_ms},
                          {"redis_timeout_ms", degrade ? 100 : 2000},
                          {"db", degrade ? "own pool of 8, waited for 300 ms, breaker"
                                         : "on the request thread, read timeout 5 s"}};
    details["faults"] = {
        {"redis", "toxic timeout=0 (upstream) on " + ProxyName(ctx, mode, "redis")},
        {"mysql", "toxic timeout=0 (upstream) on " + ProxyName(ctx, mode, "mysql")},
        {"kafka", "infra/stack.sh kafka pause 1..3 (SIGSTOP), then resume"}};
    details["provenance"] = {
        {"redis_fault_fired", "client_observed"},
        {"mysql_fault_fired", "client_observed"},
        {"kafka_fault_fired", "server_counter"},
        {"redis_service_errors", "self_reported"},
        {"mysql_service_errors", "self_reported"},
        {"kafka_service_errors", "self_reported"},
        {"p99_baseline_ms", "client_observed"},
        {"p99_redis_ms", "client_observed"},
        {"p99_mysql_ms", "client_observed"},
        {"p99_kafka_ms", "client_observed"},
        {"p99_max_during_ms", "client_observed"},
        {"error_pct_redis", "client_observed"},
        {"error_pct_mysql", "client_observed"},
        {"error_pct_kafka", "client_observed"},
        {"read_error_pct_redis", "client_observed"},
        {"read_error_pct_mysql", "client_observed"},
        {"read_error_pct_kafka", "client_observed"},
        {"read_error_pct_max", "client_observed"},
        {"error_pct_after", "client_observed"},
        {"stale_reads_mysql", "client_observed"},
        {"writes_refused_mysql", "client_observed"},
        {"write_refused_p99_mysql_ms", "client_observed"},
        {"requests", "client_observed"},
        {"acked_orders", "client_observed"},
        {"orders_in_db", "read_back"},
        {"events_in_topic", "read_back"},
        {"acked_missing", "read_back"},
        {"committed_without_event", "read_back"},
        {"events_without_order", "read_back"},
        {"lost", "read_back"},
        {"peak_outbox_backlog", "read_back"},
        {"redis_outage_ms", "client_observed"},
        {"mysql_outage_ms", "client_observed"},
        {"kafka_outage_ms", "client_observed"},
        {"outage_over_message_timeout", "by_design: outage_ms >= 2 x message_timeout_ms"}};
    Step(ctx, mode + ": p99 redis " + Fixed(m["p99_redis_ms"], 0) + " ms, mysql " +
                  Fixed(m["p99_mysql_ms"], 0) + " ms, kafka " + Fixed(m["p99_kafka_ms"], 0) +
                  " ms; read errors max " + Fixed(read_error_max) + "%; acked " +
                  std::to_string(rec.acked) + ", in db " + std::to_string(rec.committed) +
                  ", in topic " + std::to_string(rec.published) + ", lost " +
                  std::to_string(rec.lost));
    Progress(ctx, 100);
    return "";
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakePartialOutages(const StackConfig& config) {
  return std::make_unique<PartialOutagesExperiment>(config);
}

}  // namespace lab::runners
