// What a runner host process (runners/runner_host_main.cc) and the server say to each other.
// The server writes a job (JSON file); the host answers on stdout with one line per event,
// each "@lab " + a JSON object, so that anything else on the stream (a client library's log,
// an assertion message) is told apart and kept as the process's own output.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/ports.h"
#include "runners/stack_config.h"

namespace lab::runners::wire {

inline constexpr std::string_view kPrefix = "@lab ";

struct Job {
  enum class Op { kRunMode, kCleanup };
  Op op = Op::kRunMode;
  std::string experiment;
  std::string mode;  // kRunMode only
  std::string run_id;
  std::string ns;
  domain::ParamMap params;
  bool keep_artifacts = false;
  int repetition = 0;
  std::vector<domain::Artifact> artifacts;  // kCleanup: what the run created
  StackConfig stack;                        // without the MySQL password
};

nlohmann::json JobToJson(const Job& job);
domain::Result<Job> JobFromJson(const nlohmann::json& j);

// One line each (with the prefix, without the newline).
std::string StepLine(std::string_view message);
std::string ProgressLine(double percent);
std::string CreatedLine(std::string_view mode, const domain::Artifact& artifact);
std::string GaugeLine(std::string_view name, const std::map<std::string, std::string>& labels,
                      double value);
std::string CountLine(std::string_view name, const std::map<std::string, std::string>& labels,
                      double increment);
std::string ResultLine(const domain::ModeResult& result);
std::string ErrorLine(std::string_view message);  // the runner threw
std::string DoneLine();                           // cleanup finished

// A line of the host's output: nullopt when it is not one of ours (a library's log line).
// The object's "t" says which: step, progress, created, gauge, count, result, error, done.
std::optional<nlohmann::json> ParseLine(std::string_view line);
domain::ModeResult ResultFromJson(const nlohmann::json& j);

}  // namespace lab::runners::wire
