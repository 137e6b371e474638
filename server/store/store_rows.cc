#include "server/store/store_rows.h"

#include <nlohmann/json.hpp>

namespace lab::server::store_rows {

RunRecord ReadRun(const Statement& s) {
  RunRecord r;
  r.seq = s.Int(0);
  r.id = s.Text(1);
  r.experiment = s.Text(2);
  r.state = domain::ParseRunState(s.Text(3)).value_or(domain::RunState::kFailed);
  if (auto v = s.OptText(4)) r.verdict = domain::ParseVerdict(*v);
  r.verdict_reason = s.Text(5);
  r.request_json = s.Text(6);
  r.result_json = s.Text(7);
  r.progress = s.Real(8);
  r.progress_step = s.Text(9);
  r.error = s.OptText(10);
  r.actor = s.Text(11);
  r.created_at = s.Text(12);
  r.started_at = s.OptText(13);
  r.finished_at = s.OptText(14);
  return r;
}

void ApplyTransition(RunRecord& run, const RunTransition& change, const std::string& now) {
  run.state = change.to;
  if (change.to == domain::RunState::kRunning) run.started_at = now;
  if (domain::IsTerminal(change.to)) {
    run.finished_at = now;
    run.verdict = change.verdict;
    run.verdict_reason = change.verdict_reason;
    if (change.to == domain::RunState::kCompleted) run.progress = 100;
  }
  if (change.result_json) run.result_json = *change.result_json;
  if (change.error) run.error = change.error;
}

domain::AuditEntry ReadAudit(const Statement& s) {
  domain::AuditEntry e;
  e.seq = s.Int(0);
  e.time = s.Text(1);
  e.actor = s.Text(2);
  e.action = s.Text(3);
  e.target = s.Text(4);
  e.request_id = s.Text(5);
  e.before = s.Text(6);
  e.after = s.Text(7);
  e.prev_hash = s.Text(8);
  e.hash = s.Text(9);
  return e;
}

std::string StateJson(domain::RunState state, const std::optional<domain::Verdict>& verdict) {
  std::string json = R"({"state":")" + std::string(domain::ToString(state)) + "\"";
  if (verdict) json += R"(,"verdict":")" + std::string(domain::ToString(*verdict)) + "\"";
  return json + "}";
}

std::string ArtifactsJson(const std::vector<domain::Artifact>& artifacts) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& a : artifacts) out.push_back({{"kind", a.kind}, {"name", a.name}});
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<domain::Artifact> ArtifactsFromJson(const std::string& text) {
  std::vector<domain::Artifact> out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& a : j) {
    if (a.is_object()) out.push_back({a.value("kind", ""), a.value("name", "")});
  }
  return out;
}

CleanupRecord ReadCleanup(const Statement& s) {
  CleanupRecord c;
  c.run_id = s.Text(0);
  c.state = s.Text(1);
  c.reason = s.Text(2);
  c.artifacts = ArtifactsFromJson(s.Text(3));
  c.attempts = static_cast<int>(s.Int(4));
  c.last_error = s.OptText(5);
  c.next_attempt_at = s.Text(6);
  c.created_at = s.Text(7);
  c.updated_at = s.Text(8);
  return c;
}

std::string CleanupAuditJson(const CleanupRecord& c) {
  nlohmann::json j = {{"state", c.state},
                      {"reason", c.reason},
                      {"artifacts", c.artifacts.size()},
                      {"attempts", c.attempts}};
  if (c.last_error) j["last_error"] = c.last_error->substr(0, 512);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace lab::server::store_rows
