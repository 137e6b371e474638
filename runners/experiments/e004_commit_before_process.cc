// E-004: committing the offset before processing loses the in-flight batch on a crash.
// The runner produces `events` records (idempotent producer, acks=all). A consumer-service
// (with processed_event idempotency in both modes) is killed mid-batch, then restarted.
//   failure: commit-then-process, killed before-apply-after-commit-offset.
//   success: process-then-commit, killed after-apply-before-commit-offset.
// Evidence: produced = distinct event ids read back from the topic; processed = distinct event
// ids applied in MySQL; lost = produced - processed.
#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;

class CommitBeforeProcess final : public ExperimentBase {
 public:
  explicit CommitBeforeProcess(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-004"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::int64_t events = domain::GetInt(ctx.params, "events");
    const std::int64_t batch = domain::GetInt(ctx.params, "batch");
    const std::int64_t kill_after = domain::GetInt(ctx.params, "kill_after");
    const std::string ns = RunNs(ctx, mode);
    const std::string topic = Topic(ctx, mode, "work");
    const std::string group = Group(ctx, mode, "worker");
    auto conn = PreparePipeline(ctx, mode, result, {{topic, 3}}, group);
    if (!conn) return Inconclusive(std::move(result), conn.error().message);
    {
      auto producer =
          kafka::Producer::Create(config_.kafka_bootstrap, {{"enable.idempotence", "true"}});
      if (!producer) return Inconclusive(std::move(result), "kafka: " + producer.error().message);
      for (std::int64_t id = 1; id <= events; ++id) {
        const std::string event_id = ns + "-" + std::to_string(id);
        nlohmann::json payload = {{"event_id", event_id},
                                  {"order_id", id},
                                  {"amount", id},
                                  {"version", 1},
                                  {"committed_at_us", NowMicros()}};
        (void)(*producer)->Produce(topic, -1, std::to_string(id), payload.dump(),
                                   {{"event_id", event_id}});
        (*producer)->Poll(0ms);
      }
      if (auto f = (*producer)->Flush(ReadBackWait(events)); !f)
        return Inconclusive(std::move(result), "produce: " + f.error().message);
      std::map<std::string, int> errors;
      for (const auto& r : (*producer)->TakeReports()) {
        if (r.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          ++errors[rd_kafka_err2name(r.err)];
          if (auto lib = kafka::ClassifyClientLibraryFailure(r.err, false, "E-004 producer")) {
            result.client_library_failures.push_back(*lib);
          }
        }
      }
      for (const auto& [name, n] : errors)
        Step(ctx, mode + ": " + std::to_string(n) + " deliveries failed: " + name);
    }
    Progress(ctx, 20);
    const bool commit_first =
        mode == "failure" || domain::GetString(ctx.params, "practice") == "off";
    const std::vector<std::string> consumer = {
        "--ns",     ns,
        "--topic",  topic,
        "--group",  group,
        "--dedup",  "1",
        "--commit", commit_first ? "commit-then-process" : "process-then-commit",
        "--batch",  std::to_string(batch)};
    auto args = consumer;
    args.insert(
        args.end(),
        {"--failpoint",
         commit_first ? "before-apply-after-commit-offset" : "after-apply-before-commit-offset",
         "--failpoint-after", std::to_string(kill_after), "--idle-exit-ms", "3000"});
    auto first = RunRole(ctx, mode, result, "consumer-service", args, "consumer-service#1",
                         RoleWait(events));
    args = consumer;
    args.insert(args.end(), {"--idle-exit-ms", "2500"});
    RunRole(ctx, mode, result, "consumer-service", args, "consumer-service#2", RoleWait(events));
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");

    auto read =
        kafka::ReadTopic(config_.kafka_bootstrap, topic, 3, "read_committed", ReadBackWait(events));
    if (!read.complete) return Inconclusive(std::move(result), "read-back: " + read.error);
    auto ids = EventIdCounts(read.messages);
    const std::int64_t processed = Count(
        result, **conn, "SELECT COUNT(DISTINCT event_id) FROM side_effect WHERE run_ns = ?", {ns});
    const std::int64_t applications =
        Count(result, **conn, "SELECT COUNT(*) FROM side_effect WHERE run_ns = ?", {ns});
    const auto produced = static_cast<std::int64_t>(ids.size());
    result.metrics["produced"] = static_cast<double>(produced);
    result.metrics["processed"] = static_cast<double>(processed);
    result.metrics["lost"] = static_cast<double>(produced - processed);
    result.metrics["duplicates"] = static_cast<double>(applications - processed);
    result.metrics["consumer_killed"] = first.KilledByFailpoint() ? 1 : 0;
    result.details_json =
        nlohmann::json(
            {{"run_ns", ns}, {"topic", topic}, {"first_consumer", first.status.Describe()}})
            .dump();
    Step(ctx, mode + ": produced=" + std::to_string(produced) + " processed=" +
                  std::to_string(processed) + " lost=" + std::to_string(produced - processed));
    Progress(ctx, 100);
    return result;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeCommitBeforeProcess(const StackConfig& config) {
  return std::make_unique<CommitBeforeProcess>(config);
}

}  // namespace lab::runners
