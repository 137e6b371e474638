#include "domain/verdict.h"

#include <cmath>
#include <sstream>

namespace lab::domain {
namespace {

std::string_view OpText(CompareOp op) {
  switch (op) {
    case CompareOp::kGreater:
      return ">";
    case CompareOp::kGreaterEqual:
      return ">=";
    case CompareOp::kEqual:
      return "==";
    case CompareOp::kLessEqual:
      return "<=";
    case CompareOp::kLess:
      return "<";
  }
  return "?";
}

bool Holds(double lhs, CompareOp op, double rhs) {
  switch (op) {
    case CompareOp::kGreater:
      return lhs > rhs;
    case CompareOp::kGreaterEqual:
      return lhs >= rhs;
    case CompareOp::kEqual:
      return lhs == rhs;
    case CompareOp::kLessEqual:
      return lhs <= rhs;
    case CompareOp::kLess:
      return lhs < rhs;
  }
  return false;
}

std::string Num(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

std::optional<double> Lookup(const EvidenceMetrics& evidence, const std::string& mode,
                             const std::string& metric) {
  auto mode_it = evidence.find(mode);
  if (mode_it == evidence.end()) return std::nullopt;
  auto metric_it = mode_it->second.find(metric);
  if (metric_it == mode_it->second.end() || !std::isfinite(metric_it->second)) return std::nullopt;
  return metric_it->second;
}

}  // namespace

Condition Compare(std::string mode, std::string metric, CompareOp op, double value,
                  Verdict when_false) {
  Condition c;
  c.mode = std::move(mode);
  c.metric = std::move(metric);
  c.op = op;
  c.value = value;
  c.when_false = when_false;
  return c;
}

Condition CompareRatio(std::string mode, std::string metric, CompareOp op, double factor,
                       std::string rhs_mode, std::string rhs_metric) {
  Condition c;
  c.mode = std::move(mode);
  c.metric = std::move(metric);
  c.op = op;
  c.factor = factor;
  c.rhs_mode = std::move(rhs_mode);
  c.rhs_metric = std::move(rhs_metric);
  return c;
}

std::string Describe(const Condition& c) {
  std::string text = c.mode + "." + c.metric + " " + std::string(OpText(c.op)) + " ";
  if (c.rhs_metric.empty()) return text + Num(c.value);
  return text + (c.factor == 1 ? "" : Num(c.factor) + " x ") + c.rhs_mode + "." + c.rhs_metric;
}

VerdictDecision DecideVerdict(const std::vector<Condition>& criteria,
                              const EvidenceMetrics& evidence,
                              const std::map<std::string, std::string>& runner_inconclusive) {
  if (!runner_inconclusive.empty()) {
    std::string reason;
    for (const auto& [mode, why] : runner_inconclusive) {
      reason += (reason.empty() ? "" : "; ") + mode + ": " + why;
    }
    return {Verdict::kInconclusive, reason};
  }
  if (criteria.empty()) {
    return {Verdict::kInconclusive, "the experiment declares no criteria"};
  }
  std::vector<std::string> held;
  std::vector<std::string> refuting;
  std::vector<std::string> undecided;
  for (const auto& c : criteria) {
    if (evidence.find(c.mode) == evidence.end() ||
        (!c.rhs_mode.empty() && evidence.find(c.rhs_mode) == evidence.end())) {
      undecided.push_back("mode '" + (evidence.count(c.mode) ? c.rhs_mode : c.mode) +
                          "' was not run, so '" + Describe(c) + "' cannot be checked");
      continue;
    }
    auto lhs = Lookup(evidence, c.mode, c.metric);
    std::optional<double> rhs = c.rhs_metric.empty() ? std::optional<double>(c.value)
                                                     : Lookup(evidence, c.rhs_mode, c.rhs_metric);
    if (!lhs || !rhs) {
      undecided.push_back("no measurement for '" + Describe(c) + "'");
      continue;
    }
    double right = c.rhs_metric.empty() ? *rhs : *rhs * c.factor;
    std::string observed = Describe(c) + " (observed " + Num(*lhs) +
                           (c.rhs_metric.empty() ? "" : " vs " + Num(right)) + ")";
    if (Holds(*lhs, c.op, right)) {
      held.push_back(observed);
    } else if (c.when_false == Verdict::kRefuted) {
      refuting.push_back("not " + observed);
    } else {
      undecided.push_back("not " + observed);
    }
  }
  auto join = [](const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
    return out;
  };
  if (!refuting.empty()) return {Verdict::kRefuted, join(refuting)};
  if (!undecided.empty()) return {Verdict::kInconclusive, join(undecided)};
  return {Verdict::kConfirmed, join(held)};
}

VerdictDecision AggregateRepeats(const std::vector<VerdictDecision>& repeats) {
  if (repeats.empty()) return {Verdict::kInconclusive, "no repetition finished"};
  if (repeats.size() == 1) return repeats.front();
  std::size_t confirmed = 0;
  std::size_t refuted = 0;
  for (const auto& r : repeats) {
    confirmed += r.verdict == Verdict::kConfirmed ? 1 : 0;
    refuted += r.verdict == Verdict::kRefuted ? 1 : 0;
  }
  std::string tally = "the claim held in " + std::to_string(confirmed) + " of " +
                      std::to_string(repeats.size()) + " repetitions";
  if (refuted > 0) return {Verdict::kRefuted, tally + " (" + std::to_string(refuted) + " refuted)"};
  if (confirmed == repeats.size()) return {Verdict::kConfirmed, tally};
  return {Verdict::kInconclusive, tally};
}

}  // namespace lab::domain
