// E-019: concurrent transfers that lock two accounts in opposite orders deadlock (MariaDB error
// 1213) and, without a retry, lose the transfers InnoDB rolled back; locking in one global order
// (ascending account id) plus a bounded retry with backoff, and a DLQ for what still fails,
// loses none.
// The workload: `accounts` rows of transfer_account (balance 1,000,000 each) and threads x
// transfers rows of transfer_request (random distinct from/to, amount 1..100), written before any
// transfer runs. `threads` threads, one MariaDB connection each, carry out their share of the
// requests, each in one transaction: UPDATE the first account, do the transfer's work (hold_ms:
// what a service does between its debit and its credit, a fee lookup or a fraud check, while it
// holds the first row lock), UPDATE the second account, INSERT its transfer_log row, COMMIT.
//   failure: the debit first, then the credit (request order: A->B and B->A lock in opposite
//            orders); a transfer that fails is given up (no retry, no DLQ), as code that lets the
//            exception propagate to a caller that does not retry does.
//   success: the two UPDATEs in ascending account id order, whichever is the debit; 1213 and
//            1205 are retried up to max_retries times (backoff_ms doubling, jitter, capped at
//            1 s); what still fails, or fails otherwise, is written to transfer_dlq.
//            practice=off runs the failure practice here.
// Numbers (after every thread ended): transfers, applied (transfer_log rows), dlq (transfer_dlq
// rows) and lost (requests in neither) are read back; money_drift is SUM(balance) minus what the
// accounts started with (read back), ledger_mismatches counts accounts whose balance differs from
// the start plus the net of their applied transfers (read back: the log and the balances agree).
// deadlocks_server and row_lock_waits are the deltas of the server's Innodb_deadlocks and
// Innodb_row_lock_waits, which are server-wide: the catalog entry holds the MySQL server lock so
// no other run holding it adds to them, and deadlocks_client (the 1213 answers this run's
// connections received) must agree.
#include <atomic>
#include <latch>
#include <random>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr std::int64_t kInitialBalance = 1000000;
constexpr std::int64_t kAmountMax = 100;
constexpr int kLockWaitTimeoutS = 10;  // per session; the server default (50 s) outlives a run
constexpr auto kBackoffCap = 1000ms;

struct Params {
  int threads = 0;
  std::int64_t transfers = 0;  // per thread
  std::int64_t accounts = 0;
  std::int64_t hold_ms = 0;
  int max_retries = 0;
  std::int64_t backoff_ms = 0;
};

Params ParamsOf(const domain::RunContext& ctx) {
  return {static_cast<int>(domain::GetInt(ctx.params, "threads")),
          domain::GetInt(ctx.params, "transfers"),
          domain::GetInt(ctx.params, "accounts"),
          domain::GetInt(ctx.params, "hold_ms"),
          static_cast<int>(domain::GetInt(ctx.params, "max_retries")),
          domain::GetInt(ctx.params, "backoff_ms")};
}

struct Transfer {
  std::int64_t id = 0;
  std::int64_t from = 0;
  std::int64_t to = 0;
  std::int64_t amount = 0;
};

// What the threads saw (self-reported; the verdict rests on the read-back and server counters).
struct Tally {
  std::atomic<std::int64_t> committed{0};
  std::atomic<std::int64_t> deadlocks{0};           // 1213 answers
  std::atomic<std::int64_t> lock_wait_timeouts{0};  // 1205 answers
  std::atomic<std::int64_t> other_errors{0};
  std::atomic<std::int64_t> retries{0};
  std::atomic<std::int64_t> given_up{0};  // failed and dropped: no retry left, no DLQ
  std::atomic<std::int64_t> dlq_written{0};
  std::atomic<std::int64_t> dlq_failed{0};  // the DLQ insert itself failed
  std::atomic<std::int64_t> not_attempted{0};
  std::atomic<int> threads_done{0};
  std::atomic<SteadyClock::rep> last_end{0};  // when the last thread ended (steady clock ticks)
  void MarkEnd() {
    const auto now = SteadyClock::now().time_since_epoch().count();
    auto seen = last_end.load();
    while (seen < now && !last_end.compare_exchange_weak(seen, now)) {
    }
  }
};

// Innodb_deadlocks and Innodb_row_lock_waits, read now (SHOW GLOBAL STATUS: server-wide).
struct ServerCounters {
  std::int64_t deadlocks = -1;
  std::int64_t row_lock_waits = -1;
};

domain::Result<ServerCounters> ReadServerCounters(mysql::Connection& conn) {
  auto rows = conn.Query(
      "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_deadlocks', 'Innodb_row_lock_waits')");
  if (!rows) return rows.error();
  ServerCounters c;
  for (const auto& row : rows->rows) {
    if (row.size() < 2 || !row[0] || !row[1]) continue;
    if (*row[0] == "Innodb_deadlocks") c.deadlocks = std::stoll(*row[1]);
    if (*row[0] == "Innodb_row_lock_waits") c.row_lock_waits = std::stoll(*row[1]);
  }
  if (c.deadlocks < 0 || c.row_lock_waits < 0) {
    return domain::MakeError(domain::ErrorCode::kNotFound,
                             "the server reports no Innodb_deadlocks / Innodb_row_lock_waits");
  }
  return c;
}

// The read-back of the run's rows after every thread ended.
struct ReadBack {
  std::int64_t transfers = 0;
  std::int64_t applied = 0;
  std::int64_t dlq = 0;
  std::int64_t lost = 0;
  std::int64_t in_both = 0;  // applied and in the DLQ: must never happen
  std::int64_t balance_sum = 0;
  std::int64_t ledger_mismatches = 0;
  std::int64_t max_attempts = 0;  // over applied transfers
  Json dlq_sample = Json::array();
};

class LockOrderDeadlocks final : public ExperimentBase {
 public:
  explicit LockOrderDeadlocks(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-019"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const Params p = ParamsOf(ctx);
    const std::string ns = RunNs(ctx, mode);
    const bool practice = domain::GetString(ctx.params, "practice") != "off";
    const bool ordered = mode == "success" && practice;  // and retry + DLQ with it
    auto conn = OpenMysqlWithSchema();
    if (!conn) return Inconclusive(std::move(result), "mysql: " + conn.error().message);
    Created(ctx, mode, result, kArtifactRows, ns);

    auto transfers = Seed(ctx, **conn, ns, p);
    if (!transfers) return Inconclusive(std::move(result), "seed: " + transfers.error().message);
    Json settings = ServerSettings(**conn);
    auto before = ReadServerCounters(**conn);
    if (!before) return Inconclusive(std::move(result), before.error().message);

    Step(ctx, mode + ": " + std::to_string(p.threads) + " threads x " +
                  std::to_string(p.transfers) + " transfers on " + std::to_string(p.accounts) +
                  " accounts, hold " + std::to_string(p.hold_ms) + " ms between the two locks, " +
                  (ordered ? "ascending account order + retry (" + std::to_string(p.max_retries) +
                                 ") + DLQ"
                           : "debit first (request order), no retry"));
    Tally tally;
    double seconds = 0;
    Json series = RunThreads(ctx, ns, p, ordered, *transfers, tally, seconds);
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");

    auto after = ReadServerCounters(**conn);
    if (!after) return Inconclusive(std::move(result), after.error().message);
    auto back = Read(**conn, ns);
    if (!back) return Inconclusive(std::move(result), "read-back: " + back.error().message);
    if (tally.not_attempted > 0) {
      return Inconclusive(std::move(result), std::to_string(tally.not_attempted.load()) +
                                                 " transfers were never attempted (a thread "
                                                 "could not connect or the deadline passed)");
    }
    const std::int64_t deadlocks_server = after->deadlocks - before->deadlocks;
    const std::int64_t row_lock_waits = after->row_lock_waits - before->row_lock_waits;
    const std::int64_t money_drift = back->balance_sum - p.accounts * kInitialBalance;
    Step(ctx, mode + ": applied=" + std::to_string(back->applied) +
                  " dlq=" + std::to_string(back->dlq) + " lost=" + std::to_string(back->lost) +
                  " of " + std::to_string(back->transfers) +
                  "; deadlocks client=" + std::to_string(tally.deadlocks.load()) +
                  " server=" + std::to_string(deadlocks_server) + "; row lock waits " +
                  std::to_string(row_lock_waits) + "; money drift " + std::to_string(money_drift));

    auto& m = result.metrics;
    Json provenance = Json::object();
    auto put = [&](const std::string& name, double v, const std::string& source) {
      m[name] = v;
      provenance[name] = source;
    };
    put("transfers", static_cast<double>(back->transfers), "read_back");
    put("applied", static_cast<double>(back->applied), "read_back");
    put("dlq", static_cast<double>(back->dlq), "read_back");
    put("lost", static_cast<double>(back->lost), "read_back");
    put("applied_and_dlq", static_cast<double>(back->in_both), "read_back");
    put("money_drift", static_cast<double>(money_drift), "read_back");
    put("ledger_mismatches", static_cast<double>(back->ledger_mismatches), "read_back");
    put("deadlocks_server", static_cast<double>(deadlocks_server), "server_counter");
    put("row_lock_waits", static_cast<double>(row_lock_waits), "server_counter");
    put("deadlocks_client", static_cast<double>(tally.deadlocks), "self_reported");
    put("lock_wait_timeouts", static_cast<double>(tally.lock_wait_timeouts), "self_reported");
    put("other_errors", static_cast<double>(tally.other_errors), "self_reported");
    put("retries", static_cast<double>(tally.retries), "self_reported");
    put("given_up", static_cast<double>(tally.given_up), "self_reported");
    put("seconds", seconds, "self_reported");
    put("applied_per_s", seconds > 0 ? static_cast<double>(back->applied) / seconds : 0,
        "self_reported");

    Json details = {
        {"run_ns", ns},
        {"practice", practice ? "on" : "off"},
        {"locking", ordered ? "ascending account id, whichever is the debit"
                            : "debit first, then credit (request order)"},
        {"on_error", ordered ? "retry 1213/1205 with backoff, then transfer_dlq"
                             : "give up (the transfer is dropped)"},
        {"hold_ms_means",
         "the transfer's work between its two UPDATEs (a fee lookup, a fraud check) while it "
         "holds the first row lock; the same in both modes"},
        {"initial_balance", kInitialBalance},
        {"initial_total", p.accounts * kInitialBalance},
        {"lock_wait_timeout_s", kLockWaitTimeoutS},
        {"server_settings", settings},
        {"server_counters_note",
         "Innodb_deadlocks and Innodb_row_lock_waits are server-wide: the run holds the "
         "mysql-server lock so no other run holding it adds to them; deadlocks_server >= "
         "deadlocks_client always (every deadlock victim gets 1213 on its connection)"},
        {"deadlocks_server_matches_client", deadlocks_server == tally.deadlocks.load()},
        {"committed_reported", tally.committed.load()},
        {"committed_matches_applied", tally.committed.load() == back->applied},
        {"dlq_written_reported", tally.dlq_written.load()},
        {"dlq_insert_failed", tally.dlq_failed.load()},
        {"max_attempts_applied", back->max_attempts},
        {"dlq_sample", back->dlq_sample},
        {"series", series},
        {"provenance", provenance}};
    result.details_json = details.dump();
    return result;
  }

 private:
  // Accounts and the transfer requests (the same seeded workload in both modes), in chunks.
  domain::Result<std::vector<Transfer>> Seed(const domain::RunContext& ctx, mysql::Connection& conn,
                                             const std::string& ns, const Params& p) const {
    constexpr std::int64_t kChunk = 500;
    for (std::int64_t from = 1; from <= p.accounts; from += kChunk) {
      const std::int64_t to = std::min(p.accounts, from + kChunk - 1);
      std::string sql = "INSERT INTO transfer_account (run_ns, account_id, balance) VALUES ";
      std::vector<mysql::Param> params;
      for (std::int64_t id = from; id <= to; ++id) {
        sql += (id == from ? "" : ",") + std::string("(?,?,?)");
        params.insert(params.end(), {ns, id, kInitialBalance});
      }
      if (auto s = conn.Exec(sql, params); !s) return s.error();
    }
    std::mt19937_64 rng(19u + static_cast<std::uint64_t>(ctx.repetition));
    std::uniform_int_distribution<std::int64_t> account(1, p.accounts);
    std::uniform_int_distribution<std::int64_t> amount(1, kAmountMax);
    std::vector<Transfer> transfers;
    const std::int64_t total = p.threads * p.transfers;
    for (std::int64_t id = 1; id <= total; ++id) {
      Transfer t{id, account(rng), 0, amount(rng)};
      do {
        t.to = account(rng);
      } while (t.to == t.from);
      transfers.push_back(t);
    }
    for (std::size_t first = 0; first < transfers.size(); first += kChunk) {
      const std::size_t last = std::min(transfers.size(), first + kChunk);
      std::string sql =
          "INSERT INTO transfer_request (run_ns, transfer_id, from_account, to_account, amount) "
          "VALUES ";
      std::vector<mysql::Param> params;
      for (std::size_t i = first; i < last; ++i) {
        sql += (i == first ? "" : ",") + std::string("(?,?,?,?,?)");
        const auto& t = transfers[i];
        params.insert(params.end(), {ns, t.id, t.from, t.to, t.amount});
      }
      if (auto s = conn.Exec(sql, params); !s) return s.error();
    }
    Step(ctx, "seeded " + std::to_string(p.accounts) + " accounts and " + std::to_string(total) +
                  " transfer requests (run_ns " + ns + ")");
    return transfers;
  }

  static Json ServerSettings(mysql::Connection& conn) {
    auto rows = conn.Query(
        "SELECT @@innodb_deadlock_detect, @@global.innodb_lock_wait_timeout, @@tx_isolation, "
        "@@version");
    if (!rows || rows->rows.empty() || rows->rows[0].size() < 4) return Json::object();
    const auto& r = rows->rows[0];
    return {{"innodb_deadlock_detect", r[0].value_or("")},
            {"innodb_lock_wait_timeout_global", r[1].value_or("")},
            {"isolation", r[2].value_or("")},
            {"version", r[3].value_or("")}};
  }

  // Starts the threads together, samples their progress every 250 ms, joins them; `seconds`
  // runs from the start signal to the last thread's end.
  Json RunThreads(const domain::RunContext& ctx, const std::string& ns, const Params& p,
                  bool ordered, const std::vector<Transfer>& transfers, Tally& tally,
                  double& seconds) const {
    const auto deadline =
        SteadyClock::now() + 60s +
        std::chrono::milliseconds(static_cast<std::int64_t>(transfers.size()) * (p.hold_ms + 5));
    std::latch ready(p.threads + 1);
    std::vector<std::thread> threads;
    for (int t = 0; t < p.threads; ++t) {
      threads.emplace_back([&, t] {
        bool arrived = false;  // the latch must be counted down whatever happens
        try {
          Worker(ctx, ns, p, ordered, transfers, t, deadline, ready, arrived, tally);
        } catch (const std::exception& e) {
          ++tally.other_errors;
          Step(ctx, "thread " + std::to_string(t) + ": " + e.what());
        }
        if (!arrived) ready.count_down();
        tally.MarkEnd();
        ++tally.threads_done;
      });
    }
    ready.arrive_and_wait();
    const auto start = SteadyClock::now();
    Json series = Json::array();
    while (tally.threads_done.load() < p.threads) {
      series.push_back({{"t_s", MsSince(start) / 1000.0},
                        {"committed", tally.committed.load()},
                        {"deadlocks", tally.deadlocks.load()},
                        {"retries", tally.retries.load()},
                        {"given_up", tally.given_up.load()},
                        {"dlq", tally.dlq_written.load()}});
      Progress(ctx, 100.0 *
                        static_cast<double>(tally.committed + tally.given_up + tally.dlq_written) /
                        static_cast<double>(std::max<std::size_t>(1, transfers.size())));
      std::this_thread::sleep_for(250ms);
    }
    for (auto& th : threads) th.join();
    seconds = std::chrono::duration<double>(
                  SteadyClock::time_point(SteadyClock::duration(tally.last_end.load())) - start)
                  .count();
    return series;
  }

  // One thread: its own connection, the requests t, t + threads, t + 2 * threads, …
  void Worker(const domain::RunContext& ctx, const std::string& ns, const Params& p, bool ordered,
              const std::vector<Transfer>& transfers, int t, SteadyClock::time_point deadline,
              std::latch& ready, bool& arrived, Tally& tally) const {
    auto conn = mysql::Connection::Open(MysqlSettings());
    if (conn) {
      if (auto s = (*conn)->Execute("SET SESSION innodb_lock_wait_timeout = " +
                                    std::to_string(kLockWaitTimeoutS));
          !s) {
        Step(ctx, "thread " + std::to_string(t) + ": " + s.error().message);
      }
    }
    arrived = true;
    ready.arrive_and_wait();
    std::int64_t mine = 0;
    for (std::size_t i = static_cast<std::size_t>(t); i < transfers.size();
         i += static_cast<std::size_t>(p.threads)) {
      ++mine;
    }
    if (!conn) {
      Step(ctx, "thread " + std::to_string(t) + ": " + conn.error().message);
      tally.not_attempted += mine;
      return;
    }
    std::mt19937_64 jitter_rng(7919u * static_cast<std::uint64_t>(t + 1));
    std::int64_t done = 0;
    for (std::size_t i = static_cast<std::size_t>(t); i < transfers.size();
         i += static_cast<std::size_t>(p.threads)) {
      if (ctx.stop.stop_requested() || SteadyClock::now() >= deadline) {
        tally.not_attempted += mine - done;
        return;
      }
      ++done;
      Carry(ctx, **conn, ns, p, ordered, transfers[i], jitter_rng, tally);
      if ((*conn)->broken()) {
        auto again = mysql::Connection::Open(MysqlSettings());
        if (!again) {
          tally.not_attempted += mine - done;
          return;
        }
        conn = std::move(again);
        (void)(*conn)->Execute("SET SESSION innodb_lock_wait_timeout = " +
                               std::to_string(kLockWaitTimeoutS));
      }
    }
  }

  // One transfer to its end: applied, given up (failure practice) or in the DLQ (success).
  void Carry(const domain::RunContext& ctx, mysql::Connection& conn, const std::string& ns,
             const Params& p, bool ordered, const Transfer& tr, std::mt19937_64& rng,
             Tally& tally) const {
    const int attempts_allowed = ordered ? p.max_retries + 1 : 1;
    unsigned last_errno = 0;
    std::string last_error;
    for (int attempt = 1; attempt <= attempts_allowed; ++attempt) {
      auto s = Attempt(ctx, conn, ns, p, ordered, tr, attempt);
      if (s) {
        ++tally.committed;
        return;
      }
      last_errno = conn.last_errno();
      last_error = s.error().message;
      (void)conn.Rollback();  // a deadlock rolled back already; a 1205 only the statement
      if (ctx.stop.stop_requested()) return;
      const bool retryable =
          last_errno == mysql::kErrDeadlock || last_errno == mysql::kErrLockWaitTimeout;
      if (last_errno == mysql::kErrDeadlock) {
        ++tally.deadlocks;
      } else if (last_errno == mysql::kErrLockWaitTimeout) {
        ++tally.lock_wait_timeouts;
      } else {
        ++tally.other_errors;
      }
      if (!retryable || attempt == attempts_allowed || conn.broken()) break;
      ++tally.retries;
      const auto base =
          std::min<std::int64_t>(kBackoffCap.count(), p.backoff_ms << std::min(attempt - 1, 20));
      std::uniform_int_distribution<std::int64_t> jitter(0, base);
      SleepFor(std::chrono::milliseconds(base / 2 + jitter(rng) / 2), ctx.stop);
    }
    if (!ordered) {
      ++tally.given_up;  // the anti-pattern: the error goes up, nobody carries the transfer
      return;
    }
    auto dlq = conn.Exec(
        "INSERT INTO transfer_dlq (run_ns, transfer_id, attempts, last_errno, last_error, "
        "failed_at_us) VALUES (?,?,?,?,?,?)",
        {ns, tr.id, static_cast<std::int64_t>(attempts_allowed),
         static_cast<std::int64_t>(last_errno), last_error.substr(0, 255), NowMicros()});
    if (dlq) {
      ++tally.dlq_written;
    } else {
      ++tally.dlq_failed;
      Step(ctx, "transfer " + std::to_string(tr.id) + ": DLQ insert: " + dlq.error().message);
    }
  }

  // One transaction: the two UPDATEs in the practice's order with the work between them, the
  // log row, COMMIT. An error leaves the transaction for the caller to roll back.
  domain::Status Attempt(const domain::RunContext& ctx, mysql::Connection& conn,
                         const std::string& ns, const Params& p, bool ordered, const Transfer& tr,
                         int attempt) const {
    // (account, delta) in locking order.
    std::pair<std::int64_t, std::int64_t> first{tr.from, -tr.amount};
    std::pair<std::int64_t, std::int64_t> second{tr.to, tr.amount};
    if (ordered && second.first < first.first) std::swap(first, second);
    if (auto s = conn.Begin(); !s) return s;
    for (int step = 0; step < 2; ++step) {
      const auto& [account, delta] = step == 0 ? first : second;
      auto updated = conn.Exec(
          "UPDATE transfer_account SET balance = balance + ? WHERE run_ns = ? AND account_id = ?",
          {delta, ns, account});
      if (!updated) return updated.error();
      if (*updated != 1) {
        return domain::MakeError(domain::ErrorCode::kNotFound,
                                 "account " + std::to_string(account) + " not found");
      }
      if (step == 0 && p.hold_ms > 0 && !SleepFor(std::chrono::milliseconds(p.hold_ms), ctx.stop)) {
        return domain::MakeError(domain::ErrorCode::kConflict, "cancelled");
      }
    }
    auto logged = conn.Exec(
        "INSERT INTO transfer_log (run_ns, transfer_id, attempts, applied_at_us) VALUES (?,?,?,?)",
        {ns, tr.id, static_cast<std::int64_t>(attempt), NowMicros()});
    if (!logged) return logged.error();
    return conn.Commit();
  }

  static domain::Result<ReadBack> Read(mysql::Connection& conn, const std::string& ns) {
    ReadBack b;
    auto counts = conn.Query(
        "SELECT (SELECT COUNT(*) FROM transfer_request WHERE run_ns = ?), "
        "(SELECT COUNT(*) FROM transfer_log WHERE run_ns = ?), "
        "(SELECT COUNT(*) FROM transfer_dlq WHERE run_ns = ?), "
        "(SELECT COUNT(*) FROM transfer_request r WHERE r.run_ns = ? AND NOT EXISTS (SELECT 1 "
        "FROM transfer_log l WHERE l.run_ns = r.run_ns AND l.transfer_id = r.transfer_id) AND "
        "NOT EXISTS (SELECT 1 FROM transfer_dlq d WHERE d.run_ns = r.run_ns AND d.transfer_id = "
        "r.transfer_id)), "
        "(SELECT COUNT(*) FROM transfer_log l JOIN transfer_dlq d ON d.run_ns = l.run_ns AND "
        "d.transfer_id = l.transfer_id WHERE l.run_ns = ?), "
        "(SELECT COALESCE(SUM(balance), 0) FROM transfer_account WHERE run_ns = ?), "
        "(SELECT COALESCE(MAX(attempts), 0) FROM transfer_log WHERE run_ns = ?)",
        {ns, ns, ns, ns, ns, ns, ns});
    if (!counts) return counts.error();
    if (counts->rows.empty() || counts->rows[0].size() < 7) {
      return domain::MakeError(domain::ErrorCode::kInternal, "read-back returned no row");
    }
    const auto& r = counts->rows[0];
    auto num = [](const std::optional<std::string>& v) { return v ? std::stoll(*v) : 0; };
    b.transfers = num(r[0]);
    b.applied = num(r[1]);
    b.dlq = num(r[2]);
    b.lost = num(r[3]);
    b.in_both = num(r[4]);
    b.balance_sum = num(r[5]);
    b.max_attempts = num(r[6]);
    // Each balance against the start plus the net of its applied transfers.
    auto ledger = conn.Query(
        "SELECT COUNT(*) FROM transfer_account a LEFT JOIN (SELECT account_id, SUM(delta) AS net "
        "FROM (SELECT r.from_account AS account_id, -r.amount AS delta FROM transfer_request r "
        "JOIN transfer_log l ON l.run_ns = r.run_ns AND l.transfer_id = r.transfer_id WHERE "
        "r.run_ns = ? UNION ALL SELECT r.to_account, r.amount FROM transfer_request r JOIN "
        "transfer_log l ON l.run_ns = r.run_ns AND l.transfer_id = r.transfer_id WHERE r.run_ns "
        "= ?) moves GROUP BY account_id) n ON n.account_id = a.account_id WHERE a.run_ns = ? AND "
        "a.balance <> ? + COALESCE(n.net, 0)",
        {ns, ns, ns, kInitialBalance});
    if (!ledger) return ledger.error();
    b.ledger_mismatches = ledger->Scalar();
    auto dlq = conn.Query(
        "SELECT transfer_id, attempts, last_errno, last_error FROM transfer_dlq WHERE run_ns = ? "
        "ORDER BY transfer_id LIMIT 10",
        {ns});
    if (!dlq) return dlq.error();
    for (const auto& row : dlq->rows) {
      b.dlq_sample.push_back({{"transfer_id", row[0].value_or("")},
                              {"attempts", row[1].value_or("")},
                              {"last_errno", row[2].value_or("")},
                              {"last_error", row[3].value_or("")}});
    }
    return b;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeLockOrderDeadlocks(const StackConfig& config) {
  return std::make_unique<LockOrderDeadlocks>(config);
}

}  // namespace lab::runners
