// E-039B: fencing tokens and a safe unlock prevent the failures of E-039A. Both modes run the
// four scenarios of E-039A (pause, unsafe_unlock, timeout_retry, crash_restart; see
// e039a_lock_failures.cc) with real lock-holder processes; each lock comes with a token from
// INCR, taken in the same Lua script as the SET NX PX, and every holder writes the scenario's
// row of fenced_resource in MariaDB once inside its section.
//   failure: the store accepts any write (plain UPDATE); unlock is DEL.
//   success: the store refuses a write whose token is not newer than the last one it accepted
//            (UPDATE … WHERE last_token < token: 0 rows = refused); unlock is compare-and-delete.
//            practice=off runs the failure practice here.
// stale_writes_* are read back from fenced_write after every holder ended: a write is stale
// when an earlier write (lower id) of its scenario carried a newer token — its holder's lock
// had expired or been taken over. The holders' own write lines must agree with those rows.
// resource_regressions (read back) counts resources whose last_token is older than a token the
// store had accepted: the damage a stale write did. foreign_unlocks are the holders' own unlock
// lines (GET before the unlock), cross-checked by the runner in Redis and lock_interval at each
// holder's exit (foreign_unlocks_verified).
#include <string>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/e039_lock_scenarios.h"
#include "runners/experiments/experiments.h"

namespace lab::runners {
namespace {

using Json = nlohmann::json;

// fenced_write read back: every write and whether an earlier write of its scenario had a newer
// token.
struct WriteCounts {
  std::int64_t accepted = 0;
  std::int64_t refused = 0;
  std::int64_t stale_accepted = 0;
  std::int64_t stale_refused = 0;
  std::int64_t regressions = 0;
  Json series = Json::object();  // scenario -> [{t_s, token, accepted, stale}]
};

domain::Result<WriteCounts> ReadWrites(mysql::Connection& db, const std::string& ns) {
  auto rows = db.Query(
      "SELECT w.scenario, w.token, w.outcome, w.written_at_us, EXISTS (SELECT 1 FROM "
      "fenced_write p WHERE p.run_ns = w.run_ns AND p.scenario = w.scenario AND p.id < w.id AND "
      "p.token > w.token) FROM fenced_write w WHERE w.run_ns = ? ORDER BY w.scenario, w.id",
      {ns});
  if (!rows) return rows.error();
  WriteCounts c;
  std::map<std::string, std::int64_t> first_us;
  for (const auto& row : rows->rows) {
    const std::string scenario = row[0].value_or("");
    const bool accepted = row[2].value_or("") == "accepted";
    const bool stale = row[4].value_or("0") == "1";
    const std::int64_t at = std::stoll(row[3].value_or("0"));
    if (!first_us.count(scenario)) first_us[scenario] = at;
    ++(accepted ? c.accepted : c.refused);
    if (stale) ++(accepted ? c.stale_accepted : c.stale_refused);
    c.series[scenario].push_back({{"t_s", static_cast<double>(at - first_us[scenario]) / 1e6},
                                  {"token", std::stoll(row[1].value_or("0"))},
                                  {"accepted", accepted ? 1 : 0},
                                  {"stale", stale ? 1 : 0}});
  }
  auto regressed = db.Query(
      "SELECT COUNT(*) FROM fenced_resource r WHERE r.run_ns = ? AND r.last_token < (SELECT "
      "COALESCE(MAX(w.token), 0) FROM fenced_write w WHERE w.run_ns = r.run_ns AND w.scenario = "
      "r.resource AND w.outcome = 'accepted')",
      {ns});
  if (!regressed) return regressed.error();
  c.regressions = regressed->Scalar();
  return c;
}

// The scenarios' own numbers summed over the mode.
struct Tally {
  int reported_accepted = 0;
  int reported_refused = 0;
  int foreign = 0;
  int verified = 0;
  int kept = 0;
  std::string why;
  Json scenarios = Json::object();
};

class FencingTokens final : public LockScenarios {
 public:
  explicit FencingTokens(StackConfig config) : LockScenarios(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-039B"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const bool practice = mode == "success" && domain::GetString(ctx.params, "practice") != "off";
    const LockPractice how{true, practice, practice};
    const std::string ns = RunNs(ctx, mode);
    auto db = OpenMysqlWithSchema();
    if (!db) return Inconclusive(std::move(result), "mysql: " + db.error().message);
    Created(ctx, mode, result, kArtifactRows, ns);
    Created(ctx, mode, result, kArtifactRedis, KeyPrefix(ctx, mode));
    Json provenance = Json::object();
    Tally tally;
    const auto& names = Scenarios();
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
      auto out = RunScenario(ctx, mode, result, **db, names[i], how);
      Record(out, result, provenance, tally);
      Step(ctx, mode + ": " + out.scenario + ": overlaps=" + std::to_string(out.overlaps) +
                    " writes accepted/refused=" + std::to_string(out.writes_accepted) + "/" +
                    std::to_string(out.writes_refused) +
                    (out.inconclusive.empty() ? "" : " (" + out.inconclusive + ")"));
      Progress(ctx, 100.0 * static_cast<double>(i + 1) / static_cast<double>(names.size()));
    }
    auto writes = ReadWrites(**db, ns);
    if (!writes) return Inconclusive(std::move(result), "fenced_write: " + writes.error().message);
    Evidence(*writes, tally, result, provenance);
    Step(ctx, mode + ": stale writes accepted/refused=" + std::to_string(writes->stale_accepted) +
                  "/" + std::to_string(writes->stale_refused) +
                  " foreign unlocks=" + std::to_string(tally.foreign));
    result.details_json =
        Json({{"run_ns", ns},
              {"practice", practice ? "fencing token + compare-and-delete unlock"
                                    : "no fencing, unlock with DEL"},
              {"ttl_ms", domain::GetInt(ctx.params, "ttl_ms")},
              {"holders", domain::GetInt(ctx.params, "holders")},
              {"store_write", practice ? "UPDATE fenced_resource SET last_token=?, value=? WHERE "
                                         "run_ns=? AND resource=? AND last_token < ?"
                                       : "UPDATE fenced_resource SET last_token=?, value=? WHERE "
                                         "run_ns=? AND resource=?"},
              {"stale_source",
               "fenced_write rows with an earlier row (lower id) of the scenario carrying a "
               "newer token"},
              {"writes", writes->series},
              {"scenarios", tally.scenarios},
              {"provenance", provenance}})
            .dump();
    if (!tally.why.empty()) return Inconclusive(std::move(result), tally.why);
    return result;
  }

 private:
  static void Record(const ScenarioOutcome& out, domain::ModeResult& result, Json& provenance,
                     Tally& tally) {
    if (out.overlaps >= 0) {
      result.metrics["overlaps_" + out.scenario] = static_cast<double>(out.overlaps);
      provenance["overlaps_" + out.scenario] = "read_back";
    }
    if (out.scenario == "pause") {
      result.metrics["holder_paused"] = out.paused ? 1 : 0;
      result.metrics["pause_ms"] = out.pause_ms;
    }
    if (out.scenario == "crash_restart") result.metrics["holder_killed"] = out.killed ? 1 : 0;
    tally.reported_accepted += out.writes_accepted;
    tally.reported_refused += out.writes_refused;
    tally.foreign += out.foreign_reported;
    tally.verified += out.foreign_verified;
    tally.kept += out.kept_foreign;
    if (!out.inconclusive.empty()) tally.why += (tally.why.empty() ? "" : "; ") + out.inconclusive;
    tally.scenarios[out.scenario] = out.details;
  }

  // The metrics, after the holders' reports were reconciled with what the stack recorded.
  static void Evidence(const WriteCounts& w, Tally& tally, domain::ModeResult& result,
                       Json& provenance) {
    auto set = [&](const std::string& name, double value, const char* source) {
      result.metrics[name] = value;
      provenance[name] = source;
    };
    set("stale_writes_attempted", static_cast<double>(w.stale_accepted + w.stale_refused),
        "read_back");
    set("stale_writes_accepted", static_cast<double>(w.stale_accepted), "read_back");
    set("stale_writes_refused", static_cast<double>(w.stale_refused), "read_back");
    set("fresh_writes_refused", static_cast<double>(w.refused - w.stale_refused), "read_back");
    set("writes_accepted", static_cast<double>(w.accepted), "read_back");
    set("writes_refused", static_cast<double>(w.refused), "read_back");
    set("resource_regressions", static_cast<double>(w.regressions), "read_back");
    set("foreign_unlocks", tally.foreign, "self_reported");
    set("foreign_unlocks_verified", tally.verified, "read_back");
    set("foreign_unlocks_prevented", tally.kept, "self_reported");
    provenance["holder_paused"] = "read_back";  // the kernel's process state, /proc/<pid>/stat
    provenance["pause_ms"] = "self_reported";   // the runner's clock, SIGSTOP to SIGCONT
    provenance["holder_killed"] = "read_back";  // waitpid: killed by signal 9
    auto add = [&](const std::string& why) { tally.why += (tally.why.empty() ? "" : "; ") + why; };
    if (w.accepted != tally.reported_accepted || w.refused != tally.reported_refused) {
      add("fenced_write has " + std::to_string(w.accepted) + " accepted / " +
          std::to_string(w.refused) + " refused writes, the holders reported " +
          std::to_string(tally.reported_accepted) + " / " + std::to_string(tally.reported_refused));
    }
    // The runner only checks at exits, so it may see fewer than the holders did, never more.
    if (tally.verified > tally.foreign) {
      add("Redis showed " + std::to_string(tally.verified) +
          " live locks removed, the holders reported " + std::to_string(tally.foreign));
    }
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeFencingTokens(const StackConfig& config) {
  return std::make_unique<FencingTokens>(config);
}

}  // namespace lab::runners
