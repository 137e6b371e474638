#include "runners/common/process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

namespace lab::runners {
namespace {

// The state letter of /proc/PID/stat ('Z' once the process has exited and waits to be reaped).
char ProcState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  const auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() ? '?' : line[close + 2];
}

std::string LogPath(const char* name) {
  return ::testing::TempDir() + "/process_test_" + name + ".log";
}

// Kill() on a child that is still running reports the SIGKILL it sent.
TEST(ChildProcess, KillRunningChildReportsSigkill) {
  auto child = ChildProcess::Spawn({"/bin/sleep", "30"}, LogPath("running"));
  ASSERT_TRUE(child) << child.error().message;
  child->Kill();
  auto status = child->Wait(std::chrono::milliseconds(0), {});
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->signaled);
  EXPECT_EQ(status->signal, SIGKILL);
}

// Kill() on a child that had already exited (not yet reaped) reports its exit, not a SIGKILL
// that never reached it.
TEST(ChildProcess, KillAfterExitReportsTheExit) {
  auto child = ChildProcess::Spawn({"/bin/sh", "-c", "exit 3"}, LogPath("exited"));
  ASSERT_TRUE(child) << child.error().message;
  for (int i = 0; i < 500 && ProcState(child->pid()) != 'Z'; ++i)  // bounded: 10 s
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(ProcState(child->pid()), 'Z');
  child->Kill();
  auto status = child->Wait(std::chrono::milliseconds(0), {});
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->exited);
  EXPECT_EQ(status->code, 3);
  EXPECT_FALSE(status->signaled);
}

}  // namespace
}  // namespace lab::runners
