// E-024: issuing a limited coupon under concurrency oversells unless the decision is atomic.
// `clients` threads, each with its own MariaDB connection (and Redis connection for the Redis
// variant), take `requests` requests in turn from a shared counter; request k is user
// k / requests_per_user + 1, so the requests of one user (a double click, a client retry) arrive
// together. Each request first does its work (think_ms: validating the user, a fraud check);
// the stock is `stock` coupons and the distinct users outnumber it, so the stock must run out.
//   failure: read-then-write in one transaction at REPEATABLE READ, no lock: SELECT the stock,
//            SELECT whether the user holds a coupon, then (the work done after reading, think_ms)
//            UPDATE stock = <read value> - 1 and INSERT the coupon. The work sits between the
//            read and the write because that is where such code does it: it decides from what
//            it read. The row's NULL dedup column is what code without a per-user constraint
//            writes.
//   success: two fixes in turn on their own stock rows:
//            atomic_update - UPDATE stock = stock - 1 WHERE stock > 0 (the affected rows decide)
//              and the INSERT with dedup_user_id set (unique: a second coupon for the user is
//              refused with 1062 and the transaction rolls back, stock included);
//            redis - a Lua script (SISMEMBER the user, stock > 0, DECR, SADD) decides, then the
//              coupon is recorded in MariaDB (dedup_user_id set); a failed record is compensated
//              in Redis (SREM + INCR).
//            practice=off: both run the read-then-write.
// Numbers per variant, after every client ended: issued (coupon_issue rows), duplicates (rows
// minus distinct users) and stock_left are read back from MariaDB; oversold = issued - stock;
// stock_mismatch = issued - (stock - stock_left): decrements lost by the blind write. For Redis,
// stock_left_redis (GET) and users_redis (SCARD) are read back and record_mismatch_redis =
// users_redis - issued. requests_per_s is requests over the variant's wall time.
#include <algorithm>
#include <atomic>
#include <latch>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/redis/redis_client.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr int kAttempts = 5;  // the atomic UPDATE retries a 1213/1205 (not a decision)

// 1: issued, 0: sold out, -1: the user already holds one.
constexpr const char* kLuaIssue = R"(
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left <= 0 then return 0 end
redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
)";

// Gives a coupon back when its durable record could not be written.
constexpr const char* kLuaCompensate = R"(
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 then redis.call('INCR', KEYS[1]) end
return 1
)";

enum class Variant { kReadThenWrite, kAtomicUpdate, kRedis };

struct Phase {
  std::string name;  // coupon_id and the metrics' suffix: read_then_write | atomic_update | redis
  Variant variant;   // what runs (practice=off: read-then-write under the fixes' names)
  std::string stock_key;
  std::string users_key;
};

struct Params {
  int clients = 0;
  std::int64_t requests = 0;
  std::int64_t stock = 0;
  std::int64_t per_user = 0;
  std::int64_t think_ms = 0;
};

Params ParamsOf(const domain::RunContext& ctx) {
  return {static_cast<int>(domain::GetInt(ctx.params, "clients")),
          domain::GetInt(ctx.params, "requests"), domain::GetInt(ctx.params, "stock"),
          domain::GetInt(ctx.params, "requests_per_user"), domain::GetInt(ctx.params, "think_ms")};
}

// What the clients were told (self-reported).
struct Tally {
  std::atomic<std::int64_t> next{0};  // the shared request counter
  std::atomic<std::int64_t> accepted{0};
  std::atomic<std::int64_t> sold_out{0};
  std::atomic<std::int64_t> duplicate_refused{0};
  std::atomic<std::int64_t> errors{0};
  std::atomic<std::int64_t> retries{0};
  std::atomic<std::int64_t> compensated{0};
  std::atomic<std::int64_t> not_served{0};
  std::atomic<int> clients_done{0};
  std::atomic<SteadyClock::rep> last_end{0};  // when the last client ended (steady clock ticks)
  void MarkEnd() {
    const auto now = SteadyClock::now().time_since_epoch().count();
    auto seen = last_end.load();
    while (seen < now && !last_end.compare_exchange_weak(seen, now)) {
    }
  }
};

struct PhaseOutcome {
  std::int64_t issued = 0;
  std::int64_t distinct_users = 0;
  std::int64_t stock_left = 0;  // MariaDB's stock column (the Redis variant leaves it alone)
  std::int64_t stock_left_redis = -1;
  std::int64_t users_redis = -1;
  double seconds = 0;
  Json series = Json::array();
};

class CouponOversell final : public ExperimentBase {
 public:
  explicit CouponOversell(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-024"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const Params p = ParamsOf(ctx);
    const std::string ns = RunNs(ctx, mode);
    const std::string prefix = "lab:" + ns + ":";
    const bool practice = domain::GetString(ctx.params, "practice") != "off";
    const std::int64_t users = (p.requests + p.per_user - 1) / p.per_user;
    if (users <= p.stock) {
      return Inconclusive(std::move(result),
                          "demand does not exceed the stock: " + std::to_string(users) +
                              " distinct users for " + std::to_string(p.stock) +
                              " coupons (raise requests or lower stock/requests_per_user)");
    }
    auto conn = OpenMysqlWithSchema();
    if (!conn) return Inconclusive(std::move(result), "mysql: " + conn.error().message);
    Created(ctx, mode, result, kArtifactRows, ns);

    std::vector<Phase> phases;
    auto phase = [&](const std::string& name, Variant v) {
      phases.push_back({name, v, prefix + name + ":stock", prefix + name + ":users"});
    };
    if (mode == "failure") {
      phase("read_then_write", Variant::kReadThenWrite);
    } else {
      phase("atomic_update", practice ? Variant::kAtomicUpdate : Variant::kReadThenWrite);
      phase("redis", practice ? Variant::kRedis : Variant::kReadThenWrite);
    }
    const bool uses_redis = std::any_of(phases.begin(), phases.end(), [](const Phase& ph) {
      return ph.variant == Variant::kRedis;
    });
    if (uses_redis) Created(ctx, mode, result, kArtifactRedis, prefix);

    Json details = {{"run_ns", ns},
                    {"practice", practice ? "on" : "off"},
                    {"distinct_users", users},
                    {"think_ms_means",
                     "the request's work (user validation, a fraud check): between the read and "
                     "the write in read-then-write, where such code does it because it decides "
                     "from what it read; before the atomic step in the fixes"}};
    Json provenance = Json::object();
    auto& m = result.metrics;
    auto put = [&](const std::string& name, double v, const std::string& source) {
      m[name] = v;
      provenance[name] = source;
    };
    put("stock", static_cast<double>(p.stock), "set by design (parameter stock)");
    put("requests", static_cast<double>(p.requests), "set by design (parameter requests)");
    for (std::size_t i = 0; i < phases.size(); ++i) {
      const Phase& ph = phases[i];
      if (auto s = Seed(ctx, **conn, ns, ph, p.stock); !s)
        return Inconclusive(std::move(result), ph.name + ": seed: " + s.error().message);
      Tally tally;
      auto outcome = RunPhase(ctx, mode, ns, ph, p, tally);
      if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
      if (!outcome)
        return Inconclusive(std::move(result), ph.name + ": " + outcome.error().message);
      if (tally.not_served > 0) {
        return Inconclusive(std::move(result),
                            ph.name + ": " + std::to_string(tally.not_served.load()) +
                                " requests were never served (a client could not connect or "
                                "the deadline passed)");
      }
      const std::string sfx = mode == "failure" ? "" : "_" + ph.name;
      const auto& o = *outcome;
      put("issued" + sfx, static_cast<double>(o.issued), "read_back");
      put("oversold" + sfx, static_cast<double>(o.issued - p.stock), "read_back");
      put("duplicates" + sfx, static_cast<double>(o.issued - o.distinct_users), "read_back");
      if (ph.variant == Variant::kRedis) {
        put("stock_left" + sfx, static_cast<double>(o.stock_left_redis), "read_back");
        put("users" + sfx, static_cast<double>(o.users_redis), "read_back");
        put("record_mismatch" + sfx, static_cast<double>(o.users_redis - o.issued), "read_back");
      } else {
        put("stock_left" + sfx, static_cast<double>(o.stock_left), "read_back");
        put("stock_mismatch" + sfx, static_cast<double>(o.issued - (p.stock - o.stock_left)),
            "read_back");
      }
      put("accepted" + sfx, static_cast<double>(tally.accepted), "self_reported");
      put("sold_out" + sfx, static_cast<double>(tally.sold_out), "self_reported");
      put("duplicate_refused" + sfx, static_cast<double>(tally.duplicate_refused), "self_reported");
      put("errors" + sfx, static_cast<double>(tally.errors), "self_reported");
      put("requests_per_s" + sfx, o.seconds > 0 ? static_cast<double>(p.requests) / o.seconds : 0,
          "self_reported");
      details["variants"].push_back(
          {{"name", ph.name},
           {"runs", VariantText(ph.variant)},
           {"seconds", o.seconds},
           {"retries", tally.retries.load()},
           {"compensated", tally.compensated.load()},
           {"accepted_matches_issued", tally.accepted.load() == o.issued},
           {"redis_keys",
            ph.variant == Variant::kRedis ? Json{ph.stock_key, ph.users_key} : Json::array()},
           {"series", o.series}});
      Progress(ctx, 100.0 * static_cast<double>(i + 1) / static_cast<double>(phases.size()));
    }
    details["provenance"] = provenance;
    result.details_json = details.dump();
    return result;
  }

 private:
  static std::string VariantText(Variant v) {
    switch (v) {
      case Variant::kReadThenWrite:
        return "SELECT stock and the user's coupons, work, UPDATE stock = read - 1, INSERT";
      case Variant::kAtomicUpdate:
        return "work, UPDATE stock = stock - 1 WHERE stock > 0, INSERT with a unique per-user key";
      case Variant::kRedis:
        return "work, Lua (SISMEMBER, GET > 0, DECR, SADD), INSERT into MariaDB, compensate on "
               "failure";
    }
    return "";
  }

  domain::Status Seed(const domain::RunContext& ctx, mysql::Connection& conn, const std::string& ns,
                      const Phase& ph, std::int64_t stock) const {
    auto s = conn.Exec(
        "INSERT INTO coupon_stock (run_ns, coupon_id, initial_stock, stock) VALUES (?,?,?,?)",
        {ns, ph.name, stock, stock});
    if (!s) return s.error();
    if (ph.variant == Variant::kRedis) {
      auto rc = OpenRedis();
      if (!rc) return rc.error();
      auto set =
          (*rc)->Pipeline({{"SET", ph.stock_key, std::to_string(stock)}, {"DEL", ph.users_key}});
      if (!set) return set.error();
      for (const auto& r : *set) {
        if (r.is_error()) return domain::MakeError(domain::ErrorCode::kInternal, "redis: " + r.str);
      }
    }
    Step(ctx, ph.name + ": stock " + std::to_string(stock) + " (run_ns " + ns + ", coupon " +
                  ph.name + (ph.variant == Variant::kRedis ? ", key " + ph.stock_key : "") + ")");
    return {};
  }

  domain::Result<PhaseOutcome> RunPhase(const domain::RunContext& ctx, const std::string& mode,
                                        const std::string& ns, const Phase& ph, const Params& p,
                                        Tally& tally) const {
    Step(ctx, mode + "/" + ph.name + ": " + std::to_string(p.clients) + " clients, " +
                  std::to_string(p.requests) + " requests (" + std::to_string(p.per_user) +
                  " per user), think " + std::to_string(p.think_ms) +
                  " ms: " + VariantText(ph.variant));
    const auto deadline =
        SteadyClock::now() + 60s + std::chrono::milliseconds(p.requests * (p.think_ms + 5));
    PhaseOutcome out;
    std::latch ready(p.clients + 1);
    std::vector<std::thread> clients;
    for (int c = 0; c < p.clients; ++c) {
      clients.emplace_back([&, c] {
        bool arrived = false;  // the latch must be counted down whatever happens
        try {
          Client(ctx, ns, ph, p, c, deadline, ready, arrived, tally);
        } catch (const std::exception& e) {
          ++tally.errors;
          Step(ctx, ph.name + ": client " + std::to_string(c) + ": " + e.what());
        }
        if (!arrived) ready.count_down();
        tally.MarkEnd();
        ++tally.clients_done;
      });
    }
    ready.arrive_and_wait();
    const auto start = SteadyClock::now();
    while (tally.clients_done.load() < p.clients) {
      out.series.push_back({{"t_s", MsSince(start) / 1000.0},
                            {"requests", std::min(tally.next.load(), p.requests)},
                            {"accepted", tally.accepted.load()},
                            {"sold_out", tally.sold_out.load()},
                            {"duplicate_refused", tally.duplicate_refused.load()}});
      std::this_thread::sleep_for(100ms);
    }
    for (auto& t : clients) t.join();
    // From the start signal to the last client's end (not the sampling loop's last wake-up).
    out.seconds = std::chrono::duration<double>(
                      SteadyClock::time_point(SteadyClock::duration(tally.last_end.load())) - start)
                      .count();
    if (ctx.stop.stop_requested())
      return domain::MakeError(domain::ErrorCode::kConflict, "cancelled");
    if (auto s = ReadBackPhase(ns, ph, out); !s) return s.error();
    Step(ctx, mode + "/" + ph.name + ": issued " + std::to_string(out.issued) + " of stock " +
                  std::to_string(p.stock) + " to " + std::to_string(out.distinct_users) +
                  " users (accepted " + std::to_string(tally.accepted.load()) + ", sold out " +
                  std::to_string(tally.sold_out.load()) + ", duplicate refused " +
                  std::to_string(tally.duplicate_refused.load()) + ", errors " +
                  std::to_string(tally.errors.load()) + ") in " + std::to_string(out.seconds) +
                  " s");
    return out;
  }

  // One client: its own connections; requests from the shared counter until none is left.
  void Client(const domain::RunContext& ctx, const std::string& ns, const Phase& ph,
              const Params& p, int c, SteadyClock::time_point deadline, std::latch& ready,
              bool& arrived, Tally& tally) const {
    auto conn = mysql::Connection::Open(MysqlSettings());
    domain::Result<std::unique_ptr<redis::Connection>> rc =
        domain::MakeError(domain::ErrorCode::kNotFound, "not needed");
    if (ph.variant == Variant::kRedis) rc = OpenRedis();
    arrived = true;
    ready.arrive_and_wait();
    const bool connected = conn && (ph.variant != Variant::kRedis || rc);
    if (!connected) {
      Step(ctx, ph.name + ": client " + std::to_string(c) + ": " +
                    (conn ? rc.error().message : conn.error().message));
    }
    for (;;) {
      const std::int64_t k = tally.next.fetch_add(1);
      if (k >= p.requests) return;
      if (!connected || ctx.stop.stop_requested() || SteadyClock::now() >= deadline) {
        ++tally.not_served;
        continue;
      }
      const std::int64_t user = k / p.per_user + 1;
      switch (ph.variant) {
        case Variant::kReadThenWrite:
          ReadThenWrite(ctx, **conn, ns, ph, p, user, k, tally);
          break;
        case Variant::kAtomicUpdate:
          AtomicUpdate(ctx, **conn, ns, ph, p, user, k, tally);
          break;
        case Variant::kRedis:
          ViaRedis(ctx, **conn, **rc, ns, ph, p, user, k, tally);
          break;
      }
      if ((*conn)->broken()) {
        auto again = mysql::Connection::Open(MysqlSettings());
        if (again) conn = std::move(again);
      }
    }
  }

  // The anti-pattern: decide from a plain read, write the decision later.
  static void ReadThenWrite(const domain::RunContext& ctx, mysql::Connection& conn,
                            const std::string& ns, const Phase& ph, const Params& p,
                            std::int64_t user, std::int64_t k, Tally& tally) {
    auto fail = [&] {
      ++tally.errors;
      (void)conn.Rollback();
    };
    if (!conn.Begin()) return fail();
    auto stock = conn.Query("SELECT stock FROM coupon_stock WHERE run_ns = ? AND coupon_id = ?",
                            {ns, ph.name});
    if (!stock || stock->rows.empty()) return fail();
    auto held = conn.Query(
        "SELECT COUNT(*) FROM coupon_issue WHERE run_ns = ? AND coupon_id = ? AND user_id = ?",
        {ns, ph.name, user});
    if (!held) return fail();
    const std::int64_t left = stock->Scalar();
    if (left <= 0 || held->Scalar() > 0) {
      ++(left <= 0 ? tally.sold_out : tally.duplicate_refused);
      (void)conn.Rollback();
      return;
    }
    if (p.think_ms > 0 && !SleepFor(std::chrono::milliseconds(p.think_ms), ctx.stop)) {
      (void)conn.Rollback();
      ++tally.not_served;
      return;
    }
    auto updated = conn.Exec("UPDATE coupon_stock SET stock = ? WHERE run_ns = ? AND coupon_id = ?",
                             {left - 1, ns, ph.name});
    if (!updated) return fail();
    auto issued = conn.Exec(
        "INSERT INTO coupon_issue (run_ns, coupon_id, user_id, dedup_user_id, request_no, "
        "issued_at_us) VALUES (?,?,?,NULL,?,?)",
        {ns, ph.name, user, k, NowMicros()});
    if (!issued) return fail();
    if (!conn.Commit()) return fail();
    ++tally.accepted;
  }

  // The fix in MariaDB: the conditional UPDATE's affected rows decide; the unique per-user key
  // refuses a second coupon (the rollback gives the stock back).
  static void AtomicUpdate(const domain::RunContext& ctx, mysql::Connection& conn,
                           const std::string& ns, const Phase& ph, const Params& p,
                           std::int64_t user, std::int64_t k, Tally& tally) {
    if (p.think_ms > 0 && !SleepFor(std::chrono::milliseconds(p.think_ms), ctx.stop)) {
      ++tally.not_served;
      return;
    }
    for (int attempt = 1; attempt <= kAttempts; ++attempt) {
      if (!conn.Begin()) break;
      auto updated = conn.Exec(
          "UPDATE coupon_stock SET stock = stock - 1 WHERE run_ns = ? AND coupon_id = ? AND "
          "stock > 0",
          {ns, ph.name});
      if (updated && *updated == 0) {
        (void)conn.Rollback();
        ++tally.sold_out;
        return;
      }
      domain::Status s = updated ? domain::Status{} : domain::Status{updated.error()};
      if (s) {
        auto issued = conn.Exec(
            "INSERT INTO coupon_issue (run_ns, coupon_id, user_id, dedup_user_id, request_no, "
            "issued_at_us) VALUES (?,?,?,?,?,?)",
            {ns, ph.name, user, user, k, NowMicros()});
        if (!issued) s = issued.error();
      }
      if (s) s = conn.Commit();
      if (s) {
        ++tally.accepted;
        return;
      }
      const unsigned err = conn.last_errno();
      (void)conn.Rollback();
      if (err == mysql::kErrDuplicateKey) {
        ++tally.duplicate_refused;
        return;
      }
      if (err != mysql::kErrDeadlock && err != mysql::kErrLockWaitTimeout) break;
      ++tally.retries;
    }
    ++tally.errors;
  }

  // The fix in Redis: the script decides atomically (per-user set, stock counter); MariaDB keeps
  // the durable record; a record that cannot be written gives the coupon back.
  static void ViaRedis(const domain::RunContext& ctx, mysql::Connection& conn,
                       redis::Connection& rc, const std::string& ns, const Phase& ph,
                       const Params& p, std::int64_t user, std::int64_t k, Tally& tally) {
    if (p.think_ms > 0 && !SleepFor(std::chrono::milliseconds(p.think_ms), ctx.stop)) {
      ++tally.not_served;
      return;
    }
    const std::string uid = std::to_string(user);
    auto decided = rc.Command({"EVAL", kLuaIssue, "2", ph.stock_key, ph.users_key, uid});
    if (!decided || decided->is_error() || decided->type != REDIS_REPLY_INTEGER) {
      ++tally.errors;
      return;
    }
    if (decided->integer == 0) {
      ++tally.sold_out;
      return;
    }
    if (decided->integer < 0) {
      ++tally.duplicate_refused;
      return;
    }
    auto recorded = conn.Exec(
        "INSERT INTO coupon_issue (run_ns, coupon_id, user_id, dedup_user_id, request_no, "
        "issued_at_us) VALUES (?,?,?,?,?,?)",
        {ns, ph.name, user, user, k, NowMicros()});
    if (recorded) {
      ++tally.accepted;
      return;
    }
    const bool duplicate = conn.last_errno() == mysql::kErrDuplicateKey;
    ++(duplicate ? tally.duplicate_refused : tally.errors);
    auto back = rc.Command({"EVAL", kLuaCompensate, "2", ph.stock_key, ph.users_key, uid});
    if (back && !back->is_error()) ++tally.compensated;
  }

  domain::Status ReadBackPhase(const std::string& ns, const Phase& ph, PhaseOutcome& out) const {
    auto conn = mysql::Connection::Open(MysqlSettings());
    if (!conn) return conn.error();
    auto rows = (*conn)->Query(
        "SELECT (SELECT COUNT(*) FROM coupon_issue WHERE run_ns = ? AND coupon_id = ?), "
        "(SELECT COUNT(DISTINCT user_id) FROM coupon_issue WHERE run_ns = ? AND coupon_id = ?), "
        "(SELECT stock FROM coupon_stock WHERE run_ns = ? AND coupon_id = ?)",
        {ns, ph.name, ns, ph.name, ns, ph.name});
    if (!rows) return rows.error();
    if (rows->rows.empty() || rows->rows[0].size() < 3 || !rows->rows[0][2]) {
      return domain::MakeError(domain::ErrorCode::kInternal, "read-back found no stock row");
    }
    const auto& r = rows->rows[0];
    out.issued = std::stoll(r[0].value_or("0"));
    out.distinct_users = std::stoll(r[1].value_or("0"));
    out.stock_left = std::stoll(*r[2]);
    if (ph.variant != Variant::kRedis) return {};
    auto rc = OpenRedis();
    if (!rc) return rc.error();
    auto replies = (*rc)->Pipeline({{"GET", ph.stock_key}, {"SCARD", ph.users_key}});
    if (!replies) return replies.error();
    if (replies->size() != 2 || (*replies)[0].is_nil() || (*replies)[0].is_error() ||
        (*replies)[1].is_error()) {
      return domain::MakeError(domain::ErrorCode::kInternal,
                               "redis read-back: no stock key " + ph.stock_key);
    }
    out.stock_left_redis = std::stoll((*replies)[0].str);
    out.users_redis = (*replies)[1].integer;
    return {};
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeCouponOversell(const StackConfig& config) {
  return std::make_unique<CouponOversell>(config);
}

}  // namespace lab::runners
