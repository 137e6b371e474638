#include "domain/run.h"

#include <gtest/gtest.h>

#include <vector>

namespace lab::domain {
namespace {

const std::vector<RunState> kAll = {RunState::kQueued,    RunState::kRunning,
                                    RunState::kCompleted, RunState::kFailed,
                                    RunState::kCancelled, RunState::kInterrupted};

// Every (from, to) pair: exactly the documented transitions are legal.
TEST(RunLifecycle, OnlyDocumentedTransitionsAreLegal) {
  std::vector<std::pair<RunState, RunState>> legal = {
      {RunState::kQueued, RunState::kRunning},    {RunState::kQueued, RunState::kCancelled},
      {RunState::kRunning, RunState::kCompleted}, {RunState::kRunning, RunState::kFailed},
      {RunState::kRunning, RunState::kCancelled}, {RunState::kRunning, RunState::kInterrupted}};
  for (auto from : kAll) {
    for (auto to : kAll) {
      bool expected =
          std::find(legal.begin(), legal.end(), std::make_pair(from, to)) != legal.end();
      EXPECT_EQ(CanTransition(from, to), expected) << ToString(from) << " -> " << ToString(to);
      EXPECT_EQ(CheckTransition(from, to).ok(), expected);
    }
  }
}

// An illegal transition's error names both states, so logs say what was attempted.
TEST(RunLifecycle, IllegalTransitionNamesBothStates) {
  auto status = CheckTransition(RunState::kCompleted, RunState::kRunning);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kConflict);
  EXPECT_NE(status.error().message.find("completed"), std::string::npos);
  EXPECT_NE(status.error().message.find("running"), std::string::npos);
}

// Terminal states are exactly the four end states.
TEST(RunLifecycle, TerminalStates) {
  EXPECT_FALSE(IsTerminal(RunState::kQueued));
  EXPECT_FALSE(IsTerminal(RunState::kRunning));
  for (auto s :
       {RunState::kCompleted, RunState::kFailed, RunState::kCancelled, RunState::kInterrupted}) {
    EXPECT_TRUE(IsTerminal(s));
  }
}

// Names round-trip and unknown names are rejected.
TEST(RunLifecycle, NamesRoundTrip) {
  for (auto s : kAll) EXPECT_EQ(ParseRunState(ToString(s)), s);
  for (auto v : {Verdict::kConfirmed, Verdict::kRefuted, Verdict::kInconclusive}) {
    EXPECT_EQ(ParseVerdict(ToString(v)), v);
  }
  EXPECT_FALSE(ParseRunState("done").has_value());
  EXPECT_FALSE(ParseVerdict("passed").has_value());
}

// Which verdict each terminal state may carry.
TEST(RunLifecycle, VerdictAllowedPerState) {
  EXPECT_TRUE(VerdictAllowed(RunState::kCompleted, Verdict::kRefuted));
  EXPECT_FALSE(VerdictAllowed(RunState::kCompleted, std::nullopt));
  EXPECT_TRUE(VerdictAllowed(RunState::kFailed, Verdict::kInconclusive));
  EXPECT_FALSE(VerdictAllowed(RunState::kFailed, Verdict::kConfirmed));
  EXPECT_TRUE(VerdictAllowed(RunState::kCancelled, std::nullopt));
  EXPECT_FALSE(VerdictAllowed(RunState::kInterrupted, Verdict::kConfirmed));
}

}  // namespace
}  // namespace lab::domain
