#include "runners/common/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace lab::runners {

namespace {

// strerrordesc_np, unlike strerror, returns a constant string: safe from any thread.
std::string ErrnoText(int err) {
  const char* what = strerrordesc_np(err);
  return what != nullptr ? what : "error " + std::to_string(err);
}

}  // namespace

std::string ExitStatus::Describe() const {
  if (exited) return "exit " + std::to_string(code);
  if (signaled) {
    // sigdescr_np, unlike strsignal, returns a constant string: safe from any thread.
    const char* what = sigdescr_np(signal);
    return std::string("killed by signal ") + std::to_string(signal) + " (" +
           (what != nullptr ? what : "unknown signal") + ")";
  }
  return "running";
}

domain::Result<ChildProcess> ChildProcess::Spawn(const std::vector<std::string>& argv,
                                                 const std::string& log_path,
                                                 const std::map<std::string, std::string>& env) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string::npos && env.count(entry.substr(0, eq))) continue;
    env_strings.push_back(entry);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return domain::MakeError(domain::ErrorCode::kUnavailable,
                             "spawn " + argv[0] + ": " + ErrnoText(rc));
  }
  ChildProcess child;
  child.pid_ = pid;
  child.log_path_ = log_path;
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      log_path_(std::move(other.log_path_)),
      status_(other.status_) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    Kill();
    pid_ = std::exchange(other.pid_, -1);
    log_path_ = std::move(other.log_path_);
    status_ = other.status_;
  }
  return *this;
}

namespace {

ExitStatus DecodeWaitStatus(int wstatus) {
  ExitStatus s;
  if (WIFEXITED(wstatus)) {
    s.exited = true;
    s.code = WEXITSTATUS(wstatus);
  } else if (WIFSIGNALED(wstatus)) {
    s.signaled = true;
    s.signal = WTERMSIG(wstatus);
  }
  return s;
}

}  // namespace

ChildProcess::~ChildProcess() { Kill(); }

std::optional<ExitStatus> ChildProcess::Wait(std::chrono::milliseconds timeout,
                                             const std::stop_token& stop) {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int wstatus = 0;
    pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
    if (r == pid_) {
      status_ = DecodeWaitStatus(wstatus);
      return status_;
    }
    if (r < 0) return std::nullopt;
    if (stop.stop_requested() || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void ChildProcess::Kill() {
  if (pid_ <= 0 || status_) return;
  ::kill(pid_, SIGKILL);
  // The child may have exited on its own before the signal: what waitpid says is what happened.
  int wstatus = 0;
  if (::waitpid(pid_, &wstatus, 0) == pid_) {
    status_ = DecodeWaitStatus(wstatus);
  } else {
    status_ = ExitStatus{};
  }
}

bool ChildProcess::Signal(int signal) {
  if (pid_ <= 0 || status_) return false;
  return ::kill(pid_, signal) == 0;
}

bool DieWithParent(int signal) {
  const pid_t parent = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, signal);
  return ::getppid() == parent;
}

std::string ChildProcess::ReadLog() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

domain::Result<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                         std::chrono::milliseconds timeout) {
  static std::atomic<int> counter{0};
  std::string log =
      (std::filesystem::temp_directory_path() /
       ("lab-cmd-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".log"))
          .string();
  auto child = ChildProcess::Spawn(argv, log);
  if (!child) return child.error();
  std::stop_source never;
  auto status = child->Wait(timeout, never.get_token());
  CommandOutput out;
  if (!status) {
    child->Kill();
    out.output = child->ReadLog();
    std::remove(log.c_str());
    return domain::MakeError(
        domain::ErrorCode::kTimeout,
        argv[0] + " did not finish in " + std::to_string(timeout.count()) + " ms: " + out.output);
  }
  out.status = *status;
  out.output = child->ReadLog();
  std::remove(log.c_str());
  return out;
}

}  // namespace lab::runners
