// End-to-end: the resources of API.md over real HTTP against the real binary — probes,
// contract, metrics, catalog, running E-000, validation, reports, SSE, history paging, UI.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "tests/e2e/e2e_util.h"

namespace lab::e2e {
namespace {

class ApiE2E : public E2E {
 protected:
  void SetUp() override {
    server_ = Start(Options());
    ASSERT_NE(server_, nullptr);
  }
  HttpClient c() { return server_->client(); }
  std::unique_ptr<LabServer> server_;
};

// /healthz answers 200 JSON; /openapi.json is the OpenAPI 3 document naming every API.md path.
TEST_F(ApiE2E, HealthzAndOpenApi) {
  auto http = c();
  auto h = http.Get("/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.json().value("status", ""), "ok");
  EXPECT_EQ(h.Header("content-type"), "application/json; charset=utf-8");
  EXPECT_FALSE(h.Header("x-request-id").empty());

  auto o = http.Get("/openapi.json");
  ASSERT_EQ(o.status, 200);
  auto doc = o.json();
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc.value("openapi", "").substr(0, 2), "3.");
  for (const char* p :
       {"/healthz", "/readyz", "/metrics", "/openapi.json", "/experiments", "/experiments/{id}",
        "/experiments/{id}/runs", "/runs", "/runs/{run_id}", "/runs/{run_id}/events",
        "/runs/{run_id}/report", "/runs/{run_id}/cancel", "/halt", "/audit", "/audit/verify"}) {
    bool found = doc["paths"].contains(p);
    if (!found) {  // the parameter may be spelled differently ({id} vs {run_id})
      std::string alt = p;
      auto pos = alt.find("{run_id}");
      if (pos != std::string::npos) found = doc["paths"].contains(alt.replace(pos, 8, "{id}"));
    }
    EXPECT_TRUE(found) << "openapi.json lacks " << p;
  }
}

// /readyz answers 200 or 503 (no stack here) with every dependency named with its state.
TEST_F(ApiE2E, ReadyzNamesEachDependency) {
  auto http = c();
  auto r = http.Get("/readyz");
  ASSERT_TRUE(r.status == 200 || r.status == 503) << r.status;
  auto j = r.json();
  ASSERT_TRUE(j.contains("dependencies"));
  std::set<std::string> names;
  for (const auto& d : j["dependencies"]) {
    names.insert(d.value("name", ""));
    EXPECT_TRUE(d.contains("ok"));
  }
  for (const char* n : {"store", "kafka", "mysql", "redis"}) EXPECT_TRUE(names.count(n)) << n;
  // Every part is a closed port: not ready, and the store itself is fine.
  EXPECT_EQ(r.status, 503);
  EXPECT_FALSE(j.value("ready", true));
}

// /metrics is Prometheus text with the API.md metric names, labelled as the contract says.
TEST_F(ApiE2E, MetricsExposeContractNames) {
  auto http = c();
  std::string id = Queue(http, FastRunBody());
  WaitTerminal(http, id);
  auto m = http.Get("/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.Header("content-type").rfind("text/plain", 0), 0u);
  for (const char* name :
       {"lab_http_requests_total", "lab_http_request_duration_seconds_bucket", "lab_runs_total",
        "lab_run_duration_seconds_bucket", "lab_queue_depth", "lab_workers_busy",
        "lab_workers_total", "lab_experiment_last_verdict", "lab_run_active", "lab_stack_dirty",
        "lab_outbox_backlog", "lab_outbox_oldest_age_seconds", "lab_dlq_messages_total",
        "lab_db_queries_total", "lab_kafka_under_replicated_partitions"}) {
    EXPECT_NE(m.body.find(std::string("\n") + name), std::string::npos) << name << " missing";
  }
  EXPECT_NE(
      m.body.find(
          R"(lab_http_requests_total{code="202",method="POST",route="/experiments/{id}/runs"})"),
      std::string::npos);
  EXPECT_NE(m.body.find(R"(lab_runs_total{experiment="E-000",state="completed",verdict=)"),
            std::string::npos);
  EXPECT_NE(
      m.body.find(R"(lab_experiment_last_verdict{experiment="E-000",verdict="inconclusive"} 1)"),
      std::string::npos);
  EXPECT_NE(m.body.find("lab_workers_total 2"), std::string::npos);
}

// The catalog lists every experiment with its fields and an `available` flag; E-000 is available.
TEST_F(ApiE2E, CatalogListsExperimentsWithAvailability) {
  auto http = c();
  auto r = http.Get("/experiments");
  ASSERT_EQ(r.status, 200);
  auto items = r.json()["items"];
  ASSERT_GE(items.size(), 2u);
  bool e000 = false;
  for (const auto& e : items) {
    for (const char* f :
         {"id", "title", "category", "claim", "modes", "parameters", "requires", "available"}) {
      EXPECT_TRUE(e.contains(f)) << e.value("id", "?") << " lacks " << f;
    }
    EXPECT_TRUE(e["available"].is_boolean());
    for (const auto& p : e["parameters"]) {
      for (const char* f : {"name", "type", "default", "min", "max", "unit"})
        EXPECT_TRUE(p.contains(f));
    }
    if (e["id"] == "E-000") {
      e000 = true;
      EXPECT_TRUE(e["available"].get<bool>());
    }
  }
  EXPECT_TRUE(e000);
  auto one = http.Get("/experiments/E-000");
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(one.json()["id"], "E-000");
  EXPECT_TRUE(one.json().contains("last_runs"));
}

// A run of an experiment listed as unavailable is refused with 501 + problem, nothing queued.
TEST_F(ApiE2E, UnavailableExperimentIs501) {
  auto http = c();
  std::string unavailable;
  auto catalog = http.Get("/experiments").json();
  for (const auto& e : catalog["items"]) {
    if (!e["available"].get<bool>()) {
      unavailable = e["id"];
      break;
    }
  }
  if (unavailable.empty()) GTEST_SKIP() << "every experiment has a runner";
  auto r = http.Post("/experiments/" + unavailable + "/runs", "");
  EXPECT_EQ(r.status, 501);
  EXPECT_TRUE(IsProblem(r)) << r.body;
  EXPECT_EQ(CountRuns(http), 0);
}

// POST E-000 → 202 + Location + queued; it completes with a verdict and consistent evidence.
TEST_F(ApiE2E, RunE000ToCompletion) {
  auto http = c();
  auto r = http.PostJson("/experiments/E-000/runs", FastRunBody());
  ASSERT_EQ(r.status, 202) << r.body;
  auto run = r.json();
  std::string id = run.value("id", "");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(r.Header("location"), "/runs/" + id);
  EXPECT_EQ(run["state"], "queued");
  EXPECT_EQ(run["experiment"], "E-000");

  auto done = WaitTerminal(http, id);
  EXPECT_EQ(done["state"], "completed") << done.dump();
  ASSERT_TRUE(done["verdict"].is_string());
  std::string verdict = done["verdict"];
  EXPECT_TRUE(verdict == "confirmed" || verdict == "inconclusive") << verdict;
  EXPECT_FALSE(done.value("verdict_reason", "").empty());
  for (const char* f : {"created_at", "started_at", "finished_at"}) {
    ASSERT_TRUE(done[f].is_string()) << f;
    EXPECT_EQ(done[f].get<std::string>().size(), 24u) << f << " is not RFC 3339 with ms";
    EXPECT_EQ(done[f].get<std::string>().back(), 'Z');
  }
  EXPECT_FALSE(done["steps"].empty());

  // E-000's evidence agrees with itself: `unreachable` counts the parts whose reachable is 0.
  auto metrics = done["evidence"]["check"]["metrics"];
  ASSERT_TRUE(metrics.is_object()) << done["evidence"].dump();
  int parts = 0;
  int down = 0;
  for (const auto& [name, value] : metrics.items()) {
    const std::string suffix = ".reachable";
    if (name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      ++parts;
      if (value.get<double>() == 0) ++down;
    }
  }
  EXPECT_GE(parts, 5);
  EXPECT_EQ(metrics["unreachable"].get<double>(), down);
  // Every part here is a closed port, so none answers and the claim cannot be confirmed.
  EXPECT_EQ(down, parts);
  EXPECT_EQ(verdict, "inconclusive");
  EXPECT_EQ(done["evidence"]["check"]["details"]["unreachable_parts"].size(),
            static_cast<std::size_t>(down));

  // The experiment now shows this run among its last runs.
  auto exp = http.Get("/experiments/E-000").json();
  ASSERT_FALSE(exp["last_runs"].empty());
  EXPECT_EQ(exp["last_runs"][0]["id"], id);
}

// Unknown experiments and runs are 404 problems; a wrong method is 405 with Allow.
TEST_F(ApiE2E, NotFoundAndMethodNotAllowed) {
  auto http = c();
  auto a = http.Post("/experiments/E-999/runs", "");
  EXPECT_EQ(a.status, 404);
  EXPECT_TRUE(IsProblem(a));
  EXPECT_EQ(http.Get("/experiments/E-999").status, 404);
  auto b = http.Get("/runs/rdoesnotexist");
  EXPECT_EQ(b.status, 404);
  EXPECT_TRUE(IsProblem(b));
  EXPECT_EQ(http.Get("/runs/rdoesnotexist/report").status, 404);
  EXPECT_EQ(http.Get("/runs/rdoesnotexist/events").status, 404);
  EXPECT_EQ(http.Post("/runs/rdoesnotexist/cancel").status, 404);
  EXPECT_EQ(http.Get("/runs/x/y/z").status, 404);
  // A path that decodes to bytes that are not UTF-8 is a 404 like any other, with a valid body.
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/runs/%ff"},
                                                        {"GET", "/experiments/%ff"},
                                                        {"GET", "/%ff"},
                                                        {"POST", "/experiments/%ff/runs"},
                                                        {"POST", "/runs/%ff/cancel"}}) {
    auto r = http.Request(method, path, "");
    EXPECT_EQ(r.status, 404) << method << " " << path << ": " << r.body;
    EXPECT_TRUE(IsProblem(r)) << method << " " << path;
  }

  auto m = http.Request("DELETE", "/experiments", "");
  EXPECT_EQ(m.status, 405);
  EXPECT_TRUE(IsProblem(m));
  EXPECT_EQ(m.Header("allow"), "GET");
  auto g = http.Get("/experiments/E-000/runs");
  EXPECT_EQ(g.status, 405);
  EXPECT_EQ(g.Header("allow"), "POST");
  EXPECT_EQ(http.Post("/healthz").status, 405);
  EXPECT_EQ(http.Request("PUT", "/runs", "").status, 405);
  EXPECT_EQ(CountRuns(http), 0);
}

// Bad run requests are 400 problem documents naming the field, and nothing is queued.
TEST_F(ApiE2E, ValidationRejectsBadBodiesAndQueuesNothing) {
  auto http = c();
  struct Case {
    std::string body;
    std::string field;
  };
  const std::vector<Case> cases = {
      {R"({"params": {"timeout_ms": 100)", "body"},  // malformed JSON
      {R"([1, 2])", "body"},                         // not an object
      {R"("check")", "body"},
      {R"({"params": {"nope": 1}})", "params.nope"},                  // unknown parameter
      {R"({"params": {"timeout_ms": 99}})", "params.timeout_ms"},     // below the minimum (100)
      {R"({"params": {"timeout_ms": 10001}})", "params.timeout_ms"},  // above the maximum (10000)
      {R"({"params": {"timeout_ms": -5}})", "params.timeout_ms"},
      {R"({"params": {"timeout_ms": "fast"}})", "params.timeout_ms"},  // wrong type
      {R"({"params": {"timeout_ms": 150.5}})", "params.timeout_ms"},   // not an integer
      {R"({"modes": ["explode"]})", "modes[0]"},                       // unknown mode
      {R"({"modes": "check"})", "modes"},
      {R"({"modes": []})", "modes"},
      {R"({"colour": "red"})", "colour"},  // unknown field
      {R"({"repeat": 0})", "repeat"},
      {R"({"repeat": 21})", "repeat"},
      {R"({"timeout_seconds": 4})", "timeout_seconds"},
      {R"({"timeout_seconds": 3601})", "timeout_seconds"},
      {R"({"note": 5})", "note"},
      {R"({"keep_artifacts": "yes"})", "keep_artifacts"},
      {R"({"note": "a", "note": "b"})", "body"},  // a repeated key
      {R"({"params": {"timeout_ms": 100, "timeout_ms": 9000}})", "body"},
  };
  for (const auto& c : cases) {
    auto r = http.Post("/experiments/E-000/runs", c.body);
    EXPECT_EQ(r.status, 400) << c.body << " → " << r.body;
    EXPECT_TRUE(IsProblem(r)) << c.body << " → " << r.body;
    EXPECT_TRUE(NamesField(r, c.field)) << c.body << " should name " << c.field << ": " << r.body;
  }
  // The bounds themselves are accepted.
  EXPECT_EQ(CountRuns(http), 0) << "a rejected request was queued";
  for (int ms : {100, 10000}) {
    auto ok =
        http.PostJson("/experiments/E-000/runs",
                      {{"params", {{"timeout_ms", ms}}}, {"timeout_seconds", 5}, {"repeat", 1}});
    EXPECT_EQ(ok.status, 202) << ms << ": " << ok.body;
  }
  EXPECT_EQ(CountRuns(http), 2);
}

// Reports: JSON (default), Markdown and JUnit of a finished run; an unknown format is 400.
TEST_F(ApiE2E, ReportsInThreeFormats) {
  auto http = c();
  std::string id = Queue(http, FastRunBody());
  WaitTerminal(http, id);
  auto j = http.Get("/runs/" + id + "/report");
  ASSERT_EQ(j.status, 200);
  EXPECT_EQ(j.json()["id"], id);
  EXPECT_TRUE(j.json().contains("experiment_detail"));
  auto j2 = http.Get("/runs/" + id + "/report?format=json");
  EXPECT_EQ(j2.status, 200);
  auto md = http.Get("/runs/" + id + "/report?format=markdown");
  ASSERT_EQ(md.status, 200);
  EXPECT_EQ(md.Header("content-type").rfind("text/markdown", 0), 0u);
  EXPECT_EQ(md.body.rfind("# E-000", 0), 0u) << md.body.substr(0, 80);
  EXPECT_NE(md.body.find(id), std::string::npos);
  EXPECT_NE(md.body.find("unreachable"), std::string::npos);
  auto x = http.Get("/runs/" + id + "/report?format=junit");
  ASSERT_EQ(x.status, 200);
  EXPECT_NE(x.Header("content-type").find("xml"), std::string::npos);
  EXPECT_EQ(x.body.rfind("<?xml", 0), 0u);
  EXPECT_NE(x.body.find("<testsuite name=\"E-000\""), std::string::npos);
  EXPECT_NE(x.body.find("<skipped"), std::string::npos);  // inconclusive → skipped
  auto bad = http.Get("/runs/" + id + "/report?format=pdf");
  EXPECT_EQ(bad.status, 400);
  EXPECT_TRUE(NamesField(bad, "format"));
}

// SSE: /runs/{id}/events streams step events and closes with `end` carrying the finished run.
TEST_F(ApiE2E, EventsStreamStepsThenEnd) {
  auto http = c();
  std::string id = Queue(http, FastRunBody());
  auto r = http.Request("GET", "/runs/" + id + "/events", "", {}, 15s);
  EXPECT_TRUE(r.error.empty()) << "stream did not end: " << r.error;
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/event-stream");
  auto first_step = r.body.find("event: step\n");
  auto end = r.body.find("event: end\n");
  ASSERT_NE(first_step, std::string::npos) << r.body;
  ASSERT_NE(end, std::string::npos) << r.body;
  EXPECT_LT(first_step, end);
  EXPECT_EQ(r.body.find("event: step\n", end), std::string::npos) << "steps after end";
  // The end event's data is the finished run.
  auto data_at = r.body.find("data: ", end);
  ASSERT_NE(data_at, std::string::npos);
  auto line = r.body.substr(data_at + 6, r.body.find('\n', data_at) - data_at - 6);
  auto run = Json::parse(line, nullptr, false);
  ASSERT_TRUE(run.is_object()) << line;
  EXPECT_EQ(run["id"], id);
  EXPECT_TRUE(TerminalStates().count(run["state"].get<std::string>()));

  // Resuming with Last-Event-ID skips the steps already seen.
  auto resumed = http.Request("GET", "/runs/" + id + "/events", "", {{"Last-Event-ID", "1"}}, 15s);
  ASSERT_EQ(resumed.status, 200);
  EXPECT_EQ(resumed.body.find("id: 1\n"), std::string::npos);
  EXPECT_NE(resumed.body.find("event: end\n"), std::string::npos);
}

// /runs: newest first, filters, cursor pagination without gaps or repeats, bad queries are 400.
TEST_F(ApiE2E, RunsFiltersAndCursorPaging) {
  auto http = c();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Queue(http, FastRunBody()));
  for (const auto& id : ids) WaitTerminal(http, id);

  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto r = http.Get("/runs?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = r.json();
    EXPECT_LE(j["items"].size(), 2u);
    for (const auto& it : j["items"]) seen.push_back(it["id"]);
    cursor = j["next_cursor"].is_string() ? j["next_cursor"].get<std::string>() : "";
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  std::vector<std::string> newest_first(ids.rbegin(), ids.rend());
  EXPECT_EQ(seen, newest_first);

  auto by_exp = http.Get("/runs?experiment=E-000&state=completed&verdict=inconclusive").json();
  EXPECT_EQ(by_exp["items"].size(), 5u);
  EXPECT_TRUE(by_exp["next_cursor"].is_null());
  EXPECT_EQ(http.Get("/runs?experiment=E-001").json()["items"].size(), 0u);
  EXPECT_EQ(http.Get("/runs?state=queued").json()["items"].size(), 0u);
  EXPECT_EQ(http.Get("/runs?verdict=confirmed").json()["items"].size(), 0u);
  EXPECT_EQ(http.Get("/runs?since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00.000Z")
                .json()["items"]
                .size(),
            5u);
  EXPECT_EQ(http.Get("/runs?since=2100-01-01T00:00:00Z").json()["items"].size(), 0u);
  // A far-future bound is either refused or applied correctly — never silently wrong.
  auto far = http.Get("/runs?until=2999-01-01T00:00:00Z");
  EXPECT_TRUE(far.status == 400 || far.json()["items"].size() == 5u)
      << far.status << " " << far.body;
  auto far_since = http.Get("/runs?since=2999-01-01T00:00:00Z");
  EXPECT_TRUE(far_since.status == 400 || far_since.json()["items"].size() == 0u)
      << far_since.status << ", " << far_since.json()["items"].size() << " items";
  EXPECT_EQ(http.Get("/runs?until=2000-01-01T00:00:00Z").json()["items"].size(), 0u);

  for (const auto& [query, field] :
       std::vector<std::pair<std::string, std::string>>{{"limit=0", "limit"},
                                                        {"limit=201", "limit"},
                                                        {"limit=ten", "limit"},
                                                        {"cursor=bogus", "cursor"},
                                                        {"cursor=czzz", "cursor"},
                                                        {"state=sleeping", "state"},
                                                        {"verdict=maybe", "verdict"},
                                                        {"since=yesterday", "since"},
                                                        {"limit=%2B5", "limit"},  // +5
                                                        {"limit=%205", "limit"},  // " 5"
                                                        {"since=2026-02-30T00:00:00Z", "since"},
                                                        {"until=2026-04-31T00:00:00Z", "until"},
                                                        {"since=+026-01-01T00:00:00Z", "since"}}) {
    auto bad = http.Get("/runs?" + query);
    EXPECT_EQ(bad.status, 400) << query;
    EXPECT_TRUE(IsProblem(bad)) << query;
    EXPECT_TRUE(NamesField(bad, field)) << query << ": " << bad.body;
  }
  EXPECT_EQ(http.Get("/runs?limit=200").status, 200);
}

// /audit: newest first, filters, cursor paging; every accepted run left
// run.queued/started/completed.
TEST_F(ApiE2E, AuditListsStateChangesWithPaging) {
  auto http = c();
  std::string id = Queue(http, FastRunBody());
  WaitTerminal(http, id);
  auto all = http.Get("/audit?target=" + id).json();
  std::vector<std::string> actions;
  for (const auto& e : all["items"]) {
    actions.push_back(e["action"]);
    for (const char* f : {"seq", "time", "actor", "action", "target", "request_id", "before",
                          "after", "prev_hash", "hash"}) {
      EXPECT_TRUE(e.contains(f)) << f;
    }
  }
  EXPECT_EQ(actions, (std::vector<std::string>{"run.completed", "run.started", "run.queued"}));
  EXPECT_EQ(all["items"][2]["actor"], "local");
  EXPECT_FALSE(all["items"][2]["request_id"].get<std::string>().empty());

  auto p1 = http.Get("/audit?limit=2").json();
  ASSERT_EQ(p1["items"].size(), 2u);
  ASSERT_TRUE(p1["next_cursor"].is_string());
  auto p2 = http.Get("/audit?limit=2&cursor=" + p1["next_cursor"].get<std::string>()).json();
  ASSERT_GE(p2["items"].size(), 1u);
  EXPECT_LT(p2["items"][0]["seq"].get<long>(), p1["items"][1]["seq"].get<long>());
  EXPECT_EQ(http.Get("/audit?action=run.queued").json()["items"].size(), 1u);
  EXPECT_EQ(http.Get("/audit?actor=nobody").json()["items"].size(), 0u);
  EXPECT_EQ(http.Get("/audit?cursor=nonsense").status, 400);
  EXPECT_EQ(http.Get("/audit?limit=999").status, 400);

  auto v = http.Get("/audit/verify").json();
  EXPECT_TRUE(v.value("ok", false));
  EXPECT_EQ(v.value("entries", 0), 3);
}

// Event streams are bounded (--max-event-streams): one more is 503 with Retry-After, and a
// stream's place is free again once it has ended.
TEST_F(E2E, EventStreamsAreBounded) {
  // A run against a stalled stack stays running for about 3 s, so its stream stays open.
  auto server = StartStalled({"--workers", "1", "--max-event-streams", "1"});
  ASSERT_NE(server, nullptr);
  auto http = server->client();
  std::string id = Queue(http, BlockedRunBody(3000));
  // The first stream, on a plain socket read with poll(): it must hold its place until the
  // server has answered it 200, before the second asks.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string ask = "GET /runs/" + id + "/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_EQ(::send(fd, ask.data(), ask.size(), 0), static_cast<ssize_t>(ask.size()));
  std::string first;
  // Reads what the server sent within `ms`; false once the server closed the connection.
  auto read_for = [&](int ms) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return true;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    first.append(buf, static_cast<std::size_t>(n));
    return true;
  };
  for (int i = 0; i < 100 && first.find("\r\n\r\n") == std::string::npos; ++i)  // bounded: 5 s
    if (!read_for(50)) break;
  ASSERT_EQ(first.rfind("HTTP/1.1 200", 0), 0u) << first;
  auto second = http.Request("GET", "/runs/" + id + "/events", "", {}, 2s);
  EXPECT_EQ(second.status, 503) << second.body;
  EXPECT_TRUE(IsProblem(second)) << second.body;
  EXPECT_FALSE(second.Header("retry-after").empty());
  // The run ends; its stream ends with it and frees the place.
  WaitTerminal(http, id);
  bool open = true;
  for (int i = 0; i < 300 && open; ++i) open = read_for(50);  // bounded: 15 s
  ::close(fd);
  EXPECT_FALSE(open) << "the stream did not end with its run";
  EXPECT_NE(first.find("event: end\n"), std::string::npos) << first;
  int status = 0;
  for (int i = 0; i < 250 && status != 200; ++i) {  // bounded: 5 s for the session to go
    status = http.Request("GET", "/runs/" + id + "/events", "", {}, 15s).status;
    if (status != 200) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(status, 200) << "the ended stream's place was not freed";
}

// Every status the server answers is one its OpenAPI document declares for that operation, and
// what the document's schemas allow the server accepts (found by Schemathesis: /audit's 400,
// an empty `modes` and an empty halt reason, the missing 401/403/429).
TEST_F(ApiE2E, OpenApiDeclaresEveryAnswer) {
  auto http = c();
  const Json doc = http.Get("/openapi.json").json();
  ASSERT_TRUE(doc.is_object());
  auto declared = [&](const std::string& path, const std::string& method, int status) {
    const Json& op = doc["paths"][path][method];
    return op.is_object() && op["responses"].contains(std::to_string(status));
  };
  struct Probe {
    std::string method, target, body, path;
    Headers headers;
  };
  const std::vector<Probe> probes = {
      {"GET", "/audit?cursor=nonsense", "", "/audit", {}},
      {"GET", "/audit?limit=0", "", "/audit", {}},
      {"POST", "/halt", R"({"reason":""})", "/halt", {}},
      {"POST", "/experiments/E-000/runs", R"({"modes":[]})", "/experiments/{id}/runs", {}},
      {"POST", "/runs/no-such-run/cancel", "", "/runs/{id}/cancel", {}},
      {"DELETE", "/runs/no-such-run/artifacts", "", "/runs/{id}/artifacts", {}},
      {"GET", "/runs/no-such-run/events", "", "/runs/{id}/events", {}},
      {"GET", "/experiments", "", "/experiments", {{"Host", "rebind.example:8080"}}},
      {"GET", "/healthz", "", "/healthz", {{"Host", "rebind.example:8080"}}},
  };
  for (const auto& p : probes) {
    auto r = http.Request(p.method, p.target, p.body, p.headers);
    ASSERT_NE(r.status, 0) << p.method << " " << p.target;
    std::string method = p.method;
    for (auto& ch : method) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_TRUE(declared(p.path, method, r.status)) << p.method << " " << p.target << " answered "
                                                    << r.status << ", not declared for " << p.path;
  }
  // An operation of the API may always answer 401 (token mode), 403 (role, cross-site, Host)
  // and 429 (rate limit).
  for (const auto& [path, ops] : doc["paths"].items()) {
    if (path.rfind("/experiments", 0) != 0 && path.rfind("/runs", 0) != 0 &&
        path.rfind("/halt", 0) != 0 && path.rfind("/audit", 0) != 0)
      continue;
    for (const auto& [method, op] : ops.items()) {
      for (const char* code : {"401", "403", "429"})
        EXPECT_TRUE(op["responses"].contains(code)) << method << " " << path << " lacks " << code;
    }
  }
  // The schema refuses what the server refuses.
  const Json& halt = doc["paths"]["/halt"]["post"]["requestBody"]["content"]["application/json"]
                        ["schema"]["properties"]["reason"];
  EXPECT_EQ(halt.value("minLength", 0), 1);
  EXPECT_EQ(doc["components"]["schemas"]["RunRequest"]["properties"]["modes"].value("minItems", 0),
            1);
}

// Idempotency-Key: same key + body → 200 with the same run; different body → 422; nothing new.
TEST_F(ApiE2E, IdempotencyKey) {
  auto http = c();
  Headers key = {{"Idempotency-Key", "order-42"}};
  auto first = http.PostJson("/experiments/E-000/runs", FastRunBody(), key);
  ASSERT_EQ(first.status, 202);
  std::string id = first.json()["id"];
  auto again = http.PostJson("/experiments/E-000/runs", FastRunBody(), key);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json()["id"], id);
  EXPECT_EQ(again.Header("location"), "/runs/" + id);
  auto other = http.PostJson("/experiments/E-000/runs", {{"params", {{"timeout_ms", 200}}}}, key);
  EXPECT_EQ(other.status, 422) << other.body;
  EXPECT_TRUE(IsProblem(other));
  auto fresh =
      http.PostJson("/experiments/E-000/runs", FastRunBody(), {{"Idempotency-Key", "order-43"}});
  EXPECT_EQ(fresh.status, 202);
  EXPECT_NE(fresh.json()["id"], id);
  EXPECT_EQ(CountRuns(http), 2);
}

// Cancel: a queued run → 202 then cancelled; a finished run → 409.
TEST_F(ApiE2E, CancelFinishedRunIs409) {
  auto http = c();
  std::string id = Queue(http, FastRunBody());
  WaitTerminal(http, id);
  auto r = http.Post("/runs/" + id + "/cancel");
  EXPECT_EQ(r.status, 409);
  EXPECT_TRUE(IsProblem(r));
  EXPECT_EQ(http.Get("/runs/" + id + "/cancel").status, 405);
}

// Static UI: / is HTML, /ui/… client routes fall back to index.html, traversal is 404.
TEST_F(ApiE2E, StaticUi) {
  auto http = c();
  auto root = http.Get("/");
  ASSERT_EQ(root.status, 200);
  EXPECT_EQ(root.Header("content-type").rfind("text/html", 0), 0u);
  EXPECT_NE(Lower(root.body).find("<html"), std::string::npos);
  auto spa = http.Get("/ui/runs");
  EXPECT_EQ(spa.status, 200);
  EXPECT_EQ(spa.body, root.body);
  EXPECT_EQ(http.Get("/ui/runs/r123/compare").body, root.body);
  for (const char* evil : {"/ui/../../etc/passwd", "/../../etc/passwd",
                           "/ui/%2e%2e/%2e%2e/etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                           "/ui/..%2f..%2fetc%2fpasswd", "/.git/config", "/ui/missing.js"}) {
    auto r = http.Get(evil);
    EXPECT_EQ(r.status, 404) << evil;
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << evil;
  }
}

}  // namespace
}  // namespace lab::e2e
