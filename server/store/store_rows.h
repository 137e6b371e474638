// The rows of the store's tables as C++ values, and the write transaction, shared by the files
// of RunStore's implementation (run_store.cc, run_store_audit.cc, run_store_cleanups.cc). Not
// for use outside server/store.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "domain/audit.h"
#include "server/store/run_store.h"
#include "server/store/sqlite_db.h"

namespace lab::server::store_rows {

// One write of the store: BEGIN IMMEDIATE … COMMIT, and the in-memory head of the audit chain.
// Entries appended inside a transaction that does not commit never happened, so the head they
// advanced is put back unless Commit() succeeds — on every return path, without each writer
// having to remember it.
class WriteTransaction {
 public:
  WriteTransaction(SqliteDb& db, std::optional<domain::AuditEntry>& audit_head)
      : tx_(db), audit_head_(audit_head), saved_(audit_head) {}
  ~WriteTransaction() {
    if (!committed_) audit_head_ = saved_;
  }
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;
  domain::Status status() const { return tx_.status(); }
  domain::Status Commit() {
    auto s = tx_.Commit();
    committed_ = s.ok();
    return s;
  }

 private:
  Transaction tx_;
  std::optional<domain::AuditEntry>& audit_head_;
  std::optional<domain::AuditEntry> saved_;
  bool committed_ = false;
};

inline constexpr const char* kRunColumns =
    "seq, id, experiment, state, verdict, verdict_reason, request_json, result_json, progress, "
    "progress_step, error, actor, created_at, started_at, finished_at";

inline constexpr const char* kCleanupColumns =
    "run_id, state, reason, artifacts_json, attempts, last_error, next_attempt_at, created_at, "
    "updated_at";

RunRecord ReadRun(const Statement& s);
// `run` as `change` leaves it at `now` (RFC 3339): state, times, verdict, result, error.
void ApplyTransition(RunRecord& run, const RunTransition& change, const std::string& now);
domain::AuditEntry ReadAudit(const Statement& s);
// A small JSON object of the fields an audit entry records about a run's state.
std::string StateJson(domain::RunState state, const std::optional<domain::Verdict>& verdict);
std::string ArtifactsJson(const std::vector<domain::Artifact>& artifacts);
std::vector<domain::Artifact> ArtifactsFromJson(const std::string& text);
CleanupRecord ReadCleanup(const Statement& s);
// What an audit entry records of a cleanup (the error cut to 512 bytes).
std::string CleanupAuditJson(const CleanupRecord& c);

}  // namespace lab::server::store_rows
