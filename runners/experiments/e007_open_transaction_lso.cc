// E-007: an open transaction pins the last stable offset (LSO): read_committed readers see
// nothing past it, not even a later plain record, until the transaction commits.
// One partition; a transactional producer writes `records` records and keeps the transaction
// open; a plain idempotent producer writes one record after them; both isolation levels read
// with fresh consumers; then the transaction commits and read_committed reads again.
#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;

class OpenTransactionLso final : public ExperimentBase {
 public:
  explicit OpenTransactionLso(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-007"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::int64_t records = domain::GetInt(ctx.params, "records");
    const std::string topic = Topic(ctx, mode, "ledger");
    if (auto s = CreateTopic(ctx, mode, result, topic, 1); !s) {
      return Inconclusive(std::move(result), "kafka: " + s.error().message);
    }
    auto txn = kafka::Producer::Create(config_.kafka_bootstrap, {},
                                       "lab-" + SafeName(ctx.ns) + "-" + mode + "-txn");
    auto plain = kafka::Producer::Create(config_.kafka_bootstrap, {{"enable.idempotence", "true"}});
    if (!txn || !plain) {
      return Inconclusive(std::move(result),
                          "kafka: " + (!txn ? txn.error().message : plain.error().message));
    }
    auto fail = [&](const std::string& what, const domain::Error& e) {
      if (auto lib =
              kafka::ClassifyClientLibraryFailure(RD_KAFKA_RESP_ERR__TIMED_OUT, false, what)) {
        if (e.code == domain::ErrorCode::kTimeout) result.client_library_failures.push_back(*lib);
      }
      return Inconclusive(std::move(result), what + ": " + e.message);
    };
    if (auto s = (*txn)->InitTransactions(20s); !s) return fail("init_transactions", s.error());
    if (auto s = (*txn)->BeginTransaction(); !s) return fail("begin_transaction", s.error());
    for (std::int64_t i = 0; i < records; ++i) {
      (void)(*txn)->Produce(topic, 0, "txn-" + std::to_string(i), "in an open transaction",
                            {{"event_id", "txn-" + std::to_string(i)}});
    }
    if (auto s = (*txn)->Flush(15s); !s) return fail("flush transactional records", s.error());
    (void)(*plain)->Produce(topic, 0, "plain", "plain record after the open transaction",
                            {{"event_id", "plain"}});
    if (auto s = (*plain)->Flush(15s); !s) return fail("flush plain record", s.error());
    std::int64_t plain_acked = 0;
    for (const auto& r : (*plain)->TakeReports())
      plain_acked += r.err == RD_KAFKA_RESP_ERR_NO_ERROR ? 1 : 0;
    Step(ctx, "transaction open with " + std::to_string(records) +
                  " records; plain record acked=" + std::to_string(plain_acked));
    Progress(ctx, 30);

    auto marks = [&](const std::string& isolation) -> std::int64_t {
      auto c =
          kafka::Consumer::Create(config_.kafka_bootstrap, "", {{"isolation.level", isolation}});
      if (!c) return -1;
      std::int64_t low = 0;
      std::int64_t high = 0;
      if (rd_kafka_query_watermark_offsets((*c)->handle(), topic.c_str(), 0, &low, &high, 5000) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        return -1;
      }
      return high;
    };
    const std::int64_t hwm_open = marks("read_uncommitted");
    const std::int64_t lso_open = marks("read_committed");
    auto uncommitted = kafka::ReadTopic(config_.kafka_bootstrap, topic, 1, "read_uncommitted", 15s);
    auto committed_open =
        kafka::ReadTopic(config_.kafka_bootstrap, topic, 1, "read_committed", 15s);
    if (!uncommitted.complete || !committed_open.complete) {
      (void)(*txn)->AbortTransaction(10s);
      return Inconclusive(std::move(result),
                          "read while open: " + uncommitted.error + committed_open.error);
    }
    Progress(ctx, 60);
    if (auto s = (*txn)->CommitTransaction(20s); !s) return fail("commit_transaction", s.error());
    auto committed_after =
        kafka::ReadTopic(config_.kafka_bootstrap, topic, 1, "read_committed", 15s);
    if (!committed_after.complete)
      return Inconclusive(std::move(result), "read after commit: " + committed_after.error);
    auto uncommitted_after =
        kafka::ReadTopic(config_.kafka_bootstrap, topic, 1, "read_uncommitted", 15s);
    if (!uncommitted_after.complete)
      return Inconclusive(std::move(result), "read after commit: " + uncommitted_after.error);
    // Measured after the read: the coordinator writes the commit markers after EndTxn returns.
    const std::int64_t hwm_after = marks("read_uncommitted");
    const std::int64_t lso_after = marks("read_committed");

    result.metrics["high_watermark_open"] = static_cast<double>(hwm_open);
    result.metrics["last_stable_offset_open"] = static_cast<double>(lso_open);
    result.metrics["visible_uncommitted_open"] = static_cast<double>(uncommitted.messages.size());
    result.metrics["visible_committed_open"] = static_cast<double>(committed_open.messages.size());
    result.metrics["high_watermark_after"] = static_cast<double>(hwm_after);
    result.metrics["last_stable_offset_after"] = static_cast<double>(lso_after);
    result.metrics["visible_committed_after"] =
        static_cast<double>(committed_after.messages.size());
    result.metrics["visible_uncommitted_after"] =
        static_cast<double>(uncommitted_after.messages.size());
    result.metrics["plain_acked"] = static_cast<double>(plain_acked);
    result.metrics["expected_after"] = static_cast<double>(records + plain_acked);
    result.details_json =
        nlohmann::json({{"topic", topic},
                        {"records_in_transaction", records},
                        {"plain_record_acked", plain_acked == 1},
                        {"note", "the high watermark after commit includes the commit marker"}})
            .dump();
    Step(ctx,
         "open: HWM=" + std::to_string(hwm_open) + " LSO=" + std::to_string(lso_open) +
             " read_uncommitted=" + std::to_string(uncommitted.messages.size()) +
             " read_committed=" + std::to_string(committed_open.messages.size()) +
             "; after commit: read_committed=" + std::to_string(committed_after.messages.size()));
    Progress(ctx, 100);
    return result;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeOpenTransactionLso(const StackConfig& config) {
  return std::make_unique<OpenTransactionLso>(config);
}

}  // namespace lab::runners
