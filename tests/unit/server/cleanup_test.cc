// Cleanups that are never forgotten: how a cleanup is judged (JudgeCleanup), the durable record
// of one that could not finish (run_cleanups), the start-up sweep, and the retrier with a fake
// attempt, fake health and a settable clock (no stack, no sleeps).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <future>

#include "server/runs/artifact_cleanup.h"
#include "server/runs/cleanup_retrier.h"
#include "server/store/run_store.h"
#include "tests/unit/server/test_support.h"

namespace lab::server {
namespace {

using namespace std::chrono_literals;
using domain::Artifact;
using domain::PartHealth;
using domain::RunState;
using test_support::FakeClock;
using test_support::MigrationsDir;

const Actor kSystem{"system", ""};
const Artifact kTopic{"kafka-topic", "lab_r1_events"};
const Artifact kRows{"mysql-rows", "lab_r1_failure"};
const Artifact kProcess{"process", "4242"};

std::vector<PartHealth> Healthy() {
  return {{"kafka", true, 1, "", ""}, {"mysql", true, 1, "", ""}};
}
std::vector<PartHealth> MysqlDown() {
  return {{"kafka", true, 1, "", ""}, {"mysql", false, 1, "", "connection refused"}};
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "lab-cleanup-XXXXXX").string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    dir_ = mkdtemp(buf.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string db() const { return dir_ + "/lab.db"; }

 private:
  std::string dir_;
};

// A run that reached `state` with `artifacts` recorded; `request_json` says whether it was kept.
void AddFinishedRun(RunStore& store, const std::string& id, RunState state,
                    const std::vector<Artifact>& artifacts,
                    const std::string& request_json = R"({"modes":["failure"]})",
                    std::optional<CleanupRecord> cleanup = std::nullopt) {
  RunRecord r;
  r.id = id;
  r.experiment = "E-004";
  r.request_json = request_json;
  ASSERT_TRUE(store.InsertQueued(r, kSystem, std::nullopt, "h").ok());
  RunTransition start;
  start.to = RunState::kRunning;
  start.audit_action = "run.started";
  ASSERT_TRUE(store.Transition(id, start, kSystem).ok());
  for (const auto& a : artifacts) ASSERT_TRUE(store.RecordArtifact(id, "failure", a).ok());
  if (state == RunState::kRunning) return;
  RunTransition end;
  end.to = state;
  if (state == RunState::kCompleted || state == RunState::kFailed)
    end.verdict = domain::Verdict::kInconclusive;
  end.audit_action = "run." + std::string(domain::ToString(state));
  end.cleanup = std::move(cleanup);
  ASSERT_TRUE(store.Transition(id, end, kSystem).ok());
}

std::vector<std::string> AuditActions(RunStore& store, const std::string& target) {
  AuditFilter f;
  f.target = target;
  f.limit = 100;
  std::vector<std::string> out;
  const auto entries = store.ListAudit(f).value();
  for (const auto& e : entries) out.insert(out.begin(), e.action);
  return out;
}

// A cleanup that reported an error leaves every artifact a later attempt may remove (the runner
// does not say which failed), but never a process or a Redis setting.
TEST(JudgeCleanup, AReportedErrorLeavesEveryRetryableArtifact) {
  auto v = JudgeCleanup({kTopic, kRows, kProcess}, std::nullopt,
                        {"Can't connect to MySQL server on '127.0.0.1:13306' (111)"}, Healthy());
  EXPECT_FALSE(v.finished());
  ASSERT_EQ(v.remaining.size(), 2u);
  EXPECT_EQ(v.remaining[0].kind, "kafka-topic");
  EXPECT_EQ(v.remaining[1].kind, "mysql-rows");
  EXPECT_NE(v.error.find("Can't connect"), std::string::npos);
}

// A cleanup that returned without a word but whose part was down afterwards did not remove what
// lives on that part (the issue's E-004: MariaDB killed, 469 rows left); the rest is done.
TEST(JudgeCleanup, AnUnhealthyPartLeavesItsArtifacts) {
  auto v = JudgeCleanup({kTopic, kRows}, std::nullopt, {}, MysqlDown());
  ASSERT_EQ(v.remaining.size(), 1u);
  EXPECT_EQ(v.remaining[0].name, "lab_r1_failure");
  EXPECT_NE(v.error.find("mysql was not healthy after the cleanup: connection refused"),
            std::string::npos)
      << v.error;
  EXPECT_TRUE(JudgeCleanup({kTopic, kRows}, std::nullopt, {}, Healthy()).finished());
  EXPECT_TRUE(JudgeCleanup({kProcess}, std::string("host died"), {}, Healthy()).finished())
      << "nothing a retry may touch: nothing is pending";
  EXPECT_FALSE(JudgeCleanup({kTopic}, std::string("host died"), {}, Healthy()).finished());
}

// "cleanup: <error>" steps are errors; "cleanup: restore: …" says what was put back.
TEST(CleanupReporter, KeepsErrorsAndForwardsEverything) {
  struct Inner : domain::RunReporter {
    void Step(std::string_view m) override { steps.emplace_back(m); }
    void Progress(double) override {}
    void Created(std::string_view, const Artifact&) override {}
    std::vector<std::string> steps;
  } inner;
  CleanupReporter r(&inner);
  r.Step("cleanup: Lock wait timeout exceeded");
  r.Step("cleanup: restore: slot 1 back on node 1");
  r.Step("removed 3 topics");
  EXPECT_EQ(inner.steps.size(), 3u);
  ASSERT_EQ(r.errors().size(), 1u);
  EXPECT_EQ(r.errors()[0], "Lock wait timeout exceeded");
}

class CleanupStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = RunStore::Open(":memory:", MigrationsDir(), clock_);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store_ = std::move(opened).value();
  }
  FakeClock clock_;
  std::unique_ptr<RunStore> store_;
};

// The final state and the pending cleanup commit together, audited, and the chain holds.
TEST_F(CleanupStoreTest, APendingCleanupIsWrittenWithTheFinalState) {
  CleanupRecord pending;
  pending.reason = "the run's cleanup could not finish";
  pending.artifacts = {kRows};
  pending.last_error = "Can't connect to MySQL server";
  AddFinishedRun(*store_, "r1", RunState::kCompleted, {kTopic, kRows}, R"({"modes":["failure"]})",
                 pending);
  auto c = store_->GetCleanup("r1");
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->state, "pending");
  ASSERT_EQ((*c)->artifacts.size(), 1u);
  EXPECT_EQ((*c)->artifacts[0].name, "lab_r1_failure");
  EXPECT_EQ((*c)->last_error.value_or(""), "Can't connect to MySQL server");
  EXPECT_EQ(store_->CountCleanups()->pending, 1);
  auto actions = AuditActions(*store_, "r1");
  EXPECT_EQ(actions.back(), "run.cleanup.pending");
  EXPECT_TRUE(store_->VerifyAudit()->ok);
  // Due at once; after a failed attempt, not before its next time.
  ASSERT_EQ(store_->DueCleanups("2026-11-21T10:00:00.000Z")->size(), 1u);
  CleanupRecord after = **c;
  after.attempts = 1;
  after.next_attempt_at = "2026-11-21T10:00:30.000Z";
  ASSERT_TRUE(store_->RecordCleanupAttempt(after).ok());
  EXPECT_TRUE(store_->DueCleanups("2026-11-21T10:00:29.999Z")->empty());
  EXPECT_EQ(store_->DueCleanups("2026-11-21T10:00:30.000Z")->size(), 1u);
  ASSERT_TRUE(store_->CompleteCleanup("r1", 2, kSystem).ok());
  EXPECT_EQ((*store_->GetCleanup("r1"))->state, "done");
  EXPECT_EQ(store_->CountCleanups()->pending, 0);
  EXPECT_EQ(AuditActions(*store_, "r1").back(), "run.cleanup.completed");
  EXPECT_FALSE(store_->CompleteCleanup("r1", 3, kSystem).ok()) << "done once";
}

// The sweep at start queues the runs whose cleanup never ran to its end — an interrupted run, a
// run from before the table — and neither kept runs nor runs whose cleanup is recorded.
TEST_F(CleanupStoreTest, SweepQueuesRunsNeverCleanedOnce) {
  AddFinishedRun(*store_, "killed", RunState::kRunning, {kTopic, kRows, kProcess});
  ASSERT_EQ(store_->Recover()->interrupted.size(), 1u);  // kill -9 mid-run, then a restart
  AddFinishedRun(*store_, "kept", RunState::kCompleted, {kTopic},
                 R"({"modes":["failure"],"keep_artifacts":true})");
  CleanupRecord done;
  done.state = CleanupRecord::kDone;
  done.reason = "the run's cleanup";
  AddFinishedRun(*store_, "cleaned", RunState::kCompleted, {kTopic}, R"({"modes":["failure"]})",
                 done);
  AddFinishedRun(*store_, "none", RunState::kCompleted, {});
  auto swept = SweepRunsNeverCleaned(*store_);
  ASSERT_TRUE(swept.ok()) << swept.error().message;
  EXPECT_EQ(*swept, 1);
  auto c = store_->GetCleanup("killed");
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->state, "pending");
  EXPECT_EQ((*c)->artifacts.size(), 2u) << "the process is not retried";
  EXPECT_NE((*c)->reason.find("interrupted"), std::string::npos) << (*c)->reason;
  EXPECT_EQ(AuditActions(*store_, "killed").back(), "run.cleanup.swept");
  EXPECT_FALSE(store_->GetCleanup("kept")->has_value());
  EXPECT_EQ(*SweepRunsNeverCleaned(*store_), 0) << "swept once";
}

// The retrier's world: a store, a clock, an attempt and health the test sets.
class RetrierTest : public CleanupStoreTest {
 protected:
  CleanupRetrier MakeRetrier(CleanupRetrierOptions options = {}) {
    return CleanupRetrier(
        *store_, clock_,
        [this](const CleanupRecord& c) {
          attempted.push_back(c.run_id);
          CleanupVerdict v;
          if (fail) {
            v.remaining = c.artifacts;
            v.error =
                "Can't connect to MySQL server (attempt " + std::to_string(attempted.size()) + ")";
          }
          return v;
        },
        [this]() -> std::optional<std::vector<PartHealth>> { return health; }, options);
  }
  void AddPending(const std::string& id) {
    CleanupRecord pending;
    pending.reason = "the run's cleanup could not finish";
    pending.artifacts = {kRows};
    pending.last_error = "Can't connect to MySQL server";
    AddFinishedRun(*store_, id, RunState::kCompleted, {kRows}, R"({"modes":["failure"]})", pending);
  }

  std::optional<std::vector<PartHealth>> health = MysqlDown();
  bool fail = false;
  std::vector<std::string> attempted;
};

// Regression (issue 15): a cleanup that failed is not forgotten. While MariaDB is down nothing is
// attempted; once it is healthy the cleanup runs again, and success marks it done and audits it.
TEST_F(RetrierTest, RetriesWhenThePartIsHealthyAgain) {
  AddPending("r1");
  auto retrier = MakeRetrier();
  EXPECT_EQ(retrier.counts().pending, 1);
  EXPECT_EQ(retrier.RunDue(), 0);
  EXPECT_TRUE(attempted.empty()) << "MariaDB is down: no attempt, none counted";
  EXPECT_EQ((*store_->GetCleanup("r1"))->attempts, 0);
  health = std::nullopt;
  EXPECT_EQ(retrier.RunDue(), 0) << "health not known yet";
  health = Healthy();
  EXPECT_EQ(retrier.RunDue(), 1);
  EXPECT_EQ(attempted, std::vector<std::string>{"r1"});
  auto c = store_->GetCleanup("r1");
  EXPECT_EQ((*c)->state, "done");
  EXPECT_EQ((*c)->attempts, 1);
  EXPECT_EQ(retrier.counts().pending, 0);
  EXPECT_EQ(AuditActions(*store_, "r1").back(), "run.cleanup.completed");
  EXPECT_EQ(retrier.RunDue(), 0) << "done is done";
}

// A failed attempt keeps its error (row and step log), waits a doubling backoff on the clock,
// and after max_attempts the cleanup is given up (still counted; DELETE re-arms it).
TEST_F(RetrierTest, BacksOffAndGivesUpAfterTheBound) {
  AddPending("r1");
  health = Healthy();
  fail = true;
  CleanupRetrierOptions options;
  options.first_backoff = 30s;
  options.max_attempts = 3;
  auto retrier = MakeRetrier(options);
  EXPECT_EQ(retrier.RunDue(), 1);
  auto c = store_->GetCleanup("r1");
  EXPECT_EQ((*c)->attempts, 1);
  EXPECT_EQ((*c)->last_error.value_or(""), "Can't connect to MySQL server (attempt 1)");
  EXPECT_EQ((*c)->next_attempt_at, "2026-11-21T10:00:30.000Z");
  EXPECT_EQ(retrier.RunDue(), 0) << "not due before its backoff";
  clock_.Advance(30s);
  EXPECT_EQ(retrier.RunDue(), 1);
  EXPECT_EQ((*store_->GetCleanup("r1"))->next_attempt_at, "2026-11-21T10:01:30.000Z")
      << "60 s after the second attempt";
  clock_.Advance(60s);
  EXPECT_EQ(retrier.RunDue(), 1);
  c = store_->GetCleanup("r1");
  EXPECT_EQ((*c)->state, "given_up");
  EXPECT_EQ(retrier.counts().given_up, 1);
  clock_.Advance(24h);
  EXPECT_EQ(retrier.RunDue(), 0);
  EXPECT_EQ(attempted.size(), 3u);
  EXPECT_EQ(AuditActions(*store_, "r1").back(), "run.cleanup.given_up");
  int errors = 0;
  const auto steps = store_->Steps("r1", 0, 100).value();
  for (const auto& s : steps) {
    if (s.message.find("cleanup retry") == 0 &&
        s.message.find("Can't connect to MySQL server (attempt") != std::string::npos)
      ++errors;
  }
  EXPECT_EQ(errors, 3) << "each attempt's error is in the step log";
  // Re-armed (DELETE /runs/{id}/artifacts queues it again): attempts start over.
  ASSERT_TRUE(store_
                  ->QueueCleanup("r1", {kRows}, "removal requested by alice",
                                 "run.artifacts.delete", Actor{"alice", "req-9"})
                  .ok());
  fail = false;
  EXPECT_EQ(retrier.RunDue(), 1);
  EXPECT_EQ((*store_->GetCleanup("r1"))->state, "done");
}

// A pending cleanup outlives the server: reopened from the file, a new retrier finds it.
TEST(RetrierRestart, APendingCleanupSurvivesARestart) {
  TempDir dir;
  FakeClock clock;
  {
    auto store = RunStore::Open(dir.db(), MigrationsDir(), clock).value();
    CleanupRecord pending;
    pending.reason = "the run's cleanup could not finish";
    pending.artifacts = {kRows};
    AddFinishedRun(*store, "r1", RunState::kFailed, {kRows}, R"({"modes":["failure"]})", pending);
  }
  auto store = RunStore::Open(dir.db(), MigrationsDir(), clock).value();
  int attempts = 0;
  CleanupRetrier retrier(
      *store, clock,
      [&](const CleanupRecord&) {
        ++attempts;
        return CleanupVerdict{};
      },
      []() -> std::optional<std::vector<PartHealth>> { return Healthy(); });
  EXPECT_EQ(retrier.counts().pending, 1);
  EXPECT_EQ(retrier.RunDue(), 1);
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ((*store->GetCleanup("r1"))->state, "done");
}

// On its thread: Wake makes it look at once; Stop joins it (no detached thread).
TEST_F(RetrierTest, TheThreadAttemptsOnWakeAndStops) {
  health = Healthy();
  std::promise<void> attempted_once;
  CleanupRetrierOptions options;
  options.poll = 1h;  // only a Wake (or the first pass) makes it look
  CleanupRetrier retrier(
      *store_, clock_,
      [&](const CleanupRecord&) {
        attempted_once.set_value();
        return CleanupVerdict{};
      },
      [this]() -> std::optional<std::vector<PartHealth>> { return health; }, options);
  retrier.Start();
  AddPending("r1");  // after the first (empty) pass, perhaps: only the Wake finds it
  retrier.Wake();
  ASSERT_EQ(attempted_once.get_future().wait_for(10s), std::future_status::ready);
  retrier.Stop();
  EXPECT_EQ((*store_->GetCleanup("r1"))->state, "done");
}

}  // namespace
}  // namespace lab::server
