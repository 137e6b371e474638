// E-006: shipping a breaking schema producer-first breaks consumers; consumer-first converges.
//
// Schemas (subject lab.<ns>.<mode>.orders-value, Confluent wire format):
//   V1 Order{id long, amount double}
//   V2 Order{id long, currency string, amount double} — a new required field without default,
//      placed before amount.
// The registry's rule decides what may be registered: under BACKWARD (the stack's global rule,
// set explicitly on the run's subject) V2 is rejected with 409 — a V2 reader could not read V1
// data, currency has no default. The team "just ships": the subject is switched to FORWARD,
// which accepts V2 because a V1 *reader* can read V2 data by schema resolution (the extra field
// is skipped). That promise holds only for consumers that resolve with the writer schema the
// record names. A consumer that decodes with its compiled-in V1 ignores the id and reads
// currency's bytes as the amount: no decode error, garbage plus bytes left over, which its
// validation rejects.
//
// Timeline of both modes (3 partitions, 2 consumer processes in one group, producer processes
// paced at `rate` records/s):
//   1. strict V1 consumers run; the producer writes the first half with V1; lag goes back to 0.
//   2. failure: the producer registers V2 (409 under BACKWARD, accepted under FORWARD) and writes
//      the second half while the strict consumers keep running.
//      success: first the consumers are redeployed with dual-read (writer schema fetched by the
//      header's id, cached, resolved into V1 with avro-c), then the producer switches as above.
//      (success_reader=strict-v1 redeploys strict consumers instead: the flip.)
//   3. bounded wait (converge_timeout_ms) for the group's committed lag to reach 0; consumers
//      are stopped with SIGTERM and report their counters.
// Lag = Σ partitions (high watermark − committed offset), sampled every ~50 ms by the runner
// with its own handles. Read-back: a fresh consumer counts records per schema id in the wire
// headers. On a parse failure the consumers retry the record (poison pill, the partition
// stalls) or skip it (on_parse_failure).
#include <signal.h>

#include <algorithm>
#include <mutex>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/registry/schema_registry.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;

constexpr int kPartitions = 3;
constexpr int kConsumers = 2;

const char* const kSchemaV1 = R"({"type":"record","name":"Order","namespace":"lab.e006","fields":[)"
                              R"({"name":"id","type":"long"},{"name":"amount","type":"double"}]})";
const char* const kSchemaV2 = R"({"type":"record","name":"Order","namespace":"lab.e006","fields":[)"
                              R"({"name":"id","type":"long"},{"name":"currency","type":"string"},)"
                              R"({"name":"amount","type":"double"}]})";

using ListHandle = CHandle<rd_kafka_topic_partition_list_t, rd_kafka_topic_partition_list_destroy>;

// Samples the group's committed lag on its own thread, with its own Kafka handles: an admin
// client for the high watermarks and a consumer handle of the group that never joins it
// (rd_kafka_committed only reads the group's offsets).
class LagSampler {
 public:
  struct Sample {
    double t_ms = 0;
    std::int64_t lag = -1;  // -1: the sample failed
    int lagging_partitions = 0;
  };

  static domain::Result<std::unique_ptr<LagSampler>> Start(const std::string& bootstrap,
                                                           const std::string& group,
                                                           const std::string& topic,
                                                           std::stop_token run_stop) {
    auto admin = kafka::Admin::Create(bootstrap);
    if (!admin) return admin.error();
    auto observer = kafka::Consumer::Create(bootstrap, group, {});
    if (!observer) return observer.error();
    std::unique_ptr<LagSampler> s(new LagSampler());
    s->admin_ = std::move(*admin);
    s->observer_ = std::move(*observer);
    s->topic_ = topic;
    s->start_ = SteadyClock::now();
    s->thread_ = std::jthread([self = s.get(), run_stop](std::stop_token own) {
      while (!own.stop_requested() && !run_stop.stop_requested()) {
        self->SampleOnce();
        std::this_thread::sleep_for(50ms);
      }
    });
    return s;
  }
  ~LagSampler() { Stop(); }
  void Stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }

  // The last sample that succeeded.
  Sample Last() const {
    std::lock_guard lock(mu_);
    for (auto it = samples_.rbegin(); it != samples_.rend(); ++it) {
      if (it->lag >= 0) return *it;
    }
    return {};
  }
  std::size_t Failed() const {
    std::lock_guard lock(mu_);
    return static_cast<std::size_t>(
        std::count_if(samples_.begin(), samples_.end(), [](const Sample& s) { return s.lag < 0; }));
  }
  std::int64_t MaxLag() const {
    std::lock_guard lock(mu_);
    std::int64_t m = 0;
    for (const auto& s : samples_) m = std::max(m, s.lag);
    return m;
  }
  std::size_t Count() const {
    std::lock_guard lock(mu_);
    return samples_.size();
  }
  // A sample taken after `after` (steady clock), so a decision never rests on a stale one.
  std::optional<Sample> After(SteadyClock::time_point after) const {
    std::lock_guard lock(mu_);
    double t = std::chrono::duration<double, std::milli>(after - start_).count();
    if (samples_.empty() || samples_.back().t_ms < t || samples_.back().lag < 0)
      return std::nullopt;
    return samples_.back();
  }
  // Up to ~60 points for the details.
  nlohmann::json Timeline() const {
    std::lock_guard lock(mu_);
    nlohmann::json out = nlohmann::json::array();
    std::size_t step = std::max<std::size_t>(1, samples_.size() / 60);
    for (std::size_t i = 0; i < samples_.size(); i += step)
      out.push_back({static_cast<std::int64_t>(samples_[i].t_ms), samples_[i].lag});
    return out;
  }

 private:
  LagSampler() = default;
  void SampleOnce() {
    Sample s;
    s.t_ms = MsSince(start_);  // when the sample began: nothing it saw is older than this
    ListHandle list(rd_kafka_topic_partition_list_new(kPartitions));
    for (int p = 0; p < kPartitions; ++p)
      rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), p);
    // Taken before the committed offsets: a record produced in between shows as lag, never
    // hides it.
    std::vector<std::int64_t> high(kPartitions, 0);
    bool ok = true;
    for (int p = 0; p < kPartitions && ok; ++p) {
      auto w = admin_->QueryWatermarks(topic_, p, 2000ms);
      if (w) high[static_cast<std::size_t>(p)] = w->high;
      ok = static_cast<bool>(w);
    }
    if (ok &&
        rd_kafka_committed(observer_->handle(), list.get(), 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      s.lag = 0;
      for (int i = 0; i < list->cnt; ++i) {
        std::int64_t committed = std::max<std::int64_t>(0, list->elems[i].offset);
        std::int64_t lag = high[static_cast<std::size_t>(list->elems[i].partition)] - committed;
        s.lag += std::max<std::int64_t>(0, lag);
        s.lagging_partitions += lag > 0 ? 1 : 0;
      }
    }
    std::lock_guard lock(mu_);
    samples_.push_back(s);
  }

  std::unique_ptr<kafka::Admin> admin_;
  std::unique_ptr<kafka::Consumer> observer_;
  std::string topic_;
  SteadyClock::time_point start_;
  mutable std::mutex mu_;
  std::vector<Sample> samples_;  // guarded by mu_
  std::jthread thread_;
};

std::int64_t ToInt(const std::string& text) {
  try {
    return text.empty() ? 0 : std::stoll(text);
  } catch (const std::exception&) {
    return 0;
  }
}

class SchemaRollout final : public ExperimentBase {
 public:
  explicit SchemaRollout(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-006"; }

  std::string ConfigurationJson() const override {
    return nlohmann::json({{"partitions", kPartitions},
                           {"consumers", kConsumers},
                           {"schema_v1", kSchemaV1},
                           {"schema_v2", kSchemaV2},
                           {"producer", {{"enable.idempotence", "true"}, {"acks", "all"}}},
                           {"consumer",
                            {{"enable.auto.commit", "false"},
                             {"isolation.level", "read_committed"},
                             {"commit", "sync, after each processed batch"}}}})
        .dump();
  }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::int64_t events = domain::GetInt(ctx.params, "events");
    const std::int64_t rate = domain::GetInt(ctx.params, "rate");
    const std::string on_failure = domain::GetString(ctx.params, "on_parse_failure");
    const std::string success_reader = domain::GetString(ctx.params, "success_reader");
    const auto converge_timeout =
        std::chrono::milliseconds(domain::GetInt(ctx.params, "converge_timeout_ms"));
    const bool success = mode == "success";
    const std::string topic = Topic(ctx, mode, "orders");
    const std::string subject = topic + "-value";
    const std::string group = Group(ctx, mode, "orders-reader");
    const std::int64_t first_half = events / 2;
    const std::int64_t second_half = events - first_half;
    const std::string interval_us = std::to_string(1000000 / std::max<std::int64_t>(1, rate));
    nlohmann::json details = {{"topic", topic},         {"subject", subject},
                              {"group", group},         {"on_parse_failure", on_failure},
                              {"schema_v1", kSchemaV1}, {"schema_v2", kSchemaV2}};
    auto finish = [&](std::string why) {
      result.details_json = details.dump();
      return Inconclusive(std::move(result), std::move(why));
    };

    registry::RegistryClient registry(config_.registry_url);
    if (auto s = CreateTopic(ctx, mode, result, topic, kPartitions); !s) {
      return finish("kafka: " + s.error().message);
    }
    // Recorded before anything is registered, so cleanup deletes it whatever happens next.
    Created(ctx, mode, result, kArtifactSubject, subject);
    Created(ctx, mode, result, kArtifactGroup, group);
    // The stack's global rule, made explicit on the run's subject so the run does not depend on
    // what another run or a person left in the global config.
    if (auto s = registry.SetCompatibility(subject, "BACKWARD"); !s) {
      return finish("registry: " + s.error().message);
    }
    auto sampler = LagSampler::Start(config_.kafka_bootstrap, group, topic, ctx.stop);
    if (!sampler) return finish("kafka: lag sampler: " + sampler.error().message);
    LagSampler& lag = **sampler;

    std::vector<std::pair<std::string, ChildProcess>> consumers;
    std::vector<RoleOutcome> consumer_outcomes;
    // What each running consumer said last, for the step log when a wait runs out.
    auto log_consumers = [&] {
      for (auto& [label, c] : consumers) {
        Step(ctx, label + " log: " + RoleLogText(c.ReadLog()));
      }
    };
    auto deploy = [&](const std::string& read, const std::string& generation) -> bool {
      const auto started = SteadyClock::now();
      for (int i = 1; i <= kConsumers; ++i) {
        std::string label = "consumer-" + generation + "#" + std::to_string(i);
        auto child =
            StartRole(ctx, mode, result, "schema-consumer",
                      {"--topic", topic, "--group", group, "--registry", config_.registry_url,
                       "--read", read, "--on-failure", on_failure, "--reader-schema", kSchemaV1},
                      label);
        if (!child) {
          Step(ctx, label + ": " + child.error().message);
          return false;
        }
        consumers.emplace_back(label, std::move(*child));
      }
      // Deployed = the group is stable: every process of this generation has partitions and
      // together they hold all of them (3 over 2 consumers).
      bool ok = WaitUntil(
          [&] {
            std::int64_t total = 0;
            for (auto& [label, c] : consumers) {
              if (c.Wait(0ms, ctx.stop)) return false;  // died
              std::int64_t assigned = ToInt(LastRoleValue(c.ReadLog(), "assigned").value_or(""));
              if (assigned <= 0) return false;
              total += assigned;
            }
            return total == kPartitions;
          },
          30s, ctx.stop);
      // How long the group took to settle: a slow join shows here, not as consumer lag.
      details["group_stable_ms"][generation] = ok ? MsSince(started) : -1.0;
      if (!ok) log_consumers();
      return ok;
    };
    auto retire = [&] {
      for (auto& [label, c] : consumers) {
        if (!c.Wait(0ms, ctx.stop)) ::kill(c.pid(), SIGTERM);
      }
      for (auto& [label, c] : consumers)
        consumer_outcomes.push_back(WaitRole(ctx, c, 20s, result, label));
      consumers.clear();
    };
    // Waits (bounded) until the group has committed every record; returns the time it took.
    auto drained = [&](std::chrono::milliseconds timeout) -> std::optional<double> {
      auto from = SteadyClock::now();
      bool ok = WaitUntil(
          [&] {
            auto s = lag.After(from);
            return s && s->lag == 0;
          },
          timeout, ctx.stop, 20ms);
      if (!ok) return std::nullopt;
      return MsSince(from);
    };
    auto produce = [&](const char* schema, std::int64_t count, std::int64_t first_id,
                       const std::string& label) {
      return RunRole(
          ctx, mode, result, "schema-producer",
          {"--ns", SafeName(ctx.ns), "--topic", topic, "--registry", config_.registry_url,
           "--subject", subject, "--schema", schema, "--events", std::to_string(count),
           "--first-id", std::to_string(first_id), "--interval-us", interval_us},
          label, 60s);
    };

    // 1. Strict V1 consumers, V1 producer, first half.
    if (!deploy("strict", "v1")) {
      retire();
      return finish("the strict V1 consumers did not get partitions within 30 s");
    }
    Progress(ctx, 10);
    auto p1 = produce(kSchemaV1, first_half, 1, "producer-v1");
    std::int64_t produced = ToInt(p1.Value("produced"));
    details["schema_id_v1"] = ToInt(p1.Value("schema_id", "-1"));
    if (produced != first_half) {
      retire();
      return finish("producer-v1 delivered " + std::to_string(produced) + " of " +
                    std::to_string(first_half) + " (" + p1.Value("error", p1.status.Describe()) +
                    ")");
    }
    if (!drained(20s)) {
      log_consumers();
      retire();
      return finish("the strict V1 consumers did not consume the V1 half within 20 s");
    }
    Step(ctx, mode + ": V1 half consumed, lag 0");
    Progress(ctx, 30);

    // 2. The rollout.
    std::string reader = "strict";
    if (success) {
      reader = success_reader == "dual-read" ? "dual" : "strict";
      retire();
      if (!deploy(reader, "v2")) {
        retire();
        return finish("the redeployed consumers did not get partitions within 30 s");
      }
      Step(ctx, mode + ": consumers redeployed (" + reader + ") before the producer switch");
    }
    details["reader_after_rollout"] = reader;
    details["rollout_order"] = success ? "consumers first, then producer" : "producer first";
    // The producer's V2 meets the subject's rule: first as it stands (BACKWARD), then FORWARD.
    auto under_backward = registry.Register(subject, kSchemaV2);
    std::int64_t rejected = 0;
    if (under_backward) {
      details["v2_under_backward"] = "accepted (id " + std::to_string(*under_backward) + ")";
    } else if (under_backward.error().code == domain::ErrorCode::kConflict) {
      rejected = 1;
      details["v2_under_backward"] = under_backward.error().message;
    } else {
      retire();
      return finish("registry: " + under_backward.error().message);
    }
    if (auto s = registry.SetCompatibility(subject, "FORWARD"); !s) {
      retire();
      return finish("registry: " + s.error().message);
    }
    details["compatibility"] = {
        {"before", "BACKWARD"},
        {"used", "FORWARD"},
        {"why",
         "BACKWARD rejects V2 (a V2 reader cannot read V1 data: currency has no default); "
         "FORWARD accepts it because V1 readers can read V2 data by resolution, the promise "
         "only consumers that resolve with the writer schema keep"}};
    auto p2 = produce(kSchemaV2, second_half, first_half + 1, "producer-v2");
    const std::int64_t produced_v2 = ToInt(p2.Value("produced"));
    produced += produced_v2;
    details["schema_id_v2"] = ToInt(p2.Value("schema_id", "-1"));
    Progress(ctx, 60);

    // 3. Bounded wait for convergence, then the consumers report.
    auto converged = drained(converge_timeout);
    auto last = lag.Last();
    retire();
    lag.Stop();
    details["lag_timeline_ms_lag"] = lag.Timeline();
    details["lag_samples"] = lag.Count();
    details["lag_samples_failed"] = lag.Failed();  // e.g. before the group's coordinator exists
    if (ctx.stop.stop_requested()) return finish("cancelled");
    if (produced_v2 != second_half) {
      return finish("producer-v2 delivered " + std::to_string(produced_v2) + " of " +
                    std::to_string(second_half) + " (" +
                    p2.Value("error", p2.Value("register_conflict", p2.status.Describe())) + ")");
    }

    // Read back: records per schema id in the wire header.
    auto read =
        kafka::ReadTopic(config_.kafka_bootstrap, topic, kPartitions, "read_committed", 30s);
    if (!read.complete) return finish("read-back: " + read.error);
    std::map<int, std::int64_t> by_id;
    std::int64_t other = 0;
    for (const auto& m : read.messages) {
      auto wire = registry::WireDecode(m.value);
      if (wire)
        ++by_id[wire->first];
      else
        ++other;
    }
    const int id_v1 = static_cast<int>(details["schema_id_v1"].get<std::int64_t>());
    const int id_v2 = static_cast<int>(details["schema_id_v2"].get<std::int64_t>());
    const std::int64_t records_v1 = by_id.count(id_v1) ? by_id[id_v1] : 0;
    const std::int64_t records_v2 = by_id.count(id_v2) ? by_id[id_v2] : 0;

    std::int64_t consumed = 0, parse_failures = 0, attempts = 0, decode_errors = 0, garbage = 0,
                 unreadable = 0, skipped = 0, fetches = 0;
    nlohmann::json samples = nlohmann::json::array();
    nlohmann::json processes = nlohmann::json::object();
    for (const auto& o : consumer_outcomes) {
      consumed += ToInt(o.Value("consumed"));
      parse_failures += ToInt(o.Value("parse_failures"));
      attempts += ToInt(o.Value("failed_attempts"));
      decode_errors += ToInt(o.Value("decode_errors"));
      garbage += ToInt(o.Value("garbage_rejected"));
      unreadable += ToInt(o.Value("unreadable"));
      skipped += ToInt(o.Value("skipped"));
      fetches += ToInt(o.Value("schema_fetches"));
      auto range = o.values.equal_range("parse_failure");
      for (auto it = range.first; it != range.second && samples.size() < 6; ++it)
        samples.push_back(it->second);
    }
    for (std::size_t i = 0; i < consumer_outcomes.size(); ++i) {
      const auto& o = consumer_outcomes[i];
      processes[std::to_string(i)] = {{"exit", o.status.Describe()},
                                      {"consumed", ToInt(o.Value("consumed"))},
                                      {"parse_failures", ToInt(o.Value("parse_failures"))}};
    }
    details["consumer_processes"] = processes;
    details["parse_failure_samples"] = samples;
    details["records_by_schema_id"] = by_id;
    const std::int64_t final_lag = converged ? 0 : last.lag;
    const std::int64_t unaccounted = produced - consumed - skipped - final_lag;
    auto& m = result.metrics;
    m["produced"] = static_cast<double>(produced);
    m["records_v1"] = static_cast<double>(records_v1);
    m["records_v2"] = static_cast<double>(records_v2);
    m["records_other"] = static_cast<double>(other);
    m["readback_total"] = static_cast<double>(read.messages.size());
    m["consumed"] = static_cast<double>(consumed);
    m["parse_failures"] = static_cast<double>(parse_failures);
    m["failed_attempts"] = static_cast<double>(attempts);
    m["decode_errors"] = static_cast<double>(decode_errors);
    m["garbage_rejected"] = static_cast<double>(garbage);
    m["unreadable"] = static_cast<double>(unreadable);
    m["skipped"] = static_cast<double>(skipped);
    m["schema_fetches"] = static_cast<double>(fetches);
    m["max_lag"] = static_cast<double>(lag.MaxLag());
    m["final_lag"] = static_cast<double>(final_lag);
    m["stuck_partitions"] = converged ? 0.0 : static_cast<double>(last.lagging_partitions);
    m["converged"] = converged ? 1.0 : 0.0;
    m["time_to_converge_ms"] = converged ? *converged : -1.0;
    m["v2_rejected_by_backward"] = static_cast<double>(rejected);
    m["unaccounted"] = static_cast<double>(unaccounted);
    result.details_json = details.dump();
    Step(ctx, mode + ": produced=" + std::to_string(produced) +
                  " v1=" + std::to_string(records_v1) + " v2=" + std::to_string(records_v2) +
                  " consumed=" + std::to_string(consumed) + " parse_failures=" +
                  std::to_string(parse_failures) + " max_lag=" + std::to_string(lag.MaxLag()) +
                  " final_lag=" + std::to_string(final_lag));
    if (unaccounted != 0) {
      Step(ctx, mode + ": produced - consumed - skipped - final_lag = " +
                    std::to_string(unaccounted) + " (records processed twice or not counted)");
    }
    Progress(ctx, 100);
    return result;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeSchemaRollout(const StackConfig& config) {
  return std::make_unique<SchemaRollout>(config);
}

}  // namespace lab::runners
