// E-001: the standard pipeline loses nothing, duplicates nothing and leaves no stale cache.
// Child processes: command-service (outbox mode; places events/2 orders, then updates them,
// at `rate` commands/s), outbox-relay, consumer-service (processed_event dedup, projection,
// cache invalidation DEL or VERSIONED). In-process query-service readers read orders through
// the cache (cache-aside: Redis hash, loaded from the projection) while this runs.
// Evidence after convergence: commands = outbox rows; published = distinct event ids in the
// topic; applied = processed_event rows; duplicates = side effects beyond one per event;
// mismatches = projection rows that differ from their order; stale_reads = cache reads that
// disagree with MySQL; latency = projected_at - committed_at per order (last version).
#include <atomic>
#include <random>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/redis/redis_client.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;

const char* kVersionedFill = R"(
local cur = redis.call('HGET', KEYS[1], 'version')
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'amount', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1)";

class StandardPipeline final : public ExperimentBase {
 public:
  explicit StandardPipeline(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-001"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::int64_t events = domain::GetInt(ctx.params, "events");
    const std::string invalidation = domain::GetString(ctx.params, "invalidation");
    const std::int64_t rate = domain::GetInt(ctx.params, "rate");
    const auto partitions = static_cast<int>(domain::GetInt(ctx.params, "partitions"));
    const std::int64_t orders = std::max<std::int64_t>(1, events / 2);
    const std::string ns = RunNs(ctx, mode);
    const std::string topic = Topic(ctx, mode, "orders");
    const std::string group = Group(ctx, mode, "projector");
    const std::string prefix = "lab:" + SafeName(ctx.ns) + ":" + mode + ":order:";
    auto conn = OpenMysqlWithSchema();
    if (!conn) return Inconclusive(std::move(result), "mysql: " + conn.error().message);
    Created(ctx, mode, result, kArtifactRows, ns);
    Created(ctx, mode, result, kArtifactRedis, prefix);
    if (auto s = CreateTopic(ctx, mode, result, topic, partitions); !s) {
      return Inconclusive(std::move(result), "kafka: " + s.error().message);
    }
    Created(ctx, mode, result, kArtifactGroup, group);
    auto relay =
        StartRole(ctx, mode, result, "outbox-relay",
                  {"--ns", ns, "--topic", topic, "--batch", "500", "--idle-exit-ms", "60000"},
                  "outbox-relay");
    auto consumer = StartRole(
        ctx, mode, result, "consumer-service",
        {"--ns", ns, "--topic", topic, "--group", group, "--dedup", "1", "--batch", "200",
         "--invalidate", invalidation, "--cache-prefix", prefix, "--idle-exit-ms", "60000"},
        "consumer-service");
    if (!relay || !consumer)
      return Inconclusive(std::move(result), "could not start the pipeline's processes");

    // Readers: cache-aside through Redis while commands flow.
    std::atomic<bool> stop_readers{false};
    std::atomic<std::int64_t> reads{0};
    std::vector<std::thread> readers;
    for (int r = 0; r < 4; ++r) {
      readers.emplace_back([&, r] {
        auto rc = redis::Connection::Open(config_.redis_host, config_.redis_port, 2s);
        auto db = mysql::Connection::Open(MysqlSettings());
        if (!rc || !db) return;
        std::mt19937 rng(static_cast<unsigned>(r));
        while (!stop_readers && !ctx.stop.stop_requested()) {
          std::int64_t id = 1 + static_cast<std::int64_t>(rng() % static_cast<unsigned>(orders));
          (void)CacheAsideRead(**rc, **db, ns, prefix, id, invalidation);
          ++reads;
          std::this_thread::sleep_for(2ms);
        }
      });
    }
    auto started = SteadyClock::now();
    RunRole(ctx, mode, result, "command-service",
            {"--ns", ns, "--mode", "outbox", "--events", std::to_string(orders), "--rate",
             std::to_string(rate / 2 > 0 ? rate : 1)},
            "command-service(place)", 120s);
    RunRole(ctx, mode, result, "command-service",
            {"--ns", ns, "--mode", "outbox", "--op", "update", "--events", std::to_string(orders),
             "--rate", std::to_string(rate)},
            "command-service(update)", 120s);
    const double command_seconds = MsSince(started) / 1000.0;
    Progress(ctx, 50);
    // Convergence: every outbox row applied (bounded).
    const std::int64_t commands =
        Count(**conn, "SELECT COUNT(*) FROM outbox_event WHERE run_ns = ?", {ns});
    bool converged = WaitUntil(
        [&] {
          return Count(**conn, "SELECT COUNT(*) FROM processed_event WHERE run_ns = ?", {ns}) >=
                 commands;
        },
        60s, ctx.stop, 200ms);
    const double converge_seconds = MsSince(started) / 1000.0;
    stop_readers = true;
    for (auto& t : readers) t.join();
    // The services run until the pipeline converged (or 60 s passed); then they are stopped.
    // Everything they did is committed by then, so stopping them loses nothing.
    relay->Kill();
    consumer->Kill();
    WaitRole(ctx, *relay, 1s, result, "outbox-relay");
    WaitRole(ctx, *consumer, 1s, result, "consumer-service");
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");

    auto read = kafka::ReadTopic(config_.kafka_bootstrap, topic, partitions, "read_committed", 30s);
    if (!read.complete) return Inconclusive(std::move(result), "read-back: " + read.error);
    auto ids = EventIdCounts(read.messages);
    const std::int64_t applied =
        Count(**conn, "SELECT COUNT(*) FROM processed_event WHERE run_ns = ?", {ns});
    const std::int64_t effects =
        Count(**conn, "SELECT COUNT(*) FROM side_effect WHERE run_ns = ?", {ns});
    const std::int64_t distinct_effects =
        Count(**conn, "SELECT COUNT(DISTINCT event_id) FROM side_effect WHERE run_ns = ?", {ns});
    const std::int64_t mismatches =
        Count(**conn,
              "SELECT COUNT(*) FROM orders o LEFT JOIN order_projection p ON p.run_ns = "
              "o.run_ns AND p.order_id = o.order_id WHERE o.run_ns = ? AND (p.order_id IS "
              "NULL OR p.amount <> o.amount OR p.version <> o.version)",
              {ns});
    // Stale reads after convergence: every order through the cache, compared with MySQL.
    std::int64_t stale = 0;
    auto rc = redis::Connection::Open(config_.redis_host, config_.redis_port, 2s);
    if (!rc) return Inconclusive(std::move(result), "redis: " + rc.error().message);
    auto truth =
        (*conn)->Query("SELECT order_id, amount, version FROM orders WHERE run_ns = ?", {ns});
    if (!truth) return Inconclusive(std::move(result), "mysql: " + truth.error().message);
    for (const auto& row : truth->rows) {
      auto cached = CacheAsideRead(**rc, **conn, ns, prefix, std::stoll(*row[0]), invalidation);
      if (!cached || cached->first != std::stoll(*row[1]) || cached->second != std::stoll(*row[2]))
        ++stale;
    }
    std::vector<double> latency;
    auto lat = (*conn)->Query(
        "SELECT (projected_at_us - committed_at_us) / 1000.0 FROM order_projection WHERE run_ns = "
        "?",
        {ns});
    if (lat) {
      for (const auto& row : lat->rows) latency.push_back(std::stod(*row[0]));
    }
    result.metrics["commands"] = static_cast<double>(commands);
    result.metrics["outbox_rows"] = static_cast<double>(commands);
    result.metrics["published"] = static_cast<double>(ids.size());
    result.metrics["applied"] = static_cast<double>(applied);
    result.metrics["duplicates"] = static_cast<double>(effects - distinct_effects);
    result.metrics["mismatches"] = static_cast<double>(mismatches);
    result.metrics["stale_reads"] = static_cast<double>(stale);
    result.metrics["cache_reads_during_run"] = static_cast<double>(reads.load());
    result.metrics["latency_p50_ms"] = Percentile(latency, 0.50);
    result.metrics["latency_p95_ms"] = Percentile(latency, 0.95);
    result.metrics["latency_p99_ms"] = Percentile(latency, 0.99);
    result.metrics["converge_seconds"] = converge_seconds;
    result.details_json =
        nlohmann::json({{"run_ns", ns},
                        {"topic", topic},
                        {"invalidation", invalidation},
                        {"converged", converged},
                        {"command_seconds", command_seconds},
                        {"latency_source",
                         "order_projection.projected_at_us - committed_at_us (last version)"}})
            .dump();
    Step(ctx, mode + ": commands=" + std::to_string(commands) +
                  " applied=" + std::to_string(applied) +
                  " mismatches=" + std::to_string(mismatches) + " stale=" + std::to_string(stale));
    Progress(ctx, 100);
    return result;
  }

 private:
  // Cache-aside: the hash {version, amount}; a miss loads the projection and fills the cache
  // (version-guarded when invalidation is versioned). Returns (amount, version).
  static std::optional<std::pair<std::int64_t, std::int64_t>> CacheAsideRead(
      redis::Connection& rc, mysql::Connection& db, const std::string& ns,
      const std::string& prefix, std::int64_t id, const std::string& invalidation) {
    const std::string key = prefix + std::to_string(id);
    auto hit = rc.Command({"HMGET", key, "amount", "version"});
    if (hit && hit->elements.size() == 2 && !hit->elements[0].is_nil() &&
        !hit->elements[1].is_nil()) {
      return std::make_pair(std::stoll(hit->elements[0].str), std::stoll(hit->elements[1].str));
    }
    auto row = db.Query(
        "SELECT amount, version FROM order_projection WHERE run_ns = ? AND order_id = ?", {ns, id});
    if (!row || row->rows.empty()) return std::nullopt;
    const std::string amount = *row->rows[0][0];
    const std::string version = *row->rows[0][1];
    const std::string ttl = std::to_string(30000 + (id * 7919) % 5000);  // TTL with jitter
    if (invalidation == "versioned") {
      (void)rc.Command({"EVAL", kVersionedFill, "1", key, version, amount, ttl});
    } else {
      (void)rc.Pipeline(
          {{"HSET", key, "amount", amount, "version", version}, {"PEXPIRE", key, ttl}});
    }
    return std::make_pair(std::stoll(amount), std::stoll(version));
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeStandardPipeline(const StackConfig& config) {
  return std::make_unique<StandardPipeline>(config);
}

}  // namespace lab::runners
