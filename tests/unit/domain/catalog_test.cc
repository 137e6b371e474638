#include "domain/catalog.h"

#include <gtest/gtest.h>

#include <set>

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

}  // namespace
}  // namespace lab::domain
