// Child processes of a run (the service roles, the stack script): spawned with posix_spawn,
// output to a log file, waited for with a timeout and cancellation, SIGKILLed and reaped on
// destruction so a run never leaves one behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "domain/result.h"

namespace lab::runners {

struct ExitStatus {
  bool exited = false;  // normal exit with `code`
  int code = 0;
  bool signaled = false;  // killed by `signal` (SIGKILL for a failpoint)
  int signal = 0;
  std::string Describe() const;
};

class ChildProcess {
 public:
  static domain::Result<ChildProcess> Spawn(const std::vector<std::string>& argv,
                                            const std::string& log_path,
                                            const std::map<std::string, std::string>& env = {});
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // nullopt: still running after `timeout` or stop requested.
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout, const std::stop_token& stop);
  void Kill();  // SIGKILL and reap
  // Sends `signal` without waiting (SIGTERM: asks it to stop); false once it has been reaped.
  bool Signal(int signal);
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;

 private:
  ChildProcess() = default;
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<ExitStatus> status_;
};

struct CommandOutput {
  ExitStatus status;
  std::string output;
};

// For a child's main(): the kernel sends this process `signal` when its parent dies. False when
// the parent has already died (before the request could take effect).
bool DieWithParent(int signal);

// Runs a command to completion (bounded): e.g. infra/stack.sh kafka stop 2.
domain::Result<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                         std::chrono::milliseconds timeout);

}  // namespace lab::runners
