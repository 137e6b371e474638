// The real server binary as a child process (RAII: killed and reaped at the end of a test), a
// temporary directory, and a TCP listener that accepts and never answers (a "stalled" MySQL or
// Redis that keeps an E-000 run busy for as long as its timeout_ms).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/http_client.h"

extern char** environ;

namespace lab::e2e {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Polls `done` every 20 ms until it is true or `timeout` passes; returns its last value.
inline bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "lab-e2e-XXXXXX").string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Listens on 127.0.0.1:<ephemeral> and never accepts: the kernel completes the handshake, so a
// client connects and then waits for a greeting that never comes.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 128) != 0) {
      throw std::runtime_error("silent listener: cannot listen");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() {
    if (fd_ >= 0) ::close(fd_);
  }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  unsigned short port() const { return port_; }

 private:
  int fd_ = -1;
  unsigned short port_ = 0;
};

struct ServerOptions {
  std::string data_dir;                    // required
  std::vector<std::string> extra_args;     // e.g. {"--workers", "1"}
  std::map<std::string, std::string> env;  // added to (and overriding) the stack defaults
  bool rate_limit_off = true;              // adds --rate-limit 0 unless false
  std::string listen = "127.0.0.1:0";
  int max_open_files = 0;  // RLIMIT_NOFILE of the server process; 0 = inherited
};

// Environment pointing every stack part at a closed port, so E-000 finishes at once and the
// result does not depend on whatever stack happens to run on this machine.
inline std::map<std::string, std::string> DeadStackEnv() {
  return {{"LAB_KAFKA_BOOTSTRAP", "127.0.0.1:1"},
          {"LAB_REGISTRY_URL", "http://127.0.0.1:1"},
          {"LAB_MYSQL_HOST", "127.0.0.1"},
          {"LAB_MYSQL_PORT", "1"},
          {"LAB_REDIS_HOST", "127.0.0.1"},
          {"LAB_REDIS_PORT", "1"},
          {"LAB_REDIS_CLUSTER_SEEDS", "127.0.0.1:1"},
          {"LAB_TOXIPROXY_URL", "http://127.0.0.1:1"}};
}

// As above, with MySQL and Redis at a listener that never answers: an E-000 run then stays
// running for about params.timeout_ms.
inline std::map<std::string, std::string> StalledStackEnv(const SilentListener& silent) {
  auto env = DeadStackEnv();
  env["LAB_MYSQL_PORT"] = std::to_string(silent.port());
  env["LAB_REDIS_PORT"] = std::to_string(silent.port());
  return env;
}

class LabServer {
 public:
  explicit LabServer(ServerOptions options) : options_(std::move(options)) {}
  ~LabServer() { Kill(); }
  LabServer(const LabServer&) = delete;
  LabServer& operator=(const LabServer&) = delete;

  // Starts the binary; true once it wrote its port file. On failure, log() says why.
  bool Start(std::chrono::milliseconds timeout = 15s) {
    port_file_ = options_.data_dir + "/port";
    log_file_ = options_.data_dir + "/server-" + std::to_string(++starts_) + ".log";
    std::filesystem::create_directories(options_.data_dir);
    std::filesystem::remove(port_file_);
    pid_ = Spawn();
    if (pid_ <= 0) return false;
    bool ok = WaitFor(
        [&] {
          if (!Running()) return true;
          std::ifstream in(port_file_);
          std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
          if (text.empty() || text.back() != '\n') return false;
          port_ = static_cast<unsigned short>(std::stoi(text));
          return true;
        },
        timeout);
    return ok && port_ != 0 && Running();
  }

  // Starts and expects the process to exit on its own; returns its exit code (or -1).
  int RunToExit(std::chrono::milliseconds timeout = 10s) {
    log_file_ = options_.data_dir + "/server-" + std::to_string(++starts_) + ".log";
    std::filesystem::create_directories(options_.data_dir);
    pid_ = Spawn();
    if (pid_ <= 0) return -1;
    if (!WaitFor([&] { return !Running(); }, timeout)) return -1;
    return ExitCode();
  }

  bool Running() {
    if (pid_ <= 0) return false;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = status;
      pid_ = -1;
      return false;
    }
    return r == 0;
  }

  // SIGTERM; returns the exit code if the process ended within `timeout`, else nullopt.
  std::optional<int> Terminate(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return ExitCode();
    ::kill(pid_, SIGTERM);
    if (!WaitFor([&] { return !Running(); }, timeout)) return std::nullopt;
    return ExitCode();
  }

  // SIGKILL and reap: a crash at an arbitrary moment.
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    status_ = status;
    pid_ = -1;
  }

  int ExitCode() const {
    if (WIFEXITED(status_)) return WEXITSTATUS(status_);
    if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
    return -1;
  }

  unsigned short port() const { return port_; }
  pid_t pid() const { return pid_; }
  // CPU time (user + system) the server process has used so far, from /proc/<pid>/stat.
  double CpuSeconds() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close = stat.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream fields(stat.substr(close + 2));
    std::string f;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {  // fields 14 and 15: utime, stime (ticks)
      if (i == 14) utime = std::stod(f);
      if (i == 15) stime = std::stod(f);
    }
    return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  HttpClient client() const { return HttpClient(port_); }
  std::string log() const {
    std::ifstream in(log_file_);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

 private:
  pid_t Spawn() {
    std::vector<std::string> args = {LAB_SERVER_BINARY,
                                     "--listen",
                                     options_.listen,
                                     "--port-file",
                                     port_file_,
                                     "--data-dir",
                                     options_.data_dir,
                                     "--web-root",
                                     std::string(LAB_SOURCE_DIR) + "/web",
                                     "--migrations",
                                     std::string(LAB_SOURCE_DIR) + "/migrations"};
    if (options_.rate_limit_off) {
      args.push_back("--rate-limit");
      args.push_back("0");
    }
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    std::map<std::string, std::string> env_map;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      auto eq = kv.find('=');
      if (eq == std::string::npos) continue;
      std::string name = kv.substr(0, eq);
      if (name.rfind("LAB_", 0) == 0) continue;  // only what the test says
      env_map[name] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : DeadStackEnv()) env_map[k] = v;
    for (const auto& [k, v] : options_.env) env_map[k] = v;
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : env_map) env_strings.push_back(k + "=" + v);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    int log_fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_t pid = ::fork();
    if (pid == 0) {
      if (options_.max_open_files > 0) {
        rlimit limit{static_cast<rlim_t>(options_.max_open_files),
                     static_cast<rlim_t>(options_.max_open_files)};
        ::setrlimit(RLIMIT_NOFILE, &limit);
      }
      if (log_fd >= 0) {
        ::dup2(log_fd, 1);
        ::dup2(log_fd, 2);
      }
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    if (log_fd >= 0) ::close(log_fd);
    return pid;
  }

  ServerOptions options_;
  std::string port_file_;
  std::string log_file_;
  int starts_ = 0;
  pid_t pid_ = -1;
  int status_ = 0;
  unsigned short port_ = 0;
};

}  // namespace lab::e2e
