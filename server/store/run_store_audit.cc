// RunStore: the audit chain (audit_log) and the settings, audited with it. See run_store.h; the
// runs, steps and artifacts are in run_store.cc, the cleanups in run_store_cleanups.cc.
#include <nlohmann/json.hpp>

#include "server/store/run_store.h"
#include "server/store/store_rows.h"

namespace lab::server {

using domain::ErrorCode;
using domain::MakeError;
using domain::Result;
using domain::Status;
using namespace store_rows;

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

}  // namespace lab::server
