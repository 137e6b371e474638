// What a run's cleanup may do again later, and how to tell whether it finished. Runners report a
// cleanup's failures as "cleanup: <error>" steps and go on (ExperimentBase::Cleanup), so a cleanup
// that returned is not one that removed everything: it is judged here from what it threw, the
// errors it reported and the health of the parts its artifacts live on, checked after it.
// Used by the executor (the run's own cleanup) and the retrier (later attempts).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/ports.h"

namespace lab::server {

// The stack part an artifact lives on, for kinds whose removal touches nothing but the run's own
// namespace and can be repeated at any time (topics, groups, run_ns rows, run tables, key
// prefixes, subjects, proxies). nullopt for the rest (processes by pid, Redis settings, cluster
// topology and node faults): undoing those later could undo another run's change, so they are
// never retried — the postflight's dirty marks show them instead.
std::optional<std::string> PartForArtifact(const std::string& kind);
// The artifacts of `all` a later attempt may remove (PartForArtifact has a part).
std::vector<domain::Artifact> RetryableArtifacts(const std::vector<domain::Artifact>& all);
// The distinct parts `artifacts` live on, in order of first appearance.
std::vector<std::string> PartsForArtifacts(const std::vector<domain::Artifact>& artifacts);

// The namespace for everything a run creates: safe as a Kafka topic prefix, a MySQL identifier
// prefix and a Redis key prefix.
std::string RunNamespace(const std::string& run_id, int repetition);

// Forwards everything to `inner` and keeps the errors a cleanup reported ("cleanup: …" steps;
// "cleanup: restore: …" says what was put back, not an error).
class CleanupReporter final : public domain::RunReporter {
 public:
  explicit CleanupReporter(domain::RunReporter* inner) : inner_(inner) {}
  void Step(std::string_view message) override;
  void Progress(double percent) override;
  void Created(std::string_view mode, const domain::Artifact& artifact) override;
  void Gauge(std::string_view name, const std::map<std::string, std::string>& labels,
             double value) override;
  void Count(std::string_view name, const std::map<std::string, std::string>& labels,
             double increment) override;
  std::vector<std::string> errors() const;

 private:
  domain::RunReporter* inner_;  // may be null
  mutable std::mutex mu_;
  std::vector<std::string> errors_;  // guarded by mu_
};

// What a cleanup left.
struct CleanupVerdict {
  std::vector<domain::Artifact> remaining;  // to remove later; empty when it finished
  std::string error;                        // why it is not finished ("" when it is)
  bool finished() const { return remaining.empty(); }
};

// Pure: `attempted` were handed to the cleanup; it threw `thrown` (if any) and reported
// `errors`; `after` is the parts' health checked after it. A throw or a reported error leaves
// every retryable artifact (the runner does not say which one failed; removing one again is
// harmless); otherwise the retryable artifacts on a part found unhealthy are left. A part not in
// `after` was not checked and counts as healthy.
CleanupVerdict JudgeCleanup(const std::vector<domain::Artifact>& attempted,
                            const std::optional<std::string>& thrown,
                            const std::vector<std::string>& errors,
                            const std::vector<domain::PartHealth>& after);

// Runs `runner`'s cleanup of `artifacts` (ctx.keep_artifacts is cleared: this is the removal),
// then checks the artifacts' parts with `probe` (if any) and judges it. Never throws.
CleanupVerdict AttemptCleanup(domain::ExperimentRunner& runner, domain::RunContext ctx,
                              const std::vector<domain::Artifact>& artifacts,
                              domain::StackProbe* probe, std::chrono::milliseconds probe_timeout);

}  // namespace lab::server
