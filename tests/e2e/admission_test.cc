// End-to-end: admission control (queue bound, rate limit, halt), auth and roles, browser safety,
// cancel and the per-run timeout — against the real binary, with a stalled stack to keep runs busy.
#include "tests/e2e/e2e_util.h"

namespace lab::e2e {
namespace {

class AdmissionE2E : public E2E {};

std::string MetricsText(HttpClient& c) { return c.Get("/metrics").body; }

// Queue full: with 1 worker busy and 2 runs waiting, the next POST is 503 + Retry-After, fast.
TEST_F(AdmissionE2E, QueueFullIs503WithRetryAfter) {
  auto server = StartStalled({"--workers", "1", "--queue-capacity", "2"});
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  std::string busy = Queue(http, BlockedRunBody(10000));
  WaitState(http, busy, {"running"});
  Queue(http, FastRunBody());
  Queue(http, FastRunBody());
  auto full = http.PostJson("/experiments/E-000/runs", FastRunBody());
  EXPECT_EQ(full.status, 503) << full.body;
  EXPECT_TRUE(IsProblem(full));
  EXPECT_FALSE(full.Header("retry-after").empty());
  EXPECT_GT(std::atoi(full.Header("retry-after").c_str()), 0);
  // It said no at once, not after making room: the run that fills the worker still runs.
  EXPECT_EQ(GetRun(http, busy).value("state", ""), "running") << "the 503 waited for the queue";
  EXPECT_EQ(CountRuns(http), 3) << "the refused run was stored";
  EXPECT_NE(MetricsText(http).find(R"(lab_admission_rejections_total{reason="queue_full"} 1)"),
            std::string::npos);
  EXPECT_NE(MetricsText(http).find("lab_queue_depth 2"), std::string::npos);
  EXPECT_NE(MetricsText(http).find("lab_workers_busy 1"), std::string::npos);
  EXPECT_NE(MetricsText(http).find(R"(lab_run_active{experiment="E-000"} 1)"), std::string::npos);
}

// Rate limit: over --rate-limit/--rate-burst a client gets 429 + Retry-After; later it may go on.
TEST_F(AdmissionE2E, RateLimitIs429WithRetryAfter) {
  auto o = Options({"--rate-limit", "2", "--rate-burst", "2"});
  o.rate_limit_off = false;
  auto server = Start(o);
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  EXPECT_EQ(http.Get("/runs").status, 200);
  EXPECT_EQ(http.Get("/experiments").status, 200);
  auto limited = http.Get("/runs");
  EXPECT_EQ(limited.status, 429);
  EXPECT_TRUE(IsProblem(limited));
  EXPECT_GE(std::atoi(limited.Header("retry-after").c_str()), 1);
  auto post = http.PostJson("/experiments/E-000/runs", FastRunBody());
  EXPECT_EQ(post.status, 429);
  EXPECT_EQ(http.Get("/healthz").status, 200) << "probes are not rate limited";
  EXPECT_NE(MetricsText(http).find(R"(lab_admission_rejections_total{reason="rate_limited"})"),
            std::string::npos);
  // Tokens come back at 2/s.
  EXPECT_TRUE(WaitFor([&] { return http.Get("/runs").status == 200; }, 3s));
}

const char* kTokens = "viewer-secret-1:viewer,operator-secret-1:operator,admin-secret-1:admin";
Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// Auth: 401 without/with a bad token, 403 for a role that may not; DELETE /halt is admin only.
TEST_F(AdmissionE2E, TokensAndRoles) {
  auto o = Options();
  o.env["LAB_TOKENS"] = kTokens;
  auto server = Start(o);
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  auto viewer = Bearer("viewer-secret-1");
  auto op = Bearer("operator-secret-1");
  auto admin = Bearer("admin-secret-1");

  auto none = http.Get("/runs");
  EXPECT_EQ(none.status, 401);
  EXPECT_TRUE(IsProblem(none));
  EXPECT_EQ(none.Header("www-authenticate"), "Bearer");
  EXPECT_EQ(http.Get("/runs", Bearer("not-a-token-at-all")).status, 401);
  EXPECT_EQ(http.Get("/runs", {{"Authorization", "Basic dmlld2VyOnNlY3JldA=="}}).status, 401);
  EXPECT_EQ(http.Get("/runs", {{"Authorization", "viewer-secret-1"}}).status, 401);
  EXPECT_EQ(http.PostJson("/experiments/E-000/runs", FastRunBody()).status, 401);
  // Public: probes, metrics, contract, UI.
  EXPECT_EQ(http.Get("/healthz").status, 200);
  EXPECT_EQ(http.Get("/metrics").status, 200);
  EXPECT_EQ(http.Get("/openapi.json").status, 200);
  EXPECT_EQ(http.Get("/").status, 200);

  EXPECT_EQ(http.Get("/runs", viewer).status, 200);
  EXPECT_EQ(http.Get("/experiments", viewer).status, 200);
  auto forbidden = http.PostJson("/experiments/E-000/runs", FastRunBody(), viewer);
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_TRUE(IsProblem(forbidden));
  EXPECT_EQ(http.PostJson("/halt", {{"reason", "x"}}, viewer).status, 403);
  auto list = http.Get("/runs", viewer);
  EXPECT_EQ(list.json()["items"].size(), 0u) << "a refused request queued a run";

  auto run = http.PostJson("/experiments/E-000/runs", FastRunBody(), op);
  EXPECT_EQ(run.status, 202);
  std::string id = run.json().value("id", "");
  EXPECT_EQ(run.json().value("actor", ""), "token:oper…");
  EXPECT_EQ(http.Post("/runs/" + id + "/cancel", "", viewer).status, 403);
  EXPECT_EQ(http.PostJson("/halt", {{"reason", "test"}}, op).status, 202);
  EXPECT_EQ(http.Delete("/halt", op).status, 403);
  EXPECT_EQ(http.Delete("/halt", viewer).status, 403);
  EXPECT_EQ(http.Delete("/halt").status, 401);
  EXPECT_EQ(http.Delete("/halt", admin).status, 200);
  EXPECT_EQ(http.PostJson("/experiments/E-000/runs", FastRunBody(), admin).status, 202);

  // Auth failures are audited (actor, action, what was asked) and the chain still verifies.
  auto audit = http.Get("/audit?action=auth.failed&limit=200", viewer).json();
  std::set<std::string> targets;
  for (const auto& e : audit["items"]) targets.insert(e["target"]);
  EXPECT_TRUE(targets.count("GET /runs")) << audit.dump();
  EXPECT_TRUE(targets.count("POST /experiments/E-000/runs"));
  EXPECT_TRUE(targets.count("DELETE /halt"));
  EXPECT_GE(audit["items"].size(), 5u);
  auto forbid = http.Get("/audit?action=auth.forbidden", viewer).json();
  EXPECT_GE(forbid["items"].size(), 4u) << forbid.dump();
  EXPECT_EQ(forbid["items"].back()["actor"], "token:view…");
  EXPECT_TRUE(http.Get("/audit/verify", viewer).json().value("ok", false));
  // The secret itself never appears in the audit.
  EXPECT_EQ(http.Get("/audit?limit=200", viewer).body.find("secret"), std::string::npos);

  // A stranger's non-UTF-8 or very long path is audited encoded and cut, and the audit stays
  // readable: one such request used to break every /audit page for good.
  EXPECT_EQ(http.Get("/runs/%ff").status, 401);
  EXPECT_EQ(http.Get("/runs/" + std::string(5000, 'a')).status, 401);
  auto after = http.Get("/audit?action=auth.failed&limit=200", viewer);
  ASSERT_EQ(after.status, 200) << after.body;
  const auto entries = after.json();
  std::set<std::string> encoded;
  for (const auto& e : entries["items"]) {
    const std::string target = e["target"];
    encoded.insert(target);
    EXPECT_LE(target.size(), 300u) << target.substr(0, 80);
  }
  EXPECT_TRUE(encoded.count("GET /runs/%FF")) << after.body.substr(0, 2000);
  EXPECT_TRUE(http.Get("/audit/verify", viewer).json().value("ok", false));
}

// Bound to a non-loopback address without tokens, the server refuses to start, saying why.
TEST_F(AdmissionE2E, NonLoopbackWithoutTokensRefusesToStart) {
  auto o = Options();
  o.listen = "0.0.0.0:0";
  LabServer server(o);
  int code = server.RunToExit(10s);
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1) << "it did not exit";
  EXPECT_NE(server.log().find("without tokens"), std::string::npos) << server.log();

  // With tokens it starts on the same address.
  o.env["LAB_TOKENS"] = kTokens;
  LabServer with_tokens(o);
  ASSERT_TRUE(with_tokens.Start()) << with_tokens.log();
  EXPECT_EQ(with_tokens.client().Get("/runs").status, 401);

  // A malformed token list is refused as well.
  o.env["LAB_TOKENS"] = "short:admin";
  LabServer bad_tokens(o);
  EXPECT_EQ(bad_tokens.RunToExit(10s), 2);
}

// Browser safety: a cross-site POST (Origin of another site, or Sec-Fetch-Site: cross-site) is 403.
TEST_F(AdmissionE2E, CrossSiteMutationsAreRefused) {
  auto server = Start(Options());
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  auto evil =
      http.PostJson("/experiments/E-000/runs", FastRunBody(), {{"Origin", "http://evil.example"}});
  EXPECT_EQ(evil.status, 403);
  EXPECT_TRUE(IsProblem(evil));
  auto fetch =
      http.PostJson("/experiments/E-000/runs", FastRunBody(), {{"Sec-Fetch-Site", "cross-site"}});
  EXPECT_EQ(fetch.status, 403);
  EXPECT_EQ(
      http.PostJson("/halt", {{"reason", "csrf"}}, {{"Origin", "http://evil.example"}}).status,
      403);
  EXPECT_EQ(http.Delete("/halt", {{"Sec-Fetch-Site", "cross-site"}}).status, 403);
  EXPECT_EQ(CountRuns(http), 0);
  EXPECT_FALSE(http.Get("/halt").json().value("halted", true));

  // The server's own pages may.
  std::string self = "http://127.0.0.1:" + std::to_string(server->port());
  auto same = http.PostJson("/experiments/E-000/runs", FastRunBody(),
                            {{"Origin", self}, {"Sec-Fetch-Site", "same-origin"}});
  EXPECT_EQ(same.status, 202) << same.body;
  std::string id = same.json().value("id", "");
  auto cancel = http.Post("/runs/" + id + "/cancel", "", {{"Origin", "http://evil.example"}});
  EXPECT_EQ(cancel.status, 403);
  // A cross-site GET is harmless and allowed.
  EXPECT_EQ(http.Get("/runs", {{"Origin", "http://evil.example"}, {"Sec-Fetch-Site", "cross-site"}})
                .status,
            200);
}

// DNS rebinding, reproduced as the probe did: the rebound page's name in Host and a matching
// Origin. The server was answering 202 (a run queued, the halt switch set); now 403 everywhere,
// and the same request with one of the server's own names still works.
TEST_F(AdmissionE2E, DnsRebindingIsRefused) {
  auto server = Start(Options());
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  const Headers rebound = {{"Host", "attacker.example:8080"},
                           {"Origin", "http://attacker.example:8080"},
                           {"Sec-Fetch-Site", "same-origin"}};
  auto post = http.PostJson("/experiments/E-000/runs", FastRunBody(), rebound);
  EXPECT_EQ(post.status, 403) << post.body;
  EXPECT_TRUE(IsProblem(post));
  EXPECT_EQ(http.PostJson("/halt", {{"reason", "rebind"}}, rebound).status, 403);
  EXPECT_EQ(http.Get("/runs", rebound).status, 403);
  EXPECT_EQ(CountRuns(http), 0);
  EXPECT_FALSE(http.Get("/halt").json().value("halted", true));
  const std::string self = "localhost:" + std::to_string(server->port());
  auto own = http.PostJson("/experiments/E-000/runs", FastRunBody(),
                           {{"Host", self}, {"Origin", "http://" + self}});
  EXPECT_EQ(own.status, 202) << own.body;
}

// Cancel: a queued run → 202 and cancelled at once; a running run → 202 and ends cancelled.
TEST_F(AdmissionE2E, CancelQueuedAndRunning) {
  auto server = StartStalled();
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  std::string running = Queue(http, BlockedRunBody(2500));
  WaitState(http, running, {"running"});
  std::string queued = Queue(http, FastRunBody());

  auto c1 = http.Post("/runs/" + queued + "/cancel");
  EXPECT_EQ(c1.status, 202) << c1.body;
  auto view = GetRun(http, queued);
  EXPECT_EQ(view["state"], "cancelled");
  EXPECT_TRUE(view["verdict"].is_null());
  EXPECT_TRUE(view["started_at"].is_null()) << "a cancelled queued run must never start";
  EXPECT_EQ(http.Post("/runs/" + queued + "/cancel").status, 409);

  auto c2 = http.Post("/runs/" + running + "/cancel");
  EXPECT_EQ(c2.status, 202) << c2.body;
  auto end = WaitTerminal(http, running, 20s);
  EXPECT_EQ(end["state"], "cancelled");
  EXPECT_TRUE(end["verdict"].is_null());
  // Cleanup still ran.
  bool cleaned = false;
  for (const auto& s : end["steps"]) {
    if (s["message"].get<std::string>().find("cleanup") != std::string::npos) cleaned = true;
  }
  EXPECT_TRUE(cleaned) << end["steps"].dump();
  EXPECT_EQ(http.Post("/runs/" + running + "/cancel").status, 409);
  // Both cancellations are audited with the actor who asked.
  auto audit = http.Get("/audit?action=run.cancelled").json();
  ASSERT_EQ(audit["items"].size(), 2u) << audit.dump();
  for (const auto& e : audit["items"]) EXPECT_EQ(e["actor"], "local");
}

// Per-run timeout: a run that overruns timeout_seconds ends failed + inconclusive, saying so.
// MySQL and Redis are a silent listener here, so E-000's probe would block for the whole
// timeout_ms (10 s); it must honour its stop token mid-probe and end at the 5 s deadline, well
// before the probe would have returned by itself. The duration is the server's own record.
TEST_F(AdmissionE2E, PerRunTimeout) {
  auto server = StartStalled();
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  Json body = BlockedRunBody(10000);
  body["timeout_seconds"] = 5;
  std::string id = Queue(http, body);
  auto end = WaitTerminal(http, id, 30s);
  EXPECT_EQ(end["state"], "failed") << end.dump();
  EXPECT_EQ(end["verdict"], "inconclusive");
  EXPECT_NE(end.value("verdict_reason", "").find("timed out"), std::string::npos) << end.dump();
  const double took = end.value("duration_seconds", 0.0);
  EXPECT_GE(took, 4.5) << end.dump();
  EXPECT_LT(took, 8.5) << "the run lasted " << took
                       << " s: the runner waited for its probe instead of its stop token";
}

// Halt: needs a reason; cancels running runs; new runs 503 until DELETE /halt; survives restart.
TEST_F(AdmissionE2E, HaltAndLift) {
  auto server = StartStalled();
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  std::string running = Queue(http, BlockedRunBody(2000));
  WaitState(http, running, {"running"});

  auto no_reason = http.Post("/halt", "");
  EXPECT_EQ(no_reason.status, 400);
  EXPECT_TRUE(NamesField(no_reason, "reason")) << no_reason.body;
  EXPECT_EQ(http.PostJson("/halt", {{"reason", ""}}).status, 400);
  EXPECT_EQ(http.Post("/halt", "{not json").status, 400);

  auto halt = http.PostJson("/halt", {{"reason", "broker maintenance"}});
  EXPECT_EQ(halt.status, 202) << halt.body;
  EXPECT_EQ(halt.json().value("cancelled_runs", -1), 1);
  auto refused = http.PostJson("/experiments/E-000/runs", FastRunBody());
  EXPECT_EQ(refused.status, 503);
  EXPECT_TRUE(IsProblem(refused));
  EXPECT_FALSE(refused.Header("retry-after").empty());
  auto status = http.Get("/halt").json();
  EXPECT_TRUE(status.value("halted", false));
  EXPECT_EQ(status.value("reason", ""), "broker maintenance");
  EXPECT_EQ(WaitTerminal(http, running)["state"], "cancelled");

  // The halt is durable: a restart keeps refusing new runs.
  server->Kill();
  ASSERT_TRUE(server->Start()) << server->log();
  http = server->client();
  EXPECT_EQ(http.PostJson("/experiments/E-000/runs", FastRunBody()).status, 503);

  auto lift = http.Delete("/halt");
  EXPECT_EQ(lift.status, 200);
  EXPECT_FALSE(lift.json().value("halted", true));
  std::string after = Queue(http, FastRunBody());
  EXPECT_EQ(WaitTerminal(http, after)["state"], "completed");
  std::vector<std::string> actions;
  auto halt_audit = http.Get("/audit?target=halt").json();
  for (const auto& e : halt_audit["items"]) actions.push_back(e["action"]);
  EXPECT_EQ(actions, (std::vector<std::string>{"halt.lifted", "halt.set"}));
  EXPECT_TRUE(http.Get("/audit/verify").json().value("ok", false));
}

}  // namespace
}  // namespace lab::e2e
