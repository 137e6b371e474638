// lab-runner-host --job FILE: runs one mode of an experiment, or one run's cleanup, for the
// server (runners/isolated_runner.h), and reports on stdout in the wire format of
// runners/runner_wire.h. SIGTERM asks the runner to stop (it undoes its faults and reports);
// so does the server's death (PR_SET_PDEATHSIG), so an orphaned host never keeps faults on.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stop_token>
#include <thread>

#include "runners/common/process.h"
#include "runners/pipeline_sampler.h"
#include "runners/runner_factory.h"
#include "runners/runner_wire.h"

namespace {

using namespace lab;
namespace wire = lab::runners::wire;

std::atomic<bool> g_term{false};
extern "C" void OnTerm(int) { g_term.store(true); }

// Each event is one line, flushed at once: the server reads the stream while the mode runs.
class WireReporter final : public domain::RunReporter {
 public:
  void Step(std::string_view message) override { Emit(wire::StepLine(message)); }
  void Progress(double percent) override { Emit(wire::ProgressLine(percent)); }
  void Created(std::string_view mode, const domain::Artifact& artifact) override {
    Emit(wire::CreatedLine(mode, artifact));
  }
  void Gauge(std::string_view name, const std::map<std::string, std::string>& labels,
             double value) override {
    Emit(wire::GaugeLine(name, labels, value));
  }
  void Count(std::string_view name, const std::map<std::string, std::string>& labels,
             double increment) override {
    Emit(wire::CountLine(name, labels, increment));
  }
  void Emit(const std::string& line) {
    std::lock_guard lock(mu_);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

 private:
  std::mutex mu_;
};

// What the runner reports goes out on the wire; what it creates is also watched by the sampler.
class SamplingReporter final : public domain::RunReporter {
 public:
  SamplingReporter(WireReporter& out, runners::PipelineSampler& sampler)
      : out_(out), sampler_(sampler) {}
  void Step(std::string_view message) override { out_.Step(message); }
  void Progress(double percent) override { out_.Progress(percent); }
  void Created(std::string_view mode, const domain::Artifact& artifact) override {
    out_.Created(mode, artifact);
    sampler_.Track(artifact);
  }
  void Gauge(std::string_view name, const std::map<std::string, std::string>& labels,
             double value) override {
    out_.Gauge(name, labels, value);
  }
  void Count(std::string_view name, const std::map<std::string, std::string>& labels,
             double increment) override {
    out_.Count(name, labels, increment);
  }

 private:
  WireReporter& out_;
  runners::PipelineSampler& sampler_;
};

// How often the pipeline's signals are sampled while a mode runs (Prometheus scrapes every 5 s).
constexpr std::chrono::milliseconds kSamplePeriod{1000};

int Usage(const char* why) {
  std::fprintf(stderr, "lab-runner-host: %s\nusage: lab-runner-host --job FILE\n", why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const bool parent_alive = runners::DieWithParent(SIGTERM);
  struct sigaction sa {};
  sa.sa_handler = OnTerm;
  ::sigaction(SIGTERM, &sa, nullptr);
  if (!parent_alive) g_term.store(true);  // the server died before this process could ask

  if (argc != 3 || std::string(argv[1]) != "--job") return Usage("needs --job FILE");
  std::ifstream in(argv[2]);
  if (!in) return Usage("cannot read the job file");
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = nlohmann::json::parse(text.str(), nullptr, false);
  auto job = wire::JobFromJson(parsed);
  if (!job) return Usage(("invalid job: " + job.error().message).c_str());
  runners::StackConfig config = job->stack;
  // Start-up, before the runner's threads.
  if (const char* pw = std::getenv("LAB_MYSQL_PASSWORD")) {  // NOLINT(concurrency-mt-unsafe)
    config.mysql_password = pw;
  }

  auto all = runners::MakeRunners(config);
  domain::ExperimentRunner* runner = nullptr;
  for (auto& r : all) {
    if (r->ExperimentId() == job->experiment) runner = r.get();
  }
  WireReporter reporter;
  if (runner == nullptr) {
    reporter.Emit(wire::ErrorLine("this build has no runner for " + job->experiment));
    return 1;
  }

  std::stop_source stop;
  std::jthread watch([&stop](std::stop_token done) {
    while (!done.stop_requested()) {
      if (g_term.load()) {
        stop.request_stop();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });

  domain::RunContext ctx;
  ctx.run_id = job->run_id;
  ctx.ns = job->ns;
  ctx.params = job->params;
  ctx.keep_artifacts = job->keep_artifacts;
  ctx.repetition = job->repetition;
  ctx.reporter = &reporter;
  try {
    if (job->op == wire::Job::Op::kRunMode) {
      ctx.stop = stop.get_token();
      domain::ModeResult result;
      {
        runners::PipelineSampler sampler(config, reporter, kSamplePeriod);
        SamplingReporter sampling(reporter, sampler);
        ctx.reporter = &sampling;
        result = runner->RunMode(ctx, job->mode);
        ctx.reporter = &reporter;
      }  // the sampler has stopped: the result is the mode's last line
      reporter.Emit(wire::ResultLine(result));
    } else {
      // Cleanup is not cut short by a stop: what it leaves behind, nobody removes.
      runner->Cleanup(ctx, job->artifacts);
      reporter.Emit(wire::DoneLine());
    }
  } catch (const std::exception& e) {
    reporter.Emit(wire::ErrorLine(e.what()));
    return 1;
  }
  return 0;
}
