#include "server/store/run_store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "server/time_format.h"

namespace lab::server {

using domain::ErrorCode;
using domain::MakeError;
using domain::Result;
using domain::Status;

namespace {

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
  Status status() const { return tx_.status(); }
  Status Commit() {
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

constexpr const char* kRunColumns =
    "seq, id, experiment, state, verdict, verdict_reason, request_json, result_json, progress, "
    "progress_step, error, actor, created_at, started_at, finished_at";

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

// A small JSON object of the fields an audit entry records about a run's state.
std::string StateJson(domain::RunState state, const std::optional<domain::Verdict>& verdict) {
  std::string json = R"({"state":")" + std::string(domain::ToString(state)) + "\"";
  if (verdict) json += R"(,"verdict":")" + std::string(domain::ToString(*verdict)) + "\"";
  return json + "}";
}

constexpr const char* kCleanupColumns =
    "run_id, state, reason, artifacts_json, attempts, last_error, next_attempt_at, created_at, "
    "updated_at";

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

}  // namespace

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

Status RunStore::LoadLastAudit() {
  std::lock_guard lock(write_mu_);
  auto q = writer_->Prepare(
      "SELECT seq, time, actor, action, target, request_id, before, after, prev_hash, hash FROM "
      "audit "
      "ORDER BY seq DESC LIMIT 1");
  if (!q.ok()) return q.error();
  if (q->Step()) last_audit_ = ReadAudit(*q);
  return q->status();
}

Status RunStore::AppendAuditLocked(const std::string& action, const std::string& target,
                                   const std::string& before, const std::string& after,
                                   const Actor& actor) {
  domain::AuditEntry e;
  e.time = Now();
  e.actor = actor.name;
  e.action = action;
  e.target = target;
  e.request_id = actor.request_id;
  e.before = before;
  e.after = after;
  domain::Chain(last_audit_, e);
  auto q = writer_->Prepare(
      "INSERT INTO audit (seq, time, actor, action, target, request_id, before, after, prev_hash, "
      "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!q.ok()) return q.error();
  auto s = q->Bind(1, e.seq)
               .Bind(2, e.time)
               .Bind(3, e.actor)
               .Bind(4, e.action)
               .Bind(5, e.target)
               .Bind(6, e.request_id)
               .Bind(7, e.before)
               .Bind(8, e.after)
               .Bind(9, e.prev_hash)
               .Bind(10, e.hash)
               .Run();
  if (!s.ok()) return s;
  // Only advanced once the row is in; if the transaction later rolls back the caller reloads.
  last_audit_ = e;
  return {};
}

Status RunStore::AppendAudit(const std::string& action, const std::string& target,
                             const std::string& before, const std::string& after,
                             const Actor& actor) {
  std::lock_guard lock(write_mu_);
  WriteTransaction tx(*writer_, last_audit_);
  if (!tx.status().ok()) return tx.status();
  auto s = AppendAuditLocked(action, target, before, after, actor);
  if (s.ok()) s = tx.Commit();
  return s;
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
  std::string before = StateJson(run.state, run.verdict);
  std::string now = Now();
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
  auto u = writer_->Prepare(
      "UPDATE runs SET state = ?, verdict = ?, verdict_reason = ?, result_json = ?, error = ?, "
      "started_at = ?, finished_at = ?, progress = ? WHERE id = ?");
  if (!u.ok()) return u.error();
  std::optional<std::string> verdict;
  if (run.verdict) verdict = std::string(domain::ToString(*run.verdict));
  if (auto s = u->Bind(1, domain::ToString(run.state))
                   .BindOpt(2, verdict)
                   .Bind(3, run.verdict_reason)
                   .Bind(4, run.result_json)
                   .BindOpt(5, run.error)
                   .BindOpt(6, run.started_at)
                   .BindOpt(7, run.finished_at)
                   .Bind(8, run.progress)
                   .Bind(9, id)
                   .Run();
      !s.ok()) {
    return s.error();
  }
  std::string after = StateJson(run.state, run.verdict);
  if (auto s = AppendAuditLocked(change.audit_action, id, before, after, actor); !s.ok()) {
    return s.error();
  }
  if (change.cleanup) {
    CleanupRecord cleanup = *change.cleanup;
    cleanup.run_id = id;
    if (auto s = UpsertCleanupLocked(cleanup); !s.ok()) return s.error();
    if (cleanup.state == CleanupRecord::kPending) {
      if (auto s = AppendAuditLocked("run.cleanup.pending", id, "", CleanupAuditJson(cleanup),
                                     Actor{"system", ""});
          !s.ok()) {
        return s.error();
      }
    }
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

Result<std::vector<domain::AuditEntry>> RunStore::ListAudit(const AuditFilter& f) {
  std::string sql =
      "SELECT seq, time, actor, action, target, request_id, before, after, prev_hash, hash FROM "
      "audit WHERE 1=1";
  std::vector<std::string> args;
  if (f.actor) {
    sql += " AND actor = ?";
    args.push_back(*f.actor);
  }
  if (f.action) {
    sql += " AND action = ?";
    args.push_back(*f.action);
  }
  if (f.target) {
    sql += " AND target = ?";
    args.push_back(*f.target);
  }
  if (f.before_seq) sql += " AND seq < ?";
  sql += " ORDER BY seq DESC LIMIT ?";
  return Read([&](SqliteDb& db) -> Result<std::vector<domain::AuditEntry>> {
    auto q = db.Prepare(sql);
    if (!q.ok()) return q.error();
    int i = 1;
    for (const auto& a : args) q->Bind(i++, a);
    if (f.before_seq) q->Bind(i++, *f.before_seq);
    q->Bind(i, std::int64_t{f.limit});
    std::vector<domain::AuditEntry> out;
    while (q->Step()) out.push_back(ReadAudit(*q));
    if (!q->status().ok()) return q->status().error();
    return out;
  });
}

Result<domain::ChainCheck> RunStore::VerifyAudit() {
  return Read([&](SqliteDb& db) -> Result<domain::ChainCheck> {
    auto q = db.Prepare(
        "SELECT seq, time, actor, action, target, request_id, before, after, prev_hash, hash FROM "
        "audit ORDER BY seq ASC");
    if (!q.ok()) return q.error();
    std::vector<domain::AuditEntry> entries;
    while (q->Step()) entries.push_back(ReadAudit(*q));
    if (!q->status().ok()) return q->status().error();
    return domain::VerifyChain(entries);
  });
}

Result<std::optional<std::string>> RunStore::GetSetting(const std::string& key) {
  return Read([&](SqliteDb& db) -> Result<std::optional<std::string>> {
    auto q = db.Prepare("SELECT value FROM settings WHERE key = ?");
    if (!q.ok()) return q.error();
    if (q->Bind(1, key).Step()) return std::optional<std::string>(q->Text(0));
    if (!q->status().ok()) return q->status().error();
    return std::optional<std::string>();
  });
}

Status RunStore::SetSetting(const std::string& key, const std::optional<std::string>& value,
                            const std::string& audit_action, const Actor& actor) {
  std::lock_guard lock(write_mu_);
  WriteTransaction tx(*writer_, last_audit_);
  if (!tx.status().ok()) return tx.status();
  std::string before;
  {
    auto q = writer_->Prepare("SELECT value FROM settings WHERE key = ?");
    if (!q.ok()) return q.error();
    if (q->Bind(1, key).Step()) before = q->Text(0);
  }
  auto q = value ? writer_->Prepare("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)")
                 : writer_->Prepare("DELETE FROM settings WHERE key = ?");
  if (!q.ok()) return q.error();
  q->Bind(1, key);
  if (value) q->Bind(2, *value);
  if (auto s = q->Run(); !s.ok()) return s;
  if (auto s = AppendAuditLocked(audit_action, key, before, value.value_or(""), actor); !s.ok()) {
    return s;
  }
  auto s = tx.Commit();
  return s;
}

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

Status RunStore::CheckWritable() {
  std::lock_guard lock(write_mu_);
  return writer_->Exec("BEGIN IMMEDIATE; ROLLBACK;");
}

}  // namespace lab::server
