// E-013: keeping a cache in step with MariaDB by a Lua read-modify-write of the cache's own value
// diverges from the truth; commit-then-invalidate and a versioned set do not.
// `writers` threads (each with its own MariaDB and Redis connection) run `updates` business
// transactions each on `items` rows of cache_truth (value 1000, version 1 at the start): UPDATE
// value = value + delta, version = version + 1 unless the value would fall below a floor (the
// business rule: the transaction rolls back), and ~10% of the transactions that passed the rule
// roll back later (a downstream step failed: a real ROLLBACK of a changed row). `readers` threads
// read through the cache (cache-aside) meanwhile.
//   failure: the writer mirrors its change into the cache with a Lua read-modify-write (GET,
//            add delta, SET) right after its UPDATE, before (and whatever becomes of) the commit.
//   success: two phases on their own rows and keys, one after the other:
//            invalidate - COMMIT, then DEL; readers fill a miss from a locking read (SELECT …
//              LOCK IN SHARE MODE) and SET the value while that shared lock is held, so a fill
//              of version v always lands before version v+1 commits and so before its DEL. (A
//              plain fill can SET a row read before a commit after that commit's DEL, the race
//              E-001 documents; a versioned fill or SET NX does not close it, because after the
//              DEL there is no version left to compare with.)
//            versioned - the writer reads back its row's new value and version in the same
//              transaction, COMMITs, then a Lua script sets the key only if the cached version is
//              older; readers fill misses with the same script.
//            practice=off: both phases use the failure's Lua read-modify-write.
// Numbers: after every writer and reader stopped, each key is compared with its row (both read
// back: keys_compared = keys present, mismatches = present keys whose value differs from the
// row). writes_committed / writes_rolled_back are the writers' own counts, cross-checked with
// SUM(version - 1) over the rows (committed_read_back). stale_reads: reads whose cached value
// differed from the row read right after (approximate, self-reported).
#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/redis/redis_client.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr std::int64_t kStartValue = 1000;
constexpr std::int64_t kFloor = 900;  // the business rule: no value below this
constexpr int kAbortPercent = 10;     // transactions that fail after their UPDATE
constexpr std::int64_t kDeltaMax = 50;

// The anti-pattern: the cache's own value plus the delta, whatever MariaDB ends up with. A missing
// key is left alone (a write-through cache updates what it holds; readers fill misses).
constexpr const char* kLuaReadModifyWrite = R"(
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local v, ver = string.match(cur, '^(-?%d+):(%d+)$')
if not v then return -1 end
redis.call('SET', KEYS[1], (tonumber(v) + tonumber(ARGV[1])) .. ':' .. (tonumber(ver) + 1))
return 1
)";

// The fix: a committed (value, version) replaces the cached one only if it is newer.
constexpr const char* kLuaVersionedSet = R"(
local cur = redis.call('GET', KEYS[1])
if cur then
  local ver = tonumber(string.match(cur, ':(%d+)$'))
  if ver and ver >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2])
return 1
)";

enum class Policy { kLuaRmw, kInvalidate, kVersioned };

struct Phase {
  std::string name;      // "lua_rmw" | "invalidate" | "versioned"
  Policy policy;         // how writers update the cache and readers fill it
  std::int64_t id_base;  // item ids are id_base + 1 .. id_base + items
  std::string key_prefix;
  std::string Key(std::int64_t item) const { return key_prefix + std::to_string(item); }
};

struct Tally {
  std::atomic<std::int64_t> committed{0};
  std::atomic<std::int64_t> committed_delta{0};
  std::atomic<std::int64_t> rolled_back_rule{0};
  std::atomic<std::int64_t> rolled_back_abort{0};
  std::atomic<std::int64_t> mysql_errors{0};
  std::atomic<std::int64_t> redis_errors{0};
  std::atomic<std::int64_t> reads{0};
  std::atomic<std::int64_t> misses{0};
  std::atomic<std::int64_t> fills{0};
  std::atomic<std::int64_t> stale_reads{0};
  std::atomic<int> writers_done{0};
};

// What the phase's final comparison and read-back found.
struct PhaseOutcome {
  std::int64_t keys_compared = 0;
  std::int64_t keys_missing = 0;
  std::int64_t mismatches = 0;
  std::int64_t version_mismatches = 0;
  std::int64_t committed_read_back = 0;  // SUM(version - 1)
  std::int64_t delta_read_back = 0;      // SUM(value) - items * 1000
  Json mismatched = Json::array();       // a sample: key, cached, row
  Json series = Json::array();
  double seconds = 0;
};

// "value:version" -> (value, version), or nullopt when the text is not of that form.
std::optional<std::pair<std::int64_t, std::int64_t>> ParseCached(const std::string& text) {
  auto colon = text.find(':');
  if (colon == std::string::npos) return std::nullopt;
  try {
    return std::make_pair(std::stoll(text.substr(0, colon)), std::stoll(text.substr(colon + 1)));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string Cached(std::int64_t value, std::int64_t version) {
  return std::to_string(value) + ":" + std::to_string(version);
}

class LuaCacheDivergence final : public ExperimentBase {
 public:
  explicit LuaCacheDivergence(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-013"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::string ns = RunNs(ctx, mode);
    const std::string prefix = RedisPrefix(ctx, mode);
    const bool practice = domain::GetString(ctx.params, "practice") != "off";
    auto conn = OpenMysqlWithSchema();
    if (!conn) return Inconclusive(std::move(result), "mysql: " + conn.error().message);
    Created(ctx, mode, result, kArtifactRows, ns);
    Created(ctx, mode, result, kArtifactRedis, prefix);
    auto rc = OpenRedis();
    if (!rc) return Inconclusive(std::move(result), "redis: " + rc.error().message);

    std::vector<Phase> phases;
    if (mode == "failure") {
      phases.push_back({"lua_rmw", Policy::kLuaRmw, 0, prefix + "lua_rmw:item:"});
    } else {
      phases.push_back({"invalidate", practice ? Policy::kInvalidate : Policy::kLuaRmw, 0,
                        prefix + "invalidate:item:"});
      phases.push_back({"versioned", practice ? Policy::kVersioned : Policy::kLuaRmw, 1000000,
                        prefix + "versioned:item:"});
    }
    Json details = {{"run_ns", ns},
                    {"practice", practice ? "on" : "off"},
                    {"floor", kFloor},
                    {"abort_percent", kAbortPercent},
                    {"start_value", kStartValue}};
    Json provenance = Json::object();
    std::int64_t keys_compared = 0;
    for (std::size_t i = 0; i < phases.size(); ++i) {
      const Phase& phase = phases[i];
      if (auto s = Seed(ctx, **conn, **rc, ns, phase); !s) {
        return Inconclusive(std::move(result), phase.name + ": seed: " + s.error().message);
      }
      Tally tally;
      auto outcome = RunPhase(ctx, mode, ns, phase, tally);
      if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
      if (!outcome)
        return Inconclusive(std::move(result), phase.name + ": " + outcome.error().message);
      keys_compared += outcome->keys_compared;
      const std::string suffix = mode == "failure" ? "" : "_" + phase.name;
      Emit(result, provenance, suffix, tally, *outcome);
      details["phases"].push_back(PhaseDetails(phase, tally, *outcome));
      Progress(ctx, 100.0 * static_cast<double>(i + 1) / static_cast<double>(phases.size()));
    }
    result.metrics["keys_compared"] = static_cast<double>(keys_compared);
    provenance["keys_compared"] = "read_back";
    details["provenance"] = provenance;
    result.details_json = details.dump();
    return result;
  }

 private:
  struct Params {
    int writers = 0;
    int readers = 0;
    std::int64_t updates = 0;
    std::int64_t items = 0;
  };
  static Params ParamsOf(const domain::RunContext& ctx) {
    return {static_cast<int>(domain::GetInt(ctx.params, "writers")),
            static_cast<int>(domain::GetInt(ctx.params, "readers")),
            domain::GetInt(ctx.params, "updates"), domain::GetInt(ctx.params, "items")};
  }

  // Rows at value 1000, version 1, and their keys cached as "1000:1".
  domain::Status Seed(const domain::RunContext& ctx, mysql::Connection& conn, redis::Connection& rc,
                      const std::string& ns, const Phase& phase) const {
    const std::int64_t items = ParamsOf(ctx).items;
    constexpr std::int64_t kChunk = 500;
    for (std::int64_t from = 1; from <= items; from += kChunk) {
      const std::int64_t to = std::min(items, from + kChunk - 1);
      std::string sql = "INSERT INTO cache_truth (run_ns, item_id, value, version) VALUES ";
      std::vector<mysql::Param> params;
      std::vector<std::string> mset = {"MSET"};
      for (std::int64_t id = from; id <= to; ++id) {
        sql += (id == from ? "" : ",") + std::string("(?,?,?,1)");
        params.insert(params.end(), {ns, phase.id_base + id, kStartValue});
        mset.push_back(phase.Key(phase.id_base + id));
        mset.push_back(Cached(kStartValue, 1));
      }
      if (auto s = conn.Exec(sql, params); !s) return s.error();
      auto set = rc.Command(mset);
      if (!set) return set.error();
      if (set->is_error()) return domain::MakeError(domain::ErrorCode::kInternal, set->str);
    }
    Step(ctx, phase.name + ": seeded " + std::to_string(items) + " rows and keys " +
                  phase.key_prefix + "*");
    return {};
  }

  domain::Result<PhaseOutcome> RunPhase(const domain::RunContext& ctx, const std::string& mode,
                                        const std::string& ns, const Phase& phase,
                                        Tally& tally) const {
    const Params p = ParamsOf(ctx);
    const auto deadline =
        SteadyClock::now() + 60s + std::chrono::milliseconds(2 * p.writers * p.updates);
    Step(ctx, mode + "/" + phase.name + ": " + std::to_string(p.writers) + " writers x " +
                  std::to_string(p.updates) + " updates on " + std::to_string(p.items) +
                  " items, " + std::to_string(p.readers) + " readers");
    PhaseOutcome out;
    const auto start = SteadyClock::now();
    std::atomic<bool> writers_stopped{false};
    std::vector<std::thread> writers;
    std::vector<std::thread> readers;
    for (int w = 0; w < p.writers; ++w) {
      writers.emplace_back([&, w] {
        Writer(ctx, ns, phase, w, deadline, tally);
        ++tally.writers_done;
      });
    }
    for (int r = 0; r < p.readers; ++r) {
      readers.emplace_back([&, r] { Reader(ctx, ns, phase, r, deadline, writers_stopped, tally); });
    }
    // The chart: progress of the phase every 250 ms while the writers run.
    while (tally.writers_done.load() < p.writers) {
      out.series.push_back(
          {{"t_s", MsSince(start) / 1000.0},
           {"committed", tally.committed.load()},
           {"rolled_back", tally.rolled_back_rule.load() + tally.rolled_back_abort.load()},
           {"reads", tally.reads.load()},
           {"stale_reads", tally.stale_reads.load()}});
      std::this_thread::sleep_for(250ms);
    }
    for (auto& t : writers) t.join();
    writers_stopped = true;
    for (auto& t : readers) t.join();
    out.seconds = MsSince(start) / 1000.0;
    if (ctx.stop.stop_requested())
      return domain::MakeError(domain::ErrorCode::kConflict, "cancelled");
    const std::int64_t attempted =
        tally.committed + tally.rolled_back_rule + tally.rolled_back_abort + tally.mysql_errors;
    if (attempted < p.writers * p.updates) {
      return domain::MakeError(domain::ErrorCode::kTimeout,
                               "writers did not finish: " + std::to_string(attempted) + " of " +
                                   std::to_string(p.writers * p.updates) + " transactions");
    }
    if (auto s = Compare(ns, phase, p.items, out); !s) return s.error();
    Step(ctx, mode + "/" + phase.name + ": committed=" + std::to_string(tally.committed.load()) +
                  " (read back " + std::to_string(out.committed_read_back) + ") rolled_back=" +
                  std::to_string(tally.rolled_back_rule + tally.rolled_back_abort) +
                  " keys_compared=" + std::to_string(out.keys_compared) +
                  " mismatches=" + std::to_string(out.mismatches) +
                  " stale_reads=" + std::to_string(tally.stale_reads.load()));
    return out;
  }

  // One writer: `updates` business transactions, each on a random item (seeded per writer).
  void Writer(const domain::RunContext& ctx, const std::string& ns, const Phase& phase, int w,
              SteadyClock::time_point deadline, Tally& tally) const {
    const Params p = ParamsOf(ctx);
    auto conn = mysql::Connection::Open(MysqlSettings());
    auto rc = OpenRedis();
    if (!conn || !rc) {
      tally.mysql_errors += p.updates;  // counted as attempted so the phase reports the failure
      return;
    }
    std::mt19937_64 rng(static_cast<std::uint64_t>(phase.id_base) + 7919u * (w + 1));
    std::uniform_int_distribution<std::int64_t> pick(1, p.items);
    std::uniform_int_distribution<std::int64_t> delta_of(-kDeltaMax, kDeltaMax);
    std::uniform_int_distribution<int> percent(0, 99);
    for (std::int64_t n = 0; n < p.updates; ++n) {
      if (ctx.stop.stop_requested() || SteadyClock::now() >= deadline) return;
      const std::int64_t item = phase.id_base + pick(rng);
      const std::int64_t delta = delta_of(rng);
      const bool abort = percent(rng) < kAbortPercent;
      if (!Transact(**conn, **rc, ns, phase, item, delta, abort, tally)) {
        ++tally.mysql_errors;
        (void)(*conn)->Rollback();
        if ((*conn)->broken()) {
          auto again = mysql::Connection::Open(MysqlSettings());
          if (!again) {
            tally.mysql_errors += p.updates - n - 1;
            return;
          }
          conn = std::move(again);
        }
      }
    }
  }

  // One business transaction and the cache update its policy makes. False on a MariaDB error
  // (the caller rolls back); rollbacks by the business rules are counted, not errors.
  bool Transact(mysql::Connection& conn, redis::Connection& rc, const std::string& ns,
                const Phase& phase, std::int64_t item, std::int64_t delta, bool abort,
                Tally& tally) const {
    const std::string key = phase.Key(item);
    if (!conn.Begin()) return false;
    auto updated = conn.Exec(
        "UPDATE cache_truth SET value = value + ?, version = version + 1 "
        "WHERE run_ns = ? AND item_id = ? AND value + ? >= ?",
        {delta, ns, item, delta, kFloor});
    if (!updated) return false;
    if (*updated == 0) {  // the business rule refused: nothing changed, nothing to mirror
      ++tally.rolled_back_rule;
      return conn.Rollback().ok();
    }
    if (phase.policy == Policy::kLuaRmw) {
      // The anti-pattern: the cache follows the change before the transaction's fate is known.
      auto r = rc.Command({"EVAL", kLuaReadModifyWrite, "1", key, std::to_string(delta)});
      if (!r || r->is_error()) ++tally.redis_errors;
    }
    if (abort) {  // a later step of the business transaction failed
      ++tally.rolled_back_abort;
      return conn.Rollback().ok();
    }
    std::optional<std::pair<std::int64_t, std::int64_t>> row;
    if (phase.policy == Policy::kVersioned) {
      auto read = conn.Query(
          "SELECT value, version FROM cache_truth WHERE run_ns = ? AND item_id = ?", {ns, item});
      if (!read || read->rows.empty()) return false;
      row = std::make_pair(std::stoll(*read->rows[0][0]), std::stoll(*read->rows[0][1]));
    }
    if (!conn.Commit()) return false;
    ++tally.committed;
    tally.committed_delta += delta;
    if (phase.policy == Policy::kInvalidate) {
      auto r = rc.Command({"DEL", key});
      if (!r || r->is_error()) ++tally.redis_errors;
    } else if (phase.policy == Policy::kVersioned) {
      auto r = rc.Command({"EVAL", kLuaVersionedSet, "1", key, std::to_string(row->first),
                           std::to_string(row->second)});
      if (!r || r->is_error()) ++tally.redis_errors;
    }
    return true;
  }

  // One reader: GET random items until the writers stop; a miss is filled per the policy; a hit
  // is compared with the row read right after it (stale_reads, approximate).
  void Reader(const domain::RunContext& ctx, const std::string& ns, const Phase& phase, int r,
              SteadyClock::time_point deadline, const std::atomic<bool>& writers_stopped,
              Tally& tally) const {
    const Params p = ParamsOf(ctx);
    auto conn = mysql::Connection::Open(MysqlSettings());
    auto rc = OpenRedis();
    if (!conn || !rc) {
      ++tally.mysql_errors;
      return;
    }
    std::mt19937_64 rng(static_cast<std::uint64_t>(phase.id_base) + 104729u * (r + 1));
    std::uniform_int_distribution<std::int64_t> pick(1, p.items);
    while (!writers_stopped.load() && !ctx.stop.stop_requested() && SteadyClock::now() < deadline) {
      const std::int64_t item = phase.id_base + pick(rng);
      const std::string key = phase.Key(item);
      auto got = (*rc)->Command({"GET", key});
      if (!got || got->is_error()) {
        ++tally.redis_errors;
        continue;
      }
      ++tally.reads;
      if (got->is_nil()) {
        ++tally.misses;
        if (Fill(**conn, **rc, ns, phase, item)) {
          ++tally.fills;
        } else {
          ++tally.mysql_errors;
          (void)(*conn)->Rollback();
        }
      } else {
        auto row = (*conn)->Query("SELECT value FROM cache_truth WHERE run_ns = ? AND item_id = ?",
                                  {ns, item});
        auto cached = ParseCached(got->str);
        if (row && !row->rows.empty() && cached && cached->first != row->Scalar())
          ++tally.stale_reads;
      }
      std::this_thread::sleep_for(2ms);
    }
  }

  // Cache-aside fill of a miss. invalidate: the row is read with a shared lock that is held until
  // the SET is done, so no commit (and its DEL) can come between the read and the SET.
  bool Fill(mysql::Connection& conn, redis::Connection& rc, const std::string& ns,
            const Phase& phase, std::int64_t item) const {
    const std::string key = phase.Key(item);
    const bool locked = phase.policy == Policy::kInvalidate;
    if (locked && !conn.Begin()) return false;
    auto row = conn.Query(std::string("SELECT value, version FROM cache_truth "
                                      "WHERE run_ns = ? AND item_id = ?") +
                              (locked ? " LOCK IN SHARE MODE" : ""),
                          {ns, item});
    if (!row || row->rows.empty()) return false;
    const std::string value = *row->rows[0][0];
    const std::string version = *row->rows[0][1];
    domain::Result<redis::Reply> set =
        phase.policy == Policy::kVersioned
            ? rc.Command({"EVAL", kLuaVersionedSet, "1", key, value, version})
            : rc.Command({"SET", key, value + ":" + version});
    if (locked && !conn.Commit()) return false;
    return set.ok() && !set->is_error();
  }

  // After every writer and reader stopped: each row against its key (both read back).
  domain::Status Compare(const std::string& ns, const Phase& phase, std::int64_t items,
                         PhaseOutcome& out) const {
    auto conn = mysql::Connection::Open(MysqlSettings());
    if (!conn) return conn.error();
    auto rows = (*conn)->Query(
        "SELECT item_id, value, version FROM cache_truth WHERE run_ns = ? AND item_id > ? AND "
        "item_id <= ? ORDER BY item_id",
        {ns, phase.id_base, phase.id_base + items});
    if (!rows) return rows.error();
    if (static_cast<std::int64_t>(rows->rows.size()) != items) {
      return domain::MakeError(
          domain::ErrorCode::kInternal,
          "read back " + std::to_string(rows->rows.size()) + " rows of " + std::to_string(items));
    }
    auto rc = OpenRedis();
    if (!rc) return rc.error();
    std::vector<std::vector<std::string>> gets;
    for (const auto& row : rows->rows) gets.push_back({"GET", phase.key_prefix + *row[0]});
    auto replies = (*rc)->Pipeline(gets);
    if (!replies) return replies.error();
    for (std::size_t i = 0; i < rows->rows.size(); ++i) {
      const std::int64_t value = std::stoll(*rows->rows[i][1]);
      const std::int64_t version = std::stoll(*rows->rows[i][2]);
      out.committed_read_back += version - 1;
      out.delta_read_back += value - kStartValue;
      const auto& reply = (*replies)[i];
      if (reply.is_error()) return domain::MakeError(domain::ErrorCode::kInternal, reply.str);
      if (reply.is_nil()) {
        ++out.keys_missing;  // filled on the next read: not a divergence
        continue;
      }
      ++out.keys_compared;
      auto cached = ParseCached(reply.str);
      const bool value_differs = !cached || cached->first != value;
      if (!cached || cached->second != version) ++out.version_mismatches;
      if (value_differs) {
        ++out.mismatches;
        if (out.mismatched.size() < 20) {
          out.mismatched.push_back(
              {{"key", gets[i][1]}, {"cached", reply.str}, {"row", Cached(value, version)}});
        }
      }
    }
    return {};
  }

  static void Emit(domain::ModeResult& result, Json& provenance, const std::string& suffix,
                   const Tally& t, const PhaseOutcome& o) {
    auto put = [&](const std::string& name, std::int64_t v, const char* source) {
      result.metrics[name + suffix] = static_cast<double>(v);
      provenance[name + suffix] = source;
    };
    if (!suffix.empty()) put("keys_compared", o.keys_compared, "read_back");
    put("mismatches", o.mismatches, "read_back");
    put("version_mismatches", o.version_mismatches, "read_back");
    put("keys_missing", o.keys_missing, "read_back");
    put("writes_committed", t.committed, "self_reported");
    put("committed_read_back", o.committed_read_back, "read_back");
    put("committed_delta", t.committed_delta, "self_reported");
    put("delta_read_back", o.delta_read_back, "read_back");
    put("writes_rolled_back", t.rolled_back_rule + t.rolled_back_abort, "self_reported");
    put("rolled_back_by_rule", t.rolled_back_rule, "self_reported");
    put("rolled_back_after_update", t.rolled_back_abort, "self_reported");
    put("reads", t.reads, "self_reported");
    put("cache_misses", t.misses, "self_reported");
    put("fills", t.fills, "self_reported");
    put("stale_reads", t.stale_reads, "self_reported");
    put("mysql_errors", t.mysql_errors, "self_reported");
    put("redis_errors", t.redis_errors, "self_reported");
  }

  static Json PhaseDetails(const Phase& phase, const Tally& t, const PhaseOutcome& o) {
    static const std::map<Policy, std::string> kHow = {
        {Policy::kLuaRmw, "Lua read-modify-write of the cached value before the commit"},
        {Policy::kInvalidate, "commit, then DEL; fills under LOCK IN SHARE MODE"},
        {Policy::kVersioned, "commit, then a versioned Lua set; fills use the same script"}};
    return {{"phase", phase.name},
            {"cache_update", kHow.at(phase.policy)},
            {"key_prefix", phase.key_prefix},
            {"item_id_base", phase.id_base},
            {"seconds", o.seconds},
            {"committed_matches_read_back", t.committed.load() == o.committed_read_back},
            {"mismatched_sample", o.mismatched},
            {"series", o.series}};
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeLuaCacheDivergence(const StackConfig& config) {
  return std::make_unique<LuaCacheDivergence>(config);
}

}  // namespace lab::runners
