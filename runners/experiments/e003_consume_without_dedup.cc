// E-003: consuming without processed_event applies side effects twice on real redelivery.
// Both modes: the command-service writes orders with outbox rows; the relay is killed
// after-produce-before-mark (its last batch is in Kafka but unmarked, so the restarted relay
// publishes it again); the consumer is killed after-apply-before-commit-offset (its batch is
// applied but the offsets are not committed, so the restarted consumer reads it again).
//   failure: consumer without dedup.  success: processed_event in the same transaction.
// Evidence: unique = distinct event ids in the topic (fresh read-back); applied = side_effect
// rows in MySQL; duplicates = applied - unique.
#include "domain/catalog.h"
#include "runners/experiments/experiments.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;

class ConsumeWithoutDedup final : public ExperimentBase {
 public:
  explicit ConsumeWithoutDedup(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-003"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::int64_t events = domain::GetInt(ctx.params, "events");
    const std::int64_t kill_consumer_after = domain::GetInt(ctx.params, "kill_consumer_after");
    const std::string ns = RunNs(ctx, mode);
    const std::string topic = Topic(ctx, mode, "orders");
    const std::string group = Group(ctx, mode, "projector");
    auto conn = PreparePipeline(ctx, mode, result, {{topic, 3}}, group);
    if (!conn) return Inconclusive(std::move(result), conn.error().message);
    RunRole(ctx, mode, result, "command-service",
            {"--ns", ns, "--mode", "outbox", "--events", std::to_string(events)}, "command-service",
            RoleWait(events));
    const std::int64_t relay_kill = std::max<std::int64_t>(1, events / 2);
    auto relay1 =
        RunRole(ctx, mode, result, "outbox-relay",
                {"--ns", ns, "--topic", topic, "--batch", "100", "--failpoint",
                 "after-produce-before-mark", "--failpoint-after", std::to_string(relay_kill)},
                "outbox-relay#1", RoleWait(events));
    RunRole(ctx, mode, result, "outbox-relay",
            {"--ns", ns, "--topic", topic, "--idle-exit-ms", "1000"}, "outbox-relay#2",
            RoleWait(events));
    Progress(ctx, 40);
    const bool dedup = mode == "success" && domain::GetString(ctx.params, "practice") != "off";
    const std::vector<std::string> consumer = {"--ns",    ns,    "--topic", topic,
                                               "--group", group, "--dedup", dedup ? "1" : "0",
                                               "--batch", "50"};
    auto args = consumer;
    args.insert(args.end(), {"--failpoint", "after-apply-before-commit-offset", "--failpoint-after",
                             std::to_string(kill_consumer_after), "--idle-exit-ms", "3000"});
    auto consumer1 = RunRole(ctx, mode, result, "consumer-service", args, "consumer-service#1",
                             RoleWait(events));
    args = consumer;
    args.insert(args.end(), {"--idle-exit-ms", "2500"});
    RunRole(ctx, mode, result, "consumer-service", args, "consumer-service#2", RoleWait(events));
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");

    auto read =
        kafka::ReadTopic(config_.kafka_bootstrap, topic, 3, "read_committed", ReadBackWait(events));
    if (!read.complete) return Inconclusive(std::move(result), "read-back: " + read.error);
    auto ids = EventIdCounts(read.messages);
    const std::int64_t applied =
        Count(result, **conn, "SELECT COUNT(*) FROM side_effect WHERE run_ns = ?", {ns});
    const std::int64_t applied_distinct = Count(
        result, **conn, "SELECT COUNT(DISTINCT event_id) FROM side_effect WHERE run_ns = ?", {ns});
    const std::int64_t unique = static_cast<std::int64_t>(ids.size());
    result.metrics["unique"] = static_cast<double>(unique);
    result.metrics["topic_records"] = static_cast<double>(read.messages.size());
    result.metrics["redelivered_in_topic"] =
        static_cast<double>(read.messages.size()) - static_cast<double>(unique);
    result.metrics["applied"] = static_cast<double>(applied);
    result.metrics["applied_distinct"] = static_cast<double>(applied_distinct);
    result.metrics["duplicates"] = static_cast<double>(applied - unique);
    result.metrics["relay_killed"] = relay1.KilledByFailpoint() ? 1 : 0;
    result.metrics["consumer_killed"] = consumer1.KilledByFailpoint() ? 1 : 0;
    result.details_json = nlohmann::json({{"run_ns", ns},
                                          {"topic", topic},
                                          {"relay_first_process", relay1.status.Describe()},
                                          {"consumer_first_process", consumer1.status.Describe()}})
                              .dump();
    if (!relay1.KilledByFailpoint() || !consumer1.KilledByFailpoint()) {
      Step(ctx, mode + ": a failpoint did not fire (events too few for the kill points?)");
    }
    Step(ctx, mode + ": unique=" + std::to_string(unique) + " applied=" + std::to_string(applied) +
                  " duplicates=" + std::to_string(applied - unique));
    Progress(ctx, 100);
    return result;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeConsumeWithoutDedup(const StackConfig& config) {
  return std::make_unique<ConsumeWithoutDedup>(config);
}

}  // namespace lab::runners
