#include "server/runs/artifact_cleanup.h"

#include <algorithm>
#include <exception>
#include <map>

namespace lab::server {
namespace {

// The kinds runners/experiments/experiment_base.h records (kArtifact*), by the part each needs.
const std::map<std::string, std::string, std::less<>>& RetryableKinds() {
  static const std::map<std::string, std::string, std::less<>> kKinds = {
      {"kafka-topic", "kafka"},
      {"consumer-group", "kafka"},
      {"mysql-rows", "mysql"},
      {"mysql-table", "mysql"},
      {"redis-prefix", "redis"},
      {"redis-cluster-prefix", "redis-cluster"},
      {"registry-subject", "schema-registry"},
      {"toxiproxy-proxy", "toxiproxy"},
  };
  return kKinds;
}

constexpr std::size_t kErrorMax = 1000;

}  // namespace

std::optional<std::string> PartForArtifact(const std::string& kind) {
  const auto& kinds = RetryableKinds();
  if (auto it = kinds.find(kind); it != kinds.end()) return it->second;
  return std::nullopt;
}

std::vector<domain::Artifact> RetryableArtifacts(const std::vector<domain::Artifact>& all) {
  std::vector<domain::Artifact> out;
  for (const auto& a : all) {
    if (PartForArtifact(a.kind)) out.push_back(a);
  }
  return out;
}

std::vector<std::string> PartsForArtifacts(const std::vector<domain::Artifact>& artifacts) {
  std::vector<std::string> parts;
  for (const auto& a : artifacts) {
    auto part = PartForArtifact(a.kind);
    if (part && std::find(parts.begin(), parts.end(), *part) == parts.end()) parts.push_back(*part);
  }
  return parts;
}

std::string RunNamespace(const std::string& run_id, int repetition) {
  std::string ns = "lab_";
  for (char c : run_id) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ns.push_back(c);
  }
  if (repetition > 0) ns += "_" + std::to_string(repetition);
  return ns;
}

void CleanupReporter::Step(std::string_view message) {
  constexpr std::string_view kError = "cleanup: ";
  constexpr std::string_view kRestored = "cleanup: restore: ";
  if (message.substr(0, kError.size()) == kError &&
      message.substr(0, kRestored.size()) != kRestored) {
    std::lock_guard lock(mu_);
    errors_.emplace_back(message.substr(kError.size()));
  }
  if (inner_ != nullptr) inner_->Step(message);
}

void CleanupReporter::Progress(double percent) {
  if (inner_ != nullptr) inner_->Progress(percent);
}

void CleanupReporter::Created(std::string_view mode, const domain::Artifact& artifact) {
  if (inner_ != nullptr) inner_->Created(mode, artifact);
}

void CleanupReporter::Gauge(std::string_view name, const std::map<std::string, std::string>& labels,
                            double value) {
  if (inner_ != nullptr) inner_->Gauge(name, labels, value);
}

void CleanupReporter::Count(std::string_view name, const std::map<std::string, std::string>& labels,
                            double increment) {
  if (inner_ != nullptr) inner_->Count(name, labels, increment);
}

std::vector<std::string> CleanupReporter::errors() const {
  std::lock_guard lock(mu_);
  return errors_;
}

CleanupVerdict JudgeCleanup(const std::vector<domain::Artifact>& attempted,
                            const std::optional<std::string>& thrown,
                            const std::vector<std::string>& errors,
                            const std::vector<domain::PartHealth>& after) {
  CleanupVerdict verdict;
  const auto retryable = RetryableArtifacts(attempted);
  std::string why;
  auto add = [&why](const std::string& text) { why += (why.empty() ? "" : "; ") + text; };
  if (thrown) add(*thrown);
  for (const auto& e : errors) add(e);
  if (!why.empty()) {
    verdict.remaining = retryable;
  } else {
    std::map<std::string, std::string> unhealthy;
    for (const auto& p : after) {
      if (!p.ok) unhealthy[p.part] = p.detail;
    }
    for (const auto& a : retryable) {
      if (unhealthy.count(*PartForArtifact(a.kind)) > 0) verdict.remaining.push_back(a);
    }
    for (const auto& part : PartsForArtifacts(verdict.remaining))
      add(part + " was not healthy after the cleanup: " + unhealthy[part]);
  }
  if (!verdict.remaining.empty()) {
    verdict.error = why.size() > kErrorMax ? why.substr(0, kErrorMax) + "…" : why;
  }
  return verdict;
}

CleanupVerdict AttemptCleanup(domain::ExperimentRunner& runner, domain::RunContext ctx,
                              const std::vector<domain::Artifact>& artifacts,
                              domain::StackProbe* probe, std::chrono::milliseconds probe_timeout) {
  CleanupReporter reporter(ctx.reporter);
  ctx.reporter = &reporter;
  ctx.keep_artifacts = false;
  ctx.stop = std::stop_token();  // a cleanup is never cut short
  std::optional<std::string> thrown;
  try {
    runner.Cleanup(ctx, artifacts);
  } catch (const std::exception& e) {
    thrown = e.what();
  } catch (...) {
    thrown = "unknown exception";
  }
  std::vector<domain::PartHealth> after;
  if (probe != nullptr) {
    try {
      after = probe->Check(PartsForArtifacts(artifacts), probe_timeout);
    } catch (const std::exception& e) {
      if (!thrown) thrown = std::string("the stack probe failed: ") + e.what();
    }
  }
  return JudgeCleanup(artifacts, thrown, reporter.errors(), after);
}

}  // namespace lab::server
