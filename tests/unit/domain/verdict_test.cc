#include "domain/verdict.h"

#include <gtest/gtest.h>

#include <cmath>

namespace lab::domain {
namespace {

// E-002's rule: failure lost > 0 and success lost = 0.
const std::vector<Condition> kLossRule = {Compare("failure", "lost", CompareOp::kGreater, 0),
                                          Compare("success", "lost", CompareOp::kEqual, 0)};

// The verdict follows the numbers: the same rule flips with the data.
TEST(Verdict, FollowsTheNumbers) {
  auto confirmed =
      DecideVerdict(kLossRule, {{"failure", {{"lost", 37}}}, {"success", {{"lost", 0}}}}, {});
  EXPECT_EQ(confirmed.verdict, Verdict::kConfirmed);
  EXPECT_NE(confirmed.reason.find("observed 37"), std::string::npos) << confirmed.reason;

  auto no_loss =
      DecideVerdict(kLossRule, {{"failure", {{"lost", 0}}}, {"success", {{"lost", 0}}}}, {});
  EXPECT_EQ(no_loss.verdict, Verdict::kRefuted);

  auto practice_lost =
      DecideVerdict(kLossRule, {{"failure", {{"lost", 5}}}, {"success", {{"lost", 2}}}}, {});
  EXPECT_EQ(practice_lost.verdict, Verdict::kRefuted);
  EXPECT_NE(practice_lost.reason.find("success.lost == 0"), std::string::npos);
}

// A missing metric or a mode that did not run can never confirm.
TEST(Verdict, MissingNumbersAreInconclusive) {
  auto missing_metric = DecideVerdict(kLossRule, {{"failure", {{"lost", 3}}}, {"success", {}}}, {});
  EXPECT_EQ(missing_metric.verdict, Verdict::kInconclusive);
  auto missing_mode = DecideVerdict(kLossRule, {{"success", {{"lost", 0}}}}, {});
  EXPECT_EQ(missing_mode.verdict, Verdict::kInconclusive);
  EXPECT_NE(missing_mode.reason.find("'failure' was not run"), std::string::npos);
  auto nan = DecideVerdict(kLossRule,
                           {{"failure", {{"lost", std::nan("")}}}, {"success", {{"lost", 0}}}}, {});
  EXPECT_EQ(nan.verdict, Verdict::kInconclusive);
  EXPECT_EQ(DecideVerdict({}, {{"success", {{"x", 1}}}}, {}).verdict, Verdict::kInconclusive);
}

// A runner's own "could not decide" wins over any numbers.
TEST(Verdict, RunnerInconclusiveWins) {
  auto d = DecideVerdict(kLossRule, {{"failure", {{"lost", 3}}}, {"success", {{"lost", 0}}}},
                         {{"failure", "kafka unreachable"}});
  EXPECT_EQ(d.verdict, Verdict::kInconclusive);
  EXPECT_NE(d.reason.find("kafka unreachable"), std::string::npos);
}

// A condition marked inconclusive-when-false never refutes.
TEST(Verdict, InconclusiveConditions) {
  std::vector<Condition> rule = {
      Compare("check", "unreachable", CompareOp::kEqual, 0, Verdict::kInconclusive)};
  EXPECT_EQ(DecideVerdict(rule, {{"check", {{"unreachable", 2}}}}, {}).verdict,
            Verdict::kInconclusive);
  EXPECT_EQ(DecideVerdict(rule, {{"check", {{"unreachable", 0}}}}, {}).verdict,
            Verdict::kConfirmed);
}

// Ratios between modes (E-008: failure reads >= 10 x success reads), at and around the edge.
TEST(Verdict, RatioConditions) {
  const Condition c =
      CompareRatio("failure", "db_reads", CompareOp::kGreaterEqual, 10, "success", "db_reads");
  EXPECT_EQ(Describe(c), "failure.db_reads >= 10 x success.db_reads");
  auto run = [&](double f, double s) {
    return DecideVerdict({c}, {{"failure", {{"db_reads", f}}}, {"success", {{"db_reads", s}}}}, {})
        .verdict;
  };
  EXPECT_EQ(run(200, 20), Verdict::kConfirmed);
  EXPECT_EQ(run(199, 20), Verdict::kRefuted);
  EXPECT_EQ(run(200, 2), Verdict::kConfirmed);
}

// Repeats: all confirmed -> confirmed, any refuted -> refuted, otherwise inconclusive; the
// reason says how often the claim held.
TEST(Verdict, AggregateRepeats) {
  VerdictDecision c{Verdict::kConfirmed, ""};
  VerdictDecision r{Verdict::kRefuted, ""};
  VerdictDecision i{Verdict::kInconclusive, ""};
  EXPECT_EQ(AggregateRepeats({c, c, c}).verdict, Verdict::kConfirmed);
  EXPECT_EQ(AggregateRepeats({c, r, c}).verdict, Verdict::kRefuted);
  auto mixed = AggregateRepeats({c, i, c});
  EXPECT_EQ(mixed.verdict, Verdict::kInconclusive);
  EXPECT_NE(mixed.reason.find("2 of 3"), std::string::npos);
  EXPECT_EQ(AggregateRepeats({}).verdict, Verdict::kInconclusive);
}

}  // namespace
}  // namespace lab::domain
