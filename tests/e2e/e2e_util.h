// Shared helpers of the end-to-end tests: a fixture owning a temp data dir, run helpers.
#pragma once

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tests/e2e/http_client.h"
#include "tests/e2e/lab_process.h"

namespace lab::e2e {

inline const std::set<std::string>& TerminalStates() {
  static const std::set<std::string> k = {"completed", "failed", "cancelled", "interrupted"};
  return k;
}

// A fast E-000 run: every stack part is a closed port, so it completes in well under a second.
inline Json FastRunBody() { return Json{{"params", {{"timeout_ms", 100}}}}; }

// A blocked E-000 run against a stalled MySQL/Redis: running for about `ms`.
inline Json BlockedRunBody(int ms) { return Json{{"params", {{"timeout_ms", ms}}}}; }

class E2E : public ::testing::Test {
 protected:
  ServerOptions Options(std::vector<std::string> extra = {}) {
    ServerOptions o;
    o.data_dir = dir_ / "data";
    o.extra_args = std::move(extra);
    return o;
  }

  // Starts a server and fails the test (fatally) when it does not come up.
  std::unique_ptr<LabServer> Start(ServerOptions o) {
    auto s = std::make_unique<LabServer>(std::move(o));
    bool up = s->Start();
    EXPECT_TRUE(up) << "server did not start; log:\n" << s->log();
    if (!up) return nullptr;
    return s;
  }

  // POSTs a run of E-000 and returns its id ("" and a failure when not 202).
  static std::string Queue(HttpClient& c, const Json& body, const Headers& headers = {}) {
    auto r = c.PostJson("/experiments/E-000/runs", body, headers);
    EXPECT_EQ(r.status, 202) << r.error << " " << r.body;
    if (r.status != 202) return "";
    return r.json().value("id", "");
  }

  // A server whose MySQL and Redis accept and never answer, so an E-000 run stays running for
  // about its timeout_ms (one worker unless `extra` says otherwise).
  std::unique_ptr<LabServer> StartStalled(std::vector<std::string> extra = {"--workers", "1"}) {
    auto o = Options(std::move(extra));
    o.env = StalledStackEnv(stalled_);
    return Start(std::move(o));
  }

  static Json GetRun(HttpClient& c, const std::string& id) {
    auto r = c.Get("/runs/" + id);
    if (r.status != 200) return Json();
    return r.json();
  }

  // Polls the run until its state is one of `states` (bounded); returns the last view.
  static Json WaitState(HttpClient& c, const std::string& id, const std::set<std::string>& states,
                        std::chrono::milliseconds timeout = 20s) {
    Json last;
    bool ok = WaitFor(
        [&] {
          last = GetRun(c, id);
          return last.is_object() && states.count(last.value("state", "")) > 0;
        },
        timeout);
    EXPECT_TRUE(ok) << "run " << id << " did not reach the wanted state; last: " << last.dump();
    return last;
  }

  static Json WaitTerminal(HttpClient& c, const std::string& id,
                           std::chrono::milliseconds timeout = 20s) {
    return WaitState(c, id, TerminalStates(), timeout);
  }

  static bool IsProblem(const HttpResult& r) {
    auto j = r.json();
    return r.Header("content-type").rfind("application/problem+json", 0) == 0 && j.is_object() &&
           j.contains("type") && j.contains("title") && j.value("status", 0) == r.status &&
           j.contains("detail");
  }

  // True when the problem's `errors` name `field`.
  static bool NamesField(const HttpResult& r, const std::string& field) {
    auto j = r.json();
    if (!j.is_object() || !j.contains("errors")) return false;
    for (const auto& e : j["errors"]) {
      if (e.value("field", "") == field) return true;
    }
    return false;
  }

  static int CountRuns(HttpClient& c) {
    auto r = c.Get("/runs?limit=200");
    if (r.status != 200) return -1;
    return static_cast<int>(r.json()["items"].size());
  }

  TempDir dir_;
  SilentListener stalled_;  // outlives every server of the test, restarts included
};

}  // namespace lab::e2e
