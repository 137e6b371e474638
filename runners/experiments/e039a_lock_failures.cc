// E-039A: distributed locks (SET NX PX, unlock with DEL, no fencing) fail in known ways. One
// mode (failure) runs the four scenarios of e039_lock_scenarios.cc (pause, unsafe_unlock,
// timeout_retry, crash_restart) with no fence and DEL as the unlock. overlaps_<scenario> is read
// back from lock_interval; foreign_unlocks are the holders' own unlock lines, checked by the
// runner in Redis at each holder's exit (foreign_unlocks_verified). E-039B runs the same
// scenarios with a fenced resource.
#include "domain/catalog.h"
#include "runners/experiments/e039_lock_scenarios.h"
#include "runners/experiments/experiments.h"

namespace lab::runners {
namespace {

using Json = nlohmann::json;

class LockFailures final : public LockScenarios {
 public:
  explicit LockFailures(StackConfig config) : LockScenarios(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-039A"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    auto db = OpenMysqlWithSchema();
    if (!db) return Inconclusive(std::move(result), "mysql: " + db.error().message);
    Created(ctx, mode, result, kArtifactRows, RunNs(ctx, mode));
    Created(ctx, mode, result, kArtifactRedis, KeyPrefix(ctx, mode));
    Json scenarios = Json::object();
    Json provenance = Json::object();
    std::string why;
    int foreign = 0;
    int verified = 0;
    const auto& names = Scenarios();
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
      auto out = RunScenario(ctx, mode, result, **db, names[i], LockPractice{});
      if (out.overlaps >= 0) {
        result.metrics["overlaps_" + out.scenario] = static_cast<double>(out.overlaps);
        result.metrics["overlap_ms_" + out.scenario] = out.overlap_ms;
        provenance["overlaps_" + out.scenario] = "read_back";
        provenance["overlap_ms_" + out.scenario] = "read_back";
      }
      if (out.scenario == "pause") {
        result.metrics["holder_paused"] = out.paused ? 1 : 0;
        result.metrics["pause_ms"] = out.pause_ms;
      }
      if (out.scenario == "crash_restart") result.metrics["holder_killed"] = out.killed ? 1 : 0;
      foreign += out.foreign_reported;
      verified += out.foreign_verified;
      if (!out.inconclusive.empty()) why += (why.empty() ? "" : "; ") + out.inconclusive;
      scenarios[out.scenario] = out.details;
      Step(ctx, mode + ": " + out.scenario + ": overlaps=" + std::to_string(out.overlaps) +
                    (out.inconclusive.empty() ? "" : " (" + out.inconclusive + ")"));
      Progress(ctx, 100.0 * static_cast<double>(i + 1) / static_cast<double>(names.size()));
    }
    result.metrics["foreign_unlocks"] = foreign;
    result.metrics["foreign_unlocks_verified"] = verified;
    provenance["holder_paused"] = "read_back";  // the kernel's process state, /proc/<pid>/stat
    provenance["pause_ms"] = "self_reported";   // the runner's clock, SIGSTOP to SIGCONT
    provenance["holder_killed"] = "read_back";  // waitpid: killed by signal 9
    provenance["foreign_unlocks"] = "self_reported";
    provenance["foreign_unlocks_verified"] = "read_back";
    result.details_json =
        Json({{"run_ns", RunNs(ctx, mode)},
              {"ttl_ms", domain::GetInt(ctx.params, "ttl_ms")},
              {"holders", domain::GetInt(ctx.params, "holders")},
              {"lock", "SET key holder:token NX PX ttl; unlock DEL"},
              {"overlaps_source",
               "lock_interval self-join: same scenario, different holders, both closed, "
               "a.started_us < b.ended_us AND b.started_us < a.ended_us"},
              {"scenarios", scenarios},
              {"provenance", provenance}})
            .dump();
    if (!why.empty()) return Inconclusive(std::move(result), why);
    return result;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeLockFailures(const StackConfig& config) {
  return std::make_unique<LockFailures>(config);
}

}  // namespace lab::runners
