// E-046: after a Redis restart, clients that retry at once storm it; backoff with full jitter
// spreads the reconnects.
// Four `lab-role redis-clients --mode storm` processes hold `clients` connections to the stack's
// standalone Redis (each named with CLIENT SETNAME so the server can count them, PING every
// 100 ms). Once all are connected, Redis is killed with SIGKILL (infra/stack.sh redis kill),
// stays down `down_ms`, and is started again (infra/stack.sh redis start).
//   failure: every connection reconnects at once, and again at once after each failed attempt.
//   success: exponential backoff with full jitter, uniform(0, min(2000 ms, 50 ms x 2^n)).
//            practice=off runs the success mode with the immediate retry.
// Where the numbers come from:
//   redis_down_ms: the runner's sampler PINGs every 20 ms: last answer before the kill to the
//     first answer after the start; INFO run_id must change (the restart really happened).
//   peak_attempts_per_s: the clients' own per-second counts of connect attempts (self_reported)
//     from the kill's second on; paired with the restarted server's counters:
//   peak_accepted_per_s (1 s buckets) and burst_accepted_per_s (the highest rate over one
//     ~100 ms sampling interval) from INFO total_connections_received, refused from
//     rejected_connections (server_counter), sampled every 100 ms after Redis is back.
//   unserved / recovery_ms: CLIENT LIST counts the run's named connections every 100 ms:
//     unserved = clients - named connections at the end; recovery_ms = Redis back -> every
//     client connected again (server_counter); the clients' own counts are kept beside them.
// Redis is the stack's shared instance: on every exit path after the kill it is started again.
// maxclients is set for the run (CONFIG SET does not survive the restart, so it is set again
// afterwards) and restored at the end; cleanup restores it too.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/redis/redis_client.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
constexpr int kProcesses = 4;

struct ServerSample {
  std::int64_t unix_us = 0;
  std::int64_t accepted = 0;  // total_connections_received of the restarted Redis
  std::int64_t rejected = 0;  // rejected_connections
  std::int64_t named = 0;     // the run's connections in CLIENT LIST
};

// Watches Redis from its own connection: PING every 20 ms until it stops answering and answers
// again (the down window), then INFO stats + CLIENT LIST every 100 ms.
class Sampler {
 public:
  Sampler(const StackConfig& config, std::string name, std::int64_t clients)
      : config_(config), name_(std::move(name)), clients_(clients) {}
  ~Sampler() { Stop(); }

  void Start() {
    thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
  }
  void Stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }
  // Every named connection is back (after the restart), or the sampler could not tell.
  bool AllServed() const { return all_served_us_.load() > 0; }
  bool Back() const { return first_ok_after_us_.load() > 0; }

  std::int64_t last_ok_before_us() const { return last_ok_before_us_; }
  std::int64_t first_ok_after_us() const { return first_ok_after_us_; }
  std::int64_t last_fail_us() const { return last_fail_us_; }
  std::int64_t all_served_us() const { return all_served_us_; }
  const std::string& run_id_after() const { return run_id_after_; }
  const std::vector<ServerSample>& samples() const { return samples_; }  // after Stop()

 private:
  void Run(const std::stop_token& stop) {
    auto conn = redis::Connection::Open(config_.redis_host, config_.redis_port, 300ms);
    if (!conn) return;
    bool down = false;
    while (!stop.stop_requested()) {  // the down window, 20 ms resolution
      auto pong = (*conn)->Command({"PING"});
      const std::int64_t now = NowMicros();
      if (pong && !pong->is_error()) {
        if (down) {
          first_ok_after_us_ = now;
          break;
        }
        last_ok_before_us_ = now;
      } else {
        down = true;
        last_fail_us_ = now;
      }
      std::this_thread::sleep_for(20ms);
    }
    while (!stop.stop_requested()) {  // the restarted server's counters
      auto info = (*conn)->Command({"INFO"});
      const std::int64_t named = redis::CountClientsNamed(**conn, name_);
      if (info && !info->is_error() && named >= 0) {
        if (run_id_after_.empty()) run_id_after_ = redis::InfoValue(info->str, "run_id");
        ServerSample s{NowMicros(), redis::InfoNumber(info->str, "total_connections_received", -1),
                       redis::InfoNumber(info->str, "rejected_connections", -1), named};
        samples_.push_back(s);
        if (named >= clients_ && all_served_us_ == 0) all_served_us_ = s.unix_us;
      }
      std::this_thread::sleep_for(100ms);
    }
  }

  const StackConfig& config_;
  std::string name_;
  std::int64_t clients_;
  std::atomic<std::int64_t> last_ok_before_us_{0};
  std::atomic<std::int64_t> first_ok_after_us_{0};
  std::atomic<std::int64_t> last_fail_us_{0};
  std::atomic<std::int64_t> all_served_us_{0};
  std::string run_id_after_;           // written by the thread, read after Stop()
  std::vector<ServerSample> samples_;  // written by the thread, read after Stop()
  std::jthread thread_;
};

// What the client processes reported, summed.
struct ClientTotals {
  std::map<std::int64_t, std::int64_t> attempts_by_second;  // unix s -> attempts
  std::int64_t attempts = 0;
  std::int64_t refused = 0;
  std::int64_t refused_maxclients = 0;
  std::int64_t connected_initially = 0;
  std::int64_t broken = 0;
  std::int64_t unserved = 0;
  std::int64_t last_served_us = 0;
  int reported = 0;  // processes that printed their counts
};

std::int64_t Int(const RoleOutcome& o, const std::string& key) {
  const std::string v = o.Value(key, "0");
  return v.empty() ? 0 : std::stoll(v);
}

void AddOutcome(const RoleOutcome& o, ClientTotals& t) {
  if (o.values.count("attempts") == 0) return;
  ++t.reported;
  t.attempts += Int(o, "attempts");
  t.refused += Int(o, "refused");
  t.refused_maxclients += Int(o, "refused_maxclients");
  t.connected_initially += Int(o, "connected_initially");
  t.broken += Int(o, "broken");
  t.unserved += Int(o, "unserved");
  t.last_served_us = std::max(t.last_served_us, Int(o, "served_after_restart_us"));
  auto [first, last] = o.values.equal_range("attempts_second");
  for (auto it = first; it != last; ++it) {
    const auto colon = it->second.find(':');
    if (colon == std::string::npos) continue;
    t.attempts_by_second[std::stoll(it->second.substr(0, colon))] +=
        std::stoll(it->second.substr(colon + 1));
  }
}

class ReconnectStorm final : public ExperimentBase {
 public:
  explicit ReconnectStorm(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-046"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::int64_t clients = domain::GetInt(ctx.params, "clients");
    const std::int64_t maxclients = domain::GetInt(ctx.params, "maxclients");
    const std::int64_t down_ms = domain::GetInt(ctx.params, "down_ms");
    const bool immediate = mode == "failure" || domain::GetString(ctx.params, "practice") == "off";
    const std::string name = "lab-e046-" + SafeName(ctx.ns) + "-" + mode;
    auto conn = OpenRedis();
    if (!conn) return Inconclusive(std::move(result), "redis: " + conn.error().message);
    auto before = (*conn)->Command({"CONFIG", "GET", "maxclients"});
    auto server = (*conn)->Command({"INFO", "server"});
    if (!before || before->elements.size() != 2 || !server) {
      return Inconclusive(std::move(result), "redis: cannot read maxclients / INFO server");
    }
    const std::string original_maxclients = before->elements[1].str;
    const std::string run_id_before = redis::InfoValue(server->str, "run_id");
    if (auto s = SetRedisConfig(ctx, mode, result, "maxclients", std::to_string(maxclients)); !s)
      return Inconclusive(std::move(result), s.error().message);

    // The clients, started and steady before the fault.
    std::vector<ChildProcess> procs;
    for (int p = 0; p < kProcesses; ++p) {
      const std::int64_t n = clients / kProcesses + (p < clients % kProcesses ? 1 : 0);
      auto child =
          StartRole(ctx, mode, result, "redis-clients",
                    {"--mode", "storm", "--connections", std::to_string(n), "--policy",
                     immediate ? "immediate" : "backoff", "--name", name, "--seconds", "120"},
                    "clients-" + std::to_string(p));
      if (!child) return Inconclusive(std::move(result), child.error().message);
      procs.push_back(std::move(*child));
    }
    std::int64_t steady = 0;
    WaitUntil([&] { return (steady = redis::CountClientsNamed(**conn, name)) >= clients; }, 30s,
              ctx.stop);
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    if (steady < clients) {
      return Inconclusive(std::move(result), "only " + std::to_string(steady) + " of " +
                                                 std::to_string(clients) +
                                                 " connections reached Redis before the fault");
    }
    Step(ctx, mode + ": " + std::to_string(steady) + " connections steady (" +
                  (immediate ? "immediate reconnect" : "backoff with full jitter") + ")");
    SleepFor(1000ms, ctx.stop);  // steady state, and the kill in a later second than the connects
    Progress(ctx, 30);

    Sampler sampler(config_, name, clients);
    sampler.Start();
    SleepFor(100ms, ctx.stop);  // the sampler's last answer before the kill
    const std::int64_t kill_us = NowMicros();
    auto restored = RestartAndWatch(ctx, mode, result, sampler, down_ms);
    sampler.Stop();

    ClientTotals totals;
    for (int p = 0; p < kProcesses; ++p) {
      procs[static_cast<std::size_t>(p)].Signal(SIGTERM);
    }
    for (int p = 0; p < kProcesses; ++p) {
      AddOutcome(WaitRole(ctx, procs[static_cast<std::size_t>(p)], 15s, result,
                          "clients-" + std::to_string(p)),
                 totals);
    }
    if (auto c = OpenRedis()) {  // the run's own restore; cleanup is the safety net
      (void)(*c)->Command({"CONFIG", "SET", "maxclients", original_maxclients});
    }
    if (!restored.empty()) return Inconclusive(std::move(result), restored);
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    if (!sampler.Back() || sampler.samples().empty())
      return Inconclusive(std::move(result), "Redis did not answer again after the restart");
    if (sampler.run_id_after() == run_id_before)
      return Inconclusive(std::move(result), "INFO run_id did not change: Redis did not restart");
    if (totals.reported != kProcesses) {
      return Inconclusive(std::move(result), "only " + std::to_string(totals.reported) + " of " +
                                                 std::to_string(kProcesses) +
                                                 " client processes reported their counts");
    }
    Evidence(ctx, mode, result, sampler, totals, clients, kill_us, run_id_before,
             immediate ? "immediate reconnect, again at once on failure"
                       : "exponential backoff with full jitter, base 50 ms, cap 2000 ms");
    Progress(ctx, 100);
    return result;
  }

 private:
  // Kills Redis, waits `down_ms`, starts it again, sets maxclients again and waits (bounded)
  // until every client is back. Redis is running again on every path out of here; the result
  // is "" or why the mode cannot be judged.
  std::string RestartAndWatch(const domain::RunContext& ctx, const std::string& mode,
                              domain::ModeResult& result, Sampler& sampler,
                              std::int64_t down_ms) const {
    if (auto s = StackFault(ctx, {"redis", "kill"}, 30s); !s) {
      EnsureRedisRunning(ctx);
      return "redis kill: " + s.error().message;
    }
    SleepFor(std::chrono::milliseconds(down_ms), ctx.stop);  // cut short by a stop: start anyway
    if (auto s = StackFault(ctx, {"redis", "start"}, 60s); !s) {
      EnsureRedisRunning(ctx);
      return "redis start: " + s.error().message;
    }
    // A restarted Redis has the maxclients of its command line again.
    if (auto s = SetRedisConfig(ctx, mode, result, "maxclients",
                                std::to_string(domain::GetInt(ctx.params, "maxclients")));
        !s) {
      return s.error().message;
    }
    WaitUntil([&] { return sampler.AllServed(); }, 20s, ctx.stop);
    SleepFor(300ms, ctx.stop);  // a few samples after the last client is back
    return "";
  }

  // Starts Redis when it is not answering (a failed kill or start, a stop mid-way).
  void EnsureRedisRunning(const domain::RunContext& ctx) const {
    for (int i = 0; i < 3; ++i) {
      if (auto c = OpenRedis(500ms)) {
        if (auto pong = (*c)->Command({"PING"}); pong && !pong->is_error()) return;
      }
      (void)StackFault(ctx, {"redis", "start"}, 60s);
    }
  }

  void Evidence(const domain::RunContext& ctx, const std::string& mode, domain::ModeResult& result,
                const Sampler& sampler, const ClientTotals& totals, std::int64_t clients,
                std::int64_t kill_us, const std::string& run_id_before, const std::string& policy) {
    const std::int64_t back_us = sampler.first_ok_after_us();
    const std::int64_t kill_s = kill_us / 1000000;
    // Clients' attempts per second, from the kill's second on.
    std::int64_t peak_attempts = 0;
    std::map<std::int64_t, std::int64_t> accepted_by_second;
    std::map<std::int64_t, std::int64_t> rejected_by_second;
    for (const auto& [s, n] : totals.attempts_by_second)
      if (s >= kill_s) peak_attempts = std::max(peak_attempts, n);
    // The restarted server's counters start at 0; the first interval starts at the sampler's
    // last unanswered PING, so a burst right at the start is seen as a rate too.
    double burst = 0;
    ServerSample prev{sampler.last_fail_us(), 0, 0, 0};
    for (const auto& s : sampler.samples()) {
      accepted_by_second[s.unix_us / 1000000] += s.accepted - prev.accepted;
      rejected_by_second[s.unix_us / 1000000] += s.rejected - prev.rejected;
      const double dt = static_cast<double>(s.unix_us - prev.unix_us) / 1e6;
      if (dt > 0.005) burst = std::max(burst, static_cast<double>(s.accepted - prev.accepted) / dt);
      prev = s;
    }
    std::int64_t peak_accepted = 0;
    for (const auto& [s, n] : accepted_by_second) peak_accepted = std::max(peak_accepted, n);
    const ServerSample& last = sampler.samples().back();
    const std::int64_t unserved = clients - std::min(clients, last.named);
    const double down_ms =
        static_cast<double>(sampler.first_ok_after_us() - sampler.last_ok_before_us()) / 1000.0;
    const double recovery_ms =
        sampler.all_served_us() > 0
            ? static_cast<double>(sampler.all_served_us() - back_us) / 1000.0
            : static_cast<double>(last.unix_us - back_us) / 1000.0;  // never: up to the bound
    const double recovery_reported =
        totals.last_served_us > 0
            ? std::max(0.0, static_cast<double>(totals.last_served_us - back_us) / 1000.0)
            : 0.0;
    auto& m = result.metrics;
    m["redis_down_ms"] = down_ms;
    m["peak_attempts_per_s"] = static_cast<double>(peak_attempts);
    m["peak_accepted_per_s"] = static_cast<double>(peak_accepted);
    m["burst_accepted_per_s"] = burst;
    m["accepted_after_restart"] = static_cast<double>(last.accepted);
    m["refused"] = static_cast<double>(last.rejected);
    m["refused_client_seen"] = static_cast<double>(totals.refused + totals.refused_maxclients);
    m["refused_maxclients_client_seen"] = static_cast<double>(totals.refused_maxclients);
    m["attempts"] = static_cast<double>(totals.attempts);
    m["recovery_ms"] = recovery_ms;
    m["recovery_ms_reported"] = recovery_reported;
    m["unserved"] = static_cast<double>(unserved);
    m["unserved_reported"] = static_cast<double>(totals.unserved);
    m["broken"] = static_cast<double>(totals.broken);
    m["clients"] = static_cast<double>(clients);

    nlohmann::json series = nlohmann::json::array();
    const std::int64_t end_s = std::max(last.unix_us / 1000000, kill_s);
    for (std::int64_t s = kill_s - 1; s <= end_s; ++s) {
      auto get = [s](const std::map<std::int64_t, std::int64_t>& by) {
        auto it = by.find(s);
        return it == by.end() ? std::int64_t{0} : it->second;
      };
      series.push_back({{"t_s", s - kill_s},
                        {"attempts", get(totals.attempts_by_second)},
                        {"accepted", get(accepted_by_second)},
                        {"rejected", get(rejected_by_second)}});
    }
    nlohmann::json served = nlohmann::json::array();
    for (const auto& s : sampler.samples()) {
      served.push_back({{"t_s", static_cast<double>(s.unix_us - back_us) / 1e6},
                        {"connected", s.named},
                        {"accepted", s.accepted}});
    }
    result.details_json =
        nlohmann::json({{"policy", policy},
                        {"client_name", "lab-e046-" + SafeName(ctx.ns) + "-" + mode},
                        {"run_id_before", run_id_before},
                        {"run_id_after", sampler.run_id_after()},
                        {"attempts_per_second", series},
                        {"after_restart", served},
                        {"connected_initially", totals.connected_initially},
                        {"provenance",
                         {{"redis_down_ms", "server_counter"},
                          {"peak_attempts_per_s", "self_reported"},
                          {"peak_accepted_per_s", "server_counter"},
                          {"burst_accepted_per_s", "server_counter"},
                          {"accepted_after_restart", "server_counter"},
                          {"refused", "server_counter"},
                          {"refused_client_seen", "self_reported"},
                          {"refused_maxclients_client_seen", "self_reported"},
                          {"attempts", "self_reported"},
                          {"recovery_ms", "server_counter"},
                          {"recovery_ms_reported", "self_reported"},
                          {"unserved", "server_counter"},
                          {"unserved_reported", "self_reported"},
                          {"broken", "self_reported"},
                          {"clients", "by_design"}}},
                        {"sources",
                         {{"redis_down_ms",
                           "runner PING every 20 ms: last answer before the kill to first "
                           "after the start; INFO run_id changed"},
                          {"peak_accepted_per_s",
                           "max per-second delta of INFO total_connections_received "
                           "of the restarted Redis"},
                          {"burst_accepted_per_s",
                           "max delta of total_connections_received over one "
                           "~100 ms sampling interval, per second"},
                          {"refused", "INFO rejected_connections of the restarted Redis"},
                          {"unserved",
                           "clients - connections with the run's client_name in CLIENT LIST at "
                           "the end"},
                          {"recovery_ms",
                           "first PING answer after the start to the first CLIENT LIST "
                           "sample with every client connected (100 ms samples)"}}}})
            .dump();
    Step(ctx, mode + ": down " + std::to_string(static_cast<int>(down_ms)) +
                  " ms, peak attempts/s " + std::to_string(peak_attempts) + ", peak accepted/s " +
                  std::to_string(peak_accepted) + ", burst accepted/s " +
                  std::to_string(static_cast<int>(burst)) + ", refused " +
                  std::to_string(last.rejected) + ", recovery " +
                  std::to_string(static_cast<int>(recovery_ms)) + " ms, unserved " +
                  std::to_string(unserved));
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeReconnectStorm(const StackConfig& config) {
  return std::make_unique<ReconnectStorm>(config);
}

}  // namespace lab::runners
