// The pipeline sampler: lag arithmetic, and a sampler over a dead stack that reports nothing it
// did not measure and stops promptly (librdkafka's threads: the uninstrumented-threads label).
#include "runners/pipeline_sampler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "runners/experiments/experiment_base.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;

// Lag sums high - committed per partition; an uncommitted partition counts whole; a group with no
// commit on the topic does not consume it (no series at all).
TEST(GroupLag, FromWatermarksAndCommittedOffsets) {
  EXPECT_EQ(GroupLag({{0, 100, 100}, {0, 50, 40}}), 10);
  EXPECT_EQ(GroupLag({{0, 100, 90}, {20, 50, -1001}}), 40);
  EXPECT_EQ(GroupLag({{0, 100, 120}}), 0);  // a commit past a stale watermark is no negative lag
  EXPECT_EQ(GroupLag({{0, 100, -1001}, {0, 5, -1}}), std::nullopt);
  EXPECT_EQ(GroupLag({}), std::nullopt);
}

class GaugeRecorder : public domain::RunReporter {
 public:
  void Step(std::string_view) override {}
  void Progress(double) override {}
  void Created(std::string_view, const domain::Artifact&) override {}
  void Gauge(std::string_view name, const std::map<std::string, std::string>&, double) override {
    std::lock_guard lock(mu);
    names.emplace_back(name);
  }
  std::mutex mu;
  std::vector<std::string> names;  // guarded by mu
};

// Over a stack that refuses every connection the sampler reports no gauge (a number it could not
// measure is left out, not set to 0) and its destructor returns within its short timeouts.
TEST(PipelineSampler, DeadStackReportsNothingAndStopsPromptly) {
  StackConfig dead;
  dead.kafka_bootstrap = "127.0.0.1:1";
  dead.mysql_port = 1;
  GaugeRecorder out;
  auto started = std::chrono::steady_clock::now();
  {
    PipelineSampler sampler(dead, out, 100ms);
    sampler.Track({kArtifactTopic, "lab.t"});
    sampler.Track({kArtifactGroup, "lab.g"});
    sampler.Track({kArtifactRows, "lab_ns_success"});
    std::this_thread::sleep_for(1500ms);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, 6s);
  std::lock_guard lock(out.mu);
  EXPECT_TRUE(out.names.empty()) << out.names.front();
}

}  // namespace
}  // namespace lab::runners
