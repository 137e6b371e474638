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

// Why a phase ended the mode inconclusive; nullopt: the run goes on.
using Abort = std::optional<std::string>;

// The consumers' counters, summed over every process of both generations.
struct ConsumerTotals {
  std::int64_t consumed = 0, parse_failures = 0, attempts = 0, decode_errors = 0, garbage = 0,
               unreadable = 0, skipped = 0, fetches = 0;
};

// What the phases of one mode's run share: its parameters and names, the registry client, the
// lag sampler, the consumer processes and the numbers the evidence is built from.
struct RolloutRun {
  RolloutRun(const domain::RunContext& c, const std::string& m) : ctx(c), mode(m) {}
  const domain::RunContext& ctx;
  const std::string mode;
  domain::ModeResult result;
  std::int64_t events = 0;
  std::int64_t rate = 0;
  std::string on_failure, success_reader;
  std::chrono::milliseconds converge_timeout{0};
  bool success = false;
  std::string topic, subject, group;
  std::int64_t first_half = 0, second_half = 0;
  std::string interval_us;
  nlohmann::json details;
  std::unique_ptr<registry::RegistryClient> registry;
  std::unique_ptr<LagSampler> lag;

  // The consumer processes running now, and the outcomes of those retired.
  std::vector<std::pair<std::string, ChildProcess>> consumers;
  std::vector<RoleOutcome> consumer_outcomes;
  // Produced (both halves) and the rollout.
  std::int64_t produced = 0;
  RoleOutcome p2;
  std::int64_t produced_v2 = 0;
  std::int64_t rejected = 0;  // V2 refused (409) under BACKWARD
  // Convergence and read-back.
  std::optional<double> converged;  // ms until the group's lag reached 0
  LagSampler::Sample last;
  std::size_t readback_total = 0;
  std::map<int, std::int64_t> by_id;  // records per schema id in the wire header
  std::int64_t other = 0;             // records without a wire header
  std::int64_t records_v1 = 0, records_v2 = 0;
  ConsumerTotals totals;
};

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
    RolloutRun r(ctx, mode);
    ReadParams(r);
    for (auto phase : {&SchemaRollout::SetUp, &SchemaRollout::ConsumeV1Half,
                       &SchemaRollout::RedeployConsumersFirst, &SchemaRollout::SwitchProducerToV2,
                       &SchemaRollout::AwaitConvergence, &SchemaRollout::ReadBack}) {
      if (auto why = (this->*phase)(r)) {
        Retire(r);  // consumers still running stop and report first (none once retired)
        r.result.details_json = r.details.dump();
        return Inconclusive(std::move(r.result), *why);
      }
    }
    TallyConsumers(r);
    RecordMetrics(r);
    return std::move(r.result);
  }

 private:
  void ReadParams(RolloutRun& r) const {
    const auto& params = r.ctx.params;
    r.events = domain::GetInt(params, "events");
    r.rate = domain::GetInt(params, "rate");
    r.on_failure = domain::GetString(params, "on_parse_failure");
    r.success_reader = domain::GetString(params, "success_reader");
    r.converge_timeout = std::chrono::milliseconds(domain::GetInt(params, "converge_timeout_ms"));
    r.success = r.mode == "success";
    r.topic = Topic(r.ctx, r.mode, "orders");
    r.subject = r.topic + "-value";
    r.group = Group(r.ctx, r.mode, "orders-reader");
    r.first_half = r.events / 2;
    r.second_half = r.events - r.first_half;
    r.interval_us = std::to_string(1000000 / std::max<std::int64_t>(1, r.rate));
    r.details = {{"topic", r.topic},       {"subject", r.subject},
                 {"group", r.group},       {"on_parse_failure", r.on_failure},
                 {"schema_v1", kSchemaV1}, {"schema_v2", kSchemaV2}};
  }

  // The topic, the artifacts to clean up, the subject's rule and the lag sampler.
  Abort SetUp(RolloutRun& r) {
    r.registry = std::make_unique<registry::RegistryClient>(config_.registry_url);
    if (auto s = CreateTopic(r.ctx, r.mode, r.result, r.topic, kPartitions); !s) {
      return "kafka: " + s.error().message;
    }
    // Recorded before anything is registered, so cleanup deletes it whatever happens next.
    Created(r.ctx, r.mode, r.result, kArtifactSubject, r.subject);
    Created(r.ctx, r.mode, r.result, kArtifactGroup, r.group);
    // The stack's global rule, made explicit on the run's subject so the run does not depend on
    // what another run or a person left in the global config.
    if (auto s = r.registry->SetCompatibility(r.subject, "BACKWARD"); !s) {
      return "registry: " + s.error().message;
    }
    auto sampler = LagSampler::Start(config_.kafka_bootstrap, r.group, r.topic, r.ctx.stop);
    if (!sampler) return "kafka: lag sampler: " + sampler.error().message;
    r.lag = std::move(*sampler);
    return std::nullopt;
  }

  // 1. Strict V1 consumers, V1 producer, first half.
  Abort ConsumeV1Half(RolloutRun& r) {
    if (!Deploy(r, "strict", "v1")) {
      return "the strict V1 consumers did not get partitions within 30 s";
    }
    Progress(r.ctx, 10);
    auto p1 = Produce(r, kSchemaV1, r.first_half, 1, "producer-v1");
    r.produced = ToInt(p1.Value("produced"));
    r.details["schema_id_v1"] = ToInt(p1.Value("schema_id", "-1"));
    if (r.produced != r.first_half) {
      return "producer-v1 delivered " + std::to_string(r.produced) + " of " +
             std::to_string(r.first_half) + " (" + p1.Value("error", p1.status.Describe()) + ")";
    }
    if (!Drained(r, 20s)) {
      LogConsumers(r);
      return "the strict V1 consumers did not consume the V1 half within 20 s";
    }
    Step(r.ctx, r.mode + ": V1 half consumed, lag 0");
    Progress(r.ctx, 30);
    return std::nullopt;
  }

  // 2. The rollout. Success: the consumers are redeployed before the producer switches.
  Abort RedeployConsumersFirst(RolloutRun& r) {
    std::string reader = "strict";
    if (r.success) {
      reader = r.success_reader == "dual-read" ? "dual" : "strict";
      Retire(r);
      if (!Deploy(r, reader, "v2")) {
        return "the redeployed consumers did not get partitions within 30 s";
      }
      Step(r.ctx, r.mode + ": consumers redeployed (" + reader + ") before the producer switch");
    }
    r.details["reader_after_rollout"] = reader;
    r.details["rollout_order"] = r.success ? "consumers first, then producer" : "producer first";
    return std::nullopt;
  }

  // The producer's V2 meets the subject's rule: first as it stands (BACKWARD), then FORWARD.
  Abort SwitchProducerToV2(RolloutRun& r) {
    auto under_backward = r.registry->Register(r.subject, kSchemaV2);
    if (under_backward) {
      r.details["v2_under_backward"] = "accepted (id " + std::to_string(*under_backward) + ")";
    } else if (under_backward.error().code == domain::ErrorCode::kConflict) {
      r.rejected = 1;
      r.details["v2_under_backward"] = under_backward.error().message;
    } else {
      return "registry: " + under_backward.error().message;
    }
    if (auto s = r.registry->SetCompatibility(r.subject, "FORWARD"); !s) {
      return "registry: " + s.error().message;
    }
    r.details["compatibility"] = {
        {"before", "BACKWARD"},
        {"used", "FORWARD"},
        {"why",
         "BACKWARD rejects V2 (a V2 reader cannot read V1 data: currency has no default); "
         "FORWARD accepts it because V1 readers can read V2 data by resolution, the promise "
         "only consumers that resolve with the writer schema keep"}};
    r.p2 = Produce(r, kSchemaV2, r.second_half, r.first_half + 1, "producer-v2");
    r.produced_v2 = ToInt(r.p2.Value("produced"));
    r.produced += r.produced_v2;
    r.details["schema_id_v2"] = ToInt(r.p2.Value("schema_id", "-1"));
    Progress(r.ctx, 60);
    return std::nullopt;
  }

  // 3. Bounded wait for convergence, then the consumers report.
  Abort AwaitConvergence(RolloutRun& r) {
    r.converged = Drained(r, r.converge_timeout);
    r.last = r.lag->Last();
    Retire(r);
    r.lag->Stop();
    r.details["lag_timeline_ms_lag"] = r.lag->Timeline();
    r.details["lag_samples"] = r.lag->Count();
    // Failed samples: e.g. before the group's coordinator exists.
    r.details["lag_samples_failed"] = r.lag->Failed();
    if (r.ctx.stop.stop_requested()) return "cancelled";
    if (r.produced_v2 != r.second_half) {
      return "producer-v2 delivered " + std::to_string(r.produced_v2) + " of " +
             std::to_string(r.second_half) + " (" +
             r.p2.Value("error", r.p2.Value("register_conflict", r.p2.status.Describe())) + ")";
    }
    return std::nullopt;
  }

  // Read back: records per schema id in the wire header.
  Abort ReadBack(RolloutRun& r) {
    auto read =
        kafka::ReadTopic(config_.kafka_bootstrap, r.topic, kPartitions, "read_committed", 30s);
    if (!read.complete) return "read-back: " + read.error;
    r.readback_total = read.messages.size();
    for (const auto& m : read.messages) {
      auto wire = registry::WireDecode(m.value);
      if (wire)
        ++r.by_id[wire->first];
      else
        ++r.other;
    }
    const int id_v1 = static_cast<int>(r.details["schema_id_v1"].get<std::int64_t>());
    const int id_v2 = static_cast<int>(r.details["schema_id_v2"].get<std::int64_t>());
    r.records_v1 = r.by_id.count(id_v1) ? r.by_id[id_v1] : 0;
    r.records_v2 = r.by_id.count(id_v2) ? r.by_id[id_v2] : 0;
    return std::nullopt;
  }

  // The consumers' counters summed, a few parse failures and each process's own numbers.
  static void TallyConsumers(RolloutRun& r) {
    auto& t = r.totals;
    nlohmann::json samples = nlohmann::json::array();
    nlohmann::json processes = nlohmann::json::object();
    for (const auto& o : r.consumer_outcomes) {
      t.consumed += ToInt(o.Value("consumed"));
      t.parse_failures += ToInt(o.Value("parse_failures"));
      t.attempts += ToInt(o.Value("failed_attempts"));
      t.decode_errors += ToInt(o.Value("decode_errors"));
      t.garbage += ToInt(o.Value("garbage_rejected"));
      t.unreadable += ToInt(o.Value("unreadable"));
      t.skipped += ToInt(o.Value("skipped"));
      t.fetches += ToInt(o.Value("schema_fetches"));
      auto range = o.values.equal_range("parse_failure");
      for (auto it = range.first; it != range.second && samples.size() < 6; ++it)
        samples.push_back(it->second);
    }
    for (std::size_t i = 0; i < r.consumer_outcomes.size(); ++i) {
      const auto& o = r.consumer_outcomes[i];
      processes[std::to_string(i)] = {{"exit", o.status.Describe()},
                                      {"consumed", ToInt(o.Value("consumed"))},
                                      {"parse_failures", ToInt(o.Value("parse_failures"))}};
    }
    r.details["consumer_processes"] = processes;
    r.details["parse_failure_samples"] = samples;
    r.details["records_by_schema_id"] = r.by_id;
  }

  void RecordMetrics(RolloutRun& r) {
    const auto& t = r.totals;
    const std::int64_t final_lag = r.converged ? 0 : r.last.lag;
    const std::int64_t unaccounted = r.produced - t.consumed - t.skipped - final_lag;
    const std::int64_t max_lag = r.lag->MaxLag();
    auto& m = r.result.metrics;
    m["produced"] = static_cast<double>(r.produced);
    m["records_v1"] = static_cast<double>(r.records_v1);
    m["records_v2"] = static_cast<double>(r.records_v2);
    m["records_other"] = static_cast<double>(r.other);
    m["readback_total"] = static_cast<double>(r.readback_total);
    m["consumed"] = static_cast<double>(t.consumed);
    m["parse_failures"] = static_cast<double>(t.parse_failures);
    m["failed_attempts"] = static_cast<double>(t.attempts);
    m["decode_errors"] = static_cast<double>(t.decode_errors);
    m["garbage_rejected"] = static_cast<double>(t.garbage);
    m["unreadable"] = static_cast<double>(t.unreadable);
    m["skipped"] = static_cast<double>(t.skipped);
    m["schema_fetches"] = static_cast<double>(t.fetches);
    m["max_lag"] = static_cast<double>(max_lag);
    m["final_lag"] = static_cast<double>(final_lag);
    m["stuck_partitions"] = r.converged ? 0.0 : static_cast<double>(r.last.lagging_partitions);
    m["converged"] = r.converged ? 1.0 : 0.0;
    m["time_to_converge_ms"] = r.converged ? *r.converged : -1.0;
    m["v2_rejected_by_backward"] = static_cast<double>(r.rejected);
    m["unaccounted"] = static_cast<double>(unaccounted);
    r.result.details_json = r.details.dump();
    Step(r.ctx, r.mode + ": produced=" + std::to_string(r.produced) +
                    " v1=" + std::to_string(r.records_v1) + " v2=" + std::to_string(r.records_v2) +
                    " consumed=" + std::to_string(t.consumed) + " parse_failures=" +
                    std::to_string(t.parse_failures) + " max_lag=" + std::to_string(max_lag) +
                    " final_lag=" + std::to_string(final_lag));
    if (unaccounted != 0) {
      Step(r.ctx, r.mode + ": produced - consumed - skipped - final_lag = " +
                      std::to_string(unaccounted) + " (records processed twice or not counted)");
    }
    Progress(r.ctx, 100);
  }

  // Starts kConsumers processes of one generation in the group and waits until it is stable.
  bool Deploy(RolloutRun& r, const std::string& read, const std::string& generation) {
    const auto started = SteadyClock::now();
    for (int i = 1; i <= kConsumers; ++i) {
      std::string label = "consumer-" + generation + "#" + std::to_string(i);
      auto child =
          StartRole(r.ctx, r.mode, r.result, "schema-consumer",
                    {"--topic", r.topic, "--group", r.group, "--registry", config_.registry_url,
                     "--read", read, "--on-failure", r.on_failure, "--reader-schema", kSchemaV1},
                    label);
      if (!child) {
        Step(r.ctx, label + ": " + child.error().message);
        return false;
      }
      r.consumers.emplace_back(label, std::move(*child));
    }
    // Deployed = the group is stable: every process of this generation has partitions and
    // together they hold all of them (3 over 2 consumers).
    bool ok = WaitUntil(
        [&] {
          std::int64_t total = 0;
          for (auto& [label, c] : r.consumers) {
            if (c.Wait(0ms, r.ctx.stop)) return false;  // died
            std::int64_t assigned = ToInt(LastRoleValue(c.ReadLog(), "assigned").value_or(""));
            if (assigned <= 0) return false;
            total += assigned;
          }
          return total == kPartitions;
        },
        30s, r.ctx.stop);
    // How long the group took to settle: a slow join shows here, not as consumer lag.
    r.details["group_stable_ms"][generation] = ok ? MsSince(started) : -1.0;
    if (!ok) LogConsumers(r);
    return ok;
  }

  // What each running consumer said last, for the step log when a wait runs out.
  void LogConsumers(RolloutRun& r) {
    for (auto& [label, c] : r.consumers) {
      Step(r.ctx, label + " log: " + RoleLogText(c.ReadLog()));
    }
  }

  // SIGTERM to the running consumers, then their reports.
  void Retire(RolloutRun& r) {
    for (auto& [label, c] : r.consumers) {
      if (!c.Wait(0ms, r.ctx.stop)) ::kill(c.pid(), SIGTERM);
    }
    for (auto& [label, c] : r.consumers)
      r.consumer_outcomes.push_back(WaitRole(r.ctx, c, 20s, r.result, label));
    r.consumers.clear();
  }

  // Waits (bounded) until the group has committed every record; returns the time it took.
  static std::optional<double> Drained(RolloutRun& r, std::chrono::milliseconds timeout) {
    auto from = SteadyClock::now();
    bool ok = WaitUntil(
        [&] {
          auto s = r.lag->After(from);
          return s && s->lag == 0;
        },
        timeout, r.ctx.stop, 20ms);
    if (!ok) return std::nullopt;
    return MsSince(from);
  }

  RoleOutcome Produce(RolloutRun& r, const char* schema, std::int64_t count, std::int64_t first_id,
                      const std::string& label) {
    return RunRole(
        r.ctx, r.mode, r.result, "schema-producer",
        {"--ns", SafeName(r.ctx.ns), "--topic", r.topic, "--registry", config_.registry_url,
         "--subject", r.subject, "--schema", schema, "--events", std::to_string(count),
         "--first-id", std::to_string(first_id), "--interval-us", r.interval_us},
        label, 60s);
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeSchemaRollout(const StackConfig& config) {
  return std::make_unique<SchemaRollout>(config);
}

}  // namespace lab::runners
