// E-005: retry topics -> DLQ -> replay recovers every event, and replaying twice is harmless.
// One mode (success). The command-service writes `events` orders with outbox rows (every
// poison_every-th order references a product of its own); the outbox-relay publishes them. The
// real, clearable fault lives in MySQL: the consumer applies an event only when its product row
// exists (same transaction as processed_event and the side effect), and only the shared
// reference product exists at first. So poisoned events fail, go through retry-1 and retry-2
// and land in the DLQ with headers (error, attempts, origin topic/partition/offset). The fault is
// then cleared by inserting the products the DLQ's records name; the replay worker replays the
// DLQ (filtered by error, rate limited, one replay_audit row each) into the main topic, the
// consumer (restarted, same group) applies them; then the whole replay runs a second time.
// Parameter dedup=none runs the consumers of the replays without processed_event (the
// anti-practice): the second replay then applies side effects twice.
// Evidence: total/poisoned from the main topic read back (+ the product table before the fault
// is cleared), retried/dlq/header check from the retry topics and the DLQ read back, replayed
// per round from the main topic read back, applied/duplicates from side_effect rows,
// replay_audit rows and the achieved replay rate from replay_audit.
#include <future>
#include <optional>
#include <set>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;

constexpr int kPartitions = 3;
// One DLQ partition: a DLQ is low volume, and a single partition replays in DLQ order at a
// rate the limiter alone decides (with several, fetch gaps between partitions blur it).
constexpr int kDlqPartitions = 1;
const char* const kFaultFilter = "unknown product";  // the error the replay is filtered by

std::string Header(const kafka::Message& m, const std::string& name) {
  for (const auto& [k, v] : m.headers) {
    if (k == name) return v;
  }
  return "";
}

// A role that crashed or hung is a failure of the tooling, not evidence about the claim.
bool Clean(const RoleOutcome& o) { return o.finished && o.status.exited && o.status.code == 0; }

std::int64_t ProductId(const kafka::Message& m) {
  auto ev = nlohmann::json::parse(m.value, nullptr, false);
  return ev.is_object() ? ev.value("product_id", std::int64_t{-1}) : -1;
}

// Why a phase ended the mode inconclusive; nullopt: the run goes on.
using Abort = std::optional<std::string>;

// What the phases of one mode's run share: its parameters and names, the MySQL connection, the
// roles' outcomes and the numbers the evidence is built from.
struct DlqRun {
  DlqRun(const domain::RunContext& c, const std::string& m) : ctx(c), mode(m) {}
  const domain::RunContext& ctx;
  const std::string mode;
  domain::ModeResult result;
  std::int64_t events = 0;
  std::int64_t poison_every = 0;
  std::int64_t replay_rate = 0;
  bool dedup = true;
  std::string ns, topic, retry1, retry2, dlq, group;
  std::unique_ptr<mysql::Connection> conn;
  SteadyClock::time_point phase_start = SteadyClock::now();
  nlohmann::json seconds = nlohmann::json::object();  // how long each phase took
  nlohmann::json details;

  // Produced through the outbox.
  RoleOutcome command, relay;
  std::int64_t committed = 0;
  std::int64_t unpublished = 0;
  // Consumed with the fault in place, read back before it is cleared.
  RoleOutcome consumer1;
  std::set<std::string> originals;
  std::set<std::string> poisoned_ids;  // events whose product row is missing in MySQL
  std::set<std::string> retried_ids;
  std::set<std::string> dlq_ids;
  std::set<std::int64_t> missing_products;  // named by the DLQ'd records
  std::size_t retry_records = 0;
  std::size_t dlq_records = 0;
  std::int64_t headers_ok = 0;
  std::int64_t dlq_poisoned_overlap = 0;
  std::int64_t applied_before = 0;
  // The fault cleared, the DLQ replayed twice.
  std::int64_t fixed = 0;
  std::vector<RoleOutcome> replays;
  std::vector<std::int64_t> applied_after;
  // Read back after the replays.
  std::size_t dlq_after_replays = 0;
  std::int64_t replayed_in_topic[3] = {0, 0, 0};
  std::int64_t final_applied = 0;
  std::int64_t side_effects = 0;
  std::int64_t duplicates = 0;
  std::int64_t applied_by_replay = 0;
  std::int64_t audit_rows = 0;
  std::int64_t audit_replayed = 0;
  std::int64_t projection_rows = 0;
  double rates[3] = {0, 0, 0};

  bool Cancelled() const { return ctx.stop.stop_requested(); }
  void Phase(const std::string& name) {  // how long each phase took, for the details
    seconds[name] = MsSince(phase_start) / 1000.0;
    phase_start = SteadyClock::now();
  }
};

class DlqReplay final : public ExperimentBase {
 public:
  explicit DlqReplay(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-005"; }

  // Fresh read-backs of several topics at once (each its own group-less consumer; in parallel
  // because each one spends most of its time joining and reaching the partitions' ends).
  std::vector<kafka::ReadBack> ReadAll(const std::vector<std::pair<std::string, int>>& topics,
                                       std::int64_t events) {
    std::vector<std::future<kafka::ReadBack>> pending;
    for (const auto& [t, partitions] : topics) {
      pending.push_back(
          std::async(std::launch::async, [this, t = t, partitions = partitions, events] {
            return kafka::ReadTopic(config_.kafka_bootstrap, t, partitions, "read_committed",
                                    ReadBackWait(events));
          }));
    }
    std::vector<kafka::ReadBack> out;
    for (auto& f : pending) out.push_back(f.get());
    return out;
  }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    DlqRun r(ctx, mode);
    ReadParams(r);
    for (auto phase : {&DlqReplay::SetUp, &DlqReplay::Produce, &DlqReplay::ConsumeWithFault,
                       &DlqReplay::ReadBackWithFault, &DlqReplay::ClearFault,
                       &DlqReplay::ReplayTwice, &DlqReplay::ReadBackAfterReplays}) {
      if (auto why = (this->*phase)(r)) return Inconclusive(std::move(r.result), *why);
    }
    RecordMetrics(r);
    RecordDetails(r);
    return std::move(r.result);
  }

 private:
  static void ReadParams(DlqRun& r) {
    const auto& params = r.ctx.params;
    r.events = domain::GetInt(params, "events");
    r.poison_every = domain::GetInt(params, "poison_every");
    r.replay_rate = domain::GetInt(params, "replay_rate");
    r.dedup = domain::GetString(params, "dedup") != "none";
    r.ns = RunNs(r.ctx, r.mode);
    r.topic = Topic(r.ctx, r.mode, "orders");
    r.retry1 = Topic(r.ctx, r.mode, "orders.retry-1");
    r.retry2 = Topic(r.ctx, r.mode, "orders.retry-2");
    r.dlq = Topic(r.ctx, r.mode, "orders.dlq");
    r.group = Group(r.ctx, r.mode, "projector");
    r.details = {{"run_ns", r.ns},
                 {"topics", {r.topic, r.retry1, r.retry2, r.dlq}},
                 {"dedup", r.dedup ? "processed_event" : "none"},
                 {"producer", "command-service (outbox) + outbox-relay"}};
  }

  // The topics, the consumer group and the reference data every regular event needs
  // (product 1); poisoned events reference products that do not exist yet.
  Abort SetUp(DlqRun& r) {
    auto conn = OpenMysqlWithSchema();
    if (!conn) return "mysql: " + conn.error().message;
    r.conn = std::move(*conn);
    Created(r.ctx, r.mode, r.result, kArtifactRows, r.ns);
    for (const auto& t : {r.topic, r.retry1, r.retry2, r.dlq}) {
      if (auto s =
              CreateTopic(r.ctx, r.mode, r.result, t, t == r.dlq ? kDlqPartitions : kPartitions);
          !s) {
        return "kafka: " + s.error().message;
      }
    }
    Created(r.ctx, r.mode, r.result, kArtifactGroup, r.group);
    if (auto s = r.conn->Exec(
            "INSERT INTO product (run_ns, product_id, name, price, version) VALUES (?,1,?,100,1)",
            {r.ns, std::string("reference")});
        !s) {
      return "mysql: " + s.error().message;
    }
    if (r.Cancelled()) return "cancelled";
    return std::nullopt;
  }

  // 1. Produce through the outbox.
  Abort Produce(DlqRun& r) {
    r.command = RunRole(r.ctx, r.mode, r.result, "command-service",
                        {"--ns", r.ns, "--mode", "outbox", "--events", std::to_string(r.events),
                         "--poison-every", std::to_string(r.poison_every), "--concurrency", "4"},
                        "command-service", RoleWait(r.events));
    r.Phase("setup+command-service");
    if (r.Cancelled()) return "cancelled";
    r.relay = RunRole(r.ctx, r.mode, r.result, "outbox-relay",
                      {"--ns", r.ns, "--topic", r.topic, "--idle-exit-ms", "500"}, "outbox-relay",
                      RoleWait(r.events));
    r.Phase("outbox-relay");
    if (r.Cancelled()) return "cancelled";
    if (!Clean(r.command) || !Clean(r.relay)) {
      return "command-service/outbox-relay did not finish cleanly: " + r.command.status.Describe() +
             " / " + r.relay.status.Describe();
    }
    r.committed = Count(r.result, *r.conn, "SELECT COUNT(*) FROM orders WHERE run_ns = ?", {r.ns});
    r.unpublished =
        Count(r.result, *r.conn,
              "SELECT COUNT(*) FROM outbox_event WHERE run_ns = ? AND published_at_us = 0", {r.ns});
    Progress(r.ctx, 15);
    return std::nullopt;
  }

  RoleOutcome RunConsumer(DlqRun& r, const std::string& label, bool with_dedup) {
    return RunRole(r.ctx, r.mode, r.result, "consumer-service",
                   {"--ns",
                    r.ns,
                    "--topic",
                    r.topic,
                    "--group",
                    r.group,
                    "--dedup",
                    with_dedup ? "1" : "0",
                    "--require-product",
                    "1",
                    "--retry-topics",
                    r.retry1 + "," + r.retry2,
                    "--dlq",
                    r.dlq,
                    "--retry-delay-ms",
                    "200",
                    "--idle-exit-ms",
                    "2500",
                    "--batch",
                    "100"},
                   label, RoleWait(r.events));
  }

  // 2. Consume with the fault in place: poisoned events go retry-1 -> retry-2 -> DLQ.
  Abort ConsumeWithFault(DlqRun& r) {
    r.consumer1 = RunConsumer(r, "consumer-service#1", true);
    r.Phase("consumer#1");
    if (r.Cancelled()) return "cancelled";
    if (!Clean(r.consumer1)) {
      return "consumer-service#1 did not finish cleanly: " + r.consumer1.status.Describe();
    }
    Progress(r.ctx, 35);
    return std::nullopt;
  }

  // 3. Read back before the fault is cleared.
  Abort ReadBackWithFault(DlqRun& r) {
    auto reads = ReadAll({{r.topic, kPartitions},
                          {r.retry1, kPartitions},
                          {r.retry2, kPartitions},
                          {r.dlq, kDlqPartitions}},
                         r.events);
    for (const auto& rb : reads) {
      if (!rb.complete) return "read-back: " + rb.error;
    }
    std::set<std::int64_t> products;
    if (auto rows = r.conn->Query("SELECT product_id FROM product WHERE run_ns = ?", {r.ns})) {
      for (const auto& row : rows->rows) products.insert(std::stoll(*row[0]));
    } else {
      return "mysql: " + rows.error().message;
    }
    Tally(r, products, reads[0], reads[1], reads[2], reads[3]);
    r.applied_before =
        Count(r.result, *r.conn,
              "SELECT COUNT(DISTINCT event_id) FROM side_effect WHERE run_ns = ?", {r.ns});
    for (const auto& id : r.dlq_ids) r.dlq_poisoned_overlap += r.poisoned_ids.count(id);
    if (!reads[3].messages.empty()) {
      r.details["dlq_error_example"] = Header(reads[3].messages[0], "error");
    }
    Step(r.ctx, r.mode + ": total=" + std::to_string(r.originals.size()) +
                    " poisoned=" + std::to_string(r.poisoned_ids.size()) + " retried=" +
                    std::to_string(r.retried_ids.size()) + " dlq=" + std::to_string(r.dlq_records) +
                    " applied=" + std::to_string(r.applied_before));
    if (r.ctx.reporter != nullptr) {
      r.ctx.reporter->Count("lab_dlq_messages_total", {}, static_cast<double>(r.dlq_records));
    }
    if (r.Cancelled()) return "cancelled";
    r.Phase("read-back");
    return std::nullopt;
  }

  // Which events the main topic, the retry topics and the DLQ held, and whether each DLQ'd
  // record carries the headers a replay needs.
  static void Tally(DlqRun& r, const std::set<std::int64_t>& products, const kafka::ReadBack& main,
                    const kafka::ReadBack& r1, const kafka::ReadBack& r2,
                    const kafka::ReadBack& dlq) {
    for (const auto& m : main.messages) {
      const std::string id = Header(m, "event_id");
      r.originals.insert(id);
      if (products.count(ProductId(m)) == 0) r.poisoned_ids.insert(id);
    }
    for (const auto* rb : {&r1, &r2}) {
      for (const auto& m : rb->messages) r.retried_ids.insert(Header(m, "event_id"));
    }
    r.retry_records = r1.messages.size() + r2.messages.size();
    r.dlq_records = dlq.messages.size();
    for (const auto& m : dlq.messages) {
      r.dlq_ids.insert(Header(m, "event_id"));
      r.missing_products.insert(ProductId(m));
      const std::string origin = Header(m, "origin-topic");
      if (!Header(m, "error").empty() && Header(m, "attempts") == "3" && origin == r.topic &&
          !Header(m, "origin-partition").empty() && !Header(m, "origin-offset").empty()) {
        ++r.headers_ok;
      }
    }
  }

  // 4. Clear the fault: create the products the DLQ'd records name.
  Abort ClearFault(DlqRun& r) {
    for (auto pid : r.missing_products) {
      auto s = r.conn->Exec(
          "INSERT IGNORE INTO product (run_ns, product_id, name, price, version) "
          "VALUES (?,?,?,100,1)",
          {r.ns, pid, std::string("restored")});
      if (!s) return "mysql: " + s.error().message;
      r.fixed += *s;
    }
    Step(r.ctx, r.mode + ": fault cleared, " + std::to_string(r.fixed) + " product rows created");
    Progress(r.ctx, 45);
    return std::nullopt;
  }

  // 5. Replay twice; the consumer (same group) applies each round's replays.
  Abort ReplayTwice(DlqRun& r) {
    for (int round = 1; round <= 2; ++round) {
      if (auto why = ReplayRound(r, round)) return why;
    }
    return std::nullopt;
  }

  Abort ReplayRound(DlqRun& r, int round) {
    const std::string n = std::to_string(round);
    const std::string rgroup = Group(r.ctx, r.mode, "replay-" + n);
    Created(r.ctx, r.mode, r.result, kArtifactGroup, rgroup);
    r.replays.push_back(RunRole(r.ctx, r.mode, r.result, "replay-worker",
                                {"--ns", r.ns, "--dlq", r.dlq, "--target", r.topic, "--group",
                                 rgroup, "--round", n, "--rate", std::to_string(r.replay_rate),
                                 "--filter", kFaultFilter, "--idle-exit-ms", "1500"},
                                "replay-worker#" + n, RoleWait(r.events, 120s)));
    r.Phase("replay#" + n);
    if (r.Cancelled()) return "cancelled";
    if (!Clean(r.replays.back())) {
      return "replay-worker#" + n +
             " did not finish cleanly: " + r.replays.back().status.Describe();
    }
    const std::string c_label = std::to_string(round + 1);
    auto c = RunConsumer(r, "consumer-service#" + c_label, r.dedup);
    r.Phase("consumer#" + c_label);
    if (r.Cancelled()) return "cancelled";
    if (!Clean(c)) {
      return "consumer-service#" + c_label + " did not finish cleanly: " + c.status.Describe();
    }
    r.applied_after.push_back(
        Count(r.result, *r.conn, "SELECT COUNT(*) FROM side_effect WHERE run_ns = ?", {r.ns}));
    Progress(r.ctx, round == 1 ? 65 : 85);
    return std::nullopt;
  }

  // 6. Evidence, read back from the systems of record.
  Abort ReadBackAfterReplays(DlqRun& r) {
    auto reads = ReadAll({{r.topic, kPartitions}, {r.dlq, kDlqPartitions}}, r.events);
    const auto& main = reads[0];
    const auto& dlq = reads[1];
    if (!main.complete) return "read-back: " + main.error;
    if (!dlq.complete) return "read-back: " + dlq.error;
    for (const auto& m : main.messages) {
      const std::string round = Header(m, "replayed-round");
      if (round == "1") ++r.replayed_in_topic[1];
      if (round == "2") ++r.replayed_in_topic[2];
    }
    r.dlq_after_replays = dlq.messages.size();
    auto count = [&](const std::string& sql) { return Count(r.result, *r.conn, sql, {r.ns}); };
    r.final_applied = count("SELECT COUNT(DISTINCT event_id) FROM side_effect WHERE run_ns = ?");
    r.side_effects = count("SELECT COUNT(*) FROM side_effect WHERE run_ns = ?");
    r.duplicates = count(
        "SELECT COUNT(*) FROM (SELECT event_id FROM side_effect "
        "WHERE run_ns = ? GROUP BY event_id HAVING COUNT(*) > 1) d");
    r.applied_by_replay = count(
        "SELECT COUNT(DISTINCT event_id) FROM side_effect WHERE run_ns = ? AND source = 'replay'");
    r.audit_rows = count("SELECT COUNT(*) FROM replay_audit WHERE run_ns = ?");
    r.audit_replayed =
        count("SELECT COUNT(*) FROM replay_audit WHERE run_ns = ? AND outcome = 'replayed'");
    r.projection_rows = count("SELECT COUNT(*) FROM order_projection WHERE run_ns = ?");
    ObservedReplayRates(r);
    return std::nullopt;
  }

  // Achieved replay rate per round, from the audit rows' replay times: (n-1) / span.
  static void ObservedReplayRates(DlqRun& r) {
    auto rows = r.conn->Query(
        "SELECT replay_round, COUNT(*), MAX(replayed_at_us) - MIN(replayed_at_us) FROM "
        "replay_audit WHERE run_ns = ? AND outcome = 'replayed' GROUP BY replay_round",
        {r.ns});
    if (!rows) return;
    for (const auto& row : rows->rows) {
      const auto round = std::stoll(*row[0]);
      const double n = std::stod(*row[1]);
      const double span_s = std::stod(*row[2]) / 1e6;
      if (round >= 1 && round <= 2 && n > 1 && span_s > 0) r.rates[round] = (n - 1) / span_s;
    }
  }

  static void RecordMetrics(DlqRun& r) {
    auto& mx = r.result.metrics;
    auto put = [&](const char* name, auto value) { mx[name] = static_cast<double>(value); };
    put("committed", r.committed);
    put("unpublished", r.unpublished);
    put("total", r.originals.size());
    put("poisoned", r.poisoned_ids.size());
    put("retried", r.retried_ids.size());
    put("retry_records", r.retry_records);
    put("dlq", r.dlq_records);
    put("dlq_distinct", r.dlq_ids.size());
    put("dlq_poisoned_overlap", r.dlq_poisoned_overlap);
    put("dlq_headers_ok", r.headers_ok);
    put("dlq_after_replays", r.dlq_after_replays);
    put("applied_before_replay", r.applied_before);
    put("products_restored", r.fixed);
    put("replayed_first", r.replayed_in_topic[1]);
    put("replayed_second", r.replayed_in_topic[2]);
    put("side_effects_after_first_replay", r.applied_after[0]);
    put("side_effects_after_second_replay", r.applied_after[1]);
    put("final_applied", r.final_applied);
    put("applied_by_replay", r.applied_by_replay);
    put("side_effects", r.side_effects);
    put("duplicates", r.duplicates);
    put("extra_applications", r.side_effects - r.final_applied);
    put("projection_rows", r.projection_rows);
    put("replay_audit_rows", r.audit_rows);
    put("replay_audit_replayed", r.audit_replayed);
    put("replay_rate_observed", r.rates[1]);
    put("replay_rate_observed_second", r.rates[2]);
    put("replay_rate_limit", r.replay_rate);
  }

  static void RecordDetails(DlqRun& r) {
    auto& details = r.details;
    details["processes"] = {{"command-service", r.command.status.Describe()},
                            {"outbox-relay", r.relay.status.Describe()},
                            {"consumer-service#1", r.consumer1.status.Describe()},
                            {"consumer#1 routed_retry", r.consumer1.Value("routed_retry")},
                            {"consumer#1 routed_dlq", r.consumer1.Value("routed_dlq")},
                            {"consumer#1 route_failures", r.consumer1.Value("route_failures")}};
    for (std::size_t i = 0; i < r.replays.size(); ++i) {
      details["replay_worker_" + std::to_string(i + 1)] = {
          {"status", r.replays[i].status.Describe()},
          {"replayed", r.replays[i].Value("replayed")},
          {"replay_failed", r.replays[i].Value("replay_failed")},
          {"filtered", r.replays[i].Value("filtered")},
          {"rate_observed_by_worker", r.replays[i].Value("rate_observed")}};
    }
    r.Phase("evidence");
    details["seconds"] = r.seconds;
    r.result.details_json = details.dump();
    Step(r.ctx, r.mode + ": replayed " + std::to_string(r.replayed_in_topic[1]) + "+" +
                    std::to_string(r.replayed_in_topic[2]) + ", final_applied=" +
                    std::to_string(r.final_applied) + "/" + std::to_string(r.originals.size()) +
                    " duplicates=" + std::to_string(r.duplicates) +
                    " audit=" + std::to_string(r.audit_rows));
    Progress(r.ctx, 100);
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeDlqReplay(const StackConfig& config) {
  return std::make_unique<DlqReplay>(config);
}

}  // namespace lab::runners
