// The runner framework through the API, against the real stack: a cancelled run and a run that
// times out leave nothing behind (topics, consumer groups, MySQL rows, Redis keys, registry
// subjects, child processes), and two runs at once never share a namespace.
// Every check reads the stack itself, not the run's own account of its cleanup.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "runners/common/c_handle.h"
#include "runners/experiments/experiment_base.h"
#include "runners/kafka/kafka_client.h"
#include "runners/mysql/mysql_client.h"
#include "runners/redis/redis_client.h"
#include "runners/registry/schema_registry.h"
#include "tests/integration/api_harness.h"
#include "tests/integration/harness.h"

namespace lab::testing {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;
namespace kafka = runners::kafka;
namespace mysql = runners::mysql;
namespace redis = runners::redis;
namespace registry = runners::registry;

std::vector<domain::Artifact> ArtifactsOf(const Json& view) {
  std::vector<domain::Artifact> out;
  const Json by_mode = view.value("artifacts", Json::object());  // items() of a temporary dangles
  for (const auto& [mode, list] : by_mode.items()) {
    for (const auto& a : list) out.push_back({a.value("kind", ""), a.value("name", "")});
  }
  return out;
}

bool HasKind(const std::vector<domain::Artifact>& artifacts, const std::string& kind) {
  for (const auto& a : artifacts) {
    if (a.kind == kind) return true;
  }
  return false;
}

bool TopicExists(kafka::Admin& admin, const std::string& topic) {
  auto info = admin.Metadata(topic, 5000ms);
  return info.ok() && !info->partitions.empty();
}

bool GroupExists(kafka::Admin& admin, const std::string& group) {
  const rd_kafka_group_list* raw = nullptr;
  if (rd_kafka_list_groups(admin.handle(), group.c_str(), &raw, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return true;  // cannot tell: count it as present, so the test cannot pass by accident
  runners::CHandle<const rd_kafka_group_list, rd_kafka_group_list_destroy> list(raw);
  for (int i = 0; i < list->group_cnt; ++i) {
    const auto& g = list->groups[i];
    // A deleted group is gone; an emptied one that still exists is "Empty"/"Dead".
    if (group == g.group && std::string(g.state) != "Dead") return true;
  }
  return false;
}

// Rows of `run_ns` in every table that has a run_ns column (found by the schema, not by the
// list the cleanup code uses, so a table cleanup forgets shows up here).
std::int64_t RowsOf(mysql::Connection& conn, const std::string& run_ns) {
  auto tables = conn.Query(
      "SELECT table_name FROM information_schema.columns WHERE table_schema = DATABASE() AND "
      "column_name = 'run_ns'");
  if (!tables.ok()) return -1;
  std::int64_t total = 0;
  for (const auto& row : tables->rows) {
    if (row.empty() || !row[0]) return -1;
    auto n = conn.Query("SELECT COUNT(*) FROM `" + *row[0] + "` WHERE run_ns = ?", {run_ns});
    if (!n.ok()) return -1;
    total += n->Scalar();
  }
  return total;
}

std::int64_t RedisKeys(redis::Connection& conn, const std::string& prefix) {
  std::int64_t count = 0;
  std::string cursor = "0";
  do {
    auto reply = conn.Command({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
    if (!reply.ok() || reply->elements.size() != 2) return -1;
    cursor = reply->elements[0].str;
    count += static_cast<std::int64_t>(reply->elements[1].elements.size());
  } while (cursor != "0");
  return count;
}

// Alive and not a zombie: a zombie is dead but leaked by its parent, which counts as a leak too.
std::string ProcessState(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return "gone";
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close != std::string::npos && close + 2 < text.size()) return std::string(1, text[close + 2]);
  return "gone";
}

// Every artifact of the run is gone from the stack (bounded waits: topic deletion is async).
void ExpectNothingLeft(const std::vector<domain::Artifact>& artifacts) {
  auto env = StackEnv();
  auto admin = kafka::Admin::Create(env["LAB_KAFKA_BOOTSTRAP"]);
  ASSERT_TRUE(admin.ok()) << admin.error().message;
  mysql::MysqlConfig mc;
  mc.port = std::stoi(env["LAB_MYSQL_PORT"]);
  mc.user = env["LAB_MYSQL_USER"];
  mc.password = env["LAB_MYSQL_PASSWORD"];
  mc.database = env["LAB_MYSQL_DATABASE"];
  auto conn = mysql::Connection::Open(mc);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  const std::string redis = env["LAB_REDIS"];
  auto rconn = redis::Connection::Open(redis.substr(0, redis.rfind(':')),
                                       std::stoi(redis.substr(redis.rfind(':') + 1)), 2000ms);
  ASSERT_TRUE(rconn.ok()) << rconn.error().message;
  registry::RegistryClient registry(env["LAB_REGISTRY_URL"]);

  for (const auto& a : artifacts) {
    SCOPED_TRACE(a.kind + " " + a.name);
    if (a.kind == "kafka-topic") {
      EXPECT_TRUE(e2e::WaitFor([&] { return !TopicExists(**admin, a.name); }, 20s));
    } else if (a.kind == "consumer-group") {
      EXPECT_TRUE(e2e::WaitFor([&] { return !GroupExists(**admin, a.name); }, 20s));
    } else if (a.kind == "mysql-rows") {
      EXPECT_EQ(RowsOf(**conn, a.name), 0);
    } else if (a.kind == "redis-prefix") {
      EXPECT_EQ(RedisKeys(**rconn, a.name), 0);
    } else if (a.kind == "registry-subject") {
      auto subjects = registry.Subjects();
      ASSERT_TRUE(subjects.ok()) << subjects.error().message;
      EXPECT_EQ(std::count(subjects->begin(), subjects->end(), a.name), 0);
    } else if (a.kind == "process") {
      pid_t pid = static_cast<pid_t>(std::stol(a.name));
      // A zombie ("Z") is dead: in a container whose init does not reap orphans it stays.
      EXPECT_TRUE(e2e::WaitFor(
          [&] {
            auto s = ProcessState(pid);
            return s == "gone" || s == "Z";
          },
          10s))
          << "state " << ProcessState(pid);
    } else {
      ADD_FAILURE() << "an artifact kind this test does not know how to check";
    }
  }
}

// Waits (bounded) until run `id` is running and has created an artifact of each kind; returns
// the last view (its state says whether that happened before the run ended).
Json WaitRunningWith(const std::string& id, const std::vector<std::string>& kinds) {
  return WaitView(
      id,
      [&](const Json& v) {
        const std::string state = v.value("state", "");
        if (state == "queued") return false;
        auto a = ArtifactsOf(v);
        return state != "running" || std::all_of(kinds.begin(), kinds.end(),
                                                 [&](const auto& k) { return HasKind(a, k); });
      },
      90s);
}

// Cancel in the middle of E-003 (relay and consumer processes running, topics and rows made):
// the run ends cancelled and its cleanup removes all of it.
TEST(Framework, CancelMidRunLeavesNothingBehind) {
  std::string id = QueueRun("E-003", {}, {"failure"});
  ASSERT_FALSE(id.empty());
  Json running = WaitRunningWith(id, {"process", "kafka-topic", "mysql-rows"});
  ASSERT_EQ(running.value("state", ""), "running") << running.dump(2);
  auto c = ApiServer::Get().client();
  auto r = c.PostJson("/runs/" + id + "/cancel", Json::object());
  ASSERT_EQ(r.status, 202) << r.body;

  ApiRun done = WaitRun(id, 120s);
  EXPECT_EQ(done.state, "cancelled") << done.view.dump(2);
  auto artifacts = ArtifactsOf(done.view);
  EXPECT_TRUE(HasKind(artifacts, "process")) << done.view.dump(2);
  ExpectNothingLeft(artifacts);
}

// The pid of the lab-runner-host process running a mode of run `id` (its job file is named
// after the run's namespace), or -1.
pid_t RunnerHostOf(const std::string& id) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find("lab-runner-host") != std::string::npos &&
        cmdline.find(id) != std::string::npos && cmdline.find("cleanup") == std::string::npos) {
      return static_cast<pid_t>(std::stol(name));
    }
  }
  return -1;
}

// A runner process that aborts mid-mode (as librdkafka 2.0.2 can) ends that mode inconclusive,
// with the signal in the reason; the server goes on answering, and the run is cleaned up —
// including the role processes the dead runner had started.
TEST(Framework, AnAbortedRunnerProcessEndsTheModeNotTheServer) {
  std::string id = QueueRun("E-003", {}, {"failure"});
  ASSERT_FALSE(id.empty());
  Json running = WaitRunningWith(id, {"process", "kafka-topic"});
  ASSERT_EQ(running.value("state", ""), "running") << running.dump(2);
  pid_t host = RunnerHostOf(id);
  ASSERT_GT(host, 0) << "no lab-runner-host process for run " << id;
  ASSERT_EQ(::kill(host, SIGABRT), 0);

  ApiRun done = WaitRun(id, 120s);
  EXPECT_EQ(done.state, "completed") << done.view.dump(2);
  EXPECT_EQ(done.view.value("verdict", ""), "inconclusive") << done.view.dump(2);
  const auto& failure = done.view["evidence"]["failure"];
  EXPECT_NE(failure.value("inconclusive", "").find("signal 6"), std::string::npos)
      << done.view.dump(2);
  auto c = ApiServer::Get().client();
  EXPECT_EQ(c.Get("/healthz").status, 200);
  auto artifacts = ArtifactsOf(done.view);
  EXPECT_TRUE(HasKind(artifacts, "process")) << done.view.dump(2);
  ExpectNothingLeft(artifacts);
}

// A run past its timeout is stopped, fails with the reason, and is cleaned up like any other.
TEST(Framework, TimedOutRunFailsAndLeavesNothingBehind) {
  std::string id =
      QueueRun("E-001", {{"events", std::int64_t{100000}}, {"rate", std::int64_t{200}}}, {},
               Json{{"timeout_seconds", 8}});
  ASSERT_FALSE(id.empty());
  ApiRun done = WaitRun(id, 120s);
  EXPECT_EQ(done.state, "failed") << done.view.dump(2);
  EXPECT_NE(done.view.value("verdict_reason", "").find("timed out"), std::string::npos)
      << done.view.dump(2);
  auto artifacts = ArtifactsOf(done.view);
  EXPECT_TRUE(HasKind(artifacts, "kafka-topic")) << done.view.dump(2);
  ExpectNothingLeft(artifacts);
}

// Two runs of the same experiment at once: disjoint artifacts, and each run's counts are its own
// (a shared topic or table would show the other run's records in the read-back).
TEST(Framework, ConcurrentRunsNeverShareANamespace) {
  std::string a = QueueRun("E-002", {}, {"success"});
  std::string b = QueueRun("E-002", {}, {"success"});
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  // Both must have been running at the same time for the test to mean anything.
  auto c = ApiServer::Get().client();
  auto state = [&](const std::string& id) {
    auto r = c.Get("/runs/" + id);
    return r.status == 200 ? r.json().value("state", "") : std::string();
  };
  EXPECT_TRUE(e2e::WaitFor([&] { return state(a) == "running" && state(b) == "running"; }, 60s))
      << "the two runs never overlapped";
  ApiRun ra = WaitRun(a, 180s);
  ApiRun rb = WaitRun(b, 180s);
  ASSERT_EQ(ra.state, "completed") << ra.view.dump(2);
  ASSERT_EQ(rb.state, "completed") << rb.view.dump(2);
  std::set<std::string> names_a;
  for (const auto& x : ArtifactsOf(ra.view)) names_a.insert(x.kind + ":" + x.name);
  for (const auto& x : ArtifactsOf(rb.view)) {
    EXPECT_EQ(names_a.count(x.kind + ":" + x.name), 0) << x.kind << " " << x.name;
  }
  for (const ApiRun* run : {&ra, &rb}) {
    auto o = ToOutcome(*run);
    const auto& m = o.modes["success"].metrics;
    ASSERT_TRUE(m.count("committed") && m.count("read_back")) << run->view.dump(2);
    EXPECT_EQ(m.at("committed"), 500) << run->id;
    EXPECT_EQ(m.at("read_back"), m.at("committed")) << run->id;
    ExpectNothingLeft(ArtifactsOf(run->view));
  }
}

// While E-001 runs, /metrics carries the lag of its consumer groups, measured on the stack by
// the runner host's sampler (committed offsets against high watermarks); once the run has ended
// those series are gone and the outbox gauges are back to 0.
TEST(Framework, PipelineSignalsFollowARun) {
  const std::string id = QueueRun("E-001", {});
  ASSERT_FALSE(id.empty());
  auto client = ApiServer::Get().client();
  std::set<std::string> groups;
  std::set<std::string> lag_seen;
  bool backlog_seen = false;
  std::string state;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto view = Json::parse(client.Get("/runs/" + id).body, nullptr, false);
    state = view.is_object() ? view.value("state", "") : "";
    const std::string metrics = client.Get("/metrics").body;
    for (const auto& a : ArtifactsOf(view)) {
      if (a.kind != "consumer-group") continue;
      groups.insert(a.name);
      if (metrics.find("group=\"" + a.name + "\"") != std::string::npos) lag_seen.insert(a.name);
    }
    backlog_seen = backlog_seen || metrics.find("\nlab_outbox_backlog ") != std::string::npos;
    if (state != "queued" && state != "running" && !state.empty()) break;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(state, "completed");
  ASSERT_FALSE(groups.empty()) << "E-001 recorded no consumer group";
  EXPECT_EQ(lag_seen, groups) << "a group's lab_consumer_lag never showed while the run executed";
  EXPECT_TRUE(backlog_seen);
  const std::string after = client.Get("/metrics").body;
  for (const auto& g : groups) {
    EXPECT_EQ(after.find("group=\"" + g + "\""), std::string::npos) << g << " outlived its run";
  }
  EXPECT_NE(after.find("\nlab_outbox_backlog 0\n"), std::string::npos);
}

}  // namespace
}  // namespace lab::testing

namespace lab::testing {
namespace {

// ExperimentBase's counts, opened up for a test.
class CountProbe final : public runners::ExperimentBase {
 public:
  CountProbe() : ExperimentBase(TestStackConfig()) {}
  std::string_view ExperimentId() const override { return "count-probe"; }
  domain::ModeResult RunMode(const domain::RunContext&, const std::string&) override { return {}; }
  using ExperimentBase::Count;
  using ExperimentBase::OpenMysqlWithSchema;
};

// A count the evidence rests on that MariaDB could not answer makes the mode inconclusive,
// naming the query and MariaDB's error, and no later failure replaces that first reason; a
// count that works leaves the mode alone.
TEST(Framework, AFailedCountMakesTheModeInconclusive) {
  CountProbe probe;
  auto conn = probe.OpenMysqlWithSchema();
  ASSERT_TRUE(conn) << conn.error().message;
  domain::ModeResult fine;
  EXPECT_GE(probe.Count(fine, **conn, "SELECT COUNT(*) FROM orders WHERE run_ns = ?",
                        {std::string("count-probe")}),
            0);
  EXPECT_FALSE(fine.inconclusive.has_value());
  domain::ModeResult broken;
  EXPECT_EQ(probe.Count(broken, **conn, "SELECT COUNT(*) FROM no_such_table WHERE run_ns = ?",
                        {std::string("count-probe")}),
            -1);
  ASSERT_TRUE(broken.inconclusive.has_value());
  EXPECT_NE(broken.inconclusive->find("no_such_table"), std::string::npos) << *broken.inconclusive;
  const std::string first = *broken.inconclusive;
  (void)probe.Count(broken, **conn, "SELECT COUNT(*) FROM another_missing_table", {});
  EXPECT_EQ(*broken.inconclusive, first);
}

}  // namespace
}  // namespace lab::testing
