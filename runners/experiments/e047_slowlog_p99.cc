// E-047: a few slow commands ruin every client's p99, and the server's own SLOWLOG and LATENCY
// name the culprit. One mode, "check", in two phases of `seconds` each:
//   baseline: `clients` threads each send GET/SET on their own connection at a fixed pace
//             (one every kPaceMs); latency is measured from the moment an operation was due, not
//             when it was sent, so an operation that waits behind a blocked server counts the
//             whole wait (no coordinated omission);
//   injected: the same load while an injector runs slow commands beside it (KEYS over every
//             key, SORT of a large list, a busy Lua loop), one every kInjectEveryMs.
// slowlog-log-slower-than and latency-monitor-threshold are set for the run (restored after);
// SLOWLOG entries newer than the phase's start are read back and ranked by duration: the
// culprit is named when the slowest entries are the injected commands and none is the load's.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
constexpr auto kPace = 1ms;
constexpr auto kInjectEvery = 250ms;
constexpr std::int64_t kSlowlogThresholdUs = 5000;
constexpr std::int64_t kLatencyThresholdMs = 5;
constexpr std::int64_t kLuaLoop = 400000;
constexpr std::int64_t kListSize = 100000;

// One operation of the load: when it was due (ms since the phase began) and its latency.
struct Sample {
  double due_ms;
  double latency_ms;
};

struct PhaseLoad {
  std::vector<Sample> samples;
  std::int64_t errors = 0;
};

struct Injection {
  double at_ms;
  std::string command;
  double took_ms;
};

// One client of the steady load: paced GET/SET until `duration` passes.
void RunLoadClient(const StackConfig& config, const std::string& prefix, int id,
                   std::chrono::milliseconds duration, SteadyClock::time_point start,
                   const std::stop_token& stop, PhaseLoad& out, std::mutex& mu) {
  PhaseLoad mine;
  auto conn = redis::Connection::Open(config.redis_host, config.redis_port, 2000ms);
  if (!conn) {
    std::lock_guard lock(mu);
    out.errors += 1;
    return;
  }
  const std::string key = prefix + "load:" + std::to_string(id);
  for (std::int64_t i = 0; !stop.stop_requested(); ++i) {
    auto due = start + i * kPace;
    if (due - start >= duration) break;
    std::this_thread::sleep_until(due);
    auto reply = (i % 2 == 0) ? (*conn)->Command({"SET", key, std::to_string(i)})
                              : (*conn)->Command({"GET", key});
    if (!reply || reply->is_error()) {
      mine.errors += 1;
      continue;
    }
    mine.samples.push_back(
        {std::chrono::duration<double, std::milli>(due - start).count(), MsSince(due)});
  }
  std::lock_guard lock(mu);
  out.errors += mine.errors;
  out.samples.insert(out.samples.end(), mine.samples.begin(), mine.samples.end());
}

// The load of one phase, with `inject` running beside it when given.
PhaseLoad RunPhase(const StackConfig& config, const std::string& prefix, int clients,
                   std::chrono::milliseconds duration, const std::stop_token& stop,
                   const std::function<void(SteadyClock::time_point)>& inject) {
  PhaseLoad load;
  std::mutex mu;
  const auto start = SteadyClock::now() + 50ms;
  {
    std::vector<std::jthread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back(
          [&, c] { RunLoadClient(config, prefix, c, duration, start, stop, load, mu); });
    }
    if (inject) threads.emplace_back([&] { inject(start); });
  }
  return load;
}

double P99(const PhaseLoad& load) {
  std::vector<double> v;
  v.reserve(load.samples.size());
  for (const auto& s : load.samples) v.push_back(s.latency_ms);
  return Percentile(std::move(v), 0.99);
}

// p99 per 250 ms of the phase, for the chart.
nlohmann::json P99Series(const PhaseLoad& load) {
  std::map<int, std::vector<double>> buckets;
  for (const auto& s : load.samples)
    buckets[static_cast<int>(s.due_ms / 250)].push_back(s.latency_ms);
  nlohmann::json series = nlohmann::json::array();
  for (auto& [bucket, values] : buckets) {
    series.push_back({{"t_s", bucket * 0.25}, {"p99_ms", Percentile(std::move(values), 0.99)}});
  }
  return series;
}

class SlowlogP99 final : public ExperimentBase {
 public:
  explicit SlowlogP99(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-047"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::string prefix = RedisPrefix(ctx, mode);
    Created(ctx, mode, result, kArtifactRedis, prefix);
    auto conn = OpenRedis(10s);
    if (!conn) return Inconclusive(std::move(result), "redis: " + conn.error().message);
    if (auto s = Prepare(ctx, mode, result, **conn, prefix); !s) {
      return Inconclusive(std::move(result), "redis: " + s.error().message);
    }
    auto last_id = LastSlowlogId(**conn);
    if (!last_id) return Inconclusive(std::move(result), "redis: " + last_id.error().message);
    Progress(ctx, 20);

    const int clients = static_cast<int>(domain::GetInt(ctx.params, "clients"));
    const std::chrono::milliseconds phase(domain::GetInt(ctx.params, "seconds") * 1000);
    Step(ctx, mode + ": baseline load, " + std::to_string(clients) + " clients for " +
                  std::to_string(phase.count()) + " ms");
    PhaseLoad baseline = RunPhase(config_, prefix, clients, phase, ctx.stop, {});
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    Progress(ctx, 50);

    Step(ctx, mode + ": the same load with slow commands injected every " +
                  std::to_string(kInjectEvery.count()) + " ms");
    std::vector<Injection> injections;
    PhaseLoad injected =
        RunPhase(config_, prefix, clients, phase, ctx.stop, [&](SteadyClock::time_point start) {
          injections = Inject(prefix, start, phase, ctx.stop);
        });
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    Progress(ctx, 80);
    return Evaluate(ctx, mode, std::move(result), **conn, *last_id, baseline, injected, injections);
  }

 private:
  // The keys KEYS walks, the list SORT sorts, and the server's thresholds for the run.
  domain::Status Prepare(const domain::RunContext& ctx, const std::string& mode,
                         domain::ModeResult& result, redis::Connection& conn,
                         const std::string& prefix) const {
    const std::int64_t keys = domain::GetInt(ctx.params, "keys");
    std::vector<std::vector<std::string>> batch;
    for (std::int64_t i = 0; i < keys; ++i) {
      batch.push_back({"SET", prefix + "k:" + std::to_string(i), "v"});
      if (batch.size() == 1000 || i + 1 == keys) {
        auto r = conn.Pipeline(batch);
        if (!r) return r.error();
        batch.clear();
      }
    }
    for (std::int64_t i = 0; i < kListSize; i += 1000) {
      std::vector<std::string> push = {"RPUSH", prefix + "list"};
      for (std::int64_t j = i; j < i + 1000; ++j)
        push.push_back(std::to_string((j * 7919) % 100003));
      auto r = conn.Command(push);
      if (!r) return r.error();
    }
    Step(ctx, mode + ": " + std::to_string(keys) + " keys and a list of " +
                  std::to_string(kListSize) + " written");
    if (auto s = SetRedisConfig(ctx, mode, result, "slowlog-log-slower-than",
                                std::to_string(kSlowlogThresholdUs));
        !s) {
      return s;
    }
    if (auto s = SetRedisConfig(ctx, mode, result, "slowlog-max-len", "1024"); !s) return s;
    return SetRedisConfig(ctx, mode, result, "latency-monitor-threshold",
                          std::to_string(kLatencyThresholdMs));
  }

  // The newest SLOWLOG entry's id before the run (-1 when the log is empty): entries after it
  // are this run's.
  static domain::Result<std::int64_t> LastSlowlogId(redis::Connection& conn) {
    auto r = conn.Command({"SLOWLOG", "GET", "1"});
    if (!r) return r.error();
    if (r->elements.empty() || r->elements[0].elements.empty()) return std::int64_t{-1};
    return static_cast<std::int64_t>(r->elements[0].elements[0].integer);
  }

  // Runs one slow command every kInjectEvery on its own connection until the phase ends.
  std::vector<Injection> Inject(const std::string& prefix, SteadyClock::time_point start,
                                std::chrono::milliseconds duration,
                                const std::stop_token& stop) const {
    std::vector<Injection> done;
    auto conn = redis::Connection::Open(config_.redis_host, config_.redis_port, 10s);
    if (!conn) return done;
    const std::vector<std::pair<std::string, std::vector<std::string>>> slow = {
        {"KEYS", {"KEYS", prefix + "k:*"}},
        {"SORT", {"SORT", prefix + "list", "LIMIT", "0", "1"}},
        {"EVAL",
         {"EVAL", "local i = 0 while i < tonumber(ARGV[1]) do i = i + 1 end return i", "0",
          std::to_string(kLuaLoop)}}};
    for (std::int64_t i = 1; !stop.stop_requested(); ++i) {
      auto due = start + i * kInjectEvery;
      if (due - start >= duration - kInjectEvery / 2) break;
      std::this_thread::sleep_until(due);
      const auto& [name, argv] = slow[static_cast<size_t>(i) % slow.size()];
      auto t0 = SteadyClock::now();
      auto reply = (*conn)->Command(argv);
      if (!reply || reply->is_error()) continue;
      done.push_back(
          {std::chrono::duration<double, std::milli>(t0 - start).count(), name, MsSince(t0)});
    }
    return done;
  }

  // SLOWLOG entries newer than `after_id`: {command, duration_us}, slowest first.
  static domain::Result<std::vector<std::pair<std::string, std::int64_t>>> SlowEntries(
      redis::Connection& conn, std::int64_t after_id) {
    auto r = conn.Command({"SLOWLOG", "GET", "1024"});
    if (!r) return r.error();
    std::vector<std::pair<std::string, std::int64_t>> entries;
    for (const auto& e : r->elements) {
      if (e.elements.size() < 4 || e.elements[0].integer <= after_id) continue;
      std::string command = e.elements[3].elements.empty() ? "" : e.elements[3].elements[0].str;
      std::transform(command.begin(), command.end(), command.begin(), ::toupper);
      entries.emplace_back(command, e.elements[2].integer);
    }
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.second > b.second; });
    return entries;
  }

  domain::ModeResult Evaluate(const domain::RunContext& ctx, const std::string& mode,
                              domain::ModeResult result, redis::Connection& conn,
                              std::int64_t last_id, const PhaseLoad& baseline,
                              const PhaseLoad& injected,
                              const std::vector<Injection>& injections) const {
    auto entries = SlowEntries(conn, last_id);
    if (!entries) return Inconclusive(std::move(result), "redis: " + entries.error().message);
    auto latency = conn.Command({"LATENCY", "LATEST"});
    if (!latency) return Inconclusive(std::move(result), "redis: " + latency.error().message);
    if (baseline.samples.empty() || injected.samples.empty()) {
      return Inconclusive(std::move(result), "the load recorded no operation");
    }
    const std::set<std::string> injected_names = {"KEYS", "SORT", "EVAL"};
    const size_t top = std::min<size_t>(3, entries->size());
    bool named = top > 0;
    std::int64_t load_entries = 0;
    std::int64_t injected_entries = 0;
    nlohmann::json slowlog = nlohmann::json::array();
    for (size_t i = 0; i < entries->size(); ++i) {
      const auto& [command, us] = (*entries)[i];
      if (injected_names.count(command) == 0) ++load_entries;
      if (injected_names.count(command) > 0) ++injected_entries;
      if (i < top && injected_names.count(command) == 0) named = false;
      if (i < 10) slowlog.push_back({{"command", command}, {"duration_ms", us / 1000.0}});
    }
    named = named && load_entries == 0;
    nlohmann::json latency_events = nlohmann::json::array();
    for (const auto& e : latency->elements) {
      if (e.elements.size() < 4) continue;
      latency_events.push_back({{"event", e.elements[0].str},
                                {"latest_ms", e.elements[2].integer},
                                {"max_ms", e.elements[3].integer}});
    }
    const double p99_base = P99(baseline);
    const double p99_inj = P99(injected);
    auto& m = result.metrics;
    m["p99_baseline_ms"] = p99_base;
    m["p99_injected_ms"] = p99_inj;
    m["p99_factor"] = p99_inj / std::max(p99_base, 0.001);
    m["slow_sent"] = static_cast<double>(injections.size());
    m["slow_injected"] = static_cast<double>(
        std::min<std::int64_t>(injected_entries, static_cast<std::int64_t>(injections.size())));
    m["slowlog_entries"] = static_cast<double>(entries->size());
    m["slowlog_load_entries"] = static_cast<double>(load_entries);
    m["culprit_named"] = named ? 1 : 0;
    m["latency_events"] = static_cast<double>(latency_events.size());
    m["operations_baseline"] = static_cast<double>(baseline.samples.size());
    m["operations_injected"] = static_cast<double>(injected.samples.size());
    m["load_errors"] = static_cast<double>(baseline.errors + injected.errors);
    nlohmann::json injection_list = nlohmann::json::array();
    for (const auto& i : injections) {
      injection_list.push_back(
          {{"t_s", i.at_ms / 1000.0}, {"command", i.command}, {"took_ms", i.took_ms}});
    }
    result.details_json =
        nlohmann::json(
            {{"latency_baseline", P99Series(baseline)},
             {"latency_injected", P99Series(injected)},
             {"injections", injection_list},
             {"slowlog_top", slowlog},
             {"latency_latest", latency_events},
             {"thresholds",
              {{"slowlog_log_slower_than_us", kSlowlogThresholdUs},
               {"latency_monitor_threshold_ms", kLatencyThresholdMs}}},
             {"provenance",
              {{"p99_baseline_ms", "self_reported"},
               {"p99_injected_ms", "self_reported"},
               {"p99_factor", "self_reported"},
               {"slow_sent", "self_reported"},
               {"slow_injected", "server_counter"},
               {"slowlog_entries", "server_counter"},
               {"slowlog_load_entries", "server_counter"},
               {"culprit_named", "server_counter"},
               {"latency_events", "server_counter"},
               {"operations_baseline", "self_reported"},
               {"operations_injected", "self_reported"},
               {"load_errors", "self_reported"}}},
             {"note",
              "latency is measured from when each paced operation was due; slow_injected counts "
              "the injected commands SLOWLOG recorded (at most slow_sent)"}})
            .dump();
    Step(ctx, mode + ": p99 " + std::to_string(p99_base) + " ms -> " + std::to_string(p99_inj) +
                  " ms; " + std::to_string(injections.size()) + " slow commands; SLOWLOG top: " +
                  (entries->empty() ? std::string("none") : entries->front().first));
    Progress(ctx, 100);
    return result;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeSlowlogP99(const StackConfig& config) {
  return std::make_unique<SlowlogP99>(config);
}

}  // namespace lab::runners
