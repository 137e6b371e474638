// RunStore: the cleanups still to do or done (run_cleanups). See run_store.h; the runs, steps
// and artifacts are in run_store.cc, the audit chain and settings in run_store_audit.cc.
#include <nlohmann/json.hpp>

#include "server/store/run_store.h"
#include "server/store/store_rows.h"

namespace lab::server {

using domain::ErrorCode;
using domain::MakeError;
using domain::Result;
using domain::Status;
using namespace store_rows;

Status RunStore::UpsertCleanupLocked(const CleanupRecord& c) {
  const std::string now = Now();
  auto q = writer_->Prepare(
      "INSERT INTO run_cleanups (run_id, state, reason, artifacts_json, attempts, last_error, "
      "next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) "
      "ON CONFLICT (run_id) DO UPDATE SET state = ?2, reason = ?3, artifacts_json = ?4, "
      "attempts = ?5, last_error = ?6, next_attempt_at = ?7, updated_at = ?8");
  if (!q.ok()) return q.error();
  return q->Bind(1, c.run_id)
      .Bind(2, c.state)
      .Bind(3, c.reason)
      .Bind(4, ArtifactsJson(c.artifacts))
      .Bind(5, std::int64_t{c.attempts})
      .BindOpt(6, c.last_error)
      .Bind(7, c.next_attempt_at.empty() ? now : c.next_attempt_at)
      .Bind(8, now)
      .Run();
}

Result<CleanupRecord> RunStore::QueueCleanup(const std::string& run_id,
                                             const std::vector<domain::Artifact>& artifacts,
                                             const std::string& reason,
                                             const std::string& audit_action, const Actor& actor) {
  CleanupRecord c;
  c.run_id = run_id;
  c.reason = reason;
  c.artifacts = artifacts;
  {
    std::lock_guard lock(write_mu_);
    WriteTransaction tx(*writer_, last_audit_);
    if (!tx.status().ok()) return tx.status().error();
    auto current = GetWith(*writer_, run_id);
    if (!current.ok()) return current.error();
    if (!current->has_value()) return MakeError(ErrorCode::kNotFound, "no run " + run_id);
    if (auto s = UpsertCleanupLocked(c); !s.ok()) return s.error();
    if (auto s = AppendAuditLocked(audit_action, run_id, "", CleanupAuditJson(c), actor); !s.ok())
      return s.error();
    if (auto s = tx.Commit(); !s.ok()) return s.error();
  }
  ++cleanup_generation_;
  auto stored = GetCleanup(run_id);
  if (!stored.ok()) return stored.error();
  if (!stored->has_value()) return MakeError(ErrorCode::kInternal, "cleanup not recorded");
  return **stored;
}

Result<std::optional<CleanupRecord>> RunStore::GetCleanup(const std::string& run_id) {
  return Read([&](SqliteDb& db) -> Result<std::optional<CleanupRecord>> {
    auto q = db.Prepare(std::string("SELECT ") + kCleanupColumns +
                        " FROM run_cleanups WHERE run_id = ?");
    if (!q.ok()) return q.error();
    if (q->Bind(1, run_id).Step()) return std::optional<CleanupRecord>(ReadCleanup(*q));
    if (!q->status().ok()) return q->status().error();
    return std::optional<CleanupRecord>();
  });
}

Result<std::vector<CleanupRecord>> RunStore::DueCleanups(const std::string& now) {
  return Read([&](SqliteDb& db) -> Result<std::vector<CleanupRecord>> {
    auto q = db.Prepare(std::string("SELECT ") + kCleanupColumns +
                        " FROM run_cleanups WHERE state = 'pending' AND next_attempt_at <= ? "
                        "ORDER BY next_attempt_at, created_at");
    if (!q.ok()) return q.error();
    q->Bind(1, now);
    std::vector<CleanupRecord> out;
    while (q->Step()) out.push_back(ReadCleanup(*q));
    if (!q->status().ok()) return q->status().error();
    return out;
  });
}

Result<CleanupCounts> RunStore::CountCleanups() {
  return Read([&](SqliteDb& db) -> Result<CleanupCounts> {
    auto q = db.Prepare(
        "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'given_up'), 0) FROM "
        "run_cleanups");
    if (!q.ok()) return q.error();
    if (q->Step()) return CleanupCounts{q->Int(0), q->Int(1)};
    return q->status().error();
  });
}

Status RunStore::RecordCleanupAttempt(const CleanupRecord& after) {
  {
    std::lock_guard lock(write_mu_);
    WriteTransaction tx(*writer_, last_audit_);
    if (!tx.status().ok()) return tx.status();
    auto q = writer_->Prepare(
        "UPDATE run_cleanups SET state = ?, artifacts_json = ?, attempts = ?, last_error = ?, "
        "next_attempt_at = ?, updated_at = ? WHERE run_id = ? AND state = 'pending'");
    if (!q.ok()) return q.error();
    if (auto s = q->Bind(1, after.state)
                     .Bind(2, ArtifactsJson(after.artifacts))
                     .Bind(3, std::int64_t{after.attempts})
                     .BindOpt(4, after.last_error)
                     .Bind(5, after.next_attempt_at.empty() ? Now() : after.next_attempt_at)
                     .Bind(6, Now())
                     .Bind(7, after.run_id)
                     .Run();
        !s.ok()) {
      return s;
    }
    if (sqlite3_changes(writer_->handle()) > 0 && after.state == CleanupRecord::kGivenUp) {
      if (auto s = AppendAuditLocked("run.cleanup.given_up", after.run_id, R"({"state":"pending"})",
                                     CleanupAuditJson(after), Actor{"system", ""});
          !s.ok()) {
        return s;
      }
    }
    if (auto s = tx.Commit(); !s.ok()) return s;
  }
  ++cleanup_generation_;
  return {};
}

Status RunStore::CompleteCleanup(const std::string& run_id, int attempts, const Actor& actor) {
  {
    std::lock_guard lock(write_mu_);
    WriteTransaction tx(*writer_, last_audit_);
    if (!tx.status().ok()) return tx.status();
    auto q = writer_->Prepare(
        "UPDATE run_cleanups SET state = 'done', artifacts_json = '[]', attempts = ?, "
        "last_error = NULL, updated_at = ? WHERE run_id = ? AND state = 'pending'");
    if (!q.ok()) return q.error();
    if (auto s = q->Bind(1, std::int64_t{attempts}).Bind(2, Now()).Bind(3, run_id).Run(); !s.ok())
      return s;
    if (sqlite3_changes(writer_->handle()) == 0) {
      return MakeError(ErrorCode::kConflict, "no pending cleanup of run " + run_id);
    }
    if (auto s = AppendAuditLocked(
            "run.cleanup.completed", run_id, R"({"state":"pending"})",
            R"({"state":"done","attempts":)" + std::to_string(attempts) + "}", actor);
        !s.ok()) {
      return s;
    }
    if (auto s = tx.Commit(); !s.ok()) return s;
  }
  ++cleanup_generation_;
  return {};
}

Result<std::vector<std::string>> RunStore::RunsNeverCleaned() {
  return Read([&](SqliteDb& db) -> Result<std::vector<std::string>> {
    auto q = db.Prepare(
        "SELECT r.id FROM runs r WHERE r.state IN ('completed','failed','cancelled','interrupted') "
        "AND (json_valid(r.request_json) = 0 OR "
        "COALESCE(json_extract(r.request_json, '$.keep_artifacts'), 0) = 0) "
        "AND EXISTS (SELECT 1 FROM run_artifacts a WHERE a.run_id = r.id) "
        "AND NOT EXISTS (SELECT 1 FROM run_cleanups c WHERE c.run_id = r.id) ORDER BY r.seq");
    if (!q.ok()) return q.error();
    std::vector<std::string> out;
    while (q->Step()) out.push_back(q->Text(0));
    if (!q->status().ok()) return q->status().error();
    return out;
  });
}

}  // namespace lab::server
