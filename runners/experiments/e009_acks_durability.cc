// E-009: durability depends on acks and min.insync.replicas. Real broker faults through
// infra/stack.sh (SIGSTOP to make followers lag, SIGKILL of the leader, restart).
//   failure: topic RF 3, min.insync.replicas=1, unclean election allowed; both followers paused
//            (they stop fetching); `events` records produced with acks=1 (acknowledged by the
//            leader alone); leader killed; followers resumed; one of them becomes leader.
//   success: (a) a topic RF 2 with min.insync.replicas=2 whose follower is paused until the
//            ISR is the leader alone: acks=all produce (retries=0, so the broker's answer is
//            seen as it is) is rejected with NOT_ENOUGH_REPLICAS; (b) topic RF 3, min ISR 2,
//            one follower paused until it leaves the ISR; acks=all + idempotence; leader
//            killed; the in-sync follower takes over.
// Evidence: acknowledged = delivery reports without error; read_back = distinct keys a fresh
// consumer reads; lost_acked = acknowledged keys not read back; rejected_isr = delivery
// reports with NOT_ENOUGH_REPLICAS. Note: the stack's brokers are combined broker+controller
// nodes, so pausing two of them also stops the KRaft quorum: the ISR cannot shrink then, and
// the election after the kill picks a lagging replica that is still listed in the ISR.
#include <set>
#include <sstream>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;

struct ProduceOutcome {
  std::set<std::string> acked;
  std::map<std::string, int> errors;
};

class AcksDurability final : public ExperimentBase {
 public:
  explicit AcksDurability(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-009"; }

  std::string ConfigurationJson() const override {
    return nlohmann::json(
               {{"failure",
                 {{"acks", 1},
                  {"min.insync.replicas", 1},
                  {"unclean.leader.election.enable", true}}},
                {"success",
                 {{"acks", "all"}, {"enable.idempotence", true}, {"min.insync.replicas", 2}}},
                {"isr_probe", {{"acks", "all"}, {"retries", 0}, {"replication.factor", 2}}}})
        .dump();
  }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    auto admin = kafka::Admin::Create(config_.kafka_bootstrap);
    if (!admin) return Inconclusive(std::move(result), "kafka: " + admin.error().message);
    admin_ = admin->get();
    nlohmann::json details = nlohmann::json::object();
    auto outcome =
        mode == "failure" ? RunFailure(ctx, result, details) : RunSuccess(ctx, result, details);
    RestoreBrokers(ctx);
    admin_ = nullptr;
    result.details_json = details.dump();
    if (!outcome.empty()) return Inconclusive(std::move(result), outcome);
    return result;
  }

 private:
  // Returns an empty string when the mode ran, else why it could not.
  std::string RunFailure(const domain::RunContext& ctx, domain::ModeResult& result,
                         nlohmann::json& details) {
    const std::int64_t events = domain::GetInt(ctx.params, "events");
    const std::string topic = Topic(ctx, "failure", "payments");
    if (auto s =
            CreateTopic(ctx, "failure", result, topic, 1,
                        {{"min.insync.replicas", "1"}, {"unclean.leader.election.enable", "true"}});
        !s) {
      return "kafka: " + s.error().message;
    }
    auto before = Partition(topic);
    if (!before || before->replicas.size() != 3) return "topic has no leader with 3 replicas";
    const int leader = before->leader;
    std::vector<int> followers;
    for (int r : before->replicas) {
      if (r != leader) followers.push_back(r);
    }
    details["leader_before"] = leader;
    details["isr_before"] = before->isr;
    for (int f : followers) {
      if (auto s = StackFault(ctx, {"kafka", "pause", std::to_string(f)}, 30s); !s)
        return s.error().message;
      paused_.insert(f);
    }
    Progress(ctx, 10);
    auto produced =
        Produce(topic, events,
                {{"acks", "1"}, {"enable.idempotence", "false"}, {"message.timeout.ms", "10000"}});
    details["produce_errors"] = produced.errors;
    auto isr_at_kill = Partition(topic);
    if (isr_at_kill) details["isr_at_kill"] = isr_at_kill->isr;
    if (auto s = StackFault(ctx, {"kafka", "kill", std::to_string(leader)}, 30s); !s)
      return s.error().message;
    killed_.insert(leader);
    auto kill_time = SteadyClock::now();
    for (int f : followers) {
      if (auto s = StackFault(ctx, {"kafka", "resume", std::to_string(f)}, 60s); !s)
        return s.error().message;
      paused_.erase(f);
    }
    Progress(ctx, 25);
    int new_leader = -1;
    WaitUntil(
        [&] {
          auto p = Partition(topic);
          if (p && p->leader >= 0 && p->leader != leader) new_leader = p->leader;
          return new_leader >= 0;
        },
        60s, ctx.stop, 500ms);
    details["new_leader"] = new_leader;
    details["election_after_kill_ms"] = MsSince(kill_time);
    if (new_leader < 0) return "no new leader was elected within 60 s of the leader's kill";
    if (auto s = StackFault(ctx, {"kafka", "start", std::to_string(leader)}, 120s); !s)
      return s.error().message;
    killed_.erase(leader);
    Progress(ctx, 40);
    return Evidence(ctx, result, topic, produced, 0);
  }

  std::string RunSuccess(const domain::RunContext& ctx, domain::ModeResult& result,
                         nlohmann::json& details) {
    const std::int64_t events = domain::GetInt(ctx.params, "events");
    // (a) ISR < min.insync.replicas: the broker rejects acks=all writes.
    const std::string probe = Topic(ctx, "success", "isr-probe");
    if (auto s = CreateTopic(ctx, "success", result, probe, 1, {{"min.insync.replicas", "2"}}, 2);
        !s) {
      return "kafka: " + s.error().message;
    }
    auto p = Partition(probe);
    if (!p || p->replicas.size() != 2) return "probe topic has no leader with 2 replicas";
    int probe_follower = p->replicas[0] == p->leader ? p->replicas[1] : p->replicas[0];
    if (auto s = StackFault(ctx, {"kafka", "pause", std::to_string(probe_follower)}, 30s); !s)
      return s.error().message;
    paused_.insert(probe_follower);
    bool shrunk = WaitUntil(
        [&] {
          auto q = Partition(probe);
          return q && q->isr.size() == 1;
        },
        30s, ctx.stop, 250ms);
    details["isr_probe_isr_size_1"] = shrunk;
    auto rejected = Produce(probe, 20,
                            {{"acks", "all"},
                             {"enable.idempotence", "false"},
                             {"retries", "0"},
                             {"message.timeout.ms", "8000"}});
    details["isr_probe_errors"] = rejected.errors;
    details["isr_probe_acked"] = rejected.acked.size();
    if (auto s = StackFault(ctx, {"kafka", "resume", std::to_string(probe_follower)}, 60s); !s)
      return s.error().message;
    paused_.erase(probe_follower);
    Progress(ctx, 60);

    // (b) acks=all + min ISR 2 through a leader kill with a lagging follower.
    const std::string topic = Topic(ctx, "success", "payments");
    if (auto s = CreateTopic(ctx, "success", result, topic, 1, {{"min.insync.replicas", "2"}});
        !s) {
      return "kafka: " + s.error().message;
    }
    auto before = Partition(topic);
    if (!before || before->replicas.size() != 3) return "topic has no leader with 3 replicas";
    const int leader = before->leader;
    int lagging = before->replicas[0] == leader ? before->replicas[1] : before->replicas[0];
    details["leader_before"] = leader;
    details["lagging_follower"] = lagging;
    if (auto s = StackFault(ctx, {"kafka", "pause", std::to_string(lagging)}, 30s); !s)
      return s.error().message;
    paused_.insert(lagging);
    details["isr_shrunk_to_2"] = WaitUntil(
        [&] {
          auto q = Partition(topic);
          return q && q->isr.size() == 2;
        },
        45s, ctx.stop, 250ms);
    auto produced =
        Produce(topic, events,
                {{"acks", "all"}, {"enable.idempotence", "true"}, {"message.timeout.ms", "15000"}});
    details["produce_errors"] = produced.errors;
    auto isr_at_kill = Partition(topic);
    if (isr_at_kill) details["isr_at_kill"] = isr_at_kill->isr;
    if (auto s = StackFault(ctx, {"kafka", "kill", std::to_string(leader)}, 30s); !s)
      return s.error().message;
    killed_.insert(leader);
    auto kill_time = SteadyClock::now();
    if (auto s = StackFault(ctx, {"kafka", "resume", std::to_string(lagging)}, 60s); !s)
      return s.error().message;
    paused_.erase(lagging);
    int new_leader = -1;
    WaitUntil(
        [&] {
          auto q = Partition(topic);
          if (q && q->leader >= 0 && q->leader != leader) new_leader = q->leader;
          return new_leader >= 0;
        },
        60s, ctx.stop, 500ms);
    details["new_leader"] = new_leader;
    details["election_after_kill_ms"] = MsSince(kill_time);
    if (new_leader < 0) return "no new leader was elected within 60 s of the leader's kill";
    if (auto s = StackFault(ctx, {"kafka", "start", std::to_string(leader)}, 120s); !s)
      return s.error().message;
    killed_.erase(leader);
    Progress(ctx, 90);
    int not_enough = 0;
    for (const auto& [name, n] : rejected.errors) {
      if (name == "NOT_ENOUGH_REPLICAS" || name == "NOT_ENOUGH_REPLICAS_AFTER_APPEND")
        not_enough += n;
      if (name == "_MSG_TIMED_OUT") {
        result.client_library_failures.push_back(
            "isr probe: " + std::to_string(n) +
            " writes timed out instead of reporting NOT_ENOUGH_REPLICAS (librdkafka 2.0.2 surfaces "
            "it as a timeout)");
      }
    }
    return Evidence(ctx, result, topic, produced, not_enough);
  }

  std::string Evidence(const domain::RunContext& ctx, domain::ModeResult& result,
                       const std::string& topic, const ProduceOutcome& produced, int rejected_isr) {
    auto read = kafka::ReadTopic(config_.kafka_bootstrap, topic, 1, "read_committed", 60s);
    if (!read.complete) return "read-back: " + read.error;
    std::set<std::string> keys;
    for (const auto& m : read.messages) keys.insert(m.key);
    std::int64_t lost = 0;
    for (const auto& k : produced.acked) lost += keys.count(k) ? 0 : 1;
    result.metrics["acknowledged"] = static_cast<double>(produced.acked.size());
    result.metrics["read_back"] = static_cast<double>(keys.size());
    result.metrics["lost_acked"] = static_cast<double>(lost);
    result.metrics["rejected_isr"] = rejected_isr;
    Step(ctx, "acknowledged=" + std::to_string(produced.acked.size()) + " read_back=" +
                  std::to_string(keys.size()) + " lost_acked=" + std::to_string(lost) +
                  " rejected_isr=" + std::to_string(rejected_isr));
    return "";
  }

  ProduceOutcome Produce(const std::string& topic, std::int64_t n, kafka::ConfigMap conf) {
    ProduceOutcome out;
    auto producer = kafka::Producer::Create(config_.kafka_bootstrap, std::move(conf));
    if (!producer) {
      out.errors[producer.error().message] = static_cast<int>(n);
      return out;
    }
    (*producer)->SetFlushOnDestroy(0ms);
    for (std::int64_t i = 0; i < n; ++i) {
      (void)(*producer)->Produce(topic, 0, "k-" + std::to_string(i),
                                 "payment " + std::to_string(i));
      (*producer)->Poll(0ms);
    }
    (void)(*producer)->Flush(30s);
    for (const auto& r : (*producer)->TakeReports()) {
      if (r.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        out.acked.insert(r.key);
      } else {
        ++out.errors[rd_kafka_err2name(r.err)];
      }
    }
    return out;
  }

  std::optional<kafka::PartitionInfo> Partition(const std::string& topic) {
    // A fresh client each time (one that saw the old leader can be stale), bootstrapped only
    // from brokers that are neither paused nor killed, so the request does not hang on them.
    std::string bootstrap;
    std::stringstream all(config_.kafka_bootstrap);
    std::string item;
    for (int n = 1; std::getline(all, item, ','); ++n) {
      if (paused_.count(n) || killed_.count(n)) continue;  // broker ids are 1..3 in bootstrap order
      bootstrap += (bootstrap.empty() ? "" : ",") + item;
    }
    auto admin = kafka::Admin::Create(bootstrap.empty() ? config_.kafka_bootstrap : bootstrap);
    if (!admin) return std::nullopt;
    auto md = (*admin)->Metadata(topic, 3s);
    if (!md || md->partitions.empty()) return std::nullopt;
    return md->partitions.front();
  }

  void RestoreBrokers(const domain::RunContext& ctx) {
    for (int b : paused_) (void)StackFault(ctx, {"kafka", "resume", std::to_string(b)}, 60s);
    for (int b : killed_) (void)StackFault(ctx, {"kafka", "start", std::to_string(b)}, 120s);
    paused_.clear();
    killed_.clear();
  }

  kafka::Admin* admin_ = nullptr;
  std::set<int> paused_;
  std::set<int> killed_;
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeAcksDurability(const StackConfig& config) {
  return std::make_unique<AcksDurability>(config);
}

}  // namespace lab::runners
