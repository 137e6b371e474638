// E-019 and E-024 through the HTTP API of the real server: concurrent MariaDB connections
// contending for the same rows (transfers locking two accounts, clients issuing one limited
// coupon). Each confirmed run is kept and recounted here from MariaDB and Redis row by row,
// independently of the runner's SQL; each practice=off run must be refuted.
// Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/integration/api_harness.h"
#include "tests/integration/redis_support.h"

namespace lab::testing {
namespace {

using Json = nlohmann::json;

// Every row of `sql` (one parameter: the run_ns) as strings.
std::vector<runners::mysql::Row> RowsOf(runners::mysql::Connection& db, const std::string& sql,
                                        const std::string& ns) {
  auto rows = db.Query(sql, {ns});
  EXPECT_TRUE(rows.ok()) << sql << ": " << (rows ? "" : rows.error().message);
  return rows ? rows->rows : std::vector<runners::mysql::Row>{};
}

std::int64_t Num(const std::optional<std::string>& v) { return v ? std::stoll(*v) : 0; }

// E-019: opposite lock orders deadlock and lose transfers; ordered locking + retry loses none.
// The requests, the log, the DLQ and the balances are read here and reconciled transfer by
// transfer: every request is applied, in the DLQ or lost, each balance is its start plus its
// applied transfers, and the run's numbers are these.
TEST(Integration, E019LockOrderDeadlocks) {
  auto o = RunKeptThroughApi("E-019", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  auto db = Mysql();
  ASSERT_NE(db, nullptr);
  for (const char* mode : {"failure", "success"}) {
    const std::string ns = DetailsOf(o, mode).value("run_ns", "");
    ASSERT_FALSE(ns.empty()) << mode << Describe(o);
    const auto requests =
        RowsOf(*db,
               "SELECT transfer_id, from_account, to_account, amount FROM transfer_request "
               "WHERE run_ns = ?",
               ns);
    std::set<std::int64_t> applied;
    for (const auto& r : RowsOf(*db, "SELECT transfer_id FROM transfer_log WHERE run_ns = ?", ns))
      applied.insert(Num(r[0]));
    std::set<std::int64_t> dlq;
    for (const auto& r : RowsOf(*db, "SELECT transfer_id FROM transfer_dlq WHERE run_ns = ?", ns))
      dlq.insert(Num(r[0]));
    std::map<std::int64_t, std::int64_t> expected;  // account -> balance from the log
    std::int64_t lost = 0;
    for (const auto& r : requests) {
      const std::int64_t id = Num(r[0]);
      EXPECT_FALSE(applied.count(id) && dlq.count(id)) << mode << " transfer " << id;
      if (applied.count(id)) {
        expected[Num(r[1])] -= Num(r[3]);
        expected[Num(r[2])] += Num(r[3]);
      } else if (!dlq.count(id)) {
        ++lost;
      }
    }
    std::int64_t total = 0;
    std::int64_t mismatched = 0;
    const auto accounts =
        RowsOf(*db, "SELECT account_id, balance FROM transfer_account WHERE run_ns = ?", ns);
    for (const auto& r : accounts) {
      total += Num(r[1]);
      mismatched += Num(r[1]) != 1000000 + expected[Num(r[0])] ? 1 : 0;
    }
    EXPECT_EQ(requests.size(), 8u * 40u) << mode;
    EXPECT_EQ(accounts.size(), 4u) << mode;
    EXPECT_EQ(total, 4 * 1000000) << mode << ": money is conserved";
    EXPECT_EQ(mismatched, 0) << mode;
    EXPECT_EQ(MetricOf(o, mode, "transfers"), static_cast<double>(requests.size())) << mode;
    EXPECT_EQ(MetricOf(o, mode, "applied"), static_cast<double>(applied.size())) << mode;
    EXPECT_EQ(MetricOf(o, mode, "dlq"), static_cast<double>(dlq.size())) << mode;
    EXPECT_EQ(MetricOf(o, mode, "lost"), static_cast<double>(lost)) << mode << Describe(o);
    EXPECT_GE(MetricOf(o, mode, "deadlocks_server"), MetricOf(o, mode, "deadlocks_client"))
        << mode << ": every 1213 a connection got is a deadlock the server counted";
    EXPECT_GT(MetricOf(o, mode, "row_lock_waits"), 0) << mode;
  }
  EXPECT_GT(MetricOf(o, "failure", "lost"), 0) << Describe(o);
  EXPECT_EQ(MetricOf(o, "failure", "lost"), MetricOf(o, "failure", "given_up"))
      << "each transfer the client gave up is missing from the log";
  EXPECT_EQ(MetricOf(o, "failure", "dlq"), 0);
  EXPECT_EQ(MetricOf(o, "success", "lost"), 0) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "deadlocks_client"), 0) << Describe(o);
  CleanupKept("E-019", o);
  EXPECT_EQ(RowsOf(*db, "SELECT 1 FROM transfer_request WHERE run_ns = ?",
                   DetailsOf(o, "success").value("run_ns", ""))
                .size(),
            0u)
      << "cleanup removes the run's rows";
}

// practice=off: the success mode locks in request order without retry, so it deadlocks and
// loses transfers like the failure mode.
TEST(Integration, E019WithoutLockOrder) {
  auto o = RunThroughApi("E-019", {{"practice", std::string("off")}}, {"success"});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "deadlocks_server"), 0) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "lost"), 0) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "money_drift"), 0) << Describe(o);
}

// E-024: read-then-write oversells; the atomic UPDATE and the Redis script issue exactly the
// stock, one coupon per user. The coupon rows are read here user by user, and the Redis fix's
// counter and user set are read from Redis.
TEST(Integration, E024CouponOversell) {
  auto o = RunKeptThroughApi("E-024", {});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  auto db = Mysql();
  ASSERT_NE(db, nullptr);
  const double stock = 50;
  struct Variant {
    const char* mode;
    const char* coupon;
    const char* suffix;
  };
  for (const Variant v : {Variant{"failure", "read_then_write", ""},
                          Variant{"success", "atomic_update", "_atomic_update"},
                          Variant{"success", "redis", "_redis"}}) {
    const std::string ns = DetailsOf(o, v.mode).value("run_ns", "");
    ASSERT_FALSE(ns.empty()) << v.mode << Describe(o);
    std::map<std::int64_t, int> per_user;
    double issued = 0;
    for (const auto& r :
         RowsOf(*db,
                std::string("SELECT user_id FROM coupon_issue WHERE run_ns = ? AND coupon_id = '") +
                    v.coupon + "'",
                ns)) {
      ++per_user[Num(r[0])];
      ++issued;
    }
    double duplicates = 0;
    for (const auto& [user, n] : per_user) duplicates += n - 1;
    const std::string sfx = v.suffix;
    EXPECT_EQ(MetricOf(o, v.mode, "issued" + sfx), issued) << v.coupon << Describe(o);
    EXPECT_EQ(MetricOf(o, v.mode, "oversold" + sfx), issued - stock) << v.coupon;
    EXPECT_EQ(MetricOf(o, v.mode, "duplicates" + sfx), duplicates) << v.coupon;
    EXPECT_GT(MetricOf(o, v.mode, "requests_per_s" + sfx), 0) << v.coupon;
    if (std::string(v.mode) == "failure") {
      EXPECT_GT(issued, stock) << "read-then-write oversells";
    } else {
      EXPECT_EQ(issued, stock) << v.coupon << ": exactly the stock";
      EXPECT_EQ(duplicates, 0) << v.coupon;
    }
  }
  // The Redis fix's decision state, read from Redis: no coupon left, one member per issued row.
  auto rc = Redis();
  ASSERT_NE(rc, nullptr);
  for (const auto& variant : DetailsOf(o, "success").value("variants", Json::array())) {
    if (variant.value("name", "") != "redis") continue;
    const auto keys = variant.value("redis_keys", Json::array());
    ASSERT_EQ(keys.size(), 2u);
    auto left = rc->Command({"GET", keys[0].get<std::string>()});
    auto members = rc->Command({"SCARD", keys[1].get<std::string>()});
    ASSERT_TRUE(left.ok() && members.ok());
    EXPECT_EQ(left->str, "0");
    EXPECT_EQ(static_cast<double>(members->integer), stock);
  }
  CleanupKept("E-024", o);
}

// practice=off: both fixes run the read-then-write, so the success mode oversells too.
TEST(Integration, E024WithoutAtomicIssue) {
  auto o = RunThroughApi("E-024", {{"practice", std::string("off")}}, {"success"});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "oversold_atomic_update"), 0) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "oversold_redis"), 0) << Describe(o);
}

}  // namespace
}  // namespace lab::testing
