// E-002: producing directly after the DB commit loses events when the process dies; the outbox
// does not. Both modes kill a real process (SIGKILL) after the K-th commit, then restart it to
// finish the remaining orders.
//   failure: command-service --mode direct, killed after-commit-before-produce.
//   success: command-service --mode outbox killed at the same point, then outbox-relay killed
//            after-produce-before-flush (records still in its buffer) and restarted.
//            practice=off: the success mode produces directly, as the failure mode does.
// Evidence: committed = orders rows in MySQL; read_back = distinct event ids a fresh consumer
// reads from the topic; lost = committed event ids absent from the topic.
#include <set>

#include "domain/catalog.h"
#include "runners/experiments/experiments.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;

class ProduceAfterCommit final : public ExperimentBase {
 public:
  explicit ProduceAfterCommit(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-002"; }

  std::string ConfigurationJson() const override {
    return nlohmann::json(
               {{"topic",
                 {{"partitions", 3}, {"replication_factor", 3}, {"min.insync.replicas", 2}}},
                {"direct_producer",
                 {{"enable.idempotence", true}, {"acks", "all"}, {"linger.ms", 20}}},
                {"relay_producer",
                 {{"enable.idempotence", true}, {"acks", "all"}, {"linger.ms", 5}}}})
        .dump();
  }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::int64_t events = domain::GetInt(ctx.params, "events");
    const std::int64_t kill_after = domain::GetInt(ctx.params, "kill_after");
    const std::string ns = RunNs(ctx, mode);
    const std::string topic = Topic(ctx, mode, "orders");
    auto conn = OpenMysqlWithSchema();
    if (!conn) return Inconclusive(std::move(result), "mysql: " + conn.error().message);
    Created(ctx, mode, result, kArtifactRows, ns);
    if (auto s = CreateTopic(ctx, mode, result, topic, 3); !s) {
      return Inconclusive(std::move(result), "kafka: " + s.error().message);
    }
    const bool direct = mode == "failure" || domain::GetString(ctx.params, "practice") == "off";
    const std::vector<std::string> common = {"--ns", ns,       "--topic",
                                             topic,  "--mode", direct ? "direct" : "outbox"};

    // 1. The command-service dies after the K-th commit, before producing it.
    auto args = common;
    args.insert(args.end(),
                {"--events", std::to_string(events), "--start-id", "1", "--failpoint",
                 "after-commit-before-produce", "--failpoint-after", std::to_string(kill_after)});
    auto first =
        RunRole(ctx, mode, result, "command-service", args, "command-service#1", RoleWait(events));
    Progress(ctx, 30);
    if (!first.finished) return Inconclusive(std::move(result), "command-service did not finish");
    const std::int64_t after_crash =
        Count(result, **conn, "SELECT COUNT(*) FROM orders WHERE run_ns = ?", {ns});
    // 2. Restarted, it finishes the remaining orders.
    if (after_crash < events && !ctx.stop.stop_requested()) {
      args = common;
      args.insert(args.end(), {"--events", std::to_string(events - after_crash), "--start-id",
                               std::to_string(after_crash + 1)});
      RunRole(ctx, mode, result, "command-service", args, "command-service#2", RoleWait(events));
    }
    bool relay_crashed = false;
    if (!direct && !ctx.stop.stop_requested()) {
      // 3. The relay dies with records in its producer buffer, and is restarted.
      relay_crashed =
          RunRole(ctx, mode, result, "outbox-relay",
                  {"--ns", ns, "--topic", topic, "--batch", "100", "--failpoint",
                   "after-produce-before-flush", "--failpoint-after", std::to_string(kill_after)},
                  "outbox-relay#1", RoleWait(events))
              .KilledByFailpoint();
      RunRole(ctx, mode, result, "outbox-relay",
              {"--ns", ns, "--topic", topic, "--idle-exit-ms", "1000"}, "outbox-relay#2",
              RoleWait(events));
    }
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");

    // Evidence from the systems of record.
    const std::int64_t committed =
        Count(result, **conn, "SELECT COUNT(*) FROM orders WHERE run_ns = ?", {ns});
    auto read =
        kafka::ReadTopic(config_.kafka_bootstrap, topic, 3, "read_committed", ReadBackWait(events));
    if (!read.complete) return Inconclusive(std::move(result), "read-back: " + read.error);
    auto ids = EventIdCounts(read.messages);
    std::int64_t lost = 0;
    for (std::int64_t id = 1; id <= committed; ++id) {
      if (ids.find(ns + "-" + std::to_string(id)) == ids.end()) ++lost;
    }
    std::int64_t topic_duplicates = 0;
    for (const auto& [id, n] : ids) topic_duplicates += n - 1;
    result.metrics["committed"] = static_cast<double>(committed);
    result.metrics["read_back"] = static_cast<double>(ids.size());
    result.metrics["lost"] = static_cast<double>(lost);
    result.metrics["topic_records"] = static_cast<double>(read.messages.size());
    result.metrics["topic_duplicates"] = static_cast<double>(topic_duplicates);
    result.metrics["crashed"] = first.KilledByFailpoint() ? 1 : 0;
    if (!direct) result.metrics["relay_crashed"] = relay_crashed ? 1 : 0;
    nlohmann::json details = {{"run_ns", ns},
                              {"topic", topic},
                              {"committed_before_crash", after_crash},
                              {"first_process", first.status.Describe()},
                              {"acked_by_first_process", first.Value("acked", "none (killed)")}};
    if (!direct) {
      details["outbox_pending_after"] =
          Count(result, **conn,
                "SELECT COUNT(*) FROM outbox_event WHERE run_ns = ? AND published_at_us = 0", {ns});
    }
    result.details_json = details.dump();
    Step(ctx, mode + ": committed=" + std::to_string(committed) +
                  " read_back=" + std::to_string(ids.size()) + " lost=" + std::to_string(lost));
    Progress(ctx, 100);
    return result;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeProduceAfterCommit(const StackConfig& config) {
  return std::make_unique<ProduceAfterCommit>(config);
}

}  // namespace lab::runners
