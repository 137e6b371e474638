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
    domain::ModeResult result;
    const std::int64_t events = domain::GetInt(ctx.params, "events");
    const std::int64_t poison_every = domain::GetInt(ctx.params, "poison_every");
    const std::int64_t replay_rate = domain::GetInt(ctx.params, "replay_rate");
    const bool dedup = domain::GetString(ctx.params, "dedup") != "none";
    const std::string ns = RunNs(ctx, mode);
    const std::string topic = Topic(ctx, mode, "orders");
    const std::string retry1 = Topic(ctx, mode, "orders.retry-1");
    const std::string retry2 = Topic(ctx, mode, "orders.retry-2");
    const std::string dlq = Topic(ctx, mode, "orders.dlq");
    const std::string group = Group(ctx, mode, "projector");
    auto cancelled = [&] { return ctx.stop.stop_requested(); };
    auto phase_start = SteadyClock::now();
    nlohmann::json seconds = nlohmann::json::object();
    auto phase = [&](const std::string& name) {  // how long each phase took, for the details
      seconds[name] = MsSince(phase_start) / 1000.0;
      phase_start = SteadyClock::now();
    };
    nlohmann::json details = {{"run_ns", ns},
                              {"topics", {topic, retry1, retry2, dlq}},
                              {"dedup", dedup ? "processed_event" : "none"},
                              {"producer", "command-service (outbox) + outbox-relay"}};

    auto conn = OpenMysqlWithSchema();
    if (!conn) return Inconclusive(std::move(result), "mysql: " + conn.error().message);
    Created(ctx, mode, result, kArtifactRows, ns);
    for (const auto& t : {topic, retry1, retry2, dlq}) {
      if (auto s = CreateTopic(ctx, mode, result, t, t == dlq ? kDlqPartitions : kPartitions); !s) {
        return Inconclusive(std::move(result), "kafka: " + s.error().message);
      }
    }
    Created(ctx, mode, result, kArtifactGroup, group);
    // The reference data every regular event needs (product 1); poisoned events reference
    // products that do not exist yet.
    if (auto s = (*conn)->Exec(
            "INSERT INTO product (run_ns, product_id, name, price, version) VALUES (?,1,?,100,1)",
            {ns, std::string("reference")});
        !s) {
      return Inconclusive(std::move(result), "mysql: " + s.error().message);
    }
    if (cancelled()) return Inconclusive(std::move(result), "cancelled");

    // 1. Produce through the outbox.
    auto command = RunRole(ctx, mode, result, "command-service",
                           {"--ns", ns, "--mode", "outbox", "--events", std::to_string(events),
                            "--poison-every", std::to_string(poison_every), "--concurrency", "4"},
                           "command-service", RoleWait(events));
    phase("setup+command-service");
    if (cancelled()) return Inconclusive(std::move(result), "cancelled");
    auto relay = RunRole(ctx, mode, result, "outbox-relay",
                         {"--ns", ns, "--topic", topic, "--idle-exit-ms", "500"}, "outbox-relay",
                         RoleWait(events));
    phase("outbox-relay");
    if (cancelled()) return Inconclusive(std::move(result), "cancelled");
    if (!Clean(command) || !Clean(relay)) {
      return Inconclusive(std::move(result),
                          "command-service/outbox-relay did not finish cleanly: " +
                              command.status.Describe() + " / " + relay.status.Describe());
    }
    const std::int64_t committed =
        Count(result, **conn, "SELECT COUNT(*) FROM orders WHERE run_ns = ?", {ns});
    const std::int64_t unpublished =
        Count(result, **conn,
              "SELECT COUNT(*) FROM outbox_event WHERE run_ns = ? AND published_at_us = 0", {ns});
    Progress(ctx, 15);

    // 2. Consume with the fault in place: poisoned events go retry-1 -> retry-2 -> DLQ.
    auto consumer = [&](const std::string& label, bool with_dedup) {
      return RunRole(ctx, mode, result, "consumer-service",
                     {"--ns",
                      ns,
                      "--topic",
                      topic,
                      "--group",
                      group,
                      "--dedup",
                      with_dedup ? "1" : "0",
                      "--require-product",
                      "1",
                      "--retry-topics",
                      retry1 + "," + retry2,
                      "--dlq",
                      dlq,
                      "--retry-delay-ms",
                      "200",
                      "--idle-exit-ms",
                      "2500",
                      "--batch",
                      "100"},
                     label, RoleWait(events));
    };
    auto consumer1 = consumer("consumer-service#1", true);
    phase("consumer#1");
    if (cancelled()) return Inconclusive(std::move(result), "cancelled");
    if (!Clean(consumer1)) {
      return Inconclusive(std::move(result), "consumer-service#1 did not finish cleanly: " +
                                                 consumer1.status.Describe());
    }
    Progress(ctx, 35);

    // 3. Read back before the fault is cleared.
    auto reads = ReadAll(
        {{topic, kPartitions}, {retry1, kPartitions}, {retry2, kPartitions}, {dlq, kDlqPartitions}},
        events);
    auto& main1 = reads[0];
    auto& r1 = reads[1];
    auto& r2 = reads[2];
    auto& dlq1 = reads[3];
    for (const auto* rb : {&main1, &r1, &r2, &dlq1}) {
      if (!rb->complete) return Inconclusive(std::move(result), "read-back: " + rb->error);
    }
    std::set<std::int64_t> products;
    if (auto rows = (*conn)->Query("SELECT product_id FROM product WHERE run_ns = ?", {ns})) {
      for (const auto& row : rows->rows) products.insert(std::stoll(*row[0]));
    } else {
      return Inconclusive(std::move(result), "mysql: " + rows.error().message);
    }
    std::set<std::string> originals;
    std::set<std::string> poisoned_ids;  // events whose product row is missing in MySQL
    for (const auto& m : main1.messages) {
      const std::string id = Header(m, "event_id");
      originals.insert(id);
      if (products.count(ProductId(m)) == 0) poisoned_ids.insert(id);
    }
    std::set<std::string> retried_ids;
    for (const auto* rb : {&r1, &r2}) {
      for (const auto& m : rb->messages) retried_ids.insert(Header(m, "event_id"));
    }
    std::set<std::string> dlq_ids;
    std::set<std::int64_t> missing_products;  // named by the DLQ'd records
    std::int64_t headers_ok = 0;
    for (const auto& m : dlq1.messages) {
      dlq_ids.insert(Header(m, "event_id"));
      missing_products.insert(ProductId(m));
      const std::string origin = Header(m, "origin-topic");
      if (!Header(m, "error").empty() && Header(m, "attempts") == "3" && origin == topic &&
          !Header(m, "origin-partition").empty() && !Header(m, "origin-offset").empty()) {
        ++headers_ok;
      }
    }
    const std::int64_t applied_before = Count(
        result, **conn, "SELECT COUNT(DISTINCT event_id) FROM side_effect WHERE run_ns = ?", {ns});
    std::int64_t dlq_poisoned_overlap = 0;
    for (const auto& id : dlq_ids) dlq_poisoned_overlap += poisoned_ids.count(id);
    if (!dlq1.messages.empty()) details["dlq_error_example"] = Header(dlq1.messages[0], "error");
    Step(ctx, mode + ": total=" + std::to_string(originals.size()) +
                  " poisoned=" + std::to_string(poisoned_ids.size()) +
                  " retried=" + std::to_string(retried_ids.size()) +
                  " dlq=" + std::to_string(dlq1.messages.size()) +
                  " applied=" + std::to_string(applied_before));
    if (ctx.reporter != nullptr) {
      ctx.reporter->Count("lab_dlq_messages_total", {}, static_cast<double>(dlq1.messages.size()));
    }
    if (cancelled()) return Inconclusive(std::move(result), "cancelled");

    phase("read-back");
    // 4. Clear the fault: create the products the DLQ'd records name.
    std::int64_t fixed = 0;
    for (auto pid : missing_products) {
      auto s = (*conn)->Exec(
          "INSERT IGNORE INTO product (run_ns, product_id, name, price, version) "
          "VALUES (?,?,?,100,1)",
          {ns, pid, std::string("restored")});
      if (!s) return Inconclusive(std::move(result), "mysql: " + s.error().message);
      fixed += *s;
    }
    Step(ctx, mode + ": fault cleared, " + std::to_string(fixed) + " product rows created");
    Progress(ctx, 45);

    // 5. Replay twice; the consumer (same group) applies each round's replays.
    std::vector<RoleOutcome> replays;
    std::vector<std::int64_t> applied_after;
    for (int round = 1; round <= 2; ++round) {
      const std::string rgroup = Group(ctx, mode, "replay-" + std::to_string(round));
      Created(ctx, mode, result, kArtifactGroup, rgroup);
      replays.push_back(
          RunRole(ctx, mode, result, "replay-worker",
                  {"--ns", ns, "--dlq", dlq, "--target", topic, "--group", rgroup, "--round",
                   std::to_string(round), "--rate", std::to_string(replay_rate), "--filter",
                   kFaultFilter, "--idle-exit-ms", "1500"},
                  "replay-worker#" + std::to_string(round), RoleWait(events, 120s)));
      phase("replay#" + std::to_string(round));
      if (cancelled()) return Inconclusive(std::move(result), "cancelled");
      if (!Clean(replays.back())) {
        return Inconclusive(std::move(result),
                            "replay-worker#" + std::to_string(round) +
                                " did not finish cleanly: " + replays.back().status.Describe());
      }
      auto c = consumer("consumer-service#" + std::to_string(round + 1), dedup);
      phase("consumer#" + std::to_string(round + 1));
      if (cancelled()) return Inconclusive(std::move(result), "cancelled");
      if (!Clean(c)) {
        return Inconclusive(std::move(result),
                            "consumer-service#" + std::to_string(round + 1) +
                                " did not finish cleanly: " + c.status.Describe());
      }
      applied_after.push_back(
          Count(result, **conn, "SELECT COUNT(*) FROM side_effect WHERE run_ns = ?", {ns}));
      Progress(ctx, round == 1 ? 65 : 85);
    }

    // 6. Evidence, read back from the systems of record.
    auto reads2 = ReadAll({{topic, kPartitions}, {dlq, kDlqPartitions}}, events);
    auto& main2 = reads2[0];
    auto& dlq2 = reads2[1];
    if (!main2.complete) return Inconclusive(std::move(result), "read-back: " + main2.error);
    if (!dlq2.complete) return Inconclusive(std::move(result), "read-back: " + dlq2.error);
    std::int64_t replayed_in_topic[3] = {0, 0, 0};
    for (const auto& m : main2.messages) {
      const std::string round = Header(m, "replayed-round");
      if (round == "1") ++replayed_in_topic[1];
      if (round == "2") ++replayed_in_topic[2];
    }
    const std::int64_t final_applied = Count(
        result, **conn, "SELECT COUNT(DISTINCT event_id) FROM side_effect WHERE run_ns = ?", {ns});
    const std::int64_t side_effects =
        Count(result, **conn, "SELECT COUNT(*) FROM side_effect WHERE run_ns = ?", {ns});
    const std::int64_t duplicates =
        Count(result, **conn,
              "SELECT COUNT(*) FROM (SELECT event_id FROM side_effect "
              "WHERE run_ns = ? GROUP BY event_id HAVING COUNT(*) > 1) d",
              {ns});
    const std::int64_t applied_by_replay = Count(
        result, **conn,
        "SELECT COUNT(DISTINCT event_id) FROM side_effect WHERE run_ns = ? AND source = 'replay'",
        {ns});
    const std::int64_t audit_rows =
        Count(result, **conn, "SELECT COUNT(*) FROM replay_audit WHERE run_ns = ?", {ns});
    const std::int64_t audit_replayed =
        Count(result, **conn,
              "SELECT COUNT(*) FROM replay_audit WHERE run_ns = ? AND outcome = 'replayed'", {ns});
    const std::int64_t projection_rows =
        Count(result, **conn, "SELECT COUNT(*) FROM order_projection WHERE run_ns = ?", {ns});
    // Achieved replay rate per round, from the audit rows' replay times: (n-1) / span.
    double rates[3] = {0, 0, 0};
    if (auto rows = (*conn)->Query(
            "SELECT replay_round, COUNT(*), MAX(replayed_at_us) - MIN(replayed_at_us) FROM "
            "replay_audit WHERE run_ns = ? AND outcome = 'replayed' GROUP BY replay_round",
            {ns})) {
      for (const auto& row : rows->rows) {
        const auto round = std::stoll(*row[0]);
        const double n = std::stod(*row[1]);
        const double span_s = std::stod(*row[2]) / 1e6;
        if (round >= 1 && round <= 2 && n > 1 && span_s > 0) rates[round] = (n - 1) / span_s;
      }
    }

    auto& mx = result.metrics;
    mx["committed"] = static_cast<double>(committed);
    mx["unpublished"] = static_cast<double>(unpublished);
    mx["total"] = static_cast<double>(originals.size());
    mx["poisoned"] = static_cast<double>(poisoned_ids.size());
    mx["retried"] = static_cast<double>(retried_ids.size());
    mx["retry_records"] = static_cast<double>(r1.messages.size() + r2.messages.size());
    mx["dlq"] = static_cast<double>(dlq1.messages.size());
    mx["dlq_distinct"] = static_cast<double>(dlq_ids.size());
    mx["dlq_poisoned_overlap"] = static_cast<double>(dlq_poisoned_overlap);
    mx["dlq_headers_ok"] = static_cast<double>(headers_ok);
    mx["dlq_after_replays"] = static_cast<double>(dlq2.messages.size());
    mx["applied_before_replay"] = static_cast<double>(applied_before);
    mx["products_restored"] = static_cast<double>(fixed);
    mx["replayed_first"] = static_cast<double>(replayed_in_topic[1]);
    mx["replayed_second"] = static_cast<double>(replayed_in_topic[2]);
    mx["side_effects_after_first_replay"] = static_cast<double>(applied_after[0]);
    mx["side_effects_after_second_replay"] = static_cast<double>(applied_after[1]);
    mx["final_applied"] = static_cast<double>(final_applied);
    mx["applied_by_replay"] = static_cast<double>(applied_by_replay);
    mx["side_effects"] = static_cast<double>(side_effects);
    mx["duplicates"] = static_cast<double>(duplicates);
    mx["extra_applications"] = static_cast<double>(side_effects - final_applied);
    mx["projection_rows"] = static_cast<double>(projection_rows);
    mx["replay_audit_rows"] = static_cast<double>(audit_rows);
    mx["replay_audit_replayed"] = static_cast<double>(audit_replayed);
    mx["replay_rate_observed"] = rates[1];
    mx["replay_rate_observed_second"] = rates[2];
    mx["replay_rate_limit"] = static_cast<double>(replay_rate);

    details["processes"] = {{"command-service", command.status.Describe()},
                            {"outbox-relay", relay.status.Describe()},
                            {"consumer-service#1", consumer1.status.Describe()},
                            {"consumer#1 routed_retry", consumer1.Value("routed_retry")},
                            {"consumer#1 routed_dlq", consumer1.Value("routed_dlq")},
                            {"consumer#1 route_failures", consumer1.Value("route_failures")}};
    for (std::size_t i = 0; i < replays.size(); ++i) {
      details["replay_worker_" + std::to_string(i + 1)] = {
          {"status", replays[i].status.Describe()},
          {"replayed", replays[i].Value("replayed")},
          {"replay_failed", replays[i].Value("replay_failed")},
          {"filtered", replays[i].Value("filtered")},
          {"rate_observed_by_worker", replays[i].Value("rate_observed")}};
    }
    phase("evidence");
    details["seconds"] = seconds;
    result.details_json = details.dump();
    Step(ctx, mode + ": replayed " + std::to_string(replayed_in_topic[1]) + "+" +
                  std::to_string(replayed_in_topic[2]) +
                  ", final_applied=" + std::to_string(final_applied) + "/" +
                  std::to_string(originals.size()) + " duplicates=" + std::to_string(duplicates) +
                  " audit=" + std::to_string(audit_rows));
    Progress(ctx, 100);
    return result;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeDlqReplay(const StackConfig& config) {
  return std::make_unique<DlqReplay>(config);
}

}  // namespace lab::runners
