#include "server/runs/run_evidence.h"

namespace lab::server {
namespace {

Json HealthToJson(const std::vector<domain::PartHealth>& parts) {
  Json out = Json::object();
  for (const auto& p : parts) {
    out[p.part] = {
        {"ok", p.ok}, {"latency_ms", p.latency_ms}, {"version", p.version}, {"detail", p.detail}};
  }
  return out;
}

}  // namespace

std::string UnhealthyParts(const std::vector<domain::PartHealth>& health) {
  std::string out;
  for (const auto& p : health) {
    if (!p.ok) out += (out.empty() ? "" : "; ") + p.part + ": " + p.detail;
  }
  return out;
}

RunEvidence::RunEvidence(const domain::ExperimentRunner& runner, const domain::RunRequest& request)
    : repeated_(request.repeat > 1) {
  Json configuration = Json::parse(runner.ConfigurationJson(), nullptr, false);
  if (configuration.is_discarded() || !configuration.is_object()) configuration = Json::object();
  configuration["request"] = RequestToJson(request);
  result_ = {{"evidence", Json::object()}, {"configuration", std::move(configuration)}};
}

void RunEvidence::Preflight(const std::vector<domain::PartHealth>& health) {
  result_["stack"] = HealthToJson(health);
}

void RunEvidence::Postflight(const std::vector<domain::PartHealth>& health) {
  result_["postflight"] = HealthToJson(health);
}

void RunEvidence::Mode(int repetition, const std::string& mode, const domain::ModeResult& outcome,
                       double seconds) {
  mode_seconds_[mode] = seconds;
  Json details = Json::parse(outcome.details_json, nullptr, false);
  Json& entry = repetition_[mode];
  entry = {{"metrics", outcome.metrics},
           {"details", details.is_discarded() ? Json(outcome.details_json) : details}};
  if (outcome.inconclusive) entry["inconclusive"] = *outcome.inconclusive;
  for (const auto& f : outcome.client_library_failures) {
    client_failures_.push_back({{"mode", mode}, {"repetition", repetition}, {"failure", f}});
  }
}

void RunEvidence::EndRepetition(int repetition, const domain::VerdictDecision* decision) {
  result_["evidence"] = repetition_;
  if (decision != nullptr) {
    repetitions_.push_back({{"index", repetition},
                            {"verdict", std::string(domain::ToString(decision->verdict))},
                            {"reason", decision->reason},
                            {"evidence", repetition_}});
  }
  repetition_ = Json::object();
}

void RunEvidence::CleanupThrew(const std::string& error) { result_["cleanup_error"] = error; }

void RunEvidence::CleanupPending(std::size_t artifacts, const std::string& error) {
  result_["cleanup_pending"] = {{"artifacts", artifacts}, {"error", error}};
}

std::string RunEvidence::Text(const std::vector<ArtifactRecord>& artifacts, double seconds) const {
  Json result = result_;
  if (repeated_) result["repetitions"] = repetitions_;
  result["client_library_failures"] = client_failures_;
  result["mode_seconds"] = mode_seconds_;
  result["artifacts"] = ArtifactsByMode(artifacts);
  result["duration_seconds"] = seconds;
  return result.dump();
}

}  // namespace lab::server
