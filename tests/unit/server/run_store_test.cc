// RunStore: migrations applied once, runs committed with their audit entry, the lifecycle
// enforced, crash recovery, idempotency keys, and the audit chain catching tampering.
#include "server/store/run_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "tests/unit/server/test_support.h"

namespace lab::server {
namespace {

using domain::RunState;
using domain::Verdict;
using test_support::FakeClock;
using test_support::MigrationsDir;

class TempDb {
 public:
  TempDb() {
    std::string pattern = (std::filesystem::temp_directory_path() / "lab-store-XXXXXX").string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    dir_ = mkdtemp(buf.data());
  }
  ~TempDb() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string path() const { return dir_ + "/lab.db"; }

 private:
  std::string dir_;
};

// Runs SQL on the file with a separate raw connection; returns the first column of the first row.
std::string RawQuery(const std::string& path, const std::string& sql, int* rc_out = nullptr) {
  sqlite3* db = nullptr;
  std::string out;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  sqlite3_busy_timeout(db, 2000);
  sqlite3_stmt* stmt = nullptr;
  const char* tail = sql.c_str();
  while (rc == SQLITE_OK && tail != nullptr && *tail != '\0') {
    rc = sqlite3_prepare_v2(db, tail, -1, &stmt, &tail);
    if (rc != SQLITE_OK || stmt == nullptr) break;
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW && out.empty()) {
      const auto* text = sqlite3_column_text(stmt, 0);
      out = text ? reinterpret_cast<const char*>(text) : "";
    } else if (step != SQLITE_ROW && step != SQLITE_DONE) {
      rc = step;
    }
    sqlite3_finalize(stmt);
    stmt = nullptr;
  }
  if (rc_out) *rc_out = rc;
  sqlite3_close(db);
  return out;
}

RunRecord NewRun(const std::string& id, const std::string& experiment = "E-000") {
  RunRecord r;
  r.id = id;
  r.experiment = experiment;
  r.request_json = R"({"modes":["check"],"params":{"timeout_ms":100}})";
  return r;
}

const Actor kAlice{"alice", "req-1"};

class RunStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = RunStore::Open(":memory:", MigrationsDir(), clock_);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store_ = std::move(opened).value();
  }

  std::vector<domain::AuditEntry> Audit(AuditFilter f = {}) {
    f.limit = 1000;
    auto a = store_->ListAudit(f);
    EXPECT_TRUE(a.ok());
    return a.ok() ? *a : std::vector<domain::AuditEntry>{};
  }

  RunTransition To(RunState state, std::optional<Verdict> verdict = std::nullopt) {
    RunTransition t;
    t.to = state;
    t.verdict = verdict;
    t.audit_action = "run." + std::string(domain::ToString(state));
    return t;
  }

  FakeClock clock_;
  std::unique_ptr<RunStore> store_;
};

// Migrations are applied once: opening the same file twice keeps one schema_version row each.
TEST(RunStoreMigrations, AppliedOnceAcrossReopen) {
  TempDb tmp;
  FakeClock clock;
  {
    auto first = RunStore::Open(tmp.path(), MigrationsDir(), clock);
    ASSERT_TRUE(first.ok()) << first.error().message;
    ASSERT_TRUE((*first)->InsertQueued(NewRun("r1"), kAlice, std::nullopt, "h").ok());
  }
  auto second = RunStore::Open(tmp.path(), MigrationsDir(), clock);
  ASSERT_TRUE(second.ok()) << second.error().message;
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(MigrationsDir())) {
    if (e.path().extension() == ".sql") ++files;
  }
  EXPECT_EQ(RawQuery(tmp.path(), "SELECT COUNT(*) FROM schema_version"), std::to_string(files));
  EXPECT_EQ(RawQuery(tmp.path(), "SELECT COUNT(*) - COUNT(DISTINCT version) FROM schema_version"),
            "0");
  // The data of the first open is still there, and the chain continues across the reopen.
  auto r1 = (*second)->Get("r1");
  ASSERT_TRUE(r1.ok() && r1->has_value());
  ASSERT_TRUE((*second)->InsertQueued(NewRun("r2"), kAlice, std::nullopt, "h").ok());
  auto check = (*second)->VerifyAudit();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok) << check->reason;
  EXPECT_EQ(check->entries, 2);
  EXPECT_EQ(RawQuery(tmp.path(), "PRAGMA journal_mode"), "wal");
}

// A store without migrations refuses to open, naming the directory.
TEST(RunStoreMigrations, MissingMigrationsIsAnError) {
  FakeClock clock;
  auto opened = RunStore::Open(":memory:", "/nonexistent/migrations", clock);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().message.find("/nonexistent/migrations"), std::string::npos);
}

// InsertQueued commits the run and its audit entry (actor, request id, after-state) together.
TEST_F(RunStoreTest, InsertQueuedWritesRunAndAudit) {
  auto inserted = store_->InsertQueued(NewRun("r1"), kAlice, std::nullopt, "h");
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  EXPECT_EQ(inserted->state, RunState::kQueued);
  EXPECT_EQ(inserted->created_at, "2026-11-21T10:00:00.000Z");
  EXPECT_EQ(inserted->actor, "alice");
  auto got = store_->Get("r1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->request_json, NewRun("r1").request_json);
  auto audit = Audit();
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].action, "run.queued");
  EXPECT_EQ(audit[0].target, "r1");
  EXPECT_EQ(audit[0].actor, "alice");
  EXPECT_EQ(audit[0].request_id, "req-1");
  EXPECT_NE(audit[0].after.find("\"queued\""), std::string::npos);
  EXPECT_EQ(audit[0].seq, 1);
}

// A failed insert (duplicate id) leaves neither a run nor an audit entry, and the chain goes on.
TEST_F(RunStoreTest, FailedInsertRollsBackRunAndAudit) {
  ASSERT_TRUE(store_->InsertQueued(NewRun("r1"), kAlice, std::nullopt, "h").ok());
  auto dup = store_->InsertQueued(NewRun("r1"), kAlice, std::nullopt, "h");
  EXPECT_FALSE(dup.ok());
  EXPECT_EQ(Audit().size(), 1u);
  ASSERT_TRUE(store_->InsertQueued(NewRun("r2"), kAlice, std::nullopt, "h").ok());
  auto check = store_->VerifyAudit();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok) << check->reason;
  EXPECT_EQ(check->entries, 2);
}

// Idempotency keys: stored with the run per actor; a reused key conflicts and stores nothing.
TEST_F(RunStoreTest, IdempotencyKeys) {
  ASSERT_TRUE(store_->InsertQueued(NewRun("r1"), kAlice, std::string("k1"), "hash-a").ok());
  auto found = store_->FindIdempotencyKey("alice", "k1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->run_id, "r1");
  EXPECT_EQ((*found)->body_hash, "hash-a");
  auto other_actor = store_->FindIdempotencyKey("bob", "k1");
  ASSERT_TRUE(other_actor.ok());
  EXPECT_FALSE(other_actor->has_value());
  auto twin = store_->InsertQueued(NewRun("r2"), kAlice, std::string("k1"), "hash-b");
  ASSERT_FALSE(twin.ok());
  EXPECT_EQ(twin.error().code, domain::ErrorCode::kConflict);
  auto r2 = store_->Get("r2");
  ASSERT_TRUE(r2.ok());
  EXPECT_FALSE(r2->has_value()) << "the run of a conflicting key was kept";
  EXPECT_EQ(Audit().size(), 1u);
  // Bob may use the same key for his own run.
  EXPECT_TRUE(
      store_->InsertQueued(NewRun("r3"), Actor{"bob", "req-2"}, std::string("k1"), "hash-b").ok());
}

// Legal transitions stamp times and audit before/after; illegal ones fail and change nothing.
TEST_F(RunStoreTest, TransitionsLegalAndIllegal) {
  ASSERT_TRUE(store_->InsertQueued(NewRun("r1"), kAlice, std::nullopt, "h").ok());
  EXPECT_FALSE(
      store_->Transition("r1", To(RunState::kCompleted, Verdict::kConfirmed), kAlice).ok());
  clock_.Advance(std::chrono::milliseconds(1500));
  auto running = store_->Transition("r1", To(RunState::kRunning), Actor{"system", ""});
  ASSERT_TRUE(running.ok()) << running.error().message;
  EXPECT_EQ(running->started_at.value_or(""), "2026-11-21T10:00:01.500Z");
  // A failed run cannot carry a confirmed verdict.
  EXPECT_FALSE(store_->Transition("r1", To(RunState::kFailed, Verdict::kConfirmed), kAlice).ok());
  EXPECT_FALSE(store_->Transition("r1", To(RunState::kQueued), kAlice).ok());
  auto done =
      store_->Transition("r1", To(RunState::kCompleted, Verdict::kRefuted), Actor{"system", ""});
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(done->verdict, Verdict::kRefuted);
  EXPECT_TRUE(done->finished_at.has_value());
  EXPECT_EQ(done->progress, 100);
  // Terminal states never move again.
  for (auto s :
       {RunState::kRunning, RunState::kCancelled, RunState::kFailed, RunState::kInterrupted}) {
    EXPECT_FALSE(store_->Transition("r1", To(s), kAlice).ok()) << domain::ToString(s);
  }
  EXPECT_FALSE(store_->Transition("nope", To(RunState::kRunning), kAlice).ok());
  auto audit = Audit();
  ASSERT_EQ(audit.size(), 3u);
  EXPECT_EQ(audit[0].action, "run.completed");
  EXPECT_EQ(audit[0].before, R"({"state":"running"})");
  EXPECT_EQ(audit[0].after, R"({"state":"completed","verdict":"refuted"})");
  auto got = store_->Get("r1");
  EXPECT_EQ((*got)->state, RunState::kCompleted);
  auto check = store_->VerifyAudit();
  EXPECT_TRUE(check->ok) << check->reason;
}

// A queued run can be cancelled before it starts.
TEST_F(RunStoreTest, QueuedRunCanBeCancelled) {
  ASSERT_TRUE(store_->InsertQueued(NewRun("r1"), kAlice, std::nullopt, "h").ok());
  auto t = To(RunState::kCancelled);
  t.error = "cancelled by alice";
  auto c = store_->Transition("r1", t, kAlice);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c->started_at.has_value());
  EXPECT_EQ(c->error.value_or(""), "cancelled by alice");
}

// Recover: running runs become interrupted with a reason and an audit entry; queued ones are
// returned in order; finished ones are untouched.
TEST_F(RunStoreTest, RecoverInterruptsRunningAndReturnsQueued) {
  for (const char* id : {"a", "b", "c", "d"}) {
    ASSERT_TRUE(store_->InsertQueued(NewRun(id), kAlice, std::nullopt, "h").ok());
  }
  ASSERT_TRUE(store_->Transition("a", To(RunState::kRunning), kAlice).ok());
  ASSERT_TRUE(store_->Transition("c", To(RunState::kRunning), kAlice).ok());
  ASSERT_TRUE(store_->Transition("c", To(RunState::kCompleted, Verdict::kConfirmed), kAlice).ok());
  auto rec = store_->Recover();
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->interrupted, std::vector<std::string>{"a"});
  ASSERT_EQ(rec->queued.size(), 2u);
  EXPECT_EQ(rec->queued[0].id, "b");
  EXPECT_EQ(rec->queued[1].id, "d");
  auto a = store_->Get("a");
  EXPECT_EQ((*a)->state, RunState::kInterrupted);
  EXPECT_FALSE((*a)->error.value_or("").empty());
  EXPECT_TRUE((*a)->finished_at.has_value());
  EXPECT_EQ((*store_->Get("c"))->state, RunState::kCompleted);
  AuditFilter f;
  f.action = "run.interrupted";
  auto audit = Audit(f);
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].target, "a");
  EXPECT_EQ(audit[0].actor, "system");
  EXPECT_TRUE(store_->VerifyAudit()->ok);
  // An interrupted run is terminal.
  EXPECT_FALSE(store_->Transition("a", To(RunState::kRunning), kAlice).ok());
  // A second recovery finds nothing more to interrupt.
  EXPECT_TRUE(store_->Recover()->interrupted.empty());
}

// Lists page newest first by seq and filter by experiment, state and time.
TEST_F(RunStoreTest, ListFiltersAndPages) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_
                    ->InsertQueued(NewRun("r" + std::to_string(i), i % 2 ? "E-001" : "E-000"),
                                   kAlice, std::nullopt, "h")
                    .ok());
    clock_.Advance(std::chrono::seconds(1));
  }
  RunFilter f;
  f.limit = 2;
  auto page = store_->List(f);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].id, "r4");
  f.before_seq = (*page)[1].seq;
  auto next = store_->List(f);
  EXPECT_EQ((*next)[0].id, "r2");
  RunFilter e;
  e.experiment = "E-001";
  EXPECT_EQ(store_->List(e)->size(), 2u);
  RunFilter t;
  t.since = "2026-11-21T10:00:02.000Z";
  t.until = "2026-11-21T10:00:04.000Z";
  auto window = store_->List(t);
  ASSERT_EQ(window->size(), 2u);
  EXPECT_EQ((*window)[0].id, "r3");
  EXPECT_EQ((*window)[1].id, "r2");
}

// Settings (the halt switch) are stored and audited; removing one audits too.
TEST_F(RunStoreTest, SettingsAreAudited) {
  ASSERT_TRUE(store_->SetSetting("halt", std::string("maintenance"), "halt.set", kAlice).ok());
  EXPECT_EQ(store_->GetSetting("halt")->value_or(""), "maintenance");
  ASSERT_TRUE(store_->SetSetting("halt", std::nullopt, "halt.lifted", kAlice).ok());
  EXPECT_FALSE(store_->GetSetting("halt")->has_value());
  auto audit = Audit();
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[0].action, "halt.lifted");
  EXPECT_EQ(audit[0].before, "maintenance");
  EXPECT_EQ(audit[1].action, "halt.set");
}

// The audit chain verifies; a row changed with a raw connection (trigger dropped) is found.
TEST(RunStoreAudit, TamperingBehindTheStoreIsDetected) {
  TempDb tmp;
  FakeClock clock;
  auto opened = RunStore::Open(tmp.path(), MigrationsDir(), clock);
  ASSERT_TRUE(opened.ok());
  RunStore& store = **opened;
  for (const char* id : {"a", "b", "c"})
    ASSERT_TRUE(store.InsertQueued(NewRun(id), kAlice, std::nullopt, "h").ok());
  ASSERT_TRUE(store
                  .AppendAudit("auth.failed", "GET /runs", "", R"({"reason":"no token"})",
                               Actor{"anonymous", "x"})
                  .ok());
  auto ok = store.VerifyAudit();
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->ok);
  EXPECT_EQ(ok->entries, 4);

  int rc = 0;
  RawQuery(tmp.path(), "UPDATE audit SET actor = 'mallory' WHERE seq = 2", &rc);
  EXPECT_NE(rc, SQLITE_OK) << "the append-only trigger let an UPDATE through";
  EXPECT_TRUE(store.VerifyAudit()->ok);

  RawQuery(tmp.path(),
           "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 2", &rc);
  ASSERT_EQ(rc, SQLITE_OK);
  auto broken = store.VerifyAudit();
  ASSERT_TRUE(broken.ok());
  EXPECT_FALSE(broken->ok);
  ASSERT_TRUE(broken->first_broken_seq.has_value());
  EXPECT_EQ(*broken->first_broken_seq, 2);
  EXPECT_FALSE(broken->reason.empty());
}

// A rewritten hash (entry and its own hash recomputed by an attacker) still breaks the next link.
TEST(RunStoreAudit, RewrittenHashBreaksTheNextLink) {
  TempDb tmp;
  FakeClock clock;
  auto opened = RunStore::Open(tmp.path(), MigrationsDir(), clock);
  ASSERT_TRUE(opened.ok());
  RunStore& store = **opened;
  for (const char* id : {"a", "b", "c"})
    ASSERT_TRUE(store.InsertQueued(NewRun(id), kAlice, std::nullopt, "h").ok());
  int rc = 0;
  RawQuery(tmp.path(),
           "DROP TRIGGER audit_no_update; UPDATE audit SET hash = 'deadbeef' WHERE seq = 2", &rc);
  ASSERT_EQ(rc, SQLITE_OK);
  auto broken = store.VerifyAudit();
  EXPECT_FALSE(broken->ok);
  ASSERT_TRUE(broken->first_broken_seq.has_value());
  EXPECT_LE(*broken->first_broken_seq, 3);
}

}  // namespace
}  // namespace lab::server
