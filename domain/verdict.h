// Verdict rules: a claim's confirmation criteria as data, evaluated against observed evidence.
// The verdict is computed from numbers only; a missing number can never confirm anything.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "domain/run.h"

namespace lab::domain {

// The numbers a mode observed, by metric name ("lost", "read_back", "db_reads"…).
using ModeMetrics = std::map<std::string, double>;
// Evidence of one repetition of a run: metrics per mode ("failure", "success", "check").
using EvidenceMetrics = std::map<std::string, ModeMetrics>;

enum class CompareOp { kGreater, kGreaterEqual, kEqual, kLessEqual, kLess };

// "mode.metric OP value" or "mode.metric OP factor × rhs_mode.rhs_metric".
struct Condition {
  std::string mode;
  std::string metric;
  CompareOp op = CompareOp::kEqual;
  double value = 0;
  std::string rhs_mode;  // empty: compare with `value`
  std::string rhs_metric;
  double factor = 1;
  // What a false condition means: evidence against the claim (refuted) or a run that could not
  // show what it needed to (inconclusive, e.g. a fault that did not take).
  Verdict when_false = Verdict::kRefuted;
};

// "mode.metric OP value"; false means `when_false`.
Condition Compare(std::string mode, std::string metric, CompareOp op, double value,
                  Verdict when_false = Verdict::kRefuted);
// "mode.metric OP factor × rhs_mode.rhs_metric"; false means refuted.
Condition CompareRatio(std::string mode, std::string metric, CompareOp op, double factor,
                       std::string rhs_mode, std::string rhs_metric);

std::string Describe(const Condition& condition);

struct VerdictDecision {
  Verdict verdict = Verdict::kInconclusive;
  std::string reason;  // human words naming the numbers that decided it
};

// All conditions hold -> confirmed. A condition with when_false=refuted that fails -> refuted.
// Any metric missing, or a mode the criteria need that was not run -> inconclusive.
// `runner_inconclusive` (per mode) carries a runner's own reason (e.g. "kafka unreachable").
VerdictDecision DecideVerdict(const std::vector<Condition>& criteria,
                              const EvidenceMetrics& evidence,
                              const std::map<std::string, std::string>& runner_inconclusive);

// `repeat: N`: the verdict over repetitions. Any refuted -> refuted; all confirmed -> confirmed;
// otherwise inconclusive. The reason says how often the claim held.
VerdictDecision AggregateRepeats(const std::vector<VerdictDecision>& repeats);

}  // namespace lab::domain
