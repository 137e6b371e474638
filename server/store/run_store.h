// The control plane's durable store (SQLite, WAL): runs, step logs, artifacts, the audit chain,
// idempotency keys and settings. Every state change commits together with its audit entry.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "domain/audit.h"
#include "domain/ports.h"
#include "domain/result.h"
#include "domain/run.h"
#include "server/store/sqlite_db.h"

namespace lab::server {

struct RunRecord {
  std::int64_t seq = 0;
  std::string id;
  std::string experiment;
  domain::RunState state = domain::RunState::kQueued;
  std::optional<domain::Verdict> verdict;
  std::string verdict_reason;
  std::string request_json = "{}";
  std::string result_json = "{}";
  double progress = 0;
  std::string progress_step;
  std::optional<std::string> error;
  std::string actor;
  std::string created_at;
  std::optional<std::string> started_at;
  std::optional<std::string> finished_at;
};

struct StepRecord {
  std::int64_t seq = 0;
  std::string at;
  std::string message;
};

struct ArtifactRecord {
  std::string mode;
  domain::Artifact artifact;
};

// Who asked, for the audit entry.
struct Actor {
  std::string name;        // token name, "local" or "system"
  std::string request_id;  // the HTTP request's id, or "" for the system
};

struct RunFilter {
  std::optional<std::string> experiment;
  std::optional<std::string> state;
  std::optional<std::string> verdict;
  std::optional<std::string> since;        // created_at >= since (RFC 3339)
  std::optional<std::string> until;        // created_at < until
  std::optional<std::int64_t> before_seq;  // the cursor
  int limit = 50;
};

struct AuditFilter {
  std::optional<std::string> actor;
  std::optional<std::string> action;
  std::optional<std::string> target;
  std::optional<std::int64_t> before_seq;
  int limit = 50;
};

// A run's cleanup kept durably (table run_cleanups): one that could not finish and is retried,
// one queued at start or by DELETE /runs/{id}/artifacts, or one done.
struct CleanupRecord {
  static constexpr const char* kPending = "pending";
  static constexpr const char* kDone = "done";
  static constexpr const char* kGivenUp = "given_up";  // attempts exhausted; DELETE re-arms it

  std::string run_id;
  std::string state = kPending;
  std::string reason;                       // why there is a cleanup to do
  std::vector<domain::Artifact> artifacts;  // what is left to remove
  int attempts = 0;                         // attempts that ran
  std::optional<std::string> last_error;
  std::string next_attempt_at;  // RFC 3339; "" = now
  std::string created_at;
  std::string updated_at;
};

struct CleanupCounts {
  std::int64_t pending = 0;
  std::int64_t given_up = 0;
  bool operator==(const CleanupCounts&) const = default;
};

// What changes when a run moves to another state.
struct RunTransition {
  domain::RunState to = domain::RunState::kRunning;
  std::optional<domain::Verdict> verdict;
  std::string verdict_reason;
  std::optional<std::string> result_json;
  std::optional<std::string> error;
  std::string audit_action;  // run.started, run.completed…
  // The run's cleanup as it ended (pending: what is left, and why; done), written in the same
  // transaction as the final state, with a run.cleanup.pending audit entry when pending.
  std::optional<CleanupRecord> cleanup;
};

struct IdempotencyRecord {
  std::string body_hash;
  std::string run_id;
};

struct Recovery {
  std::vector<std::string> interrupted;  // were running: now interrupted
  std::vector<RunRecord> queued;         // still queued, in order: to run again
};

class RunStore {
 public:
  // Opens `path` (":memory:" for tests: one connection), applies the numbered migrations of
  // `migrations_dir` that are not yet applied, each once, in one transaction each.
  static domain::Result<std::unique_ptr<RunStore>> Open(const std::string& path,
                                                        const std::string& migrations_dir,
                                                        const domain::Clock& clock);

  // After a crash: running runs become interrupted (with the reason and an audit entry);
  // queued runs are returned to be queued again.
  domain::Result<Recovery> Recover();

  // Commits the run, its audit entry and the idempotency key (if any) in one transaction.
  domain::Result<RunRecord> InsertQueued(RunRecord run, const Actor& actor,
                                         const std::optional<std::string>& idempotency_key,
                                         const std::string& body_hash);
  domain::Result<std::optional<IdempotencyRecord>> FindIdempotencyKey(const std::string& actor,
                                                                      const std::string& key);

  // Moves a run (checking the lifecycle) and appends the audit entry, in one transaction.
  domain::Result<RunRecord> Transition(const std::string& id, const RunTransition& change,
                                       const Actor& actor);

  domain::Status UpdateProgress(const std::string& id, double percent, const std::string& step);
  domain::Result<std::int64_t> AppendStep(const std::string& id, const std::string& message);
  domain::Status RecordArtifact(const std::string& id, const std::string& mode,
                                const domain::Artifact& artifact);
  domain::Result<std::vector<ArtifactRecord>> Artifacts(const std::string& id);

  domain::Result<std::optional<RunRecord>> Get(const std::string& id);
  domain::Result<std::vector<RunRecord>> List(const RunFilter& filter);
  domain::Result<std::vector<StepRecord>> Steps(const std::string& id, std::int64_t after_seq,
                                                int limit);
  domain::Result<std::int64_t> CountQueued();
  // The latest verdict of each experiment, and its run id.
  domain::Result<std::vector<std::pair<std::string, RunRecord>>> LatestFinishedPerExperiment();

  domain::Status AppendAudit(const std::string& action, const std::string& target,
                             const std::string& before, const std::string& after,
                             const Actor& actor);
  domain::Result<std::vector<domain::AuditEntry>> ListAudit(const AuditFilter& filter);
  domain::Result<domain::ChainCheck> VerifyAudit();

  domain::Result<std::optional<std::string>> GetSetting(const std::string& key);
  // Sets (or, with nullopt, removes) a setting and audits the change.
  domain::Status SetSetting(const std::string& key, const std::optional<std::string>& value,
                            const std::string& audit_action, const Actor& actor);

  // Cleanups (run_cleanups). Queue: a pending cleanup of `artifacts` from now on (replacing one
  // pending, given up or done: attempts start again), audited as `audit_action`.
  domain::Result<CleanupRecord> QueueCleanup(const std::string& run_id,
                                             const std::vector<domain::Artifact>& artifacts,
                                             const std::string& reason,
                                             const std::string& audit_action, const Actor& actor);
  domain::Result<std::optional<CleanupRecord>> GetCleanup(const std::string& run_id);
  // Pending cleanups whose next attempt is due at `now` (RFC 3339), oldest first.
  domain::Result<std::vector<CleanupRecord>> DueCleanups(const std::string& now);
  domain::Result<CleanupCounts> CountCleanups();
  // After an attempt that left something: attempts, error, what is left, next time, state
  // (given_up is audited as run.cleanup.given_up). Only a pending row is updated.
  domain::Status RecordCleanupAttempt(const CleanupRecord& after);
  // The cleanup removed everything: state done, audited as run.cleanup.completed.
  domain::Status CompleteCleanup(const std::string& run_id, int attempts, const Actor& actor);
  // Terminal runs not kept (keep_artifacts) with recorded artifacts and no cleanup row: runs
  // whose cleanup never ran to its end (interrupted by a kill) or predates this table.
  domain::Result<std::vector<std::string>> RunsNeverCleaned();
  // Grows with each change of run_cleanups: lets readers cache what depends on it.
  std::uint64_t cleanup_generation() const { return cleanup_generation_.load(); }

  // Grows each time a run reaches a terminal state: lets readers cache what depends on it.
  std::uint64_t finished_generation() const { return finished_generation_.load(); }

  // True when the writer can commit (used by /readyz).
  domain::Status CheckWritable();

 private:
  RunStore(std::unique_ptr<SqliteDb> writer, std::unique_ptr<SqliteDb> reader,
           const domain::Clock& clock)
      : writer_(std::move(writer)), reader_(std::move(reader)), clock_(clock) {}

  domain::Status ApplyMigrations(const std::string& dir);
  domain::Status LoadLastAudit();
  // Requires write_mu_ held and a transaction open.
  domain::Status AppendAuditLocked(const std::string& action, const std::string& target,
                                   const std::string& before, const std::string& after,
                                   const Actor& actor);
  domain::Result<std::optional<RunRecord>> GetWith(SqliteDb& db, const std::string& id);
  std::string Now() const;
  // Each requires write_mu_ held and a transaction open.
  domain::Status UpsertCleanupLocked(const CleanupRecord& record);
  domain::Status WriteStateLocked(const RunRecord& run);
  // The cleanup a run ended with; a pending one is audited as run.cleanup.pending.
  domain::Status RecordRunCleanupLocked(const std::string& id, CleanupRecord cleanup);

  // Runs a read on the read connection (or the writer for :memory:), serialised per connection.
  template <typename F>
  auto Read(F&& f) {
    if (!reader_) {
      std::lock_guard lock(write_mu_);
      return f(*writer_);
    }
    std::lock_guard lock(read_mu_);
    return f(*reader_);
  }

  std::mutex write_mu_;
  std::unique_ptr<SqliteDb> writer_;              // guarded by write_mu_
  std::optional<domain::AuditEntry> last_audit_;  // guarded by write_mu_
  std::mutex read_mu_;
  std::unique_ptr<SqliteDb> reader_;  // guarded by read_mu_; null for :memory:
  const domain::Clock& clock_;
  std::atomic<std::uint64_t> finished_generation_{0};
  std::atomic<std::uint64_t> cleanup_generation_{0};
};

}  // namespace lab::server
