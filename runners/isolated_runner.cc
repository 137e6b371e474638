#include "runners/isolated_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "runners/common/process.h"
#include "runners/common/util.h"
#include "runners/runner_wire.h"

namespace lab::runners {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr std::size_t kTailLines = 12;

// Reads what the host has written so far and hands over each complete line.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~LineReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  template <typename Fn>
  void Drain(Fn&& on_line) {
    if (fd_ < 0) return;
    char buf[16384];
    while (true) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      pending_.append(buf, static_cast<std::size_t>(n));
    }
    std::size_t start = 0;
    for (std::size_t nl = pending_.find('\n'); nl != std::string::npos;
         nl = pending_.find('\n', start)) {
      on_line(std::string_view(pending_).substr(start, nl - start));
      start = nl + 1;
    }
    pending_.erase(0, start);
  }
  // A last line without its newline (the process died mid-line).
  std::string Rest() const { return pending_; }

 private:
  int fd_;
  std::string pending_;
};

std::string TempPath(const std::string& stem, const std::string& ext) {
  static std::atomic<int> counter{0};
  return (std::filesystem::temp_directory_path() /
          (stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ext))
      .string();
}

}  // namespace

struct IsolatedRunner::Outcome {
  std::optional<ExitStatus> status;
  std::optional<Json> result;        // the "result" line
  std::optional<std::string> error;  // the "error" line: the runner threw
  bool done = false;                 // the "done" line
  bool stop_sent = false;
  std::deque<std::string> tail;  // the host's own last lines (not ours)
  std::string log_path;
  std::string spawn_error;

  // Why the host ended without answering, in words.
  std::string Death() const {
    std::string why = "the runner process ";
    why += status ? "ended (" + status->Describe() + ")" : "did not end";
    why += " without reporting a result";
    if (!tail.empty()) why += "; its last output: " + tail.back();
    return why;
  }
  bool ClientLibraryAbort() const {
    for (const auto& line : tail) {
      if (line.find("rdkafka") != std::string::npos || line.find("hiredis") != std::string::npos ||
          line.find("mysql") != std::string::npos) {
        return true;
      }
    }
    return false;
  }
};

IsolatedRunner::IsolatedRunner(std::unique_ptr<domain::ExperimentRunner> inner, StackConfig config,
                               std::vector<std::string> host_argv)
    : inner_(std::move(inner)), config_(std::move(config)), host_argv_(std::move(host_argv)) {}

IsolatedRunner::Outcome IsolatedRunner::Execute(const domain::RunContext& ctx,
                                                const std::string& label,
                                                const std::string& job_json) {
  Outcome out;
  const std::string stem = "lab-run-" + SafeName(ctx.ns) + "-" + label;
  const std::string job_path = TempPath(stem, ".job.json");
  out.log_path = TempPath(stem, ".log");
  {
    std::ofstream(job_path) << job_json;
    std::ofstream(out.log_path, std::ios::trunc);  // exists before the host appends to it
  }
  std::vector<std::string> argv = host_argv_;
  argv.push_back("--job");
  argv.push_back(job_path);
  auto child =
      ChildProcess::Spawn(argv, out.log_path, {{"LAB_MYSQL_PASSWORD", config_.mysql_password}});
  if (!child) {
    out.spawn_error = child.error().message;
    std::remove(job_path.c_str());
    return out;
  }
  LineReader reader(out.log_path);
  auto keep = [&](std::string_view line) {
    out.tail.emplace_back(line);
    if (out.tail.size() > kTailLines) out.tail.pop_front();
  };
  auto dispatch = [&](const Json& m) {
    const std::string t = m["t"].get<std::string>();
    domain::RunReporter* r = ctx.reporter;
    if (t == "result") {
      out.result = m;
    } else if (t == "error") {
      out.error = m.value("m", std::string());
    } else if (t == "done") {
      out.done = true;
    } else if (r == nullptr) {
      return;
    } else if (t == "step") {
      r->Step(m.value("m", std::string()));
    } else if (t == "progress") {
      r->Progress(m.value("p", 0.0));
    } else if (t == "created") {
      const Json& a = m.at("artifact");
      r->Created(m.value("mode", std::string()),
                 {a.value("kind", std::string()), a.value("name", std::string())});
    } else if (t == "gauge" || t == "count") {
      auto labels = m.value("labels", std::map<std::string, std::string>{});
      if (t == "gauge") {
        r->Gauge(m.value("name", std::string()), labels, m.value("v", 0.0));
      } else {
        r->Count(m.value("name", std::string()), labels, m.value("v", 0.0));
      }
    }
  };
  auto on_line = [&](std::string_view line) {
    auto msg = wire::ParseLine(line);
    if (!msg) return keep(line);
    try {
      dispatch(*msg);
    } catch (const nlohmann::json::exception&) {
      keep(line);  // ours in form, not in content: kept as output, never fatal to the server
    }
  };
  std::stop_source never;
  std::chrono::steady_clock::time_point stop_at{};
  while (!out.status) {
    out.status = child->Wait(50ms, never.get_token());
    reader.Drain(on_line);
    if (out.status) break;
    if (ctx.stop.stop_requested() && !out.stop_sent) {
      // The host stops like an in-process runner would: its stop token fires, it undoes its
      // faults and reports what it saw.
      out.stop_sent = child->Signal(SIGTERM);
      stop_at = std::chrono::steady_clock::now();
    }
    if (out.stop_sent && std::chrono::steady_clock::now() - stop_at > kStopGrace) {
      child->Kill();
      out.status = child->Wait(0ms, never.get_token());
    }
  }
  reader.Drain(on_line);
  if (auto rest = reader.Rest(); !rest.empty()) on_line(rest);
  std::remove(job_path.c_str());
  const bool answered = out.result || out.error || out.done;
  if (answered) std::remove(out.log_path.c_str());  // kept for a post-mortem otherwise
  return out;
}

wire::Job IsolatedRunner::JobFor(const domain::RunContext& ctx, wire::Job::Op op) const {
  wire::Job job;
  job.op = op;
  job.experiment = std::string(ExperimentId());
  job.run_id = ctx.run_id;
  job.ns = ctx.ns;
  job.params = ctx.params;
  job.keep_artifacts = ctx.keep_artifacts;
  job.repetition = ctx.repetition;
  job.stack = config_;
  return job;
}

domain::ModeResult IsolatedRunner::RunMode(const domain::RunContext& ctx, const std::string& mode) {
  wire::Job job = JobFor(ctx, wire::Job::Op::kRunMode);
  job.mode = mode;
  Outcome out = Execute(ctx, mode, wire::JobToJson(job).dump());
  if (!out.spawn_error.empty()) {
    domain::ModeResult r;
    r.inconclusive = "cannot start the runner process: " + out.spawn_error;
    return r;
  }
  if (out.error) throw std::runtime_error(*out.error);
  if (out.result) return wire::ResultFromJson(*out.result);
  domain::ModeResult r;
  // Stopped before it could answer (e.g. SIGTERM before its handler was installed, or killed
  // after the grace): still a cancel, with the process's end in the details.
  r.inconclusive = out.stop_sent ? "cancelled" : out.Death();
  if (out.ClientLibraryAbort()) {
    r.client_library_failures.push_back(mode + ": " + out.Death());
  }
  Json details = {{"runner_process",
                   {{"status", out.status ? out.status->Describe() : "unknown"},
                    {"output_tail", std::vector<std::string>(out.tail.begin(), out.tail.end())},
                    {"log", out.log_path}}}};
  r.details_json = details.dump();
  if (ctx.reporter != nullptr) ctx.reporter->Step(out.Death());
  return r;
}

void IsolatedRunner::Cleanup(const domain::RunContext& ctx,
                             const std::vector<domain::Artifact>& created) {
  wire::Job job = JobFor(ctx, wire::Job::Op::kCleanup);
  job.artifacts = created;
  Outcome out = Execute(ctx, "cleanup", wire::JobToJson(job).dump());
  if (!out.spawn_error.empty())
    throw std::runtime_error("cannot start the runner process: " + out.spawn_error);
  if (out.error) throw std::runtime_error(*out.error);
  if (!out.done) throw std::runtime_error("cleanup: " + out.Death());
}

std::vector<std::unique_ptr<domain::ExperimentRunner>> IsolateRunners(
    std::vector<std::unique_ptr<domain::ExperimentRunner>> runners, const StackConfig& config) {
  std::string host = FindRepoPath(config.runner_host_binary).value_or(config.runner_host_binary);
  std::vector<std::unique_ptr<domain::ExperimentRunner>> out;
  for (auto& r : runners) {
    out.push_back(
        std::make_unique<IsolatedRunner>(std::move(r), config, std::vector<std::string>{host}));
  }
  return out;
}

}  // namespace lab::runners
