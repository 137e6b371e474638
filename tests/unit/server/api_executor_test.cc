// The Api handlers and the RunExecutor without sockets: an Api over a RunStore on :memory:, a
// RunQueue and a RunExecutor whose runners are fakes. Proves the verdict follows the evidence,
// cleanup runs after a throw, a cancel and a timeout, and preflight/postflight are honoured.
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "server/http/api.h"
#include "server/json_codec.h"
#include "server/metrics/run_telemetry.h"
#include "server/runs/cleanup_retrier.h"
#include "server/runs/store_reporter.h"
#include "server/runs/worker_pool.h"
#include "tests/unit/server/test_support.h"

namespace lab::server {
namespace {

using namespace std::chrono_literals;
using test_support::FakeClock;
using test_support::MigrationsDir;

// A runner whose observations the test sets. It can throw, or block until its stop token fires.
class FakeRunner : public domain::ExperimentRunner {
 public:
  explicit FakeRunner(std::string id) : id_(std::move(id)) {}
  std::string_view ExperimentId() const override { return id_; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    int call = calls++;
    ctx.reporter->Step("fake runner working");
    ctx.reporter->Created(mode, {"kafka-topic", ctx.ns + "_events"});
    if (report_gauges) {
      ctx.reporter->Gauge("lab_consumer_lag", {{"group", ctx.ns + "_g"}, {"topic", "t"}}, 42);
      ctx.reporter->Gauge("lab_outbox_backlog", {}, 7);
    }
    if (!throw_message.empty()) throw std::runtime_error(throw_message);
    if (block) {
      if (started) started->set_value();
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock lock(m);
      cv.wait(lock, ctx.stop, [] { return false; });
      saw_stop = ctx.stop.stop_requested();
    }
    domain::ModeResult r;
    r.metrics =
        per_call.empty() ? metrics : per_call[static_cast<std::size_t>(call) % per_call.size()];
    r.details_json = R"({"note":"fake"})";
    return r;
  }

  void Cleanup(const domain::RunContext& ctx,
               const std::vector<domain::Artifact>& created) override {
    ++cleanups;
    cleaned = created;
    cleanup_stop_requested = ctx.stop.stop_requested();
    cleanup_saw_keep = ctx.keep_artifacts;
    // As ExperimentBase::Cleanup reports what it could not remove, and returns.
    if (!cleanup_error.empty()) ctx.reporter->Step("cleanup: " + cleanup_error);
  }

  // Set before a run starts (happens-before via thread start), read after it ended.
  domain::ModeMetrics metrics;
  std::vector<domain::ModeMetrics> per_call;
  std::string throw_message;
  bool block = false;
  bool report_gauges = false;
  std::promise<void>* started = nullptr;
  std::atomic<int> calls{0};
  std::atomic<int> cleanups{0};
  std::atomic<bool> saw_stop{false};
  std::vector<domain::Artifact> cleaned;
  bool cleanup_stop_requested = true;
  bool cleanup_saw_keep = true;
  std::string cleanup_error;  // reported as a "cleanup: …" step

 private:
  std::string id_;
};

class FakeProbe : public domain::StackProbe {
 public:
  std::vector<domain::PartHealth> Check(const std::vector<std::string>& parts,
                                        std::chrono::milliseconds) override {
    std::lock_guard lock(mu);
    ++checks;
    std::vector<domain::PartHealth> out;
    for (const auto& p : parts) {
      bool ok = down.count(p) == 0 && !(checks > 1 && down_after_first.count(p));
      out.push_back({p, ok, 1.0, "v1", ok ? "" : "refused"});
    }
    return out;
  }
  std::mutex mu;
  std::set<std::string> down;              // guarded by mu
  std::set<std::string> down_after_first;  // guarded by mu
  int checks = 0;                          // guarded by mu
};

// E-001's criteria: success.commands > 0 (else inconclusive), applied == commands, and
// duplicates, mismatches, stale_reads == 0 (else refuted).
domain::ModeMetrics GoodE001() {
  return {{"commands", 100}, {"commands_committed", 100}, {"applied", 100},
          {"duplicates", 0}, {"mismatches", 0},           {"stale_reads", 0}};
}

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = RunStore::Open(":memory:", MigrationsDir(), clock_);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store_ = std::move(opened).value();
    MakeApi(nullptr);
  }

  void MakeApi(domain::StackProbe* probe) {
    ExecutorOptions executor_options;
    executor_options.on_cleanup_pending = [this](const std::string&) { retrier_->Wake(); };
    // The run's timeout without a real wait: a test sets deadline_passes and the deadline is
    // reached at once (the limit asked for is kept).
    executor_options.deadline_wait = [this](std::chrono::seconds limit, std::stop_token done) {
      if (!deadline_passes) return WaitOnSteadyClock(limit, done);
      deadline_asked = limit;
      return true;
    };
    lifecycle_ = std::make_unique<RunLifecycle>(*store_, telemetry_);
    executor_ = std::make_unique<RunExecutor>(
        *store_, *lifecycle_, telemetry_,
        std::map<std::string, domain::ExperimentRunner*>{{"E-001", &runner_}}, probe, health_,
        executor_options);
    runs_ = std::make_unique<RunService>(*store_, queue_, *executor_, *lifecycle_, telemetry_);
    ApiOptions options;
    options.allow_anonymous = true;
    options.openapi_json = "{}";
    readiness_.reset();
    if (probe != nullptr) {
      readiness_ = std::make_unique<ReadinessMonitor>(
          *probe, health_, std::vector<std::string>{"kafka", "mysql"}, 100ms, 50ms, nullptr);
    }
    retrier_ = std::make_unique<CleanupRetrier>(
        *store_, clock_, RunnerCleanupAttempt(*store_, {{"E-001", &runner_}}, nullptr, 100ms),
        [this]() -> std::optional<std::vector<domain::PartHealth>> {
          return std::vector<domain::PartHealth>{{"kafka", kafka_ok, 1, "", "refused"}};
        });
    api_ = std::make_unique<Api>(*store_, *runs_, metrics_, readiness_.get(), health_,
                                 TokenTable::Parse("").value(), limiter_,
                                 std::set<std::string>{"E-001"}, options, retrier_.get());
  }

  HttpResponse Call(const std::string& method, const std::string& target,
                    const std::string& body = "", std::map<std::string, std::string> headers = {}) {
    HttpRequest req;
    req.method = method;
    req.target = target;
    EXPECT_TRUE(ParseTarget(target, req.path, req.query));
    headers.emplace("host", "127.0.0.1:8080");
    req.headers = std::move(headers);
    req.body = body;
    req.remote_ip = "127.0.0.1";
    req.request_id = "req-" + std::to_string(++requests_);
    return api_->Handle(req);
  }

  static Json Body(const HttpResponse& r) { return Json::parse(r.Body(), nullptr, false); }
  static std::string Header(const HttpResponse& r, const std::string& name) {
    for (const auto& [n, v] : r.headers) {
      if (n == name) return v;
    }
    return "";
  }

  // POSTs a run of E-001 and returns its id.
  std::string Post(const Json& body = Json::object()) {
    auto r = Call("POST", "/experiments/E-001/runs", body.dump());
    EXPECT_EQ(r.status, 202) << r.body;
    return Body(r).value("id", "");
  }

  // Takes the next run from the queue and executes it on this thread, like a worker.
  void ExecuteNext() {
    std::stop_source stopped;
    stopped.request_stop();
    auto run = queue_.PopRunnable(stopped.get_token());
    ASSERT_TRUE(run.has_value()) << "nothing runnable in the queue";
    executor_->Execute(*run);
    queue_.Release(*run);
  }

  Json RunJson(const std::string& id) {
    auto r = Call("GET", "/runs/" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    return Body(r);
  }

  bool HasStep(const Json& run, const std::string& text) {
    for (const auto& s : run["steps"]) {
      if (s["message"].get<std::string>().find(text) != std::string::npos) return true;
    }
    return false;
  }

  FakeClock clock_;
  std::unique_ptr<RunStore> store_;
  RunQueue queue_{10};
  LabMetrics metrics_;
  RunTelemetry telemetry_{metrics_};
  StackHealth health_;
  std::unique_ptr<ReadinessMonitor> readiness_;  // not started unless a test starts it
  RateLimiter limiter_{0, 0};
  FakeRunner runner_{"E-001"};
  std::atomic<bool> deadline_passes{false};
  std::chrono::seconds deadline_asked{0};
  std::unique_ptr<RunLifecycle> lifecycle_;
  std::unique_ptr<RunExecutor> executor_;
  std::unique_ptr<RunService> runs_;
  std::unique_ptr<CleanupRetrier> retrier_;  // not started: tests call RunDue
  bool kafka_ok = true;                      // the retrier's view of the stack
  std::unique_ptr<Api> api_;
  int requests_ = 0;
};

// The progress contract (domain::RunReporter::Progress): a runner reports 0..100 of the mode it
// runs; the run's progress is that mode's share of the whole run.
TEST_F(ApiTest, ProgressIsTheModesShareOfTheRun) {
  RunRecord rec;
  rec.id = "rprogress";
  rec.experiment = "E-001";
  ASSERT_TRUE(store_->InsertQueued(rec, Actor{"test", ""}, std::nullopt, "h").ok());
  StoreReporter reporter(*store_, telemetry_, "rprogress");
  auto progress = [&] { return (*store_->Get("rprogress"))->progress; };
  reporter.SetWindow(0, 50, "failure");  // the first of two modes
  reporter.Progress(100);
  EXPECT_DOUBLE_EQ(progress(), 50);
  reporter.SetWindow(50, 100, "success");
  EXPECT_DOUBLE_EQ(progress(), 50) << "a new mode starts where the last one ended";
  reporter.Progress(40);
  EXPECT_DOUBLE_EQ(progress(), 70);
  reporter.Progress(250);
  EXPECT_DOUBLE_EQ(progress(), 100) << "beyond 100 is the mode's end";
}

// The verdict depends on the data: the same experiment is confirmed, then refuted, then
// inconclusive as only the runner's metrics change.
TEST_F(ApiTest, VerdictFollowsTheEvidence) {
  runner_.metrics = GoodE001();
  std::string good = Post();
  EXPECT_EQ(RunJson(good)["state"], "queued");
  ExecuteNext();
  auto a = RunJson(good);
  EXPECT_EQ(a["state"], "completed");
  EXPECT_EQ(a["verdict"], "confirmed") << a.dump();
  EXPECT_EQ(a["evidence"]["success"]["metrics"]["applied"], 100);
  EXPECT_EQ(a["evidence"]["success"]["details"]["note"], "fake");

  runner_.metrics = GoodE001();
  runner_.metrics["duplicates"] = 3;
  std::string dup = Post();
  ExecuteNext();
  auto b = RunJson(dup);
  EXPECT_EQ(b["state"], "completed");
  EXPECT_EQ(b["verdict"], "refuted") << b.dump();
  EXPECT_NE(b["verdict_reason"].get<std::string>().find("duplicates"), std::string::npos);

  runner_.metrics = GoodE001();
  runner_.metrics["applied"] = 99;
  std::string lost = Post();
  ExecuteNext();
  EXPECT_EQ(RunJson(lost)["verdict"], "refuted");

  runner_.metrics = GoodE001();
  runner_.metrics["commands_committed"] = 101;  // a committed command left no outbox row
  std::string unrecorded = Post();
  ExecuteNext();
  EXPECT_EQ(RunJson(unrecorded)["verdict"], "refuted");

  runner_.metrics = GoodE001();
  runner_.metrics["commands"] = 0;
  runner_.metrics["commands_committed"] = 0;
  runner_.metrics["applied"] = 0;
  std::string nothing = Post();
  ExecuteNext();
  EXPECT_EQ(RunJson(nothing)["verdict"], "inconclusive");

  runner_.metrics = GoodE001();
  runner_.metrics.erase("stale_reads");
  std::string missing = Post();
  ExecuteNext();
  EXPECT_EQ(RunJson(missing)["verdict"], "inconclusive") << "a missing number must never confirm";

  auto exp = Body(Call("GET", "/experiments/E-001"));
  EXPECT_EQ(exp["last_verdict"], "inconclusive");
  EXPECT_EQ(exp["last_runs"].size(), 6u);
  auto m = metrics_.Serialize();
  EXPECT_NE(m.find(R"(lab_runs_total{experiment="E-001",state="completed",verdict="refuted"} 3)"),
            std::string::npos);
  EXPECT_NE(m.find(R"(lab_experiment_last_verdict{experiment="E-001",verdict="inconclusive"} 1)"),
            std::string::npos);
}

// repeat: N runs N times; one refuted repetition refutes the run, and each is reported.
TEST_F(ApiTest, RepeatAggregatesRepetitions) {
  auto bad = GoodE001();
  bad["mismatches"] = 1;
  runner_.per_call = {GoodE001(), bad, GoodE001()};
  std::string id = Post({{"repeat", 3}});
  ExecuteNext();
  auto run = RunJson(id);
  EXPECT_EQ(runner_.calls.load(), 3);
  EXPECT_EQ(run["verdict"], "refuted") << run.dump();
  ASSERT_EQ(run["repetitions"].size(), 3u);
  EXPECT_EQ(run["repetitions"][0]["verdict"], "confirmed");
  EXPECT_EQ(run["repetitions"][1]["verdict"], "refuted");
  EXPECT_EQ(run["repetitions"][2]["verdict"], "confirmed");
}

// A runner that throws: the run fails inconclusive with the error, and cleanup still runs with
// the artifacts recorded before the throw.
TEST_F(ApiTest, CleanupRunsAfterRunnerThrows) {
  runner_.throw_message = "broker exploded";
  std::string id = Post();
  ExecuteNext();
  auto run = RunJson(id);
  EXPECT_EQ(run["state"], "failed");
  EXPECT_EQ(run["verdict"], "inconclusive");
  EXPECT_NE(run["error"].get<std::string>().find("broker exploded"), std::string::npos)
      << run.dump();
  EXPECT_EQ(runner_.cleanups.load(), 1);
  ASSERT_EQ(runner_.cleaned.size(), 1u);
  EXPECT_EQ(runner_.cleaned[0].kind, "kafka-topic");
  EXPECT_NE(runner_.cleaned[0].name.find(id), std::string::npos)
      << "artifacts live under the run's namespace";
  EXPECT_EQ(run["artifacts"]["success"][0]["kind"], "kafka-topic");
  EXPECT_TRUE(HasStep(run, "cleanup"));
}

// keep_artifacts: cleanup is skipped and the run says so.
TEST_F(ApiTest, KeepArtifactsSkipsCleanup) {
  runner_.metrics = GoodE001();
  std::string id = Post({{"keep_artifacts", true}});
  ExecuteNext();
  auto run = RunJson(id);
  EXPECT_EQ(runner_.cleanups.load(), 0);
  EXPECT_TRUE(HasStep(run, "cleanup skipped"));
  EXPECT_EQ(run["artifacts"]["success"].size(), 1u);
}

// Regression (issue 15): a cleanup that reported an error is not forgotten. The run ends with a
// pending cleanup of what is left (run page, /readyz), and the retrier removes it once the part
// is healthy again, audited.
TEST_F(ApiTest, AFailedCleanupIsPendingUntilARetrySucceeds) {
  runner_.metrics = GoodE001();
  runner_.cleanup_error = "DeleteTopics: Broker: Request timed out";
  std::string id = Post();
  ExecuteNext();
  auto run = RunJson(id);
  EXPECT_EQ(run["state"], "completed");
  ASSERT_TRUE(run["cleanup"].is_object()) << run.dump();
  EXPECT_EQ(run["cleanup"]["state"], "pending");
  ASSERT_EQ(run["cleanup"]["artifacts_left"].size(), 1u);
  EXPECT_EQ(run["cleanup"]["artifacts_left"][0]["kind"], "kafka-topic");
  EXPECT_NE(run["cleanup"]["last_error"].get<std::string>().find("Request timed out"),
            std::string::npos);
  EXPECT_TRUE(HasStep(run, "cleanup pending: 1 artifacts left"));
  EXPECT_EQ(Body(Call("GET", "/readyz"))["pending_cleanups"], 1);

  kafka_ok = false;  // Kafka down: nothing is tried
  EXPECT_EQ(retrier_->RunDue(), 0);
  kafka_ok = true;
  runner_.cleanup_error.clear();
  EXPECT_EQ(retrier_->RunDue(), 1);
  EXPECT_EQ(runner_.cleanups.load(), 2);
  EXPECT_FALSE(runner_.cleanup_saw_keep);
  run = RunJson(id);
  EXPECT_EQ(run["cleanup"]["state"], "done") << "the cached run was not served stale";
  EXPECT_EQ(run["cleanup"]["attempts"], 1);
  EXPECT_TRUE(HasStep(run, "cleanup retry 1: finished"));
  EXPECT_EQ(Body(Call("GET", "/readyz"))["pending_cleanups"], 0);
  auto audit = Body(Call("GET", "/audit?target=" + id))["items"];
  std::vector<std::string> actions;
  for (const auto& e : audit) actions.push_back(e["action"]);
  EXPECT_EQ(actions.front(), "run.cleanup.completed");
  EXPECT_NE(std::find(actions.begin(), actions.end(), "run.cleanup.pending"), actions.end());
}

// DELETE /runs/{id}/artifacts: a kept run's artifacts are queued for removal (202, audited with
// the caller), removed by the retrier, and a second DELETE has nothing left (409); an unknown
// run is 404 and a queued one 409.
TEST_F(ApiTest, DeleteArtifactsRemovesAKeptRunsArtifacts) {
  runner_.metrics = GoodE001();
  std::string kept = Post({{"keep_artifacts", true}});
  EXPECT_EQ(Call("DELETE", "/runs/" + kept + "/artifacts").status, 409) << "still queued";
  ExecuteNext();
  EXPECT_FALSE(RunJson(kept).contains("cleanup"));  // cached now
  EXPECT_EQ(runner_.cleanups.load(), 0);

  auto r = Call("DELETE", "/runs/" + kept + "/artifacts");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(Header(r, "Location"), "/runs/" + kept);
  EXPECT_EQ(Body(r)["cleanup"]["state"], "pending");
  EXPECT_EQ(RunJson(kept)["cleanup"]["state"], "pending") << "not the cached run";
  EXPECT_EQ(retrier_->RunDue(), 1);
  EXPECT_EQ(runner_.cleanups.load(), 1);
  EXPECT_FALSE(runner_.cleanup_saw_keep) << "the removal is not skipped as kept";
  ASSERT_EQ(runner_.cleaned.size(), 1u);
  EXPECT_NE(runner_.cleaned[0].name.find(kept), std::string::npos);
  EXPECT_EQ(RunJson(kept)["cleanup"]["state"], "done");
  EXPECT_EQ(Call("DELETE", "/runs/" + kept + "/artifacts").status, 409);

  auto audit = Body(Call("GET", "/audit?action=run.artifacts.delete"))["items"];
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0]["target"], kept);
  EXPECT_EQ(audit[0]["actor"], "local");

  EXPECT_EQ(Call("DELETE", "/runs/no-such-run/artifacts").status, 404);
  std::string cleaned = Post();  // not kept: its own cleanup removed everything
  ExecuteNext();
  EXPECT_EQ(RunJson(cleaned)["cleanup"]["state"], "done");
  EXPECT_EQ(Call("DELETE", "/runs/" + cleaned + "/artifacts").status, 409);
  EXPECT_EQ(Call("GET", "/runs/" + kept + "/artifacts").status, 405);
}

// Pipeline gauges a runner reports are on /metrics while its run executes; when the run ends
// the unlabelled ones are back to 0 and its per-group series are gone.
TEST_F(ApiTest, PipelineGaugesLastAsLongAsTheRun) {
  std::promise<void> started;
  runner_.block = true;
  runner_.report_gauges = true;
  runner_.started = &started;
  std::string id = Post();
  auto worker = std::async(std::launch::async, [&] { ExecuteNext(); });
  ASSERT_EQ(started.get_future().wait_for(5s), std::future_status::ready);
  auto during = metrics_.Serialize();
  EXPECT_NE(during.find("topic=\"t\"} 42"), std::string::npos) << during;
  EXPECT_NE(during.find("\nlab_outbox_backlog 7\n"), std::string::npos) << during;
  EXPECT_EQ(Call("POST", "/runs/" + id + "/cancel").status, 202);
  ASSERT_EQ(worker.wait_for(5s), std::future_status::ready);
  worker.get();
  auto after = metrics_.Serialize();
  EXPECT_EQ(after.find("topic=\"t\"}"), std::string::npos) << after;
  EXPECT_NE(after.find("\nlab_outbox_backlog 0\n"), std::string::npos) << after;
}

// The worker pool takes queued runs on its own threads until all are done, its busy count goes
// back to 0, and Stop joins workers that wait on an empty queue (TSan watches all of it).
TEST_F(ApiTest, WorkerPoolExecutesEveryQueuedRun) {
  runner_.metrics = GoodE001();
  WorkerPool pool(queue_, *executor_, metrics_, 2);
  pool.Start();
  std::vector<std::string> ids;
  // keep_artifacts: the fake's Cleanup records its arguments unguarded, one run at a time only.
  for (int i = 0; i < 6; ++i) ids.push_back(Post({{"keep_artifacts", true}}));
  auto unfinished = [&] {
    std::size_t n = 0;
    for (const auto& id : ids) n += RunJson(id)["state"] == "completed" ? 0 : 1;
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (unfinished() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  for (const auto& id : ids) {
    auto run = RunJson(id);
    EXPECT_EQ(run["state"], "completed") << run.dump();
    EXPECT_EQ(run["verdict"], "confirmed") << run.dump();
  }
  EXPECT_EQ(runner_.calls.load(), 6);
  pool.Stop();
  EXPECT_EQ(pool.busy(), 0);
  EXPECT_EQ(queue_.Depth(), 0u);
}

// Cancel while running: 202, the runner sees its stop token, the run ends cancelled (no verdict)
// and cleanup runs with a token that is not stopped.
TEST_F(ApiTest, CancelRunningRunStillCleansUp) {
  std::promise<void> started;
  runner_.block = true;
  runner_.started = &started;
  std::string id = Post();
  auto worker = std::async(std::launch::async, [&] { ExecuteNext(); });
  ASSERT_EQ(started.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(executor_->IsRunning(id));
  auto cancel = Call("POST", "/runs/" + id + "/cancel");
  EXPECT_EQ(cancel.status, 202) << cancel.body;
  EXPECT_TRUE(Body(cancel).value("cancel_requested", false));
  ASSERT_EQ(worker.wait_for(5s), std::future_status::ready) << "the run ignored the cancel";
  worker.get();
  auto run = RunJson(id);
  EXPECT_EQ(run["state"], "cancelled");
  EXPECT_TRUE(run["verdict"].is_null());
  EXPECT_TRUE(runner_.saw_stop.load());
  EXPECT_EQ(runner_.cleanups.load(), 1);
  EXPECT_FALSE(runner_.cleanup_stop_requested) << "cleanup must not inherit the cancelled token";
  EXPECT_EQ(Call("POST", "/runs/" + id + "/cancel").status, 409);
  AuditFilter f;
  f.action = "run.cancelled";
  auto audit = store_->ListAudit(f);
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].actor, "local");
}

// The per-run timeout stops a run that overruns: failed, inconclusive, "timed out", cleaned up.
TEST_F(ApiTest, PerRunTimeoutStopsTheRun) {
  runner_.block = true;
  deadline_passes = true;
  RunRecord rec;
  rec.id = "rtimeout";
  rec.experiment = "E-001";
  // 1 s is below the API's minimum of 5 s, so the run is stored directly.
  rec.request_json = R"({"modes":["success"],"params":{},"repeat":1,"timeout_seconds":1})";
  ASSERT_TRUE(store_->InsertQueued(rec, Actor{"test", ""}, std::nullopt, "h").ok());
  ASSERT_TRUE(queue_.TryReserve());
  queue_.PushReserved(QueuedRun{"rtimeout", "E-001", {}, {}});
  auto worker = std::async(std::launch::async, [&] { ExecuteNext(); });
  ASSERT_EQ(worker.wait_for(10s), std::future_status::ready) << "the timeout did not stop the run";
  worker.get();
  EXPECT_EQ(deadline_asked, 1s) << "the watchdog waits for the run's own timeout_seconds";
  auto run = RunJson("rtimeout");
  EXPECT_EQ(run["state"], "failed");
  EXPECT_EQ(run["verdict"], "inconclusive");
  EXPECT_NE(run["verdict_reason"].get<std::string>().find("timed out"), std::string::npos)
      << run.dump();
  EXPECT_EQ(runner_.cleanups.load(), 1);
}

// Cancelling a queued run removes it from the queue at once; it never executes.
TEST_F(ApiTest, CancelQueuedRunNeverExecutes) {
  std::string id = Post();
  EXPECT_EQ(queue_.Depth(), 1u);
  auto r = Call("POST", "/runs/" + id + "/cancel");
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(Body(r)["state"], "cancelled");
  EXPECT_EQ(queue_.Depth(), 0u);
  EXPECT_EQ(runner_.calls.load(), 0);
  EXPECT_EQ(Call("POST", "/runs/" + id + "/cancel").status, 409);
  EXPECT_TRUE(queue_.TryReserve()) << "the cancelled run's place was not freed";
}

// A run a worker has taken from the queue but not started yet is cancellable at once (no
// retrying): it ends cancelled and its runner never runs.
TEST_F(ApiTest, CancelBetweenTakingAndStarting) {
  std::string id = Post();
  std::stop_source stopped;
  stopped.request_stop();
  auto run =
      queue_.PopRunnable(stopped.get_token(), [&](const QueuedRun& r) { executor_->Claim(r.id); });
  ASSERT_TRUE(run);
  EXPECT_EQ(queue_.Depth(), 0u);
  auto cancel = Call("POST", "/runs/" + id + "/cancel");
  EXPECT_EQ(cancel.status, 202) << cancel.body;
  EXPECT_TRUE(Body(cancel).value("cancel_requested", false));
  executor_->Execute(*run);
  queue_.Release(*run);
  auto after = RunJson(id);
  EXPECT_EQ(after["state"], "cancelled");
  EXPECT_EQ(runner_.calls.load(), 0) << "a run cancelled before it started ran";
  EXPECT_FALSE(executor_->IsRunning(id));
  EXPECT_EQ(Call("POST", "/runs/" + id + "/cancel").status, 409);
}

// Invalid requests are 400 naming the field; unavailable experiments 501; nothing is queued.
TEST_F(ApiTest, RefusedRequestsQueueNothing) {
  auto r = Call("POST", "/experiments/E-001/runs", R"({"params":{"events":0}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Body(r)["errors"][0]["field"], "params.events");
  EXPECT_EQ(Call("POST", "/experiments/E-001/runs", R"({"params":{"partitions":25}})").status, 400);
  EXPECT_EQ(
      Call("POST", "/experiments/E-001/runs", R"({"params":{"invalidation":"maybe"}})").status,
      400);
  EXPECT_EQ(Call("POST", "/experiments/E-001/runs", "{").status, 400);
  EXPECT_EQ(Call("POST", "/experiments/E-002/runs", "").status, 501);
  EXPECT_EQ(Call("POST", "/experiments/E-404/runs", "").status, 404);
  EXPECT_EQ(queue_.Depth(), 0u);
  EXPECT_TRUE(store_->List({})->empty());
  EXPECT_TRUE(store_->ListAudit({})->empty());
  // At the bounds it is accepted.
  EXPECT_EQ(
      Call("POST", "/experiments/E-001/runs", R"({"params":{"partitions":24,"events":1}})").status,
      202);
}

// Halt pauses the queue and refuses new runs with 503; lifting resumes both.
TEST_F(ApiTest, HaltPausesQueueAndRefusesRuns) {
  std::string waiting = Post();
  EXPECT_EQ(Call("POST", "/halt", R"({"reason":"maintenance"})").status, 202);
  auto refused = Call("POST", "/experiments/E-001/runs", "");
  EXPECT_EQ(refused.status, 503);
  EXPECT_FALSE(Header(refused, "Retry-After").empty());
  std::stop_source stopped;
  stopped.request_stop();
  EXPECT_FALSE(queue_.PopRunnable(stopped.get_token()).has_value())
      << "a halted queue handed out a run";
  EXPECT_EQ(Call("DELETE", "/halt").status, 200);
  runner_.metrics = GoodE001();
  ExecuteNext();
  EXPECT_EQ(RunJson(waiting)["verdict"], "confirmed");
}

// Preflight: a run on an unhealthy stack does not start its runner and says why.
TEST_F(ApiTest, PreflightRefusesUnhealthyStack) {
  FakeProbe probe;
  probe.down = {"mysql"};
  MakeApi(&probe);
  std::string id = Post();
  ExecuteNext();
  auto run = RunJson(id);
  EXPECT_EQ(run["state"], "failed");
  EXPECT_EQ(run["verdict"], "inconclusive");
  EXPECT_NE(run["verdict_reason"].get<std::string>().find("mysql"), std::string::npos)
      << run.dump();
  EXPECT_EQ(runner_.calls.load(), 0);
}

// Postflight: a run that leaves the stack unhealthy marks it dirty (metrics too).
TEST_F(ApiTest, PostflightMarksStackDirty) {
  FakeProbe probe;
  probe.down_after_first = {"kafka"};
  MakeApi(&probe);
  runner_.metrics = GoodE001();
  std::string id = Post();
  ExecuteNext();
  EXPECT_EQ(RunJson(id)["verdict"], "confirmed");
  EXPECT_TRUE(health_.dirty());
  EXPECT_NE(health_.why().find("kafka"), std::string::npos);
  EXPECT_NE(metrics_.Serialize().find("lab_stack_dirty 1"), std::string::npos);
}

// Idempotency at the handler: same key + body → 200 same run; other body → 422.
TEST_F(ApiTest, IdempotencyKey) {
  auto first =
      Call("POST", "/experiments/E-001/runs", R"({"note":"a"})", {{"idempotency-key", "k"}});
  ASSERT_EQ(first.status, 202);
  auto again =
      Call("POST", "/experiments/E-001/runs", R"({"note":"a"})", {{"idempotency-key", "k"}});
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(Body(again)["id"], Body(first)["id"]);
  EXPECT_EQ(
      Call("POST", "/experiments/E-001/runs", R"({"note":"b"})", {{"idempotency-key", "k"}}).status,
      422);
  EXPECT_EQ(queue_.Depth(), 1u);
}

// DNS rebinding: a page on attacker.example rebound to 127.0.0.1 sends its own name in Host and
// Origin (they match each other). Before the allowlist: 202 and a queued run, 202 on /halt.
// Now every resource refuses it with 403, nothing is queued, and each refusal is audited.
TEST_F(ApiTest, ForeignHostIsRefusedEvenWhenOriginMatches) {
  const std::map<std::string, std::string> rebound = {{"host", "attacker.example:8080"},
                                                      {"origin", "http://attacker.example:8080"},
                                                      {"sec-fetch-site", "same-origin"}};
  EXPECT_EQ(Call("POST", "/experiments/E-001/runs", "", rebound).status, 403);
  EXPECT_EQ(Call("POST", "/halt", R"({"reason":"x"})", rebound).status, 403);
  EXPECT_EQ(Call("GET", "/runs", "", rebound).status, 403);
  EXPECT_EQ(Call("GET", "/", "", rebound).status, 403);
  auto runs = Body(Call("GET", "/runs"));
  EXPECT_EQ(runs["items"].size(), 0u) << runs.dump();
  EXPECT_FALSE(Body(Call("GET", "/halt")).value("halted", true));
  auto audit = Body(Call("GET", "/audit"));
  int refused = 0;
  for (const auto& e : audit["items"]) refused += e.value("action", "") == "request.refused";
  EXPECT_EQ(refused, 4) << audit.dump();
}

// Cross-site refusals are audited too (they were not), and an Origin naming a foreign host is
// refused even when it matches the Host header of an allowed name... which it cannot: the
// Origin must name an allowed host as well.
TEST_F(ApiTest, CrossSiteRefusalsAreAudited) {
  EXPECT_EQ(Call("POST", "/experiments/E-001/runs", "", {{"sec-fetch-site", "cross-site"}}).status,
            403);
  EXPECT_EQ(Call("POST", "/halt", R"({"reason":"x"})", {{"origin", "http://evil.example"}}).status,
            403);
  auto audit = Body(Call("GET", "/audit"));
  int refused = 0;
  for (const auto& e : audit["items"]) refused += e.value("action", "") == "request.refused";
  EXPECT_EQ(refused, 2) << audit.dump();
}

// A stack left dirty becomes clean when a probe finds the part healthy again, without a run
// (before: /readyz kept stack_dirty true with the old reason until a run of the same parts).
TEST_F(ApiTest, DirtyStackClearsWhenTheProbeFindsItHealthy) {
  FakeProbe probe;
  probe.down_after_first = {"kafka"};
  MakeApi(&probe);
  runner_.metrics = GoodE001();
  Post();
  ExecuteNext();
  ASSERT_TRUE(health_.dirty());
  {
    std::lock_guard lock(probe.mu);
    probe.down_after_first.clear();  // kafka is back
  }
  readiness_->Start();
  for (int i = 0; i < 200 && health_.dirty(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(health_.dirty()) << health_.why();
  auto ready = Body(Call("GET", "/readyz"));
  EXPECT_FALSE(ready.value("stack_dirty", true)) << ready.dump();
  EXPECT_TRUE(ready.value("ready", false)) << ready.dump();
  readiness_.reset();  // joins the monitor before the probe goes away
}

// Dirt is per part: a later run whose postflight checks only Kafka does not clear MariaDB.
TEST(StackHealthTest, APartStaysDirtyUntilItIsFoundHealthy) {
  StackHealth health;
  health.Record({{"mysql", false, 0, "", "refused"}, {"kafka", true, 0, "", ""}}, "after run a");
  EXPECT_EQ(health.why(), "mysql: after run a: refused");
  EXPECT_TRUE(health.Record({{"kafka", true, 0, "", ""}}, "after run b").empty());
  EXPECT_TRUE(health.dirty());
  EXPECT_TRUE(health.ClearHealthy({{"redis", false, 0, "", "down"}}).empty());
  EXPECT_EQ(health.why(), "mysql: after run a: refused");  // a probe alone never dirties
  auto cleared = health.ClearHealthy({{"mysql", true, 0, "", ""}});
  EXPECT_EQ(cleared, std::vector<std::string>{"mysql (was: after run a: refused)"});
  EXPECT_FALSE(health.dirty());
}

// /readyz never waits for a probe: with the probe stuck (Kafka down made it take ~1 s, on an
// HTTP I/O thread), it answers from what it has — here "not probed yet" — at once.
class StuckProbe : public domain::StackProbe {
 public:
  std::vector<domain::PartHealth> Check(const std::vector<std::string>& parts,
                                        std::chrono::milliseconds) override {
    std::unique_lock lock(mu);
    entered = true;
    cv.wait_for(lock, 10s, [&] { return released; });
    std::vector<domain::PartHealth> out;
    for (const auto& p : parts) out.push_back({p, true, 1.0, "v1", ""});
    return out;
  }
  void Release() {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;   // guarded by mu
  bool released = false;  // guarded by mu
};

TEST_F(ApiTest, ReadyzAnswersWhileTheProbeIsStuck) {
  StuckProbe probe;
  MakeApi(&probe);
  readiness_->Start();
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard lock(probe.mu);
      if (probe.entered) break;
    }
    std::this_thread::sleep_for(1ms);
  }
  auto r = Call("GET", "/readyz");
  {
    std::lock_guard lock(probe.mu);
    EXPECT_FALSE(probe.released);  // answered while the probe was still stuck
  }
  EXPECT_EQ(r.status, 503);
  auto body = Body(r);
  ASSERT_EQ(body["dependencies"].size(), 3u) << body.dump();  // store, kafka, mysql
  EXPECT_EQ(body["dependencies"][1].value("detail", ""), "not probed yet");
  probe.Release();
  readiness_.reset();  // joins the monitor before the probe goes away
}

}  // namespace
}  // namespace lab::server
