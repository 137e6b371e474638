// An experiment runner whose modes and cleanup execute in a child process (lab-runner-host),
// one per call. A run drives librdkafka, libmysqlclient and hiredis through real faults, and
// librdkafka 2.0.2 can abort the process under them (seen: "rd_kafka_enq_once_del_source_return:
// Assertion `eonce->refcnt > 0' failed" from a coordinator-bound admin request while a fresh
// cluster's group coordinator was loading). In a child, such an abort ends that mode as
// inconclusive, with the signal and the library's last words; the server and its queue go on.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "domain/ports.h"
#include "runners/runner_wire.h"
#include "runners/stack_config.h"

namespace lab::runners {

class IsolatedRunner final : public domain::ExperimentRunner {
 public:
  // `inner` answers what needs no stack (id, configuration); `host_argv` starts the host
  // (the job file's path is appended after "--job").
  IsolatedRunner(std::unique_ptr<domain::ExperimentRunner> inner, StackConfig config,
                 std::vector<std::string> host_argv);

  std::string_view ExperimentId() const override { return inner_->ExperimentId(); }
  std::string ConfigurationJson() const override { return inner_->ConfigurationJson(); }
  // Throws what the runner threw in the host (as an in-process runner would).
  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override;
  void Cleanup(const domain::RunContext& ctx,
               const std::vector<domain::Artifact>& created) override;

  // After a stop, how long the host may take to undo its faults and report before SIGKILL.
  static constexpr std::chrono::seconds kStopGrace{300};

 private:
  struct Outcome;
  wire::Job JobFor(const domain::RunContext& ctx, wire::Job::Op op) const;
  Outcome Execute(const domain::RunContext& ctx, const std::string& label,
                  const std::string& job_json);

  std::unique_ptr<domain::ExperimentRunner> inner_;
  StackConfig config_;
  std::vector<std::string> host_argv_;
};

// Wraps each runner in an IsolatedRunner that starts config.runner_host_binary.
std::vector<std::unique_ptr<domain::ExperimentRunner>> IsolateRunners(
    std::vector<std::unique_ptr<domain::ExperimentRunner>> runners, const StackConfig& config);

}  // namespace lab::runners
