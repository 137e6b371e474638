#include "server/store/run_store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "server/store/store_rows.h"
#include "server/time_format.h"

namespace lab::server {

using domain::ErrorCode;
using domain::MakeError;
using domain::Result;
using domain::Status;

using namespace store_rows;

std::string RunStore::Now() const { return FormatTime(clock_.Now()); }

Result<std::unique_ptr<RunStore>> RunStore::Open(const std::string& path,
                                                 const std::string& migrations_dir,
                                                 const domain::Clock& clock) {
  auto writer = SqliteDb::Open(path, false);
  if (!writer.ok()) return writer.error();
  std::unique_ptr<SqliteDb> reader;
  std::unique_ptr<RunStore> store(
      new RunStore(std::move(writer).value(), nullptr, clock));  // NOLINT: private constructor
  if (auto s = store->ApplyMigrations(migrations_dir); !s.ok()) return s.error();
  if (path != ":memory:") {
    auto r = SqliteDb::Open(path, true);
    if (!r.ok()) return r.error();
    store->reader_ = std::move(r).value();
  }
  if (auto s = store->LoadLastAudit(); !s.ok()) return s.error();
  return store;
}

Status RunStore::ApplyMigrations(const std::string& dir) {
  std::lock_guard lock(write_mu_);
  if (auto s = writer_->Exec(
          "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT "
          "NULL, applied_at TEXT NOT NULL)");
      !s.ok()) {
    return s;
  }
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".sql") files.push_back(entry.path());
  }
  if (ec)
    return MakeError(ErrorCode::kUnavailable,
                     "cannot read migrations in " + dir + ": " + ec.message());
  if (files.empty()) return MakeError(ErrorCode::kUnavailable, "no migrations found in " + dir);
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::string name = file.filename().string();
    std::int64_t version = 0;
    try {
      version = std::stoll(name.substr(0, name.find('_')));
    } catch (const std::exception&) {
      return MakeError(ErrorCode::kInternal, "migration " + name + " does not start with a number");
    }
    auto check = writer_->Prepare("SELECT 1 FROM schema_version WHERE version = ?");
    if (!check.ok()) return check.error();
    if (check->Bind(1, version).Step()) continue;  // applied before
    std::ifstream in(file);
    std::stringstream sql;
    sql << in.rdbuf();
    Transaction tx(*writer_);
    if (!tx.status().ok()) return tx.status();
    if (auto s = writer_->Exec(sql.str()); !s.ok()) {
      return MakeError(ErrorCode::kInternal, "migration " + name + ": " + s.error().message);
    }
    auto record =
        writer_->Prepare("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)");
    if (!record.ok()) return record.error();
    if (auto s = record->Bind(1, version).Bind(2, name).Bind(3, Now()).Run(); !s.ok()) return s;
    if (auto s = tx.Commit(); !s.ok()) return s;
  }
  return {};
}

Result<Recovery> RunStore::Recover() {
  Recovery recovery;
  {
    std::lock_guard lock(write_mu_);
    WriteTransaction tx(*writer_, last_audit_);
    if (!tx.status().ok()) return tx.status().error();
    auto running = writer_->Prepare("SELECT id FROM runs WHERE state = 'running' ORDER BY seq");
    if (!running.ok()) return running.error();
    while (running->Step()) recovery.interrupted.push_back(running->Text(0));
    const std::string reason =
        "the server stopped while this run was running (crash, kill or power loss); its cleanup "
        "did not run to the end, so artifacts may remain on the stack";
    for (const auto& id : recovery.interrupted) {
      auto u = writer_->Prepare(
          "UPDATE runs SET state = 'interrupted', error = ?, finished_at = ? WHERE id = ?");
      if (!u.ok()) return u.error();
      if (auto s = u->Bind(1, reason).Bind(2, Now()).Bind(3, id).Run(); !s.ok()) return s.error();
      if (auto s = AppendAuditLocked("run.interrupted", id, R"({"state":"running"})",
                                     R"({"state":"interrupted"})", Actor{"system", ""});
          !s.ok()) {
        return s.error();
      }
    }
    if (auto s = tx.Commit(); !s.ok()) return s.error();
  }
  RunFilter filter;
  filter.state = "queued";
  auto q = Read([&](SqliteDb& db) -> Result<std::vector<RunRecord>> {
    auto s = db.Prepare(std::string("SELECT ") + kRunColumns +
                        " FROM runs WHERE state = 'queued' ORDER BY seq ASC");
    if (!s.ok()) return s.error();
    std::vector<RunRecord> runs;
    while (s->Step()) runs.push_back(ReadRun(*s));
    if (!s->status().ok()) return s->status().error();
    return runs;
  });
  if (!q.ok()) return q.error();
  recovery.queued = std::move(q).value();
  return recovery;
}

Result<RunRecord> RunStore::InsertQueued(RunRecord run, const Actor& actor,
                                         const std::optional<std::string>& idempotency_key,
                                         const std::string& body_hash) {
  std::lock_guard lock(write_mu_);
  WriteTransaction tx(*writer_, last_audit_);
  if (!tx.status().ok()) return tx.status().error();
  run.state = domain::RunState::kQueued;
  run.created_at = Now();
  run.actor = actor.name;
  auto q = writer_->Prepare(
      "INSERT INTO runs (id, experiment, state, request_json, actor, created_at) VALUES (?, ?, "
      "'queued', ?, ?, ?)");
  if (!q.ok()) return q.error();
  if (auto s = q->Bind(1, run.id)
                   .Bind(2, run.experiment)
                   .Bind(3, run.request_json)
                   .Bind(4, run.actor)
                   .Bind(5, run.created_at)
                   .Run();
      !s.ok()) {
    return s.error();
  }
  run.seq = sqlite3_last_insert_rowid(writer_->handle());
  if (idempotency_key) {
    auto k = writer_->Prepare(
        "INSERT INTO idempotency_keys (actor, key, body_hash, run_id, created_at) VALUES (?, ?, ?, "
        "?, ?)");
    if (!k.ok()) return k.error();
    if (auto s = k->Bind(1, actor.name)
                     .Bind(2, *idempotency_key)
                     .Bind(3, body_hash)
                     .Bind(4, run.id)
                     .Bind(5, run.created_at)
                     .Run();
        !s.ok()) {
      return MakeError(ErrorCode::kConflict, "idempotency key in use: " + s.error().message);
    }
  }
  std::string after = R"({"state":"queued","experiment":")" + run.experiment + R"(","request":)" +
                      run.request_json + "}";
  if (auto s = AppendAuditLocked("run.queued", run.id, "", after, actor); !s.ok()) {
    return s.error();
  }
  if (auto s = tx.Commit(); !s.ok()) return s.error();
  return run;
}

Result<std::optional<IdempotencyRecord>> RunStore::FindIdempotencyKey(const std::string& actor,
                                                                      const std::string& key) {
  return Read([&](SqliteDb& db) -> Result<std::optional<IdempotencyRecord>> {
    auto q =
        db.Prepare("SELECT body_hash, run_id FROM idempotency_keys WHERE actor = ? AND key = ?");
    if (!q.ok()) return q.error();
    if (q->Bind(1, actor).Bind(2, key).Step()) {
      return std::optional<IdempotencyRecord>(IdempotencyRecord{q->Text(0), q->Text(1)});
    }
    if (!q->status().ok()) return q->status().error();
    return std::optional<IdempotencyRecord>();
  });
}

Result<std::optional<RunRecord>> RunStore::GetWith(SqliteDb& db, const std::string& id) {
  auto q = db.Prepare(std::string("SELECT ") + kRunColumns + " FROM runs WHERE id = ?");
  if (!q.ok()) return q.error();
  if (q->Bind(1, id).Step()) return std::optional<RunRecord>(ReadRun(*q));
  if (!q->status().ok()) return q->status().error();
  return std::optional<RunRecord>();
}

Status RunStore::WriteStateLocked(const RunRecord& run) {
  auto u = writer_->Prepare(
      "UPDATE runs SET state = ?, verdict = ?, verdict_reason = ?, result_json = ?, error = ?, "
      "started_at = ?, finished_at = ?, progress = ? WHERE id = ?");
  if (!u.ok()) return u.error();
  std::optional<std::string> verdict;
  if (run.verdict) verdict = std::string(domain::ToString(*run.verdict));
  return u->Bind(1, domain::ToString(run.state))
      .BindOpt(2, verdict)
      .Bind(3, run.verdict_reason)
      .Bind(4, run.result_json)
      .BindOpt(5, run.error)
      .BindOpt(6, run.started_at)
      .BindOpt(7, run.finished_at)
      .Bind(8, run.progress)
      .Bind(9, run.id)
      .Run();
}

Status RunStore::RecordRunCleanupLocked(const std::string& id, CleanupRecord cleanup) {
  cleanup.run_id = id;
  if (auto s = UpsertCleanupLocked(cleanup); !s.ok()) return s;
  if (cleanup.state != CleanupRecord::kPending) return {};
  return AppendAuditLocked("run.cleanup.pending", id, "", CleanupAuditJson(cleanup),
                           Actor{"system", ""});
}

Result<RunRecord> RunStore::Transition(const std::string& id, const RunTransition& change,
                                       const Actor& actor) {
  std::lock_guard lock(write_mu_);
  WriteTransaction tx(*writer_, last_audit_);
  if (!tx.status().ok()) return tx.status().error();
  auto current = GetWith(*writer_, id);
  if (!current.ok()) return current.error();
  if (!current->has_value()) return MakeError(ErrorCode::kNotFound, "no run " + id);
  RunRecord run = std::move(**current);
  if (auto s = domain::CheckTransition(run.state, change.to); !s.ok()) return s.error();
  if (domain::IsTerminal(change.to) && !domain::VerdictAllowed(change.to, change.verdict)) {
    return MakeError(ErrorCode::kInternal, "a " + std::string(domain::ToString(change.to)) +
                                               " run cannot carry that verdict");
  }
  const std::string before = StateJson(run.state, run.verdict);
  ApplyTransition(run, change, Now());
  if (auto s = WriteStateLocked(run); !s.ok()) return s.error();
  const std::string after = StateJson(run.state, run.verdict);
  if (auto s = AppendAuditLocked(change.audit_action, id, before, after, actor); !s.ok()) {
    return s.error();
  }
  if (change.cleanup) {
    if (auto s = RecordRunCleanupLocked(id, *change.cleanup); !s.ok()) return s.error();
  }
  if (auto s = tx.Commit(); !s.ok()) return s.error();
  if (domain::IsTerminal(run.state)) ++finished_generation_;
  if (change.cleanup) ++cleanup_generation_;
  return run;
}

Status RunStore::UpdateProgress(const std::string& id, double percent, const std::string& step) {
  std::lock_guard lock(write_mu_);
  auto u = writer_->Prepare("UPDATE runs SET progress = ?, progress_step = ? WHERE id = ?");
  if (!u.ok()) return u.error();
  return u->Bind(1, std::clamp(percent, 0.0, 100.0)).Bind(2, step).Bind(3, id).Run();
}

Result<std::int64_t> RunStore::AppendStep(const std::string& id, const std::string& message) {
  std::lock_guard lock(write_mu_);
  auto q = writer_->Prepare(
      "INSERT INTO run_steps (run_id, seq, at, message) SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, "
      "?3 FROM run_steps WHERE run_id = ?1 RETURNING seq");
  if (!q.ok()) return q.error();
  if (q->Bind(1, id).Bind(2, Now()).Bind(3, message).Step()) {
    std::int64_t seq = q->Int(0);
    while (q->Step()) {
    }
    return seq;
  }
  if (!q->status().ok()) return q->status().error();
  return MakeError(ErrorCode::kInternal, "step not recorded");
}

Status RunStore::RecordArtifact(const std::string& id, const std::string& mode,
                                const domain::Artifact& artifact) {
  std::lock_guard lock(write_mu_);
  auto q = writer_->Prepare(
      "INSERT OR IGNORE INTO run_artifacts (run_id, mode, kind, name) VALUES (?, ?, ?, ?)");
  if (!q.ok()) return q.error();
  return q->Bind(1, id).Bind(2, mode).Bind(3, artifact.kind).Bind(4, artifact.name).Run();
}

Result<std::vector<ArtifactRecord>> RunStore::Artifacts(const std::string& id) {
  return Read([&](SqliteDb& db) -> Result<std::vector<ArtifactRecord>> {
    auto q = db.Prepare(
        "SELECT mode, kind, name FROM run_artifacts WHERE run_id = ? ORDER BY mode, kind, name");
    if (!q.ok()) return q.error();
    q->Bind(1, id);
    std::vector<ArtifactRecord> out;
    while (q->Step()) out.push_back({q->Text(0), {q->Text(1), q->Text(2)}});
    if (!q->status().ok()) return q->status().error();
    return out;
  });
}

Result<std::optional<RunRecord>> RunStore::Get(const std::string& id) {
  return Read([&](SqliteDb& db) { return GetWith(db, id); });
}

Result<std::vector<RunRecord>> RunStore::List(const RunFilter& f) {
  std::string sql = std::string("SELECT ") + kRunColumns + " FROM runs WHERE 1=1";
  std::vector<std::string> text_args;
  auto add = [&](const std::optional<std::string>& v, const char* clause) {
    if (v) {
      sql += clause;
      text_args.push_back(*v);
    }
  };
  add(f.experiment, " AND experiment = ?");
  add(f.state, " AND state = ?");
  add(f.verdict, " AND verdict = ?");
  add(f.since, " AND created_at >= ?");
  add(f.until, " AND created_at < ?");
  if (f.before_seq) sql += " AND seq < ?";
  sql += " ORDER BY seq DESC LIMIT ?";
  return Read([&](SqliteDb& db) -> Result<std::vector<RunRecord>> {
    auto q = db.Prepare(sql);
    if (!q.ok()) return q.error();
    int i = 1;
    for (const auto& a : text_args) q->Bind(i++, a);
    if (f.before_seq) q->Bind(i++, *f.before_seq);
    q->Bind(i, std::int64_t{f.limit});
    std::vector<RunRecord> out;
    while (q->Step()) out.push_back(ReadRun(*q));
    if (!q->status().ok()) return q->status().error();
    return out;
  });
}

Result<std::vector<StepRecord>> RunStore::Steps(const std::string& id, std::int64_t after_seq,
                                                int limit) {
  return Read([&](SqliteDb& db) -> Result<std::vector<StepRecord>> {
    auto q = db.Prepare(
        "SELECT seq, at, message FROM run_steps WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?");
    if (!q.ok()) return q.error();
    q->Bind(1, id).Bind(2, after_seq).Bind(3, std::int64_t{limit});
    std::vector<StepRecord> out;
    while (q->Step()) out.push_back({q->Int(0), q->Text(1), q->Text(2)});
    if (!q->status().ok()) return q->status().error();
    return out;
  });
}

Result<std::int64_t> RunStore::CountQueued() {
  return Read([&](SqliteDb& db) -> Result<std::int64_t> {
    auto q = db.Prepare("SELECT COUNT(*) FROM runs WHERE state = 'queued'");
    if (!q.ok()) return q.error();
    if (q->Step()) return q->Int(0);
    return q->status().error();
  });
}

Result<std::vector<std::pair<std::string, RunRecord>>> RunStore::LatestFinishedPerExperiment() {
  return Read([&](SqliteDb& db) -> Result<std::vector<std::pair<std::string, RunRecord>>> {
    auto q = db.Prepare(std::string("SELECT ") + kRunColumns +
                        " FROM runs WHERE seq IN (SELECT MAX(seq) FROM runs WHERE verdict IS NOT "
                        "NULL GROUP BY experiment)");
    if (!q.ok()) return q.error();
    std::vector<std::pair<std::string, RunRecord>> out;
    while (q->Step()) {
      auto r = ReadRun(*q);
      out.emplace_back(r.experiment, std::move(r));
    }
    if (!q->status().ok()) return q->status().error();
    return out;
  });
}

Status RunStore::CheckWritable() {
  std::lock_guard lock(write_mu_);
  return writer_->Exec("BEGIN IMMEDIATE; ROLLBACK;");
}

}  // namespace lab::server
