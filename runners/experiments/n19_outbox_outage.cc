// N19: the outbox survives a long broker outage. All three Kafka brokers of the stack are really
// stopped (infra/stack.sh kafka stop N, the three at once; broker_fault=kill sends SIGKILL
// instead) while the command-service keeps writing orders at `rate` commands/s.
//   failure: the command-service produces each event directly after its commit (idempotent,
//            acks=all, message.timeout.ms = delivery_timeout_ms). The outage outlasts that
//            timeout, so what it wrote while the brokers were down fails in the client and is
//            never delivered: committed in MariaDB, absent from the topic.
//   success: the command-service writes the outbox row in the order's transaction; the
//            outbox-relay runs throughout (it keeps retrying while the brokers are down), the
//            backlog accumulates in the table, and the relay drains it once they are back.
//            practice=off: the success mode produces directly, as the failure mode does.
// Sequence per mode: a fresh topic (3 partitions, RF 3, min ISR 2) and run_ns; the writer (and
// the relay) start with every broker up; after `rate` orders (about a second of traffic) every
// broker is stopped; the run waits until every broker's port refuses connections (the fault
// fired), then keeps them down at least outage_seconds and until `backlog` orders were committed
// since the stop; the writer gets SIGTERM and exits (a direct producer first fails what it could
// not deliver); the brokers are started again, the three at once (KRaft needs two voters before
// any of them is healthy); the relay drains; a fresh consumer reads the topic back.
// A sampler on its own thread probes each broker's port and reads the outbox backlog every
// 200 ms: the all-down window, the backlog's peak and oldest age, and the time to zero come from
// it. Every stopped broker is recorded as an artifact before it is stopped, and started again on
// every exit path (error, cancel, timeout) by the mode itself, and — should the runner process
// die — by Cleanup, which starts any broker still down before it removes the topics.
#include "runners/experiments/n19_outbox_outage.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"

namespace lab::runners {

OutageSummary SummarizeOutage(const std::vector<OutageSample>& samples) {
  OutageSummary s;
  std::size_t i = 0;
  while (i < samples.size() &&
         !(samples[i].brokers > 0 && samples[i].refused == samples[i].brokers)) {
    ++i;
  }
  std::size_t back = samples.size();
  if (i < samples.size()) {
    s.all_down_seen = true;
    s.all_down_start_ms = samples[i].t_ms;
    s.all_down_start_us = samples[i].wall_us;
    std::size_t j = i;
    while (j < samples.size() && samples[j].refused == samples[j].brokers) ++j;
    const auto& end = samples[j < samples.size() ? j : samples.size() - 1];
    s.all_down_end_ms = end.t_ms;
    s.all_down_end_us = end.wall_us;
    s.all_down_ms = s.all_down_end_ms - s.all_down_start_ms;
    for (std::size_t k = j; k < samples.size(); ++k) {
      if (samples[k].accepting > 0) {
        back = k;
        s.back_seen = true;
        break;
      }
    }
  }
  for (const auto& x : samples) {
    if (x.pending > s.peak_backlog) {
      s.peak_backlog = x.pending;
      s.peak_at_ms = x.t_ms;
      s.oldest_age_at_peak_s = static_cast<double>(x.oldest_age_ms) / 1000.0;
    }
    s.max_oldest_age_s =
        std::max(s.max_oldest_age_s, static_cast<double>(x.oldest_age_ms) / 1000.0);
  }
  if (s.back_seen) {
    for (std::size_t k = back; k < samples.size(); ++k) {
      if (samples[k].pending == 0) {
        s.time_to_zero_ms = samples[k].t_ms - samples[back].t_ms;
        break;
      }
    }
  }
  return s;
}

nlohmann::json TimelineJson(const std::vector<OutageSample>& samples, std::size_t max_points) {
  nlohmann::json points = nlohmann::json::array();
  if (samples.empty() || max_points == 0) return points;
  const std::size_t n = samples.size();
  const std::size_t step =
      n <= max_points ? 1 : (n + max_points - 2) / std::max<std::size_t>(1, max_points - 1);
  for (std::size_t i = 0; i < n; i += step) {
    const auto& x = samples[i];
    points.push_back({{"t_ms", static_cast<std::int64_t>(x.t_ms)},
                      {"brokers_up", x.accepting},
                      {"pending", x.pending},
                      {"oldest_age_ms", x.oldest_age_ms},
                      {"committed", x.committed}});
    if (i + step >= n && i != n - 1) i = n - 1 - step;  // the last sample closes the chart
  }
  return points;
}

namespace {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

// Broker N (infra/stack.sh numbering = its node.id) stopped by this run; name = N. Recorded
// before the stop, so whatever ends the run, Cleanup starts it again.
constexpr const char* kArtifactBrokerDown = "kafka-broker-down";
constexpr int kPartitions = 3;
constexpr Ms kSamplePeriod = 200ms;
constexpr Ms kBrokerStartTimeout = 150s;  // infra waits up to 120 s for a broker's health
constexpr Ms kHealthyWait = 60s;

enum class PortState { kAccepts, kRefused, kUnknown };

// One TCP connect to host:port. A stopped broker's port refuses at once (RST); a running one
// accepts. Anything else (a timeout, another error) is unknown, never "down".
PortState ProbePort(const std::string& address, Ms timeout) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return PortState::kUnknown;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
  std::string host = address.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  if (::inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) return PortState::kUnknown;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return PortState::kUnknown;
  PortState state = PortState::kUnknown;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    state = PortState::kAccepts;
  } else if (errno == ECONNREFUSED) {
    state = PortState::kRefused;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      state = err == 0 ? PortState::kAccepts
                       : (err == ECONNREFUSED ? PortState::kRefused : PortState::kUnknown);
    }
  }
  ::close(fd);
  return state;
}

// Probes the brokers' ports and reads the run's backlog every kSamplePeriod on its own thread,
// with its own MariaDB connection (opened and used on that thread only).
class OutageSampler {
 public:
  OutageSampler(mysql::MysqlConfig mysql, std::string ns, bool outbox,
                std::vector<std::string> brokers)
      : mysql_(std::move(mysql)),
        ns_(std::move(ns)),
        outbox_(outbox),
        brokers_(std::move(brokers)),
        started_(SteadyClock::now()),
        thread_([this](std::stop_token stop) { Loop(stop); }) {}
  ~OutageSampler() { Stop(); }
  OutageSampler(const OutageSampler&) = delete;
  OutageSampler& operator=(const OutageSampler&) = delete;

  void Stop() {
    thread_.request_stop();
    if (thread_.joinable()) thread_.join();
  }
  std::vector<OutageSample> Samples() const {
    std::lock_guard lock(mu_);
    return samples_;
  }
  std::optional<OutageSample> Last() const {
    std::lock_guard lock(mu_);
    if (samples_.empty()) return std::nullopt;
    return samples_.back();
  }
  std::string error() const {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  void Loop(const std::stop_token& stop) {
    auto conn = mysql::Connection::Open(mysql_);
    if (!conn) {
      std::lock_guard lock(mu_);
      error_ = "mysql: " + conn.error().message;
    }
    while (!stop.stop_requested()) {
      const auto t0 = SteadyClock::now();
      OutageSample s;
      s.t_ms = std::chrono::duration<double, std::milli>(t0 - started_).count();
      s.wall_us = NowMicros();
      s.brokers = static_cast<int>(brokers_.size());
      for (const auto& b : brokers_) {
        const auto state = ProbePort(b, 300ms);
        s.accepting += state == PortState::kAccepts ? 1 : 0;
        s.refused += state == PortState::kRefused ? 1 : 0;
      }
      if (conn) {
        if (auto rows = (*conn)->Query("SELECT COUNT(*) FROM orders WHERE run_ns = ?", {ns_}))
          s.committed = rows->Scalar();
        if (outbox_) {
          auto rows = (*conn)->Query(
              "SELECT COUNT(*), COALESCE(MIN(created_at_us), 0) FROM outbox_event "
              "WHERE run_ns = ? AND published_at_us = 0",
              {ns_});
          if (rows && !rows->rows.empty() && rows->rows[0].size() == 2) {
            s.pending = std::stoll(rows->rows[0][0].value_or("0"));
            const std::int64_t oldest = std::stoll(rows->rows[0][1].value_or("0"));
            s.oldest_age_ms =
                oldest > 0 ? std::max<std::int64_t>(0, (s.wall_us - oldest) / 1000) : 0;
          }
        }
      }
      {
        std::lock_guard lock(mu_);
        samples_.push_back(s);
      }
      const auto spent = SteadyClock::now() - t0;
      if (spent < kSamplePeriod)
        SleepFor(std::chrono::duration_cast<Ms>(kSamplePeriod - spent), stop);
    }
  }

  const mysql::MysqlConfig mysql_;
  const std::string ns_;
  const bool outbox_;
  const std::vector<std::string> brokers_;
  const SteadyClock::time_point started_;
  mutable std::mutex mu_;
  std::vector<OutageSample> samples_;  // guarded by mu_
  std::string error_;                  // guarded by mu_
  std::jthread thread_;                // last: joined before the members above go
};

class OutboxOutage final : public ExperimentBase {
 public:
  explicit OutboxOutage(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "N19"; }

  std::string ConfigurationJson() const override {
    return nlohmann::json(
               {{"topic",
                 {{"partitions", kPartitions},
                  {"replication_factor", 3},
                  {"min.insync.replicas", 2}}},
                {"direct_producer",
                 {{"enable.idempotence", true},
                  {"acks", "all"},
                  {"linger.ms", 20},
                  {"message.timeout.ms", "delivery_timeout_ms"}}},
                {"relay",
                 {{"batch", 5000},
                  {"producer",
                   {{"enable.idempotence", true},
                    {"acks", "all"},
                    {"linger.ms", 5},
                    {"message.timeout.ms", 10000}}}}},
                {"writer", {{"concurrency", "clamp(rate / 50, 1, 32) MariaDB connections"}}},
                {"fault",
                 "every broker: infra/stack.sh kafka stop N (SIGTERM, controlled shutdown) or "
                 "kill N (SIGKILL), the three at once; started again the three at once"},
                {"sampler", {{"period_ms", kSamplePeriod.count()}, {"probe", "TCP connect"}}}})
        .dump();
  }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    nlohmann::json details = nlohmann::json::object();
    const auto started = SteadyClock::now();
    stopped_.clear();
    std::string why;
    try {
      why = Run(ctx, mode, result, details);
    } catch (const std::exception& e) {
      why = std::string("error: ") + e.what();
    }
    // Every exit path comes through here, the role processes already gone: the brokers this
    // mode stopped are started again, with deadlines of their own (a cancel must not cut it).
    RestoreBrokers(ctx, details);
    details["mode_ms"] = MsSince(started);
    result.details_json = details.dump();
    if (!why.empty()) return Inconclusive(std::move(result), why);
    return result;
  }

  void Cleanup(const domain::RunContext& ctx,
               const std::vector<domain::Artifact>& created) override {
    // A broker still down (the runner process died mid-outage) is started before anything
    // else: the topics cannot be deleted without it, and the stack must be left as found —
    // also with keep_artifacts.
    std::set<int> down;
    for (const auto& a : created) {
      if (a.kind == kArtifactBrokerDown) down.insert(std::stoi(a.name));
    }
    if (!down.empty()) {
      nlohmann::json ignored;
      auto failed = StartBrokers(ctx, down, ignored);
      if (!failed.empty()) (void)StartBrokers(ctx, failed, ignored);  // once more, the rest
    }
    ExperimentBase::Cleanup(ctx, created);
  }

 private:
  std::string Run(const domain::RunContext& ctx, const std::string& mode,
                  domain::ModeResult& result, nlohmann::json& details) {
    const std::int64_t backlog = domain::GetInt(ctx.params, "backlog");
    const std::int64_t rate = domain::GetInt(ctx.params, "rate");
    const std::int64_t outage_s = domain::GetInt(ctx.params, "outage_seconds");
    const std::int64_t delivery_timeout_ms = domain::GetInt(ctx.params, "delivery_timeout_ms");
    const std::string fault =
        domain::GetString(ctx.params, "broker_fault") == "kill" ? "kill" : "stop";
    const bool outbox = mode == "success" && domain::GetString(ctx.params, "practice") != "off";
    const std::string ns = RunNs(ctx, mode);
    const std::string topic = Topic(ctx, mode, "orders");
    details["run_ns"] = ns;
    details["topic"] = topic;
    details["write_path"] = outbox ? "outbox" : "direct";
    details["broker_fault"] = fault;

    auto conn = PreparePipeline(ctx, mode, result, {{topic, kPartitions}}, "");
    if (!conn) return conn.error().message;
    std::map<int, std::string> brokers;
    if (auto why = LearnBrokers(ctx, brokers, details); !why.empty()) return why;
    if (!AllBrokersKnow(topic, kPartitions, ctx.stop)) {
      if (ctx.stop.stop_requested()) return "cancelled";
      return "not every broker knew the new topic within 10 s (librdkafka #4401)";
    }
    std::vector<std::string> addresses;
    for (const auto& [id, addr] : brokers) addresses.push_back(addr);
    OutageSampler sampler(MysqlSettings(), ns, outbox, addresses);
    Progress(ctx, 10);

    // The writer offers `rate` commands/s until SIGTERM; its cap is never meant to be reached.
    const std::int64_t before = std::max<std::int64_t>(50, rate);
    const std::int64_t cap = before + 4 * backlog + rate * (outage_s + 600);
    const std::int64_t concurrency = std::clamp<std::int64_t>(rate / 50, 1, 32);
    std::vector<std::string> args = {"--ns",          ns,
                                     "--topic",       topic,
                                     "--mode",        outbox ? "outbox" : "direct",
                                     "--events",      std::to_string(cap),
                                     "--rate",        std::to_string(rate),
                                     "--concurrency", std::to_string(concurrency)};
    if (!outbox) {
      args.insert(args.end(), {"--message-timeout-ms", std::to_string(delivery_timeout_ms)});
      result.metrics["delivery_timeout_ms"] = static_cast<double>(delivery_timeout_ms);
    }
    auto writer = StartRole(ctx, mode, result, "command-service", args, "command-service");
    if (!writer) return "could not start the command-service: " + writer.error().message;
    auto orders = [&] {
      return TryCount(**conn, "SELECT COUNT(*) FROM orders WHERE run_ns = ?", {ns});
    };
    // The relay runs throughout: before the outage it keeps up, during it retries (rows stay
    // pending), after it drains; it exits 2 s after it last found nothing pending, printing its
    // own counts. Started after the writer, so that its idle clock starts with rows to publish.
    std::optional<ChildProcess> relay;
    if (outbox) {
      auto started =
          StartRole(ctx, mode, result, "outbox-relay",
                    {"--ns", ns, "--topic", topic, "--idle-exit-ms", "2000"}, "outbox-relay");
      if (!started) return "could not start the outbox-relay: " + started.error().message;
      relay = std::move(*started);
    }

    // 1. Every broker up: about a second of traffic.
    if (!WaitUntil([&] { return orders() >= before || writer->Wait(0ms, ctx.stop).has_value(); },
                   RoleWait(before), ctx.stop, 100ms)) {
      if (ctx.stop.stop_requested()) return "cancelled";
      return "the command-service did not commit " + std::to_string(before) + " orders in time";
    }
    if (writer->Wait(0ms, ctx.stop)) {
      WaitRole(ctx, *writer, 1s, result, "command-service");
      return "the command-service exited before the outage";
    }

    // 2. Every broker stopped, the three at once.
    const std::int64_t stop_issued_us = NowMicros();
    const auto stop_issued = SteadyClock::now();
    const std::int64_t committed_at_stop = orders();
    std::set<int> ids;
    for (const auto& [id, addr] : brokers) {
      Created(ctx, mode, result, kArtifactBrokerDown, std::to_string(id));
      stopped_.insert(id);
      ids.insert(id);
    }
    Step(ctx, mode + ": stopping every broker (" + fault + ") while the command-service writes");
    for (const auto& [id, out] : StackParallel(ctx, ids, fault, 90s)) {
      if (!out.empty()) return out;
    }
    details["stop_ms"] = MsSince(stop_issued);
    Progress(ctx, 30);

    // 3. The fault fired: every broker's port refuses connections.
    bool all_refused = WaitUntil(
        [&] {
          return std::all_of(addresses.begin(), addresses.end(), [](const std::string& a) {
            return ProbePort(a, 300ms) == PortState::kRefused;
          });
        },
        15s, ctx.stop, 100ms);
    if (ctx.stop.stop_requested()) return "cancelled";
    if (!all_refused) return "the brokers were stopped but a port still did not refuse connections";
    const auto all_down = SteadyClock::now();
    Step(ctx, "fault: every broker down (all " + std::to_string(addresses.size()) +
                  " ports refuse connections)");

    // 4. Held down at least outage_seconds, and until `backlog` orders were written since the
    // stop (or the writer ended).
    const Ms hold_bound = Ms(outage_s * 1000) + RoleWait(backlog, 30s);
    WaitUntil(
        [&] {
          const bool long_enough = SteadyClock::now() - all_down >= Ms(outage_s * 1000);
          return long_enough && (orders() - committed_at_stop >= backlog ||
                                 writer->Wait(0ms, ctx.stop).has_value());
        },
        hold_bound, ctx.stop, 100ms);
    if (ctx.stop.stop_requested()) return "cancelled";

    // 5. The writer stops while the brokers are still down; a direct producer first fails what
    // it could not deliver within its message.timeout.ms.
    writer->Signal(SIGTERM);
    auto written = WaitRole(ctx, *writer, Ms(delivery_timeout_ms) + 45s, result, "command-service");
    if (ctx.stop.stop_requested()) return "cancelled";
    details["writer"] = WriterJson(written);
    details["held_down_ms"] = MsSince(all_down);
    if (auto last = sampler.Last()) details["backlog_at_restart"] = last->pending;

    // 6. Every broker started again.
    const std::int64_t restart_issued_us = NowMicros();
    const auto restart_issued = SteadyClock::now();
    std::set<int> failed = StartBrokers(ctx, stopped_, details);
    for (int id : std::set<int>(stopped_)) {
      if (failed.count(id) == 0) stopped_.erase(id);
    }
    if (!failed.empty()) return "the brokers did not all start again (see faults_undone)";
    const double restart_ms = MsSince(restart_issued);
    result.metrics["restart_ms"] = restart_ms;
    result.metrics["outage_ms"] = MsSince(stop_issued);
    Progress(ctx, 70);

    // 7. The relay drains the backlog.
    bool drained = true;
    if (outbox) {
      const Ms drain_bound = 60s + Ms(2 * (orders() - committed_at_stop + before));
      drained = WaitUntil(
          [&] {
            return TryCount(**conn,
                            "SELECT COUNT(*) FROM outbox_event WHERE run_ns = ? AND "
                            "published_at_us = 0",
                            {ns}) == 0;
          },
          drain_bound, ctx.stop, 100ms);
      if (ctx.stop.stop_requested()) return "cancelled";
      // The sampler's own view of the zero (its next round), for time_to_zero_ms.
      if (drained) {
        WaitUntil(
            [&] {
              auto last = sampler.Last();
              return last && last->pending == 0;
            },
            5s, ctx.stop, 50ms);
      }
      // Nothing pending: the relay idles out.
      auto relayed = WaitRole(ctx, *relay, 15s, result, "outbox-relay");
      if (ctx.stop.stop_requested()) return "cancelled";
      details["relay_self_reported"] = RelayJson(relayed);
      if (!drained) Step(ctx, mode + ": the relay did not drain the backlog in time");
    }
    sampler.Stop();
    const auto samples = sampler.Samples();
    if (!sampler.error().empty()) details["sampler_error"] = sampler.error();

    // 8. Evidence from the systems of record.
    return Evidence(ctx, mode, result, details, **conn, ns, topic, outbox, samples, stop_issued_us,
                    restart_issued_us);
  }

  std::string Evidence(const domain::RunContext& ctx, const std::string& mode,
                       domain::ModeResult& result, nlohmann::json& details, mysql::Connection& conn,
                       const std::string& ns, const std::string& topic, bool outbox,
                       const std::vector<OutageSample>& samples, std::int64_t stop_issued_us,
                       std::int64_t restart_issued_us) {
    const OutageSummary summary = SummarizeOutage(samples);
    result.metrics["brokers_down"] = summary.all_down_seen ? 1 : 0;
    result.metrics["all_down_ms"] = summary.all_down_ms;
    if (auto t = result.metrics.find("delivery_timeout_ms"); t != result.metrics.end())
      result.metrics["outage_over_timeout"] = summary.all_down_ms > t->second ? 1 : 0;

    auto rows = conn.Query("SELECT order_id FROM orders WHERE run_ns = ?", {ns});
    if (!rows) return "mysql: " + rows.error().message;
    std::set<std::int64_t> order_ids;
    for (const auto& r : rows->rows) order_ids.insert(std::stoll(r[0].value_or("0")));
    const auto committed = static_cast<std::int64_t>(order_ids.size());
    const std::int64_t during =
        Count(result, conn,
              "SELECT COUNT(*) FROM orders WHERE run_ns = ? AND created_at_us BETWEEN ? AND ?",
              {ns, summary.all_down_start_us, summary.all_down_end_us});
    const std::int64_t since_stop =
        Count(result, conn, "SELECT COUNT(*) FROM orders WHERE run_ns = ? AND created_at_us >= ?",
              {ns, stop_issued_us});
    if (during < 0 || since_stop < 0) return "mysql: the orders could not be counted";

    const auto t0 = SteadyClock::now();
    auto read = kafka::ReadTopic(config_.kafka_bootstrap, topic, kPartitions, "read_committed",
                                 ReadBackWait(committed));
    details["read_back_ms"] = MsSince(t0);
    if (!read.complete) return "read-back: " + read.error;
    const std::string prefix = ns + "-";
    std::map<std::int64_t, int> seen;  // order id -> records carrying its event
    std::int64_t foreign = 0;          // records whose event id is not one of this run's orders
    for (const auto& [event_id, n] : EventIdCounts(read.messages)) {
      if (event_id.rfind(prefix, 0) != 0) {
        foreign += n;
        continue;
      }
      const std::string digits = event_id.substr(prefix.size());
      if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) {
        foreign += n;
        continue;
      }
      seen[std::stoll(digits)] += n;
    }
    std::int64_t lost = 0;
    std::int64_t lost_during = 0;  // of them, written after the stop was issued
    for (std::int64_t id : order_ids) lost += seen.count(id) ? 0 : 1;
    std::int64_t duplicates = 0;
    std::int64_t extra = foreign;
    for (const auto& [id, n] : seen) {
      duplicates += n - 1;
      if (order_ids.count(id) == 0) extra += n;
    }
    if (lost > 0) {
      auto late = conn.Query("SELECT order_id FROM orders WHERE run_ns = ? AND created_at_us >= ?",
                             {ns, stop_issued_us});
      if (late) {
        for (const auto& r : late->rows)
          lost_during += seen.count(std::stoll(r[0].value_or("0"))) ? 0 : 1;
      }
    }
    std::int64_t mismatches = lost + extra;
    result.metrics["committed"] = static_cast<double>(committed);
    result.metrics["written_during_outage"] = static_cast<double>(during);
    result.metrics["read_back"] = static_cast<double>(seen.size());
    result.metrics["lost"] = static_cast<double>(lost);
    result.metrics["duplicates"] = static_cast<double>(duplicates);
    details["written_since_stop"] = since_stop;
    details["lost_written_since_stop"] = lost_during;
    details["topic_records"] = read.messages.size();
    details["records_without_an_order"] = extra;

    if (outbox) {
      const std::int64_t pending =
          Count(result, conn,
                "SELECT COUNT(*) FROM outbox_event WHERE run_ns = ? AND published_at_us = 0", {ns});
      const std::int64_t outbox_rows =
          Count(result, conn, "SELECT COUNT(*) FROM outbox_event WHERE run_ns = ?", {ns});
      if (pending < 0 || outbox_rows < 0) return "mysql: the outbox could not be counted";
      mismatches += pending + std::abs(outbox_rows - committed);
      result.metrics["pending_after"] = static_cast<double>(pending);
      result.metrics["peak_backlog"] = static_cast<double>(summary.peak_backlog);
      result.metrics["oldest_age_at_peak_s"] = summary.oldest_age_at_peak_s;
      result.metrics["max_oldest_age_s"] = summary.max_oldest_age_s;
      if (summary.time_to_zero_ms >= 0) result.metrics["time_to_zero_ms"] = summary.time_to_zero_ms;
      details["outbox_rows"] = outbox_rows;
      // The drain, from the relay's marks in the table: rows marked from the moment a broker
      // accepted connections again (the sampler's end of the all-down window).
      const std::int64_t back_us = summary.back_seen ? summary.all_down_end_us : restart_issued_us;
      auto drain = conn.Query(
          "SELECT COUNT(*), COALESCE(MIN(published_at_us), 0), COALESCE(MAX(published_at_us), 0) "
          "FROM outbox_event WHERE run_ns = ? AND published_at_us >= ?",
          {ns, back_us});
      if (drain && !drain->rows.empty()) {
        const std::int64_t drained = std::stoll(drain->rows[0][0].value_or("0"));
        const std::int64_t first = std::stoll(drain->rows[0][1].value_or("0"));
        const std::int64_t last = std::stoll(drain->rows[0][2].value_or("0"));
        result.metrics["drained"] = static_cast<double>(drained);
        if (drained > 0) {
          // From the first broker accepting again to the last mark: reconnecting, producing and
          // marking, all of it. (Marks are per batch, so their own span says little.)
          const double span_s = std::max<double>(1e-3, static_cast<double>(last - back_us) / 1e6);
          result.metrics["drain_ms"] = span_s * 1000.0;
          result.metrics["drain_events_per_s"] = static_cast<double>(drained) / span_s;
          details["first_mark_after_back_ms"] = static_cast<double>(first - back_us) / 1000.0;
          details["mark_span_ms"] = static_cast<double>(last - first) / 1000.0;
        }
      }
      // Marks written while every broker refused connections: deliveries from before the
      // outage whose mark committed late (the relay's mark runs beside the next batch), never
      // records delivered during it. Counted so the drain is not credited with them.
      details["marked_while_all_down"] =
          Count(result, conn,
                "SELECT COUNT(*) FROM outbox_event WHERE run_ns = ? AND published_at_us "
                "BETWEEN ? AND ?",
                {ns, summary.all_down_start_us, summary.all_down_end_us});
      details["marked_before_stop"] =
          Count(result, conn,
                "SELECT COUNT(*) FROM outbox_event WHERE run_ns = ? AND published_at_us > 0 AND "
                "published_at_us < ?",
                {ns, stop_issued_us});
      details["restart_issued_after_all_down_ms"] =
          static_cast<double>(restart_issued_us - summary.all_down_start_us) / 1000.0;
    }
    result.metrics["mismatches"] = static_cast<double>(mismatches);
    details["timeline"] = TimelineJson(samples, 400);
    details["all_down_window_seen_by_sampler"] = summary.all_down_seen;
    Step(ctx, mode + ": committed=" + std::to_string(committed) + " written_during_outage=" +
                  std::to_string(during) + " read_back=" + std::to_string(seen.size()) +
                  " lost=" + std::to_string(lost) + " duplicates=" + std::to_string(duplicates) +
                  (outbox ? " peak_backlog=" + std::to_string(summary.peak_backlog) : ""));
    Progress(ctx, 100);
    return "";
  }

  // The stack's three brokers, from the metadata; the cluster must be whole (every partition
  // fully replicated) before it is taken down, or the restart could not be told apart from an
  // older problem.
  std::string LearnBrokers(const domain::RunContext& ctx, std::map<int, std::string>& brokers,
                           nlohmann::json& details) const {
    auto admin = kafka::Admin::Create(config_.kafka_bootstrap);
    if (!admin) return "kafka: " + admin.error().message;
    auto md = (*admin)->Metadata("", 5s);
    if (!md) return "kafka: " + md.error().message;
    for (const auto& [id, addr] : md->brokers) brokers[id] = addr;
    for (const auto& [id, addr] : brokers) details["brokers"][std::to_string(id)] = addr;
    if (brokers.size() != 3 || brokers.count(1) == 0 || brokers.count(2) == 0 ||
        brokers.count(3) == 0) {
      return "N19 needs the stack's brokers 1, 2 and 3 alive; the metadata lists " +
             std::to_string(brokers.size());
    }
    std::vector<std::string> urp;
    const bool whole = WaitUntil(
        [&] {
          auto u = (*admin)->UnderReplicatedPartitions(5s);
          urp = u ? *u : std::vector<std::string>{"metadata: " + u.error().message};
          return urp.empty();
        },
        30s, ctx.stop, 500ms);
    if (ctx.stop.stop_requested()) return "cancelled";
    if (!whole) {
      return "the cluster is not fully replicated before the outage (" +
             std::to_string(urp.size()) + " partitions, e.g. " + urp.front() + ")";
    }
    return "";
  }

  // infra/stack.sh kafka VERB N for every N at once (a broker's start waits for a peer, so
  // they cannot go one by one); each output is stepped. Returns per broker the error, or "".
  std::map<int, std::string> StackParallel(const domain::RunContext& ctx, const std::set<int>& ids,
                                           const std::string& verb, Ms timeout) const {
    std::map<int, std::string> errors;
    auto script = FindRepoPath(config_.stack_script);
    if (!script) {
      for (int id : ids) errors[id] = "stack script " + config_.stack_script + " not found";
      return errors;
    }
    std::map<int, std::future<domain::Result<CommandOutput>>> runs;
    for (int id : ids) {
      runs[id] = std::async(std::launch::async, [&, id] {
        return RunCommand({"/bin/bash", *script, "kafka", verb, std::to_string(id)}, timeout);
      });
    }
    for (auto& [id, run] : runs) {
      auto out = run.get();
      const std::string what = "kafka " + verb + " " + std::to_string(id);
      if (!out) {
        errors[id] = "stack.sh " + what + ": " + out.error().message;
      } else {
        std::string said = out->output;
        while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
        Step(ctx, "fault: " + what + " -> " + said);
        errors[id] = out->status.exited && out->status.code == 0
                         ? ""
                         : "stack.sh " + what + ": " + out->status.Describe() + ": " + said;
      }
    }
    return errors;
  }

  // Starts `ids` (the three at once) and waits until no partition of the cluster is
  // under-replicated (bounded). Returns the brokers that did not start.
  std::set<int> StartBrokers(const domain::RunContext& ctx, const std::set<int>& ids,
                             nlohmann::json& details) const {
    std::set<int> failed;
    if (ids.empty()) return failed;
    const auto t0 = SteadyClock::now();
    for (const auto& [id, error] : StackParallel(ctx, ids, "start", kBrokerStartTimeout)) {
      details["faults_undone"].push_back("start " + std::to_string(id) +
                                         (error.empty() ? "" : ": " + error));
      if (!error.empty()) failed.insert(id);
    }
    details["brokers_started_ms"] = MsSince(t0);
    if (!failed.empty()) return failed;
    WaitFullyReplicated(ctx, details, kHealthyWait, "the brokers were started");
    return failed;
  }

  // Whatever ended the mode: every broker it stopped is started again (a second attempt for
  // any that failed), with deadlines of its own.
  void RestoreBrokers(const domain::RunContext& ctx, nlohmann::json& details) {
    if (stopped_.empty()) return;
    details["restored_on_exit"] = true;
    auto failed = StartBrokers(ctx, stopped_, details);
    if (!failed.empty()) failed = StartBrokers(ctx, failed, details);
    stopped_ = failed;
    if (!failed.empty()) {
      Step(ctx, "warning: " + std::to_string(failed.size()) +
                    " brokers could not be started; cleanup tries again");
    }
  }

  static nlohmann::json WriterJson(const RoleOutcome& o) {
    nlohmann::json j = {{"exit", o.finished ? o.status.Describe() : "did not finish"}};
    for (const char* key : {"committed", "acked", "delivery_failed", "produce_errors", "elapsed_ms",
                            "commit_p99_us", "late_p99_us"}) {
      if (auto v = o.Value(key); !v.empty()) j[key] = v;
    }
    return j;
  }

  static nlohmann::json RelayJson(const RoleOutcome& o) {
    nlohmann::json j = nlohmann::json::object();
    for (const char* key : {"produced", "published", "delivery_failures", "batches"}) {
      if (auto v = o.Value(key); !v.empty()) j[key] = v;
    }
    return j;
  }

  std::set<int> stopped_;  // brokers this mode stopped and has not started again
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeOutboxOutage(const StackConfig& config) {
  return std::make_unique<OutboxOutage>(config);
}

}  // namespace lab::runners
