// End-to-end: durability of the queue (kill -9 mid-stream and restart), crash recovery,
// graceful shutdown on SIGTERM, and the audit chain detecting a row changed behind the server.
#include <sqlite3.h>

#include <atomic>
#include <mutex>

#include "tests/e2e/e2e_util.h"

namespace lab::e2e {
namespace {

class DurabilityE2E : public E2E {
 protected:
  std::string DbPath() { return dir_ / "data/lab.db"; }

  // Runs SQL on the server's database file directly (behind the server's back).
  int Exec(const std::string& sql, std::string* error = nullptr) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(DbPath().c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
    if (rc == SQLITE_OK) {
      sqlite3_busy_timeout(db, 5000);
      char* msg = nullptr;
      rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg);
      if (msg != nullptr && error != nullptr) *error = msg;
      sqlite3_free(msg);
    }
    sqlite3_close(db);
    return rc;
  }

  // The state column of a run, read from the file ("" when absent).
  std::string StoredState(const std::string& id) {
    sqlite3* db = nullptr;
    std::string state;
    if (sqlite3_open_v2(DbPath().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2(db, "SELECT state FROM runs WHERE id = ?", -1, &stmt, nullptr) ==
          SQLITE_OK) {
        sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
        if (sqlite3_step(stmt) == SQLITE_ROW) {
          state = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
        }
      }
      sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return state;
  }
};

// Queueing is durable: runs POSTed concurrently survive kill -9 mid-stream — every 202 is there
// after a restart, every run finishes, and the audit chain still verifies.
TEST_F(DurabilityE2E, KillNineLosesNoAcceptedRun) {
  auto o = Options({"--workers", "2", "--http-threads", "2"});
  auto server = Start(o);
  ASSERT_NE(server, nullptr);
  const unsigned short port = server->port();
  std::mutex mu;
  std::vector<std::string> accepted;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&, t] {
      HttpClient http(port);
      for (int i = 0; !stop && i < 200; ++i) {
        Headers h;
        if (i % 3 == 0) h["Idempotency-Key"] = "k-" + std::to_string(t) + "-" + std::to_string(i);
        auto r = http.PostJson("/experiments/E-000/runs", FastRunBody(), h);
        if (r.status == 0) return;  // the server is gone
        if (r.status == 202) {
          std::lock_guard lock(mu);
          accepted.push_back(r.json()["id"]);
        }
      }
    });
  }
  // Kill while requests are in flight.
  bool enough = WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return accepted.size() >= 120;
      },
      20s);
  server->Kill();
  stop = true;
  for (auto& c : clients) c.join();
  ASSERT_TRUE(enough) << "too few runs accepted before the kill";

  ASSERT_TRUE(server->Start()) << server->log();
  auto http = server->client();
  int lost = 0;
  for (const auto& id : accepted) {
    if (http.Get("/runs/" + id).status != 200) ++lost;
  }
  EXPECT_EQ(lost, 0) << "of " << accepted.size() << " accepted runs";
  // Everything left queued or running is picked up (or marked interrupted) and finishes.
  EXPECT_TRUE(WaitFor(
      [&] {
        auto q = http.Get("/runs?state=queued&limit=1").json();
        auto r = http.Get("/runs?state=running&limit=1").json();
        return q["items"].empty() && r["items"].empty();
      },
      30s));
  for (std::size_t i = 0; i < accepted.size(); i += 17) {
    auto run = GetRun(http, accepted[i]);
    EXPECT_TRUE(TerminalStates().count(run.value("state", ""))) << run.dump();
  }
  auto v = http.Get("/audit/verify").json();
  EXPECT_TRUE(v.value("ok", false)) << v.dump();
  EXPECT_GE(v.value("entries", 0), static_cast<int>(accepted.size()));
  auto queued = http.Get("/audit?action=run.queued&limit=1").json();
  ASSERT_EQ(queued["items"].size(), 1u);
}

// After a crash: the run that was running becomes interrupted with the reason; the queued one
// runs after the restart.
TEST_F(DurabilityE2E, RestartInterruptsRunningAndRunsQueued) {
  auto server = StartStalled();
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  std::string running = Queue(http, BlockedRunBody(10000));
  WaitState(http, running, {"running"});
  std::string queued = Queue(http, FastRunBody());
  EXPECT_EQ(GetRun(http, queued)["state"], "queued");
  server->Kill();

  ASSERT_TRUE(server->Start()) << server->log();
  http = server->client();
  auto interrupted = GetRun(http, running);
  EXPECT_EQ(interrupted["state"], "interrupted") << interrupted.dump();
  EXPECT_TRUE(interrupted["verdict"].is_null());
  EXPECT_NE(interrupted["error"].get<std::string>().find("server stopped"), std::string::npos);
  EXPECT_TRUE(interrupted["finished_at"].is_string());
  auto after = WaitTerminal(http, queued);
  EXPECT_EQ(after["state"], "completed");
  auto audit = http.Get("/audit?action=run.interrupted").json();
  ASSERT_EQ(audit["items"].size(), 1u);
  EXPECT_EQ(audit["items"][0]["target"], running);
  EXPECT_EQ(audit["items"][0]["actor"], "system");
  EXPECT_TRUE(http.Get("/audit/verify").json().value("ok", false));
}

// SIGTERM: exits 0 within a bound; the running run ends cancelled (cleanup ran) and a queued run
// is not started during the shutdown — it stays queued and runs after the next start.
TEST_F(DurabilityE2E, SigtermCancelsRunningAndExitsZero) {
  auto server = StartStalled();
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  std::string running = Queue(http, BlockedRunBody(2500));
  WaitState(http, running, {"running"});
  std::string queued = Queue(http, BlockedRunBody(2500));
  auto code = server->Terminate(20s);
  ASSERT_TRUE(code.has_value()) << "still running 20 s after SIGTERM";
  EXPECT_EQ(*code, 0) << server->log();
  EXPECT_NE(server->log().find("event=server.stopped"), std::string::npos);
  EXPECT_EQ(StoredState(running), "cancelled");
  EXPECT_EQ(StoredState(queued), "queued") << "a queued run was started during the shutdown";

  ASSERT_TRUE(server->Start()) << server->log();
  http = server->client();
  auto end = WaitTerminal(http, queued, 20s);
  EXPECT_EQ(end["state"], "completed");
  EXPECT_TRUE(http.Get("/audit/verify").json().value("ok", false));
}

// /audit/verify is ok, and reports the first broken entry once a row is changed behind the
// server's back (after dropping the append-only trigger, which otherwise refuses the UPDATE).
TEST_F(DurabilityE2E, AuditVerifyDetectsTampering) {
  auto server = Start(Options());
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  std::string id = Queue(http, FastRunBody());
  WaitTerminal(http, id);
  Queue(http, FastRunBody());
  auto ok = http.Get("/audit/verify").json();
  EXPECT_TRUE(ok.value("ok", false));
  int entries = ok.value("entries", 0);
  EXPECT_GE(entries, 4);

  std::string error;
  EXPECT_NE(Exec("UPDATE audit SET actor = 'mallory' WHERE seq = 2", &error), SQLITE_OK);
  EXPECT_NE(error.find("append-only"), std::string::npos) << error;
  EXPECT_TRUE(http.Get("/audit/verify").json().value("ok", false));

  ASSERT_EQ(Exec("DROP TRIGGER audit_no_update; "
                 "UPDATE audit SET after = '{\"state\":\"completed\",\"verdict\":\"confirmed\"}' "
                 "WHERE seq = 3"),
            SQLITE_OK);
  auto broken = http.Get("/audit/verify");
  ASSERT_EQ(broken.status, 200);
  auto j = broken.json();
  EXPECT_FALSE(j.value("ok", true)) << j.dump();
  EXPECT_EQ(j.value("first_broken_seq", 0), 3) << j.dump();
  EXPECT_FALSE(j.value("reason", "").empty());
}

// A deleted entry (after dropping the delete trigger) is detected as a gap in the chain.
TEST_F(DurabilityE2E, AuditVerifyDetectsDeletion) {
  auto server = Start(Options());
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  WaitTerminal(http, Queue(http, FastRunBody()));
  ASSERT_EQ(Exec("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2"), SQLITE_OK);
  auto j = http.Get("/audit/verify").json();
  EXPECT_FALSE(j.value("ok", true));
  EXPECT_EQ(j.value("first_broken_seq", 0), 3) << j.dump();
}

}  // namespace
}  // namespace lab::e2e
