// Stack faults during a run, through the HTTP API of the real server against the real stack
// (issue 15): a part the run uses (MariaDB, one Kafka broker, Redis) is killed (SIGKILL, by
// infra/stack.sh) while the run works. The run must end before its timeout, inconclusive with a
// reason that names the failure (never confirmed or refuted on evidence it could not gather), its
// postflight must find the part unhealthy and /readyz report the stack dirty; once the part is
// started again, /readyz must be clean within a minute and a cleanup the run left pending must be
// done. Also: DELETE /runs/{id}/artifacts removes a kept E-004 run's rows and topic from the stack.
// Every test starts the part it kills again on every exit path (PartKilled's destructor).
// Requires `infra/stack.sh up`. Run under `flock -o /tmp/lab-stack.lock`: these tests restart
// stack parts, which must not inherit a lock descriptor (StackScript closes the test's own).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "runners/kafka/kafka_client.h"
#include "tests/e2e/lab_process.h"
#include "tests/integration/api_harness.h"
#include "tests/integration/redis_support.h"

namespace lab::testing {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct ScriptResult {
  bool ok = false;  // exited 0 within the timeout
  std::string output;
};

// infra/stack.sh ARGS, bounded by `timeout`. The child closes every descriptor above stderr before
// exec: a part started here (a daemon) must not inherit the test's sockets or a lock descriptor.
ScriptResult StackScript(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  ScriptResult out;
  char log_path[] = "/tmp/lab-stack-fault-XXXXXX";
  const int log_fd = ::mkstemp(log_path);
  if (log_fd < 0) {
    out.output = "mkstemp failed";
    return out;
  }
  std::vector<std::string> argv_s = {"/bin/bash", std::string(LAB_SOURCE_DIR) + "/infra/stack.sh"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::close_range(3, ~0U, 0);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  int status = 0;
  bool exited =
      pid > 0 && e2e::WaitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; },
                              std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
  if (pid > 0 && !exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  std::ifstream in(log_path);
  out.output.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  ::unlink(log_path);
  if (pid > 0 && !exited) out.output += "\n(stack.sh did not finish in time; killed)";
  out.ok = exited && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return out;
}

// The line of `infra/stack.sh status` for `part` says "up".
bool PartUp(const std::string& part) {
  auto status = StackScript({"status"}, 60s);
  std::istringstream lines(status.output);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string name, state;
    fields >> name >> state;
    if (name == part) return state == "up";
  }
  return false;
}

// One part of the stack killed for the test; started again (and checked healthy) by Restore() or,
// whatever happened in between, the destructor. kind/number as infra/stack.sh takes them.
class PartKilled {
 public:
  PartKilled(std::string kind, std::string number = "")
      : kind_(std::move(kind)), number_(std::move(number)) {}
  ~PartKilled() { Restore(); }
  PartKilled(const PartKilled&) = delete;
  PartKilled& operator=(const PartKilled&) = delete;

  std::string part() const { return kind_ + number_; }

  // SIGKILL through infra/stack.sh; the output says what happened.
  ScriptResult Kill() {
    killed_ = true;
    return StackScript(Args("kill"), 60s);
  }

  // Starts the part (stack.sh waits until it serves) and checks it is up; for a broker, also
  // that every partition of the cluster is fully replicated again.
  void Restore() {
    if (!killed_) return;
    killed_ = false;
    auto started = StackScript(Args("start"), 240s);
    EXPECT_TRUE(started.ok) << part() << " did not start again: " << started.output;
    EXPECT_TRUE(PartUp(part())) << part() << " is not up after the test";
    if (kind_ == "kafka") ExpectFullyReplicated();
  }

 private:
  std::vector<std::string> Args(const std::string& verb) const {
    std::vector<std::string> args = {kind_, verb};
    if (!number_.empty()) args.push_back(number_);
    return args;
  }
  std::string kind_;
  std::string number_;
  bool killed_ = false;
};

// Cancels the run at the end of a test if it is still queued or running (a test that failed
// before its run ended leaves no run working on the shared server). Declared after PartKilled, so
// it cancels before the part is started again.
class CancelIfActive {
 public:
  explicit CancelIfActive(const std::string& id) : id_(id) {}
  ~CancelIfActive() {
    if (id_.empty()) return;
    auto c = ApiServer::Get().client();
    auto r = c.Get("/runs/" + id_);
    const Json v = r.status == 200 ? Json::parse(r.body, nullptr, false) : Json();
    const std::string state = v.is_object() ? v.value("state", "") : "";
    if (state == "queued" || state == "running")
      (void)c.PostJson("/runs/" + id_ + "/cancel", Json::object());
  }
  CancelIfActive(const CancelIfActive&) = delete;
  CancelIfActive& operator=(const CancelIfActive&) = delete;

 private:
  std::string id_;
};

Json Readyz() {
  auto r = ApiServer::Get().client().Get("/readyz");
  if (r.status != 200 && r.status != 503) return Json::object();
  Json j = Json::parse(r.body, nullptr, false);
  return j.is_object() ? j : Json::object();
}

// Polls /readyz until stack_dirty is `dirty` (bounded); returns the last answer.
Json WaitStackDirty(bool dirty, std::chrono::seconds timeout) {
  Json last;
  e2e::WaitFor(
      [&] {
        last = Readyz();
        return last.contains("stack_dirty") && last["stack_dirty"].get<bool>() == dirty;
      },
      timeout);
  return last;
}

Json GetRun(const std::string& id) {
  auto r = ApiServer::Get().client().Get("/runs/" + id);
  if (r.status != 200) return Json::object();
  Json j = Json::parse(r.body, nullptr, false);
  return j.is_object() ? j : Json::object();
}

bool HasStep(const Json& view, const std::string& text) {
  for (const auto& s : view.value("steps", Json::array())) {
    if (s.value("message", "").find(text) != std::string::npos) return true;
  }
  return false;
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The last `n` steps of a run view, for failure messages.
std::string StepTail(const Json& view, std::size_t n = 30) {
  const Json steps = view.value("steps", Json::array());
  std::string out;
  for (std::size_t i = steps.size() > n ? steps.size() - n : 0; i < steps.size(); ++i)
    out += "  " + steps[i].value("message", "") + "\n";
  return out;
}

std::string Summary(const Json& view) {
  return "state=" + view.value("state", "?") +
         " verdict=" + (view["verdict"].is_string() ? view["verdict"].get<std::string>() : "null") +
         " reason=" + view.value("verdict_reason", "") +
         " error=" + (view["error"].is_string() ? view["error"].get<std::string>() : "null") +
         "\npostflight=" + view.value("postflight", Json::object()).dump() +
         "\ncleanup=" + view.value("cleanup", Json::object()).dump() + "\nsteps (tail):\n" +
         StepTail(view);
}

// What a stack-fault test does with one part and one run. Every mode of the experiment runs: a run
// of some of its modes is inconclusive whatever happens, which would hide a wrong verdict.
struct FaultCase {
  std::string experiment;
  std::map<std::string, domain::ParamValue> params;
  int timeout_seconds;       // set on the run explicitly
  std::string kill_at_step;  // the part is killed once a step containing this is logged
  std::string kind, number;  // infra/stack.sh's names of the part
  std::string probe_part;    // the part's name in postflight and /readyz
  std::vector<std::string> reason_words;  // the verdict reason names the failure with one of these
};

// The stack is clean before a fault test: a previous test's dirt must not count as this one's.
void ExpectCleanStart() {
  const Json ready = WaitStackDirty(false, 60s);
  ASSERT_FALSE(ready.value("stack_dirty", true))
      << "the stack is dirty before the test: " << ready.dump();
}

void RunFaultCase(const FaultCase& fc) {
  ExpectCleanStart();
  if (::testing::Test::HasFatalFailure()) return;
  PartKilled killed(fc.kind, fc.number);
  const auto queued_at = Clock::now();
  const std::string id =
      QueueRun(fc.experiment, fc.params, {}, Json{{"timeout_seconds", fc.timeout_seconds}});
  ASSERT_FALSE(id.empty());
  CancelIfActive cancel(id);

  // Running and working: the step the kill waits for is logged.
  const Json before = WaitView(
      id,
      [&](const Json& v) {
        const std::string state = v.value("state", "");
        return HasStep(v, fc.kill_at_step) || (state != "queued" && state != "running");
      },
      std::chrono::seconds(fc.timeout_seconds));
  ASSERT_EQ(before.value("state", ""), "running")
      << "the run ended before " << killed.part()
      << " could be killed (make it bigger): " << Summary(before);
  ASSERT_TRUE(HasStep(before, fc.kill_at_step)) << Summary(before);

  const auto kill = killed.Kill();
  ASSERT_TRUE(kill.ok) << kill.output;
  std::printf("%s killed %.1f s after the run was queued: %s", killed.part().c_str(),
              std::chrono::duration<double>(Clock::now() - queued_at).count(), kill.output.c_str());
  // The kill landed while the run was still working.
  const Json at_kill = GetRun(id);
  ASSERT_EQ(at_kill.value("state", ""), "running")
      << "the run ended while " << killed.part()
      << " was being killed (make it bigger): " << Summary(at_kill);

  // It ends, within its own timeout (the deadline here is the timeout from the queueing, so a
  // run the watchdog had to stop is seen as what it is by the checks below).
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::seconds(fc.timeout_seconds) - (Clock::now() - queued_at));
  const ApiRun run = WaitRun(id, std::max(left, std::chrono::seconds(1)));
  const Json& v = run.view;
  std::printf("run %s ended after %.1f s: %s\n", id.c_str(),
              std::chrono::duration<double>(Clock::now() - queued_at).count(), Summary(v).c_str());
  ASSERT_TRUE(run.state == "completed" || run.state == "failed")
      << "the run did not end within its timeout of " << fc.timeout_seconds << " s: " << Summary(v);
  EXPECT_EQ(Lower(v.dump()).find("timed out after"), std::string::npos)
      << "the watchdog had to stop the run: " << Summary(v);
  // Never a verdict on evidence the run could not gather.
  ASSERT_TRUE(v["verdict"].is_string()) << Summary(v);
  EXPECT_NE(v["verdict"], "confirmed")
      << "the server confirmed a run that lost " << killed.part() << ": " << Summary(v);
  EXPECT_NE(v["verdict"], "refuted")
      << "the server refuted on a run that lost " << killed.part() << ": " << Summary(v);
  EXPECT_EQ(v["verdict"], "inconclusive") << Summary(v);
  const std::string reason = Lower(v.value("verdict_reason", ""));
  std::string words;
  bool named = false;
  for (const auto& w : fc.reason_words) {
    named = named || reason.find(Lower(w)) != std::string::npos;
    words += " '" + w + "'";
  }
  EXPECT_TRUE(named) << "the reason does not name the failure (none of" << words
                     << "): " << Summary(v);

  // The postflight found the part down, and /readyz says the stack is dirty because of it (the
  // readiness monitor never dirties; only a postflight does, so it is this run's).
  const Json postflight = v.value("postflight", Json::object());
  ASSERT_TRUE(postflight.contains(fc.probe_part)) << Summary(v);
  EXPECT_FALSE(postflight[fc.probe_part].value("ok", true))
      << fc.probe_part << " looked healthy after the run: " << Summary(v);
  const Json dirty = Readyz();
  EXPECT_TRUE(dirty.value("stack_dirty", false)) << dirty.dump();
  EXPECT_NE(dirty.value("stack_dirty_reason", "").find(fc.probe_part), std::string::npos)
      << dirty.dump();

  // Started again: clean within a minute, and what the run could not clean up is removed.
  const auto restart_at = Clock::now();
  killed.Restore();
  const Json clean = WaitStackDirty(false, 60s);
  EXPECT_FALSE(clean.value("stack_dirty", true))
      << "still dirty a minute after " << killed.part() << " was started again: " << clean.dump();
  std::printf("%s restarted; /readyz clean %.1f s after the restart began\n", killed.part().c_str(),
              std::chrono::duration<double>(Clock::now() - restart_at).count());
  const Json after = GetRun(id);
  if (after.contains("cleanup")) {
    const Json done = WaitView(
        id,
        [](const Json& view) {
          return view.value("cleanup", Json::object()).value("state", "") == "done";
        },
        90s);
    EXPECT_EQ(done.value("cleanup", Json::object()).value("state", ""), "done")
        << "the run's cleanup was not finished after the restart: " << Summary(done);
    std::printf("cleanup %s after %.1f s: %s\n",
                done.value("cleanup", Json::object()).value("state", "").c_str(),
                std::chrono::duration<double>(Clock::now() - restart_at).count(),
                done.value("cleanup", Json::object()).dump().c_str());
  }
}

// MariaDB killed while E-004's first consumer applies events: the consumers' writes and the
// runner's counts fail, so the verdict is inconclusive and names the failed count.
TEST(StackFault, MariaDbKilledDuringARunMakesItInconclusive) {
  RunFaultCase(
      {"E-004",
       {{"events", std::int64_t{20000}}, {"kill_after", std::int64_t{15000}}},
       180,
       "started consumer-service (consumer-service#1",
       "mysql",
       "",
       "mysql",
       {"mysql", "mariadb", "count could not be taken", "lost connection", "can't connect"}});
}

// One Kafka broker killed while E-004's first consumer reads: the run must not be judged on it.
// DISABLED: it fails on two open defects (issue 15 note). The runner host's pipeline sampler
// blocks in rd_kafka_query_watermark_offsets, which ignores its timeout while a partition's
// leader is down (librdkafka 2.0.2, #2588; fixed in 2.3.0), so the mode's result waits for the
// run's watchdog; and the Kafka probe counts the stack healthy with 2 of 3 brokers
// (runners/stack_probe.cc), so the postflight is clean. Run it with
// --gtest_also_run_disabled_tests once they are fixed.
TEST(StackFault, DISABLED_KafkaBrokerKilledDuringARunMakesItInconclusive) {
  RunFaultCase({"E-004",
                {{"events", std::int64_t{5000}}, {"kill_after", std::int64_t{3000}}},
                60,
                "started consumer-service (consumer-service#1",
                "kafka",
                "2",
                "kafka",
                {"kafka", "broker"}});
}

// The same with an experiment that has no consumer group (E-002: the command-service produces,
// the relay publishes, a fresh consumer reads back). DISABLED for the probe's defect above, and
// an open question: with replication 3 and min ISR 2 one broker down is tolerated by design, and
// the server judges only the runner's evidence (E-002 was confirmed with kafka2 dead all along).
TEST(StackFault, DISABLED_KafkaBrokerKilledDuringAnOutboxRunMakesItInconclusive) {
  RunFaultCase({"E-002",
                {{"events", std::int64_t{10000}}, {"kill_after", std::int64_t{7000}}},
                120,
                "started command-service (command-service#1",
                "kafka",
                "2",
                "kafka",
                {"kafka", "broker"}});
}

// Redis killed during E-047's baseline load: the load's clients fail, SLOWLOG cannot be read.
TEST(StackFault, RedisKilledDuringARunMakesItInconclusive) {
  RunFaultCase({"E-047",
                {{"seconds", std::int64_t{8}}, {"keys", std::int64_t{20000}}},
                90,
                "baseline load",
                "redis",
                "",
                "redis",
                {"redis"}});
}

// Rows of `run_ns` in every table that has a run_ns column (found by the schema, so a table the
// cleanup forgets counts too); -1 when they cannot be counted.
std::int64_t RowsOf(const std::string& run_ns) {
  auto db = Mysql();
  if (!db) return -1;
  auto tables = db->Query(
      "SELECT table_name FROM information_schema.columns WHERE table_schema = DATABASE() AND "
      "column_name = 'run_ns'");
  if (!tables.ok()) return -1;
  std::int64_t total = 0;
  for (const auto& row : tables->rows) {
    if (row.empty() || !row[0]) return -1;
    auto n = db->Query("SELECT COUNT(*) FROM `" + *row[0] + "` WHERE run_ns = ?", {run_ns});
    if (!n.ok()) return -1;
    total += n->Scalar();
  }
  return total;
}

// Whether the cluster lists `topic` (every topic's metadata, so a deleted topic is simply not
// listed); nullopt when the cluster cannot be asked.
std::optional<bool> TopicListed(const std::string& topic) {
  auto admin = runners::kafka::Admin::Create(TestStackConfig().kafka_bootstrap);
  if (!admin) return std::nullopt;
  const rd_kafka_metadata_t* raw = nullptr;
  if (rd_kafka_metadata((*admin)->handle(), 1, nullptr, &raw, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return std::nullopt;
  runners::CHandle<const rd_kafka_metadata_t, rd_kafka_metadata_destroy> md(raw);
  for (int t = 0; t < md->topic_cnt; ++t) {
    if (topic == md->topics[t].topic) return true;
  }
  return false;
}

// Removes a kept run's artifacts with the runner's own cleanup unless the API did (a failing test
// leaves nothing behind).
class KeptArtifacts {
 public:
  explicit KeptArtifacts(std::string experiment) : experiment_(std::move(experiment)) {}
  ~KeptArtifacts() {
    if (!removed_ && !outcome_.artifacts.empty()) CleanupKept(experiment_, outcome_);
  }
  void Set(const RunOutcome& outcome) { outcome_ = outcome; }
  void Removed() { removed_ = true; }

 private:
  std::string experiment_;
  RunOutcome outcome_;
  bool removed_ = false;
};

// A kept E-004 run: its rows (every table with its run_ns) and its topics are on the stack;
// DELETE /runs/{id}/artifacts answers 202, the cleanup ends done, the rows and topics are gone,
// and a second DELETE answers 409.
TEST(StackFault, DeleteArtifactsRemovesAKeptRunsRowsAndTopics) {
  const std::string id = QueueRun("E-004",
                                  {{"events", std::int64_t{200}},
                                   {"kill_after", std::int64_t{60}},
                                   {"batch", std::int64_t{20}}},
                                  {}, Json{{"keep_artifacts", true}, {"timeout_seconds", 120}});
  ASSERT_FALSE(id.empty());
  KeptArtifacts kept("E-004");
  const ApiRun run = WaitRun(id, 150s);
  kept.Set(ToOutcome(run));
  ASSERT_EQ(run.state, "completed") << Summary(run.view);
  EXPECT_FALSE(run.view.contains("cleanup")) << "a kept run has no cleanup of its own";

  std::vector<std::string> namespaces, topics;
  const Json artifacts = run.view.value("artifacts", Json::object());
  for (const auto& [mode, list] : artifacts.items()) {
    for (const auto& a : list) {
      if (a.value("kind", "") == "mysql-rows") namespaces.push_back(a.value("name", ""));
      if (a.value("kind", "") == "kafka-topic") topics.push_back(a.value("name", ""));
    }
  }
  ASSERT_EQ(namespaces.size(), 2u) << artifacts.dump();
  ASSERT_EQ(topics.size(), 2u) << artifacts.dump();
  for (const auto& ns : namespaces) EXPECT_GT(RowsOf(ns), 0) << ns;
  for (const auto& topic : topics)
    EXPECT_EQ(TopicListed(topic), std::optional<bool>(true)) << topic;

  auto c = ApiServer::Get().client();
  auto removal = c.Delete("/runs/" + id + "/artifacts");
  ASSERT_EQ(removal.status, 202) << removal.body;
  EXPECT_EQ(removal.json()["cleanup"].value("state", ""), "pending") << removal.body;
  const auto asked = Clock::now();
  const Json done = WaitView(
      id,
      [](const Json& v) {
        const std::string state = v.value("cleanup", Json::object()).value("state", "");
        return state == "done" || state == "given_up";
      },
      60s);
  ASSERT_EQ(done.value("cleanup", Json::object()).value("state", ""), "done") << Summary(done);
  kept.Removed();
  std::printf("cleanup done %.1f s after the DELETE: %s\n",
              std::chrono::duration<double>(Clock::now() - asked).count(),
              done["cleanup"].dump().c_str());
  EXPECT_TRUE(done["cleanup"].value("artifacts_left", Json::array()).empty()) << Summary(done);
  for (const auto& ns : namespaces) EXPECT_EQ(RowsOf(ns), 0) << ns;
  // Topic deletion is asynchronous in Kafka: bounded wait.
  for (const auto& topic : topics)
    EXPECT_TRUE(e2e::WaitFor([&] { return TopicListed(topic) == std::optional<bool>(false); }, 20s))
        << topic;

  auto again = c.Delete("/runs/" + id + "/artifacts");
  EXPECT_EQ(again.status, 409) << again.body;
}

}  // namespace
}  // namespace lab::testing
