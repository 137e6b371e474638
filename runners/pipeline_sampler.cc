#include "runners/pipeline_sampler.h"

#include <condition_variable>
#include <exception>

#include "runners/experiments/experiment_base.h"
#include "runners/kafka/kafka_client.h"
#include "runners/mysql/mysql_client.h"

namespace lab::runners {

using Ms = std::chrono::milliseconds;
using namespace std::chrono_literals;

namespace {

// Short bounds: a sample must never hold up the end of a mode, also while a broker is down.
constexpr Ms kKafkaTimeout = 1000ms;

std::int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::optional<std::int64_t> GroupLag(const std::vector<PartitionOffsets>& partitions) {
  std::int64_t lag = 0;
  bool consumes = false;
  for (const auto& p : partitions) {
    if (p.committed >= 0) {
      consumes = true;
      lag += std::max<std::int64_t>(0, p.high - p.committed);
    } else {
      lag += std::max<std::int64_t>(0, p.high - p.low);
    }
  }
  if (!consumes) return std::nullopt;
  return lag;
}

// The sampler's own connections, made on first use and kept for the mode (a consumer handle per
// group for OffsetFetch, one admin handle for metadata and ListOffsets, one MySQL connection).
class PipelineSampler::Clients {
 public:
  explicit Clients(const StackConfig& config) : config_(config) {}

  kafka::Admin* admin() {
    if (!admin_) {
      auto a = kafka::Admin::Create(config_.kafka_bootstrap);
      if (a) admin_ = std::move(*a);
    }
    return admin_.get();
  }

  kafka::Consumer* group(const std::string& id) {
    auto& c = groups_[id];
    if (!c) {
      auto made = kafka::Consumer::Create(config_.kafka_bootstrap, id, {});
      if (made) c = std::move(*made);
    }
    return c.get();
  }

  mysql::Connection* mysql() {
    if (!mysql_) {
      mysql::MysqlConfig mc = MysqlSettingsFor(config_);
      mc.connect_timeout = 1000ms;
      mc.read_timeout = 2000ms;
      auto c = mysql::Connection::Open(mc);
      if (c) mysql_ = std::move(*c);
    }
    return mysql_.get();
  }
  void DropMysql() { mysql_.reset(); }

  // A topic's partition count, asked once: the mode's topics keep theirs while it runs.
  int partitions(const std::string& topic) {
    auto& n = partitions_[topic];
    if (n == 0 && admin() != nullptr) {
      auto md = admin_->Metadata(topic, kKafkaTimeout);
      if (md) n = static_cast<int>(md->partitions.size());
    }
    return n;
  }

 private:
  const StackConfig& config_;
  std::unique_ptr<kafka::Admin> admin_;
  std::map<std::string, std::unique_ptr<kafka::Consumer>> groups_;
  std::unique_ptr<mysql::Connection> mysql_;
  std::map<std::string, int> partitions_;  // 0: not known yet
};

PipelineSampler::PipelineSampler(StackConfig config, domain::RunReporter& reporter,
                                 std::chrono::milliseconds period)
    : config_(std::move(config)),
      reporter_(reporter),
      period_(period),
      clients_(std::make_unique<Clients>(config_)),
      thread_([this](std::stop_token stop) { Loop(stop); }) {}

PipelineSampler::~PipelineSampler() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void PipelineSampler::Track(const domain::Artifact& artifact) {
  std::lock_guard lock(mu_);
  if (artifact.kind == kArtifactTopic) topics_.insert(artifact.name);
  if (artifact.kind == kArtifactGroup) groups_.insert(artifact.name);
  if (artifact.kind == kArtifactRows) run_nss_.insert(artifact.name);
}

void PipelineSampler::Loop(std::stop_token stop) {
  std::mutex wait_mu;
  std::condition_variable_any wake;
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(wait_mu);
      (void)wake.wait_for(lock, stop, period_, [] { return false; });  // a period, or the stop
    }
    if (stop.stop_requested()) break;
    try {
      SampleOnce(stop);
    } catch (const std::exception&) {
      // A failed sample is a gap in a dashboard, never the end of the mode.
    }
  }
}

void PipelineSampler::SampleOnce(const std::stop_token& stop) {
  std::set<std::string> topics;
  std::set<std::string> groups;
  std::set<std::string> run_nss;
  {
    std::lock_guard lock(mu_);
    topics = topics_;
    groups = groups_;
    run_nss = run_nss_;
  }

  if (!run_nss.empty()) {
    if (auto* conn = clients_->mysql()) {
      std::int64_t backlog = 0;
      std::int64_t oldest_us = 0;
      bool ok = true;
      for (const auto& ns : run_nss) {
        // The pending index (run_ns, published_at_us, id) answers both without reading rows
        // beyond the oldest one; plain SELECTs take no locks the relay could wait for.
        auto count = conn->Query(
            "SELECT COUNT(*) FROM outbox_event WHERE run_ns = ? AND published_at_us = 0", {ns});
        auto oldest = conn->Query(
            "SELECT created_at_us FROM outbox_event WHERE run_ns = ? AND published_at_us = 0 "
            "ORDER BY id LIMIT 1",
            {ns});
        if (!count || !oldest) {
          ok = false;
          break;
        }
        backlog += count->Scalar();
        if (std::int64_t at = oldest->Scalar(); at > 0 && (oldest_us == 0 || at < oldest_us)) {
          oldest_us = at;
        }
      }
      if (ok) {
        reporter_.Gauge("lab_outbox_backlog", {}, static_cast<double>(backlog));
        reporter_.Gauge("lab_outbox_oldest_age_seconds", {},
                        oldest_us > 0 ? static_cast<double>(NowUs() - oldest_us) / 1e6 : 0.0);
      } else {
        clients_->DropMysql();  // reconnect next time (MySQL paused or restarted)
      }
    }
  }
  if (stop.stop_requested() || topics.empty()) return;

  auto* admin = clients_->admin();
  if (admin == nullptr) return;
  if (auto urp = admin->UnderReplicatedPartitions(kKafkaTimeout)) {
    reporter_.Gauge("lab_kafka_under_replicated_partitions", {}, static_cast<double>(urp->size()));
  }
  if (groups.empty()) return;
  for (const auto& topic : topics) {
    if (stop.stop_requested()) return;
    const int partitions = clients_->partitions(topic);
    if (partitions == 0) continue;
    std::vector<PartitionOffsets> marks(static_cast<std::size_t>(partitions));
    bool ok = true;
    for (std::size_t p = 0; p < marks.size() && ok; ++p) {
      auto w = admin->QueryWatermarks(topic, static_cast<std::int32_t>(p), kKafkaTimeout);
      ok = w.ok();
      if (ok) marks[p] = {w->low, w->high, -1};
    }
    if (!ok) continue;
    for (const auto& group : groups) {
      if (stop.stop_requested()) return;
      auto* consumer = clients_->group(group);
      if (consumer == nullptr) continue;
      auto committed = consumer->Committed(topic, static_cast<int>(marks.size()), kKafkaTimeout);
      if (!committed) continue;
      auto with_group = marks;
      for (auto& [partition, offset] : *committed) {
        if (partition >= 0 && static_cast<std::size_t>(partition) < with_group.size()) {
          with_group[static_cast<std::size_t>(partition)].committed = offset;
        }
      }
      if (auto lag = GroupLag(with_group)) {
        reporter_.Gauge("lab_consumer_lag", {{"group", group}, {"topic", topic}},
                        static_cast<double>(*lag));
      }
    }
  }
}

}  // namespace lab::runners
