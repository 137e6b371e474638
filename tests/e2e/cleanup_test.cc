// End-to-end: cleanups that are never forgotten, through the real binary. A run killed mid-run
// (kill -9) is swept at the next start into a pending cleanup that stays pending while its part
// is down (/readyz counts it, the run shows it); DELETE /runs/{id}/artifacts answers 202 for a
// kept run with artifacts, 409 with nothing left or a run still active, 404, 401 and 403.
#include <sqlite3.h>

#include "tests/e2e/e2e_util.h"

namespace lab::e2e {
namespace {

const char* kTokens = "viewer-secret-1:viewer,operator-secret-1:operator";
Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

class CleanupE2E : public E2E {
 protected:
  // Runs SQL on the server's database file while the server is stopped.
  int Exec(const std::string& sql) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2((dir_ / "data/lab.db").c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    return rc;
  }
  // E-000 creates nothing on the stack: these stand for what E-004 records (a topic, run_ns rows).
  int AddArtifacts(const std::string& id) {
    return Exec("INSERT INTO run_artifacts (run_id, mode, kind, name) VALUES ('" + id +
                "', 'check', 'kafka-topic', 'lab_" + id + "_events'), ('" + id +
                "', 'check', 'mysql-rows', 'lab_" + id + "_failure')");
  }
};

// Regression (issue 15): the killed run's artifacts are not forgotten after a restart, and a kept
// run's can be removed through the API; every answer of DELETE /runs/{id}/artifacts.
TEST_F(CleanupE2E, KilledRunIsSweptAndKeptRunIsRemovedOnRequest) {
  auto server = StartStalled();
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  const Headers op;  // loopback without tokens: the local user may operate

  std::string kept =
      Queue(http, Json{{"params", {{"timeout_ms", 100}}}, {"keep_artifacts", true}}, op);
  WaitTerminal(http, kept);
  EXPECT_EQ(http.Delete("/runs/" + kept + "/artifacts", op).status, 409)
      << "E-000 recorded nothing to remove";
  std::string running = Queue(http, BlockedRunBody(10000), op);
  WaitState(http, running, {"running"});
  auto active = http.Delete("/runs/" + running + "/artifacts", op);
  EXPECT_EQ(active.status, 409) << active.body;
  EXPECT_EQ(active.Header("content-type"), "application/problem+json");
  EXPECT_EQ(http.Delete("/runs/no-such-run/artifacts", op).status, 404);
  EXPECT_EQ(http.Get("/readyz").json().value("pending_cleanups", -1), 0);

  server->Kill();  // kill -9 mid-run: its cleanup never runs
  ASSERT_EQ(AddArtifacts(running), SQLITE_OK);
  ASSERT_EQ(AddArtifacts(kept), SQLITE_OK);
  ASSERT_TRUE(server->Start()) << server->log();
  http = server->client();

  auto swept = GetRun(http, running);
  EXPECT_EQ(swept["state"], "interrupted");
  ASSERT_TRUE(swept["cleanup"].is_object()) << swept.dump();
  EXPECT_EQ(swept["cleanup"]["state"], "pending");
  EXPECT_EQ(swept["cleanup"]["artifacts_left"].size(), 2u);
  EXPECT_NE(swept["cleanup"]["reason"].get<std::string>().find("interrupted"), std::string::npos);
  EXPECT_FALSE(GetRun(http, kept).contains("cleanup")) << "a kept run is not swept";
  EXPECT_EQ(http.Get("/readyz").json().value("pending_cleanups", -1), 1);

  auto removal = http.Delete("/runs/" + kept + "/artifacts", op);
  ASSERT_EQ(removal.status, 202) << removal.body;
  EXPECT_EQ(removal.Header("location"), "/runs/" + kept);
  EXPECT_EQ(removal.json()["cleanup"]["state"], "pending");
  EXPECT_EQ(GetRun(http, kept)["cleanup"]["state"], "pending");
  EXPECT_EQ(http.Get("/readyz").json().value("pending_cleanups", -1), 2);
  auto audit = http.Get("/audit?action=run.artifacts.delete").json();
  ASSERT_EQ(audit["items"].size(), 1u);
  EXPECT_EQ(audit["items"][0]["actor"], "local");
  EXPECT_EQ(audit["items"][0]["target"], kept);
  EXPECT_TRUE(http.Get("/audit/verify").json().value("ok", false));
}

// Removing artifacts is an operator's act: 401 without a token, 403 for a viewer.
TEST_F(CleanupE2E, DeleteArtifactsNeedsAnOperator) {
  auto o = Options();
  o.env["LAB_TOKENS"] = kTokens;
  auto server = Start(o);
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  EXPECT_EQ(http.Delete("/runs/r1/artifacts").status, 401);
  EXPECT_EQ(http.Delete("/runs/r1/artifacts", Bearer("viewer-secret-1")).status, 403);
  EXPECT_EQ(http.Delete("/runs/r1/artifacts", Bearer("operator-secret-1")).status, 404);
}

}  // namespace
}  // namespace lab::e2e
