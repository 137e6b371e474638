// lock-holder (E-039A, E-039B): one real process that takes a Redis lock, does its "work" in a
// critical section it records in MariaDB, and unlocks.
//   acquire: a Lua script that runs SET <lock-key> <holder>:<token> NX PX <ttl-ms> and, only
//            when that succeeded, INCR <token-key> (the fencing token, stored in the lock value);
//            retried every --retry-ms until --acquire-timeout-ms.
//   enter:   INSERT lock_interval (started_us); "entered" is printed after the row exists.
//   work:    --work-ms in 10 ms steps (a SIGSTOP freezes the work, it does not consume it), then
//            "work_done"; with --resource the holder writes the resource (below), then works
//            --after-write-ms more.
//   leave:   UPDATE lock_interval SET ended_us; then --tail-ms of work outside the section that
//            still runs under the lock (a job whose critical write is early, its unlock late).
//   unlock:  GET the lock (what it held just before), then DEL (--safe-unlock 0) or the
//            compare-and-delete script (--safe-unlock 1).
// --resume 1: the holder was killed in its section and is restarted; it reads its own open
// lock_interval row and resumes the work with the token it had, believing it still holds the
// lock (the crash_restart anti-pattern) — it does not acquire again.
// The write (--resource R): in one transaction, UPDATE fenced_resource (with --fenced 1 only
// when last_token < token: the store refuses an older token) and INSERT fenced_write with the
// store's answer: accepted (1 row changed) or refused (0 rows).
// Reports (Emit): owner, token, acquired_at_us, interval_id, entered, work_done, write,
// left_at_us, unlock_before, unlock_deleted, unlock_deleted_foreign, unlock_kept_foreign, done.
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "runners/common/util.h"
#include "runners/redis/redis_client.h"
#include "runners/roles/role_common.h"

namespace lab::runners::roles {
namespace {

using namespace std::chrono_literals;

// SET NX PX, and the token only for the acquisition that won (so tokens follow the order in
// which the lock was really held). Returns the token, or 0 when the lock is taken.
constexpr const char* kAcquire =
    "local t = tonumber(redis.call('get', KEYS[2]) or '0') + 1 "
    "if redis.call('set', KEYS[1], ARGV[1] .. ':' .. t, 'NX', 'PX', ARGV[2]) then "
    "  return redis.call('incr', KEYS[2]) end "
    "return 0";
constexpr const char* kCompareAndDelete =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end";

struct Plan {
  std::string ns;
  std::string scenario;
  std::string holder;
  std::string lock_key;
  std::string token_key;
  std::string resource;
  std::int64_t ttl_ms = 500;
  std::int64_t work_ms = 0;
  std::int64_t after_write_ms = 0;
  std::int64_t tail_ms = 0;
  std::int64_t acquire_timeout_ms = 10000;
  std::int64_t retry_ms = 20;
  bool fenced = false;
  bool safe_unlock = false;
  bool resume = false;
};

Plan PlanFrom(const RoleArgs& args) {
  Plan p;
  p.ns = args.Get("ns");
  p.scenario = args.Get("scenario");
  p.holder = args.Get("holder-name");
  p.lock_key = args.Get("lock-key");
  p.token_key = args.Get("token-key");
  p.resource = args.Get("resource");
  p.ttl_ms = args.Int("ttl-ms", 500);
  p.work_ms = args.Int("work-ms", 0);
  p.after_write_ms = args.Int("after-write-ms", 0);
  p.tail_ms = args.Int("tail-ms", 0);
  p.acquire_timeout_ms = args.Int("acquire-timeout-ms", 10000);
  p.retry_ms = std::max<std::int64_t>(1, args.Int("retry-ms", 20));
  p.fenced = args.Int("fenced", 0) == 1;
  p.safe_unlock = args.Int("safe-unlock", 0) == 1;
  p.resume = args.Int("resume", 0) == 1;
  return p;
}

// Work as a count of 10 ms steps: a stopped process resumes the steps it had left, like a
// program frozen by a GC pause. False when SIGTERM asked the holder to stop.
bool Work(std::int64_t ms) {
  for (std::int64_t done = 0; done < ms; done += 10) {
    if (StopRequested()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<std::int64_t>(10, ms - done)));
  }
  return true;
}

struct Held {
  std::int64_t token = 0;
  std::string owner;  // the lock's value while this holder owns it
};

// Retries the acquire script until it wins or the bound passes.
domain::Result<Held> Acquire(redis::Connection& rc, const Plan& p) {
  const auto deadline = SteadyClock::now() + std::chrono::milliseconds(p.acquire_timeout_ms);
  for (std::int64_t attempt = 1;; ++attempt) {
    auto r = rc.Command(
        {"EVAL", kAcquire, "2", p.lock_key, p.token_key, p.holder, std::to_string(p.ttl_ms)});
    if (!r) return r.error();
    if (r->is_error()) return domain::MakeError(domain::ErrorCode::kInternal, "redis: " + r->str);
    if (r->integer > 0) {
      Emit("acquire_attempts", attempt);
      return Held{r->integer, p.holder + ":" + std::to_string(r->integer)};
    }
    if (StopRequested() || SteadyClock::now() >= deadline) {
      return domain::MakeError(domain::ErrorCode::kTimeout,
                               "lock not acquired in " + std::to_string(p.acquire_timeout_ms) +
                                   " ms (" + std::to_string(attempt) + " attempts)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(p.retry_ms));
  }
}

// The token this holder had when it was killed, from its own open interval (its only state).
domain::Result<Held> Resume(mysql::Connection& db, const Plan& p) {
  auto rows = db.Query(
      "SELECT id, token FROM lock_interval WHERE run_ns = ? AND scenario = ? AND holder = ? "
      "AND ended_us IS NULL ORDER BY id DESC LIMIT 1",
      {p.ns, p.scenario, p.holder});
  if (!rows) return rows.error();
  if (rows->rows.empty() || !rows->rows[0][1]) {
    return domain::MakeError(domain::ErrorCode::kNotFound, "no open interval to resume");
  }
  Emit("resumed_from_interval", *rows->rows[0][0]);
  const std::int64_t token = std::stoll(*rows->rows[0][1]);
  return Held{token, p.holder + ":" + std::to_string(token)};
}

// The store's answer to one write, recorded with the write in the same transaction.
domain::Result<std::string> WriteResource(mysql::Connection& db, const Plan& p, const Held& held) {
  std::string outcome;
  auto s = mysql::InTransaction(db, [&](mysql::Connection& c) -> domain::Status {
    const std::string value = p.holder + "@" + std::to_string(held.token);
    auto changed =
        p.fenced ? c.Exec(
                       "UPDATE fenced_resource SET last_token = ?, value = ? WHERE run_ns = ? AND "
                       "resource = ? AND last_token < ?",
                       {held.token, value, p.ns, p.resource, held.token})
                 : c.Exec(
                       "UPDATE fenced_resource SET last_token = ?, value = ? WHERE run_ns = ? AND "
                       "resource = ?",
                       {held.token, value, p.ns, p.resource});
    if (!changed) return changed.error();
    outcome = *changed == 1 ? "accepted" : "refused";
    auto logged = c.Exec(
        "INSERT INTO fenced_write (run_ns, scenario, holder, token, outcome, written_at_us) "
        "VALUES (?,?,?,?,?,?)",
        {p.ns, p.scenario, p.holder, held.token, outcome, NowMicros()});
    if (!logged) return logged.error();
    return {};
  });
  if (!s) return s.error();
  return outcome;
}

// What the lock held just before the unlock, and what the unlock removed. The GET is this
// holder's own view; the runner checks Redis and MariaDB independently.
domain::Status Unlock(redis::Connection& rc, const Plan& p, const Held& held) {
  auto before = rc.Command({"GET", p.lock_key});
  if (!before) return before.error();
  auto del = p.safe_unlock ? rc.Command({"EVAL", kCompareAndDelete, "1", p.lock_key, held.owner})
                           : rc.Command({"DEL", p.lock_key});
  if (!del) return del.error();
  if (del->is_error()) return domain::MakeError(domain::ErrorCode::kInternal, "redis: " + del->str);
  const bool foreign = !before->is_nil() && before->str != held.owner;
  Emit("unlock_before", before->is_nil() ? std::string("(nil)") : before->str);
  Emit("unlock_deleted", static_cast<std::int64_t>(del->integer));
  Emit("unlock_deleted_foreign", foreign && del->integer > 0 ? 1 : 0);
  Emit("unlock_kept_foreign", foreign && del->integer == 0 ? 1 : 0);
  return {};
}

int Fail(const std::string& what) {
  Emit("error", what);
  return 1;
}

}  // namespace

int RunLockHolder(const RoleArgs& args) {
  StopOnSigterm();
  const Plan p = PlanFrom(args);
  if (p.ns.empty() || p.holder.empty() || p.lock_key.empty() || p.token_key.empty())
    return Fail("--ns, --holder-name, --lock-key and --token-key are required");
  auto db = mysql::Connection::Open(MysqlFromArgs(args));
  if (!db) return Fail("mysql: " + db.error().message);
  auto rc = redis::Connection::Open(args.Get("redis-host", "127.0.0.1"),
                                    static_cast<int>(args.Int("redis-port", 16379)), 2000ms);
  if (!rc) return Fail("redis: " + rc.error().message);

  auto held = p.resume ? Resume(**db, p) : Acquire(**rc, p);
  if (!held) return Fail((p.resume ? "resume: " : "acquire: ") + held.error().message);
  Emit("owner", held->owner);
  Emit("token", held->token);
  if (!p.resume) Emit("acquired_at_us", NowMicros());

  auto entered = (*db)->Exec(
      "INSERT INTO lock_interval (run_ns, scenario, holder, token, started_us) VALUES (?,?,?,?,?)",
      {p.ns, p.scenario, p.holder, held->token, NowMicros()});
  if (!entered) return Fail("mysql: " + entered.error().message);
  const auto interval_id = static_cast<std::int64_t>((*db)->LastInsertId());
  Emit("interval_id", interval_id);
  Emit("entered", 1);

  if (!Work(p.work_ms)) return Fail("stopped");
  Emit("work_done", 1);
  if (!p.resource.empty()) {
    auto outcome = WriteResource(**db, p, *held);
    if (!outcome) return Fail("mysql: " + outcome.error().message);
    Emit("write", *outcome);
  }
  if (!Work(p.after_write_ms)) return Fail("stopped");

  auto left =
      (*db)->Exec("UPDATE lock_interval SET ended_us = ? WHERE id = ?", {NowMicros(), interval_id});
  if (!left) return Fail("mysql: " + left.error().message);
  Emit("left_at_us", NowMicros());
  if (!Work(p.tail_ms)) return Fail("stopped");
  if (auto s = Unlock(**rc, p, *held); !s) return Fail("unlock: " + s.error().message);
  Emit("done", 1);
  return 0;
}

}  // namespace lab::runners::roles
