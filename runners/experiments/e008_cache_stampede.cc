// E-008: a hot key expiring under load stampedes the database; singleflight + soft TTL + a
// Redis lock prevents it. In-process query-service instances (each with its own MySQL pool and
// singleflight table) serve `clients` concurrent reader threads (each with its own Redis
// connection) for `expiries` TTL periods of the hot key.
//   failure: naive cache-aside (GET; on a miss load from MySQL and SET with a TTL).
//   success: a soft TTL inside the value; when it passes, one caller per instance (singleflight)
//            tries a Redis lock (SET NX PX) and only the holder reloads, everyone else serves
//            the stale value; on a hard miss, losers wait briefly for the holder's write.
// Every load runs a real query (SLEEP(db_delay)) and writes a db_read_log row, so db_reads is
// counted in MySQL itself; latencies are the clients' own clocks.
#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/redis/redis_client.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
constexpr std::int64_t kTtlMs = 1000;

class QueryInstance {
 public:
  QueryInstance(int id, mysql::MysqlConfig mc, std::string ns, std::int64_t delay_ms)
      : id_(id), pool_(std::move(mc), 40), ns_(std::move(ns)), delay_ms_(delay_ms) {}

  // One real load from MySQL, recorded in db_read_log by the same connection.
  domain::Result<std::string> Load() {
    auto conn = pool_.Acquire(10s);
    if (!conn) return conn.error();
    auto rows = (*conn)->Query(
        "SELECT name, price, version, SLEEP(?) FROM product WHERE run_ns = ? AND product_id = 1",
        {std::to_string(static_cast<double>(delay_ms_) / 1000.0), ns_});
    if (!rows) return rows.error();
    if (rows->rows.empty())
      return domain::MakeError(domain::ErrorCode::kNotFound, "no product row");
    auto log =
        (*conn)->Exec("INSERT INTO db_read_log (run_ns, instance, read_at_us) VALUES (?,?,?)",
                      {ns_, static_cast<std::int64_t>(id_), NowMicros()});
    if (!log) return log.error();
    return *rows->rows[0][0] + "|" + *rows->rows[0][1] + "|" + *rows->rows[0][2];
  }

  // Singleflight: concurrent callers of one instance share one load.
  std::shared_future<domain::Result<std::string>> Flight(
      const std::function<domain::Result<std::string>()>& fn) {
    std::unique_lock lock(mu_);
    if (inflight_.valid()) return inflight_;
    std::promise<domain::Result<std::string>> promise;
    inflight_ = promise.get_future().share();
    auto mine = inflight_;
    lock.unlock();
    promise.set_value(fn());
    lock.lock();
    inflight_ = {};
    return mine;
  }
  bool InFlight() {
    std::lock_guard lock(mu_);
    return inflight_.valid();
  }
  int id() const { return id_; }

 private:
  int id_;
  mysql::Pool pool_;
  std::string ns_;
  std::int64_t delay_ms_;
  std::mutex mu_;
  std::shared_future<domain::Result<std::string>> inflight_;  // guarded by mu_
};

std::int64_t NowMs() { return NowMicros() / 1000; }

// What the clients' GETs found: a value (fresh or soft-expired) or nothing.
struct CacheTally {
  std::atomic<std::int64_t> hits{0};
  std::atomic<std::int64_t> misses{0};
  void Count(bool hit) { ++(hit ? hits : misses); }
};

class CacheStampede final : public ExperimentBase {
 public:
  explicit CacheStampede(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-008"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const auto clients = static_cast<int>(domain::GetInt(ctx.params, "clients"));
    const auto instances = static_cast<int>(domain::GetInt(ctx.params, "instances"));
    const std::int64_t delay = domain::GetInt(ctx.params, "db_delay_ms");
    const std::int64_t expiries = domain::GetInt(ctx.params, "expiries");
    const std::string ns = RunNs(ctx, mode);
    const std::string prefix = RedisPrefix(ctx, mode);
    const std::string key = prefix + "product:1";
    const std::string lock_key = prefix + "lock:product:1";
    auto conn = OpenMysqlWithSchema();
    if (!conn) return Inconclusive(std::move(result), "mysql: " + conn.error().message);
    Created(ctx, mode, result, kArtifactRows, ns);
    Created(ctx, mode, result, kArtifactRedis, prefix);
    if (auto s = (*conn)->Exec("INSERT INTO product (run_ns, product_id, name, price, version) "
                               "VALUES (?,1,'hot',4200,1)",
                               {ns});
        !s) {
      return Inconclusive(std::move(result), "mysql: " + s.error().message);
    }
    auto warm = redis::Connection::Open(config_.redis_host, config_.redis_port, 2s);
    if (!warm) return Inconclusive(std::move(result), "redis: " + warm.error().message);
    const bool naive = mode == "failure" || domain::GetString(ctx.params, "practice") == "off";
    // Warm the cache without a logged load: the run measures expiries, not the cold start.
    const std::string value = "hot|4200|1";
    if (naive) {
      (void)(*warm)->Command({"SET", key, value, "PX", std::to_string(kTtlMs)});
    } else {
      (void)(*warm)->Command({"SET", key, value + "|" + std::to_string(NowMs() + kTtlMs), "PX",
                              std::to_string(kTtlMs * 3)});
    }
    std::vector<std::unique_ptr<QueryInstance>> pool;
    for (int i = 0; i < instances; ++i)
      pool.push_back(std::make_unique<QueryInstance>(i, MysqlSettings(), ns, delay));

    std::atomic<std::int64_t> errors{0};
    std::atomic<std::int64_t> requests{0};
    std::atomic<std::int64_t> client_loads{0};
    CacheTally tally;
    std::mutex lat_mu;
    std::vector<double> latencies;  // guarded by lat_mu
    const auto run_for = std::chrono::milliseconds(expiries * kTtlMs + kTtlMs / 2);
    const auto deadline = SteadyClock::now() + run_for;
    Step(ctx, mode + ": " + std::to_string(clients) + " clients over " + std::to_string(instances) +
                  " instances for " + std::to_string(run_for.count()) + " ms");
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        QueryInstance& inst = *pool[static_cast<std::size_t>(c % instances)];
        auto rc = redis::Connection::Open(config_.redis_host, config_.redis_port, 5s);
        if (!rc) {
          ++errors;
          return;
        }
        std::vector<double> mine;
        while (SteadyClock::now() < deadline && !ctx.stop.stop_requested()) {
          auto t0 = SteadyClock::now();
          bool ok = naive ? NaiveGet(**rc, inst, key, client_loads, tally)
                          : DefendedGet(**rc, inst, key, lock_key, client_loads, tally);
          mine.push_back(MsSince(t0));
          ++requests;
          if (!ok) ++errors;
          std::this_thread::sleep_for(5ms);
        }
        std::lock_guard lock(lat_mu);
        latencies.insert(latencies.end(), mine.begin(), mine.end());
      });
    }
    for (auto& t : threads) t.join();
    const double seconds = static_cast<double>(run_for.count()) / 1000.0;
    const std::int64_t db_reads =
        Count(result, **conn, "SELECT COUNT(*) FROM db_read_log WHERE run_ns = ?", {ns});
    result.metrics["db_reads"] = static_cast<double>(db_reads);
    result.metrics["db_reads_per_expiry"] =
        static_cast<double>(db_reads) / static_cast<double>(expiries);
    result.metrics["client_loads"] = static_cast<double>(client_loads.load());
    result.metrics["instances"] = instances;
    result.metrics["requests"] = static_cast<double>(requests.load());
    result.metrics["qps"] = static_cast<double>(requests.load()) / seconds;
    result.metrics["errors"] = static_cast<double>(errors.load());
    result.metrics["cache_hits"] = static_cast<double>(tally.hits.load());
    result.metrics["cache_misses"] = static_cast<double>(tally.misses.load());
    if (ctx.reporter != nullptr) {
      // The pipeline counters of /metrics, from the same observations (MySQL counts the reads).
      ctx.reporter->Count("lab_db_queries_total", {},
                          static_cast<double>(std::max<std::int64_t>(0, db_reads)));
      ctx.reporter->Count("lab_cache_requests_total", {{"result", "hit"}},
                          static_cast<double>(tally.hits.load()));
      ctx.reporter->Count("lab_cache_requests_total", {{"result", "miss"}},
                          static_cast<double>(tally.misses.load()));
    }
    result.metrics["p50_ms"] = Percentile(latencies, 0.50);
    result.metrics["p95_ms"] = Percentile(latencies, 0.95);
    result.metrics["p99_ms"] = Percentile(latencies, 0.99);
    result.details_json = nlohmann::json({{"run_ns", ns},
                                          {"key", key},
                                          {"ttl_ms", kTtlMs},
                                          {"soft_ttl", !naive},
                                          {"db_reads_source", "COUNT(*) FROM db_read_log"}})
                              .dump();
    Step(ctx, mode + ": db_reads=" + std::to_string(db_reads) +
                  " requests=" + std::to_string(requests.load()) +
                  " p99=" + std::to_string(Percentile(latencies, 0.99)) +
                  " ms errors=" + std::to_string(errors.load()));
    Progress(ctx, 100);
    return result;
  }

 private:
  static bool NaiveGet(redis::Connection& rc, QueryInstance& inst, const std::string& key,
                       std::atomic<std::int64_t>& loads, CacheTally& tally) {
    auto hit = rc.Command({"GET", key});
    if (!hit) return false;
    tally.Count(!hit->is_nil());
    if (!hit->is_nil()) return true;
    ++loads;
    auto loaded = inst.Load();
    if (!loaded) return false;
    return rc.Command({"SET", key, *loaded, "PX", std::to_string(kTtlMs)}).ok();
  }

  static bool Refresh(redis::Connection& rc, QueryInstance& inst, const std::string& key,
                      const std::string& lock_key, std::atomic<std::int64_t>& loads) {
    auto flight = inst.Flight([&]() -> domain::Result<std::string> {
      auto got = rc.Command({"SET", lock_key, std::to_string(inst.id()), "NX", "PX", "3000"});
      if (!got || got->is_nil()) return std::string();  // another instance holds the lock
      ++loads;
      auto loaded = inst.Load();
      if (loaded) {
        (void)rc.Command({"SET", key, *loaded + "|" + std::to_string(NowMs() + kTtlMs), "PX",
                          std::to_string(kTtlMs * 3)});
      }
      (void)rc.Command({"DEL", lock_key});
      return loaded;
    });
    return flight.get().ok();
  }

  static bool DefendedGet(redis::Connection& rc, QueryInstance& inst, const std::string& key,
                          const std::string& lock_key, std::atomic<std::int64_t>& loads,
                          CacheTally& tally) {
    auto hit = rc.Command({"GET", key});
    if (!hit) return false;
    tally.Count(!hit->is_nil());  // a soft-expired value still answers: a hit
    if (!hit->is_nil()) {
      auto bar = hit->str.rfind('|');
      std::int64_t soft = bar == std::string::npos ? 0 : std::stoll(hit->str.substr(bar + 1));
      if (NowMs() >= soft && !inst.InFlight()) {
        // Early refresh by one caller; this caller still answers from the stale value.
        return Refresh(rc, inst, key, lock_key, loads);
      }
      return true;
    }
    // Hard miss: one load per instance at most, and only by the lock holder; others wait for it.
    if (!Refresh(rc, inst, key, lock_key, loads)) return false;
    for (int i = 0; i < 200; ++i) {
      auto again = rc.Command({"GET", key});
      if (again && !again->is_nil()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeCacheStampede(const StackConfig& config) {
  return std::make_unique<CacheStampede>(config);
}

}  // namespace lab::runners
