// N19's timeline arithmetic on hand-made samples (no stack, no clock): the all-down window, the
// backlog's peak and the time to zero.
#include <gtest/gtest.h>

#include "runners/experiments/n19_outbox_outage.h"

namespace lab::runners {
namespace {

OutageSample S(double t_ms, int accepting, int refused, std::int64_t pending,
               std::int64_t oldest_age_ms = 0) {
  OutageSample s;
  s.t_ms = t_ms;
  s.wall_us = static_cast<std::int64_t>(t_ms * 1000) + 1'000'000;
  s.brokers = 3;
  s.accepting = accepting;
  s.refused = refused;
  s.pending = pending;
  s.oldest_age_ms = oldest_age_ms;
  return s;
}

// The window runs from the first sample in which all three refused to the first one in which a
// broker accepted again; the peak is the largest pending count, time to zero counts from the
// first broker back.
TEST(OutboxOutage, SummarizesTheWindowPeakAndDrain) {
  std::vector<OutageSample> samples = {
      S(0, 3, 0, 0),          S(200, 2, 1, 10, 50),   S(400, 0, 3, 40, 250), S(600, 0, 3, 90, 450),
      S(800, 1, 2, 120, 650), S(1000, 3, 0, 60, 700), S(1200, 3, 0, 0)};
  auto s = SummarizeOutage(samples);
  EXPECT_TRUE(s.all_down_seen);
  EXPECT_EQ(s.all_down_start_ms, 400);
  EXPECT_EQ(s.all_down_end_ms, 800);
  EXPECT_EQ(s.all_down_ms, 400);
  EXPECT_EQ(s.all_down_start_us, 1'400'000);
  EXPECT_EQ(s.all_down_end_us, 1'800'000);
  EXPECT_TRUE(s.back_seen);
  EXPECT_EQ(s.peak_backlog, 120);
  EXPECT_EQ(s.peak_at_ms, 800);
  EXPECT_DOUBLE_EQ(s.oldest_age_at_peak_s, 0.65);
  EXPECT_DOUBLE_EQ(s.max_oldest_age_s, 0.7);
  EXPECT_EQ(s.time_to_zero_ms, 400);
}

// A port that neither accepted nor refused (a timeout) is not "down": no window, no time to zero.
TEST(OutboxOutage, UnknownPortsAreNotAnOutage) {
  std::vector<OutageSample> samples = {S(0, 3, 0, 0), S(200, 0, 2, 5), S(400, 3, 0, 0)};
  auto s = SummarizeOutage(samples);
  EXPECT_FALSE(s.all_down_seen);
  EXPECT_EQ(s.all_down_ms, 0);
  EXPECT_EQ(s.time_to_zero_ms, -1);
}

// Still down at the last sample: the window ends there, nothing came back, and a backlog that
// never reached zero has no time to zero.
TEST(OutboxOutage, AnOutageThatNeverEnds) {
  std::vector<OutageSample> samples = {S(0, 3, 0, 0), S(200, 0, 3, 5), S(400, 0, 3, 9)};
  auto s = SummarizeOutage(samples);
  EXPECT_TRUE(s.all_down_seen);
  EXPECT_EQ(s.all_down_ms, 200);
  EXPECT_FALSE(s.back_seen);
  EXPECT_EQ(s.peak_backlog, 9);
  EXPECT_EQ(s.time_to_zero_ms, -1);
}

// The chart keeps at most max_points, the first and the last sample among them.
TEST(OutboxOutage, TimelineIsBoundedAndKeepsBothEnds) {
  std::vector<OutageSample> samples;
  for (int i = 0; i < 1001; ++i) samples.push_back(S(i * 10.0, 3, 0, i));
  auto points = TimelineJson(samples, 100);
  ASSERT_LE(points.size(), 100U);
  EXPECT_GE(points.size(), 90U);
  EXPECT_EQ(points.front()["pending"], 0);
  EXPECT_EQ(points.back()["pending"], 1000);
  EXPECT_EQ(TimelineJson(samples, 2000).size(), 1001U);
  EXPECT_TRUE(TimelineJson({}, 10).empty());
}

}  // namespace
}  // namespace lab::runners
