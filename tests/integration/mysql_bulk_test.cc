// The MySQL bulk-work experiments through the HTTP API of the real server (E-014 retention,
// E-022 backfill). Each confirmed run is kept and recounted here from MariaDB, from what the
// parameters say should be there rather than from the runner's arithmetic; cleanup is then
// checked to remove the run's rows and its own table. Each claim also has a run whose verdict
// turns: E-014 with a partition layout the cut-off falls inside, E-022 with practice=off.
// Requires `infra/stack.sh up`.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runners/mysql/mysql_client.h"
#include "tests/integration/api_harness.h"
#include "tests/integration/harness.h"
#include "tests/integration/redis_support.h"

namespace lab::testing {
namespace {

using Json = nlohmann::json;

std::int64_t Scalar(runners::mysql::Connection& db, const std::string& sql,
                    const std::vector<runners::mysql::Param>& params) {
  auto rows = db.Query(sql, params);
  EXPECT_TRUE(rows.ok()) << sql << ": " << (rows ? "" : rows.error().message);
  return rows ? rows->Scalar() : -1;
}

Json Details(const RunOutcome& o, const std::string& mode) {
  auto it = o.modes.find(mode);
  if (it == o.modes.end()) return Json::object();
  return Json::parse(it->second.details_json, nullptr, false);
}

// One E-014 strategy recounted from its kept tables.
struct RetentionRecount {
  std::string strategy;
  std::int64_t eligible_left = -1;   // rows older than the cut-off
  std::int64_t old_present = -1;     // seeded old rows still there (any age)
  std::int64_t keep_present = -1;    // seeded younger rows still there
  std::int64_t live_present = -1;    // live inserts present
  std::int64_t archived_old = -1;    // archive: seeded old rows in the archive
  std::int64_t archived_other = -1;  // archive: anything else in the archive
  std::int64_t archived_and_present = -1;
  std::int64_t old_partitions_left = -1;  // partition: partitions bounded at or below the cut-off
};

std::int64_t TablesNamed(runners::mysql::Connection& db, const std::string& table) {
  return Scalar(db,
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_NAME = ?",
                {table});
}

// E-014 with the defaults (200,000 old and 20,000 younger rows per strategy): confirmed, and the
// kept tables say the same — no old row left anywhere, every younger row and at least every
// acknowledged live insert present, the archive holding exactly the 200,000 old rows (none still
// live), no partition below the cut-off left. After cleanup the run's tables are gone.
TEST(Integration, E014RetentionStrategiesRemoveExactlyTheEligibleRows) {
  RunOutcome o = RunKeptThroughApi("E-014", {});
  const Json details = Details(o, "check");
  std::vector<RetentionRecount> recounts;
  std::vector<std::string> tables;
  {
    auto db = Mysql();
    ASSERT_TRUE(db);
    for (const auto& cost : details.value("costs", Json::array())) {
      RetentionRecount r;
      r.strategy = cost.value("strategy", "");
      const std::string table = cost.value("table", "");
      tables.push_back(table);
      const auto cutoff = details["layouts"][r.strategy].value("cutoff_us", std::int64_t{0});
      auto count = [&](const std::string& where, const std::vector<runners::mysql::Param>& p) {
        return Scalar(*db, "SELECT COUNT(*) FROM " + table + " WHERE " + where, p);
      };
      r.eligible_left = count("processed_at_us < ?", {cutoff});
      r.old_present = count("event_id LIKE 'old-%'", {});
      r.keep_present = count("event_id LIKE 'keep-%'", {});
      r.live_present = count("event_id LIKE 'live-%'", {});
      if (r.strategy == "archive") {
        const std::string archive = cost.value("archive_table", "");
        tables.push_back(archive);
        r.archived_old = Scalar(*db,
                                "SELECT COUNT(*) FROM " + archive +
                                    " WHERE event_id LIKE 'old-%' AND processed_at_us < ?",
                                {cutoff});
        r.archived_other = Scalar(*db, "SELECT COUNT(*) FROM " + archive, {}) - r.archived_old;
        r.archived_and_present = Scalar(*db,
                                        "SELECT COUNT(*) FROM " + archive + " a JOIN " + table +
                                            " e ON e.consumer = a.consumer AND "
                                            "e.event_id = a.event_id",
                                        {});
      }
      if (r.strategy == "partition") {
        r.old_partitions_left =
            Scalar(*db,
                   "SELECT COUNT(*) FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = "
                   "DATABASE() AND TABLE_NAME = ? AND PARTITION_DESCRIPTION <> 'MAXVALUE' AND "
                   "CAST(PARTITION_DESCRIPTION AS SIGNED) <= ?",
                   {table, cutoff});
      }
      recounts.push_back(r);
    }
  }
  CleanupKept("E-014", o);

  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  ASSERT_EQ(recounts.size(), 3u) << Describe(o);
  for (const auto& r : recounts) {
    const std::string s = "_" + r.strategy;
    EXPECT_EQ(r.eligible_left, 0) << r.strategy;
    EXPECT_EQ(r.old_present, 0) << r.strategy;
    EXPECT_EQ(r.keep_present, 20000) << r.strategy;
    EXPECT_GE(r.live_present, MetricOf(o, "check", "live_acked" + s)) << r.strategy;
    EXPECT_GT(r.live_present, 0) << r.strategy;
    EXPECT_EQ(MetricOf(o, "check", "eligible_before" + s), 200000) << r.strategy;
    EXPECT_EQ(MetricOf(o, "check", "removed" + s), 200000) << r.strategy;
    EXPECT_GT(MetricOf(o, "check", "duration_ms" + s), 0) << r.strategy;
    EXPECT_GE(MetricOf(o, "check", "row_lock_waits" + s), 0) << r.strategy;
  }
  EXPECT_EQ(recounts[1].archived_old, 200000);
  EXPECT_EQ(recounts[1].archived_other, 0);
  EXPECT_EQ(recounts[1].archived_and_present, 0);
  EXPECT_EQ(recounts[2].old_partitions_left, 0);
  // The statements a strategy needed follow from the batch size: 200 full batches and the empty
  // one that ends the loop (two statements per archive batch); the partition job reads the
  // partitions and drops them in one ALTER.
  EXPECT_EQ(MetricOf(o, "check", "statements_delete"), 201);
  EXPECT_EQ(MetricOf(o, "check", "statements_archive"), 402);
  EXPECT_EQ(MetricOf(o, "check", "statements_partition"), 2);

  auto db = Mysql();
  ASSERT_TRUE(db);
  ASSERT_EQ(tables.size(), 4u);
  for (const auto& t : tables) EXPECT_EQ(TablesNamed(*db, t), 0) << t << " left by cleanup";
}

// The verdict can fail on a real mistake: with partitions laid on a grid the cut-off falls
// inside (half a partition off), dropping whole partitions leaves the old rows of the straddling
// one. With 4 partitions over 4 hours of 200,000 evenly spread rows, that is the last half
// hour before the cut-off: 200,000 / 8 = 25,000 rows. The other strategies are unaffected.
TEST(Integration, E014MisalignedPartitionsLeaveEligibleRows) {
  auto o = RunThroughApi("E-014", {{"partition_boundary", std::string("grid")}});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_NEAR(MetricOf(o, "check", "eligible_left_partition"), 25000, 1) << Describe(o);
  EXPECT_EQ(MetricOf(o, "check", "wrongly_removed_partition"), 0) << Describe(o);
  EXPECT_EQ(MetricOf(o, "check", "eligible_left_delete"), 0) << Describe(o);
  EXPECT_EQ(MetricOf(o, "check", "eligible_left_archive"), 0) << Describe(o);
}

// E-022 with the defaults (250,000 rows): confirmed, and the kept rows say so — every row
// backfilled exactly once with the right value; the killed worker wrote exactly the rows up to
// the resume point it left in the checkpoints and the resumed one the rest; every checkpoint is
// at its end; the live updates read back are at least the ones the load counted; the big pass
// wrote every row. After cleanup the run's rows are gone.
TEST(Integration, E022ControlledBackfillResumesWithoutGapsOrDoubles) {
  RunOutcome o = RunKeptThroughApi("E-022", {});
  const std::string ns_success = Details(o, "success").value("run_ns", "");
  const std::string ns_failure = Details(o, "failure").value("run_ns", "");
  std::int64_t gaps = -1, doubles = -1, wrong = -1, by_first = -1, by_second = -1,
               unfinished_shards = -1, live_sum = -1, big_pass_rows = -1, big_pass_doubles = -1;
  {
    auto db = Mysql();
    ASSERT_TRUE(db);
    ASSERT_FALSE(ns_success.empty()) << Describe(o);
    gaps = Scalar(*db, "SELECT COUNT(*) FROM backfill_item WHERE run_ns = ? AND backfill_count = 0",
                  {ns_success});
    doubles =
        Scalar(*db, "SELECT COUNT(*) FROM backfill_item WHERE run_ns = ? AND backfill_count > 1",
               {ns_success});
    wrong = Scalar(*db,
                   "SELECT COUNT(*) FROM backfill_item WHERE run_ns = ? AND "
                   "amount_cents <> amount * 100",
                   {ns_success});
    by_first =
        Scalar(*db, "SELECT COUNT(*) FROM backfill_item WHERE run_ns = ? AND backfilled_by = 1",
               {ns_success});
    by_second =
        Scalar(*db, "SELECT COUNT(*) FROM backfill_item WHERE run_ns = ? AND backfilled_by = 2",
               {ns_success});
    unfinished_shards = Scalar(
        *db, "SELECT COUNT(*) FROM backfill_checkpoint WHERE run_ns = ? AND next_id <> end_id",
        {ns_success});
    live_sum =
        Scalar(*db, "SELECT SUM(live_updates) FROM backfill_item WHERE run_ns = ?", {ns_success});
    big_pass_rows =
        Scalar(*db, "SELECT COUNT(*) FROM backfill_item WHERE run_ns = ? AND backfilled_by = 1",
               {ns_failure});
    big_pass_doubles =
        Scalar(*db, "SELECT COUNT(*) FROM backfill_item WHERE run_ns = ? AND backfill_count <> 1",
               {ns_failure});
  }
  CleanupKept("E-022", o);

  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kConfirmed) << Describe(o);
  EXPECT_EQ(gaps, 0);
  EXPECT_EQ(doubles, 0);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(by_first + by_second, 250000);
  EXPECT_EQ(by_first, MetricOf(o, "success", "resume_point")) << Describe(o);
  EXPECT_GT(by_first, 0);
  EXPECT_GT(by_second, 0);
  EXPECT_EQ(unfinished_shards, 0);
  EXPECT_GE(live_sum, MetricOf(o, "success", "live_updates_acked"));
  EXPECT_EQ(MetricOf(o, "success", "worker_killed"), 1);
  EXPECT_EQ(big_pass_rows, 250000);
  EXPECT_EQ(big_pass_doubles, 0);
  EXPECT_GT(MetricOf(o, "failure", "p99_factor"), MetricOf(o, "success", "p99_factor"))
      << Describe(o);

  auto db = Mysql();
  ASSERT_TRUE(db);
  for (const auto& ns : {ns_success, ns_failure}) {
    EXPECT_EQ(Scalar(*db, "SELECT COUNT(*) FROM backfill_item WHERE run_ns = ?", {ns}), 0) << ns;
    EXPECT_EQ(Scalar(*db, "SELECT COUNT(*) FROM backfill_checkpoint WHERE run_ns = ?", {ns}), 0)
        << ns;
  }
}

// practice=off: the success mode runs the one big pass, and live p99 goes past the bound.
TEST(Integration, E022WithoutPractice) {
  auto o = RunThroughApi("E-022", {{"practice", std::string("off")}}, {"success"});
  EXPECT_EQ(o.verdict.verdict, domain::Verdict::kRefuted) << Describe(o);
  EXPECT_GT(MetricOf(o, "success", "p99_factor"), 10) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "worker_killed"), 0) << Describe(o);
  EXPECT_EQ(MetricOf(o, "success", "gaps"), 0) << Describe(o);
}

}  // namespace
}  // namespace lab::testing
