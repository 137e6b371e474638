// IsolatedRunner against stand-in hosts (shell scripts speaking the wire format): what a real
// host does on the stack is covered by the integration tests through the server; these pin
// down the process boundary itself — streaming, a crash, a stop, an error — without a stack.
#include "runners/isolated_runner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "runners/runner_wire.h"

namespace lab::runners {
namespace {

namespace fs = std::filesystem;

// Answers only what IsolatedRunner asks in-process: the id and the configuration.
class Identity final : public domain::ExperimentRunner {
 public:
  std::string_view ExperimentId() const override { return "E-042"; }
  domain::ModeResult RunMode(const domain::RunContext&, const std::string&) override {
    ADD_FAILURE() << "a mode ran in the server's process";
    return {};
  }
  void Cleanup(const domain::RunContext&, const std::vector<domain::Artifact>&) override {
    ADD_FAILURE() << "cleanup ran in the server's process";
  }
};

class Recorder final : public domain::RunReporter {
 public:
  void Step(std::string_view m) override {
    std::lock_guard lock(mu);
    steps.emplace_back(m);
  }
  void Progress(double p) override {
    std::lock_guard lock(mu);
    progress = p;
  }
  void Created(std::string_view mode, const domain::Artifact& a) override {
    std::lock_guard lock(mu);
    created.push_back(std::string(mode) + ":" + a.kind + ":" + a.name);
  }
  std::mutex mu;
  std::vector<std::string> steps;
  std::vector<std::string> created;
  double progress = -1;
};

class IsolatedRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("isolated-runner-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  IsolatedRunner Host(const std::string& script) {
    fs::path path = dir_ / "host.sh";
    std::ofstream(path) << "#!/bin/sh\nDIR='" << dir_.string() << "'\n" << script;
    StackConfig config;
    config.mysql_password = "s3cret";
    return IsolatedRunner(std::make_unique<Identity>(), config, {"/bin/sh", path.string()});
  }
  domain::RunContext Context(std::stop_token stop = {}) {
    domain::RunContext ctx;
    ctx.run_id = "r1";
    ctx.ns = "r1";
    ctx.params = {{"events", std::int64_t{500}},
                  {"rate", 2.5},
                  {"dedup", true},
                  {"invalidation", std::string("versioned")}};
    ctx.reporter = &recorder_;
    ctx.stop = stop;
    return ctx;
  }
  std::string Read(const std::string& name) {
    std::ifstream in(dir_ / name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  fs::path dir_;
  Recorder recorder_;
};

TEST_F(IsolatedRunnerTest, StreamsEventsAndReturnsTheHostsResult) {
  auto runner = Host(R"(cp "$2" "$DIR/job.json"; echo "$LAB_MYSQL_PASSWORD" > "$DIR/pw"
echo '@lab {"t":"step","m":"hello from the host"}'
echo 'a library talking on stderr' >&2
echo '@lab {"t":"progress","p":40}'
echo '@lab {"t":"created","mode":"failure","artifact":{"kind":"kafka-topic","name":"lab.r1.t"}}'
echo '@lab {"t":"result","metrics":{"lost":3,"read_back":7},"details":"{\"k\":1}","artifacts":[],"inconclusive":null,"client_library_failures":[]}'
)");
  auto result = runner.RunMode(Context(), "failure");
  EXPECT_EQ(result.metrics["lost"], 3);
  EXPECT_EQ(result.metrics["read_back"], 7);
  EXPECT_EQ(result.details_json, R"({"k":1})");
  EXPECT_FALSE(result.inconclusive.has_value());
  EXPECT_EQ(recorder_.steps, std::vector<std::string>{"hello from the host"});
  EXPECT_EQ(recorder_.progress, 40);
  EXPECT_EQ(recorder_.created, std::vector<std::string>{"failure:kafka-topic:lab.r1.t"});
  // The job names the experiment, the mode and the parameters with their types; the password
  // travels in the environment, never in the job file.
  auto job = wire::JobFromJson(nlohmann::json::parse(Read("job.json")));
  ASSERT_TRUE(job) << job.error().message;
  EXPECT_EQ(job->experiment, "E-042");
  EXPECT_EQ(job->mode, "failure");
  EXPECT_EQ(std::get<std::int64_t>(job->params["events"]), 500);
  EXPECT_EQ(std::get<double>(job->params["rate"]), 2.5);
  EXPECT_EQ(std::get<bool>(job->params["dedup"]), true);
  EXPECT_EQ(std::get<std::string>(job->params["invalidation"]), "versioned");
  EXPECT_EQ(Read("job.json").find("s3cret"), std::string::npos);
  EXPECT_EQ(Read("pw"), "s3cret\n");
}

TEST_F(IsolatedRunnerTest, AHostThatAbortsEndsTheModeInconclusiveNotTheCaller) {
  auto runner = Host(R"(echo '@lab {"t":"step","m":"producing"}'
echo "rdkafka_queue.h:1038: rd_kafka_enq_once_del_source_return: Assertion 'eonce->refcnt > 0' failed." >&2
kill -ABRT $$
)");
  auto result = runner.RunMode(Context(), "success");
  ASSERT_TRUE(result.inconclusive.has_value());
  EXPECT_NE(result.inconclusive->find("signal 6"), std::string::npos) << *result.inconclusive;
  EXPECT_NE(result.inconclusive->find("rd_kafka_enq_once_del_source_return"), std::string::npos)
      << *result.inconclusive;
  ASSERT_EQ(result.client_library_failures.size(), 1u);
  EXPECT_TRUE(result.metrics.empty());
  EXPECT_EQ(recorder_.steps.front(), "producing");
  EXPECT_NE(recorder_.steps.back().find("without reporting a result"), std::string::npos);
}

TEST_F(IsolatedRunnerTest, AStopReachesTheHostAsSigtermAndItsReportIsKept) {
  auto runner = Host(
      R"(trap 'echo "@lab {\"t\":\"result\",\"metrics\":{},\"inconclusive\":\"cancelled\"}"; exit 0' TERM
echo '@lab {"t":"step","m":"fault on"}'
i=0; while [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
echo '@lab {"t":"result","metrics":{"never":1}}'
)");
  std::stop_source stop;
  std::jthread stopper([&] {
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard lock(recorder_.mu);
        if (!recorder_.steps.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop.request_stop();
  });
  auto started = std::chrono::steady_clock::now();
  auto result = runner.RunMode(Context(stop.get_token()), "failure");
  EXPECT_EQ(result.inconclusive.value_or(""), "cancelled");
  EXPECT_EQ(result.metrics.count("never"), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

TEST_F(IsolatedRunnerTest, AMalformedEventIsKeptAsOutputNotFatal) {
  auto runner = Host(R"(echo '@lab {"t":"created"}'
echo '@lab {"t":"gauge","name":"lab_outbox_backlog","labels":5,"v":1}'
echo '@lab {"t":"result","metrics":{"lost":0}}'
)");
  auto result = runner.RunMode(Context(), "success");
  EXPECT_FALSE(result.inconclusive.has_value());
  EXPECT_EQ(result.metrics["lost"], 0);
  EXPECT_TRUE(recorder_.created.empty());
}

TEST_F(IsolatedRunnerTest, WhatTheRunnerThrewIsThrownAgain) {
  auto runner = Host(R"(echo '@lab {"t":"error","m":"mysql: table exists"}'; exit 1
)");
  EXPECT_THROW(
      {
        try {
          runner.RunMode(Context(), "failure");
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "mysql: table exists");
          throw;
        }
      },
      std::runtime_error);
}

TEST_F(IsolatedRunnerTest, CleanupPassesTheArtifactsAndNeedsTheHostsDone) {
  auto done = Host(R"(cp "$2" "$DIR/job.json"; echo '@lab {"t":"done"}'
)");
  std::vector<domain::Artifact> artifacts = {{"kafka-topic", "lab.r1.a"}, {"redis-prefix", "p:"}};
  EXPECT_NO_THROW(done.Cleanup(Context(), artifacts));
  auto job = wire::JobFromJson(nlohmann::json::parse(Read("job.json")));
  ASSERT_TRUE(job) << job.error().message;
  EXPECT_EQ(job->op, wire::Job::Op::kCleanup);
  ASSERT_EQ(job->artifacts.size(), 2u);
  EXPECT_EQ(job->artifacts[1].kind, "redis-prefix");
  auto silent = Host("exit 0\n");
  EXPECT_THROW(silent.Cleanup(Context(), artifacts), std::runtime_error);
}

TEST_F(IsolatedRunnerTest, AMissingHostIsInconclusiveWithTheReason) {
  IsolatedRunner runner(std::make_unique<Identity>(), StackConfig{},
                        {(dir_ / "no-such-host").string()});
  auto result = runner.RunMode(Context(), "failure");
  ASSERT_TRUE(result.inconclusive.has_value());
  EXPECT_NE(result.inconclusive->find("no-such-host"), std::string::npos) << *result.inconclusive;
}

TEST(RunnerWire, OnlyPrefixedObjectsWithATypeAreOurs) {
  EXPECT_FALSE(wire::ParseLine("hello"));
  EXPECT_FALSE(wire::ParseLine("@lab not json"));
  EXPECT_FALSE(wire::ParseLine("@lab {\"m\":1}"));
  EXPECT_FALSE(wire::ParseLine(" @lab {\"t\":\"step\"}"));
  EXPECT_TRUE(wire::ParseLine(wire::StepLine("x")));
}

TEST(RunnerWire, AResultSurvivesTheTrip) {
  domain::ModeResult r;
  r.metrics = {{"lost", 2}, {"p99_ms", 1.5}};
  r.details_json = R"({"a":[1,2]})";
  r.artifacts = {{"process", "123"}};
  r.inconclusive = "why";
  r.client_library_failures = {"librdkafka: fatal"};
  auto line = wire::ParseLine(wire::ResultLine(r));
  ASSERT_TRUE(line);
  auto back = wire::ResultFromJson(*line);
  EXPECT_EQ(back.metrics, r.metrics);
  EXPECT_EQ(back.details_json, r.details_json);
  ASSERT_EQ(back.artifacts.size(), 1u);
  EXPECT_EQ(back.artifacts[0].name, "123");
  EXPECT_EQ(back.inconclusive, r.inconclusive);
  EXPECT_EQ(back.client_library_failures, r.client_library_failures);
}

TEST(RunnerWire, AJobWithoutItsEssentialsIsRefused) {
  EXPECT_FALSE(wire::JobFromJson(nlohmann::json::parse(R"({"op":"run_mode","ns":"x"})")));
  EXPECT_FALSE(wire::JobFromJson(nlohmann::json::parse(R"({"op":"drop","experiment":"E-1"})")));
  EXPECT_FALSE(wire::JobFromJson(nlohmann::json::parse("[1]")));
}

}  // namespace
}  // namespace lab::runners
