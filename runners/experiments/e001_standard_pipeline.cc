// E-001: the standard pipeline loses nothing, duplicates nothing and leaves no stale cache.
// Child processes: command-service (outbox mode; places events/2 orders, then updates them,
// at `rate` commands/s over several connections), outbox-relay, one consumer-service per
// partition in one group (processed_event dedup, projection, cache invalidation DEL or
// VERSIONED). In-process query-service readers read orders through
// the cache (cache-aside: Redis hash, loaded from the projection) while this runs.
// Evidence after convergence: commands = outbox rows; published = distinct event ids in the
// topic; applied = processed_event rows; duplicates = side effects beyond one per event;
// mismatches = projection rows that differ from their order; stale_reads = cache reads that
// disagree with MySQL; latency = projected_at - committed_at per order (last version).
// Latency clock: both ends are the host's CLOCK_REALTIME (every process runs on this host), each
// read inside its transaction just before COMMIT — the command-service's when it writes the
// order, the consumer's when it writes the projection; the command-service reports its own
// BEGIN-to-COMMIT time (commit_p50/p99) so the commit's share is known.
// Why several connections and consumers: MariaDB here commits durably (innodb_flush_log_at_
// trx_commit=1, sync_binlog=1), so one connection commits ~140 transactions/s (measured); the
// offered `rate` is only offered when enough commits run at once to share a group commit. Each
// consumer applies up to 50 polled events per transaction (each with its own processed_event
// row): one durable commit per event capped a consumer at ~110-180 events/s.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/c_handle.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/redis/order_cache.h"
#include "runners/redis/redis_client.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;

// Whether `group` is Stable with `members` members holding `partitions` partitions between
// them (DescribeConsumerGroups, librdkafka >= 2.0). Load is offered only then: otherwise the
// consumers' joins and rebalances (seconds with a dozen members) would be measured as latency.
bool GroupReady(rd_kafka_t* rk, const std::string& group, std::size_t members, int partitions) {
  char errstr[256];
  const char* groups[] = {group.c_str()};
  CHandle<rd_kafka_queue_t, rd_kafka_queue_destroy> queue(rd_kafka_queue_new(rk));
  CHandle<rd_kafka_AdminOptions_t, rd_kafka_AdminOptions_destroy> options(
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS));
  if (rd_kafka_AdminOptions_set_request_timeout(options.get(), 2000, errstr, sizeof errstr) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    return false;
  }
  rd_kafka_DescribeConsumerGroups(rk, groups, 1, options.get(), queue.get());
  CHandle<rd_kafka_event_t, rd_kafka_event_destroy> ev(rd_kafka_queue_poll(queue.get(), 3000));
  if (!ev || rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
  const auto* res = rd_kafka_event_DescribeConsumerGroups_result(ev.get());
  if (res == nullptr) return false;
  std::size_t n = 0;
  const auto** descs = rd_kafka_DescribeConsumerGroups_result_groups(res, &n);
  if (n != 1 || rd_kafka_ConsumerGroupDescription_error(descs[0]) != nullptr ||
      rd_kafka_ConsumerGroupDescription_state(descs[0]) != RD_KAFKA_CONSUMER_GROUP_STATE_STABLE ||
      rd_kafka_ConsumerGroupDescription_member_count(descs[0]) != members) {
    return false;
  }
  int assigned = 0;
  for (std::size_t i = 0; i < members; ++i) {
    const auto* member = rd_kafka_ConsumerGroupDescription_member(descs[0], i);
    const auto* parts =
        rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(member));
    if (parts != nullptr) assigned += parts->cnt;
  }
  return assigned == partitions;
}

class StandardPipeline final : public ExperimentBase {
 public:
  explicit StandardPipeline(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-001"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::int64_t events = domain::GetInt(ctx.params, "events");
    // practice=off: the consumers leave the cache alone (no invalidation at all).
    const std::string invalidation = domain::GetString(ctx.params, "practice") == "off"
                                         ? "none"
                                         : domain::GetString(ctx.params, "invalidation");
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
    std::vector<ChildProcess> consumers;
    for (int i = 0; i < partitions; ++i) {
      auto consumer = StartRole(ctx, mode, result, "consumer-service",
                                {"--ns", ns, "--topic", topic, "--group", group, "--dedup", "1",
                                 "--batch", "200", "--tx-batch", "50", "--invalidate", invalidation,
                                 "--cache-prefix", prefix, "--idle-exit-ms", "60000"},
                                "consumer-service#" + std::to_string(i + 1));
      if (!consumer) break;
      consumers.push_back(std::move(*consumer));
    }
    if (!relay || static_cast<int>(consumers.size()) != partitions)
      return Inconclusive(std::move(result), "could not start the pipeline's processes");

    bool group_ready = false;
    if (auto admin = kafka::Admin::Create(config_.kafka_bootstrap)) {
      group_ready = WaitUntil(
          [&] { return GroupReady((*admin)->handle(), group, consumers.size(), partitions); }, 30s,
          ctx.stop, 200ms);
    }
    Step(ctx,
         mode + (group_ready ? ": consumer group stable, every partition assigned"
                             : ": consumer group not stable after 30 s; offering load anyway"));

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
    // Enough connections that `rate` commits/s fit: ~50 commits/s each leaves headroom over
    // the ~140/s one connection manages alone.
    const std::int64_t concurrency = std::clamp<std::int64_t>(rate / 50, 1, 32);
    auto started = SteadyClock::now();
    std::vector<RoleOutcome> phases;
    for (const char* op : {"place", "update"}) {
      phases.push_back(
          RunRole(ctx, mode, result, "command-service",
                  {"--ns", ns, "--mode", "outbox", "--op", op, "--events", std::to_string(orders),
                   "--rate", std::to_string(rate), "--concurrency", std::to_string(concurrency)},
                  std::string("command-service(") + op + ")", RoleWait(orders, 120s)));
    }
    const double command_seconds = MsSince(started) / 1000.0;
    // Achieved rate: commands over the command-services' own time (first due time to last
    // commit), so process start-up is not counted against it.
    double busy_ms = 0;
    double late_p99_us = 0;
    double commit_p50_us = 0;
    double commit_p99_us = 0;
    // The command-services' own count of committed commands, to reconcile the outbox against.
    // Decided after the readers and services are stopped (returning here would leave them).
    std::int64_t commands_committed = 0;
    std::optional<std::string> phase_unfinished;
    for (const auto& p : phases) {
      const std::string committed = p.Value("committed", "");
      if (!p.finished || committed.empty()) {
        phase_unfinished = "a command-service phase did not finish: " + p.status.Describe();
        continue;
      }
      commands_committed += std::stoll(committed);
      busy_ms += std::stod(p.Value("elapsed_ms", "0"));
      late_p99_us = std::max(late_p99_us, std::stod(p.Value("late_p99_us", "0")));
      commit_p50_us = std::max(commit_p50_us, std::stod(p.Value("commit_p50_us", "0")));
      commit_p99_us = std::max(commit_p99_us, std::stod(p.Value("commit_p99_us", "0")));
    }
    Progress(ctx, 50);
    // Convergence: every outbox row applied (bounded).
    const std::int64_t commands =
        Count(result, **conn, "SELECT COUNT(*) FROM outbox_event WHERE run_ns = ?", {ns});
    bool converged = WaitUntil(
        [&] {
          return TryCount(**conn, "SELECT COUNT(*) FROM processed_event WHERE run_ns = ?", {ns}) >=
                 commands;
        },
        RoleWait(events), ctx.stop, 200ms);
    const double converge_seconds = MsSince(started) / 1000.0;
    stop_readers = true;
    for (auto& t : readers) t.join();
    // The services run until the pipeline converged (or RoleWait passed); then they are stopped.
    // Every outbox row is applied by then; the consumers get SIGTERM and finish the batch in
    // hand — the cache update that follows an applied event's commit included, which a SIGKILL
    // right after convergence could cut off and leave a stale entry.
    relay->Kill();
    WaitRole(ctx, *relay, 1s, result, "outbox-relay");
    for (auto& consumer : consumers) ::kill(consumer.pid(), SIGTERM);
    for (auto& consumer : consumers) WaitRole(ctx, consumer, 10s, result, "consumer-service");
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    if (phase_unfinished) return Inconclusive(std::move(result), *phase_unfinished);

    auto read = kafka::ReadTopic(config_.kafka_bootstrap, topic, partitions, "read_committed",
                                 ReadBackWait(events));
    if (!read.complete) return Inconclusive(std::move(result), "read-back: " + read.error);
    auto ids = EventIdCounts(read.messages);
    const std::int64_t applied =
        Count(result, **conn, "SELECT COUNT(*) FROM processed_event WHERE run_ns = ?", {ns});
    const std::int64_t effects =
        Count(result, **conn, "SELECT COUNT(*) FROM side_effect WHERE run_ns = ?", {ns});
    const std::int64_t distinct_effects = Count(
        result, **conn, "SELECT COUNT(DISTINCT event_id) FROM side_effect WHERE run_ns = ?", {ns});
    const std::int64_t mismatches =
        Count(result, **conn,
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
    // Where the latency is spent: commit -> published by the relay (outbox rows, both clocks of
    // this host), the rest is Kafka -> consumer -> projection commit.
    std::vector<double> relay_lag;
    auto rl = (*conn)->Query(
        "SELECT (published_at_us - created_at_us) / 1000.0 FROM outbox_event WHERE run_ns = ? AND "
        "published_at_us > 0",
        {ns});
    if (rl) {
      for (const auto& row : rl->rows) relay_lag.push_back(std::stod(*row[0]));
    }
    result.metrics["relay_lag_p50_ms"] = Percentile(relay_lag, 0.50);
    result.metrics["relay_lag_p99_ms"] = Percentile(relay_lag, 0.99);
    result.metrics["commands"] = static_cast<double>(commands);
    result.metrics["outbox_rows"] = static_cast<double>(commands);
    result.metrics["commands_committed"] = static_cast<double>(commands_committed);
    result.metrics["published"] = static_cast<double>(ids.size());
    result.metrics["applied"] = static_cast<double>(applied);
    result.metrics["duplicates"] = static_cast<double>(effects - distinct_effects);
    result.metrics["mismatches"] = static_cast<double>(mismatches);
    result.metrics["stale_reads"] = static_cast<double>(stale);
    result.metrics["cache_reads_during_run"] = static_cast<double>(reads.load());
    result.metrics["latency_p50_ms"] = Percentile(latency, 0.50);
    result.metrics["latency_p95_ms"] = Percentile(latency, 0.95);
    result.metrics["latency_p99_ms"] = Percentile(latency, 0.99);
    result.metrics["latency_samples"] = static_cast<double>(latency.size());
    result.metrics["converge_seconds"] = converge_seconds;
    result.metrics["offered_rate"] = static_cast<double>(rate);
    result.metrics["achieved_rate"] =
        busy_ms > 0 ? static_cast<double>(commands) / (busy_ms / 1000.0) : 0;
    result.metrics["command_late_p99_ms"] = late_p99_us / 1000.0;
    result.metrics["command_commit_p50_ms"] = commit_p50_us / 1000.0;
    result.metrics["command_commit_p99_ms"] = commit_p99_us / 1000.0;
    result.details_json =
        nlohmann::json({{"run_ns", ns},
                        {"topic", topic},
                        {"invalidation", invalidation},
                        {"converged", converged},
                        {"command_seconds", command_seconds},
                        {"command_connections", concurrency},
                        {"consumers", partitions},
                        {"group_ready_before_load", group_ready},
                        {"latency_source",
                         "order_projection.projected_at_us - committed_at_us (last version); "
                         "both the host's CLOCK_REALTIME, read inside each transaction before "
                         "its COMMIT"}})
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
      (void)rc.Command({"EVAL", redis::kVersionedOrderSet, "1", key, version, amount, ttl});
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
