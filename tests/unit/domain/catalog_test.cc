#include "domain/catalog.h"

#include <gtest/gtest.h>

#include <set>

#include "domain/run_locks.h"
#include "domain/verdict.h"

namespace lab::domain {
namespace {

// Every experiment of EXPERIMENTS.md is in the catalog, once.
TEST(Catalog, ListsEveryExperimentOnce) {
  std::set<std::string> ids;
  for (const auto& e : Catalog()) EXPECT_TRUE(ids.insert(e.id).second) << e.id;
  for (const char* id :
       {"E-000", "E-001", "E-002", "E-003",  "E-004",  "E-005", "E-006", "E-007", "E-008",
        "E-009", "E-010", "E-011", "E-012",  "E-013",  "E-014", "E-015", "E-018", "E-019",
        "E-022", "E-023", "E-024", "E-039A", "E-039B", "E-044", "E-045", "E-046", "E-047",
        "E-048", "E-049", "E-050", "N03",    "N04",    "N06",   "N19",   "N21"}) {
    EXPECT_NE(FindExperiment(id), nullptr) << id;
  }
  EXPECT_EQ(FindExperiment("E-999"), nullptr);
}

// Each entry is complete and self-consistent: defaults within bounds, criteria name run modes.
TEST(Catalog, EntriesAreConsistent) {
  for (const auto& e : Catalog()) {
    EXPECT_FALSE(e.title.empty()) << e.id;
    EXPECT_FALSE(e.claim.empty()) << e.id;
    EXPECT_FALSE(e.modes.empty()) << e.id;
    EXPECT_GE(e.default_timeout_seconds, kMinTimeoutSeconds) << e.id;
    std::vector<FieldError> errors;
    EXPECT_TRUE(ValidateParams(e.parameters, {}, errors).ok()) << e.id;  // defaults valid
    for (const auto& p : e.parameters) {
      if (p.min && p.max) {
        EXPECT_LE(*p.min, *p.max) << e.id << "." << p.name;
      }
    }
    std::set<std::string> modes;
    for (const auto& m : e.modes) modes.insert(m.name);
    for (const auto& c : e.criteria) {
      EXPECT_TRUE(modes.count(c.mode)) << e.id << ": " << Describe(c);
      if (!c.rhs_mode.empty()) {
        EXPECT_TRUE(modes.count(c.rhs_mode)) << e.id;
      }
    }
  }
}

// Core experiments with both modes have criteria on both sides of the claim.
TEST(Catalog, CoreExperimentsJudgeBothModes) {
  for (const auto& e : Catalog()) {
    if (e.category != "core" || e.modes.size() < 2) continue;
    std::set<std::string> judged;
    for (const auto& c : e.criteria) judged.insert(c.mode);
    EXPECT_TRUE(judged.count("failure")) << e.id;
    EXPECT_TRUE(judged.count("success")) << e.id;
  }
}

// A run that observed nothing cannot confirm: E-008 with no DB read in either mode (0 >= 10 x 0
// holds arithmetically) and E-007 without an acknowledged plain record are inconclusive.
TEST(Catalog, EmptyEvidenceNeverConfirms) {
  const auto* e008 = FindExperiment("E-008");
  ASSERT_NE(e008, nullptr);
  EvidenceMetrics nothing_read{
      {"failure", {{"db_reads", 0}, {"errors", 200}, {"db_reads_per_expiry", 0}, {"instances", 2}}},
      {"success", {{"db_reads", 0}, {"errors", 0}, {"db_reads_per_expiry", 0}, {"instances", 2}}}};
  EXPECT_EQ(DecideVerdict(e008->criteria, nothing_read, {}).verdict, Verdict::kInconclusive);
  EvidenceMetrics stampede = nothing_read;
  stampede["failure"]["db_reads"] = 600;
  stampede["success"]["db_reads"] = 4;
  stampede["success"]["db_reads_per_expiry"] = 1.3;
  EXPECT_EQ(DecideVerdict(e008->criteria, stampede, {}).verdict, Verdict::kConfirmed);
  stampede["success"]["errors"] = 5;  // defended clients that failed read less for that reason
  EXPECT_EQ(DecideVerdict(e008->criteria, stampede, {}).verdict, Verdict::kInconclusive);

  const auto* e007 = FindExperiment("E-007");
  ASSERT_NE(e007, nullptr);
  EvidenceMetrics pinned{{"success",
                          {{"visible_committed_open", 0},
                           {"visible_uncommitted_open", 11},
                           {"plain_acked", 1},
                           {"visible_committed_after", 11},
                           {"expected_after", 11}}}};
  EXPECT_EQ(DecideVerdict(e007->criteria, pinned, {}).verdict, Verdict::kConfirmed);
  pinned["success"]["plain_acked"] = 0;
  pinned["success"]["expected_after"] = 10;
  pinned["success"]["visible_committed_after"] = 10;
  EXPECT_EQ(DecideVerdict(e007->criteria, pinned, {}).verdict, Verdict::kInconclusive);
}

}  // namespace
// A run shares the lock of every part it uses and holds the ones it faults alone, never both.
TEST(Catalog, RunLocksFollowPartsAndFaults) {
  const auto* e001 = FindExperiment("E-001");
  ASSERT_NE(e001, nullptr);
  const auto uses = LocksFor(*e001);
  EXPECT_TRUE(uses.exclusive.empty());
  EXPECT_EQ(uses.shared,
            (std::vector<std::string>{kLockKafkaBrokers, kLockMysqlServer, kLockRedisServer}));
  const auto* e009 = FindExperiment("E-009");
  ASSERT_NE(e009, nullptr);
  const auto faults = LocksFor(*e009);
  EXPECT_EQ(faults.exclusive, std::vector<std::string>{kLockKafkaBrokers});
  for (const auto& lock : faults.shared) EXPECT_NE(lock, kLockKafkaBrokers);
  EXPECT_EQ(LockOfPart(kPartRegistry), "") << "nothing faults the registry: no lock";
}

}  // namespace lab::domain
