// The one wire format of the lab's child processes. The server writes a runner host
// (runners/runner_host_main.cc) a job (JSON file); the host, and the service roles it starts
// (lab-role, runners/roles/), answer with one line per event: "@lab " + a JSON object on one
// line (keys in name order), whose "t" says what it is. Anything else on the stream (a client
// library's log, an assertion message) is told apart by the prefix and kept as the process's own
// output. For example:
//   host:  @lab {"m":"failure: started consumer-service (c1, pid 4711)","t":"step"}
//          (and progress, created, gauge, count, result, error, done: the writers below)
//   role:  @lab {"key":"consumed","t":"value","value":"120"}
//            one reported value (roles::Emit); always a string, numbers as their decimal text
//          @lab {"action":"SIGKILL","count":1,"point":"after-read-before-ack","t":"failpoint"}
//            the armed failpoint fired; flushed, then the role SIGKILLs itself
//          @lab {"m":"mysql: connection refused","t":"error"}
//            the role's fatal error (on stderr, which shares the log with stdout)
// The runner reads a role's lines as key/value pairs with ParseRoleOutput
// (runners/experiments/experiment_base.h), through ParseLine below: the one parser of both.
#pragma once

#include <cstdint>
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
std::string ErrorLine(std::string_view message);  // the runner (or a role) failed for good
std::string DoneLine();                           // cleanup finished
// A role's lines.
std::string ValueLine(std::string_view key, std::string_view value);
std::string FailpointLine(std::string_view point, std::int64_t count);  // action SIGKILL

// A line of a child's output: nullopt when it is not one of ours (a library's log line, a line
// cut off mid-write, a "@lab " line that is not a JSON object with a string "t").
// The object's "t" says which: step, progress, created, gauge, count, result, error, done
// (host); value, failpoint, error (role).
std::optional<nlohmann::json> ParseLine(std::string_view line);
domain::ModeResult ResultFromJson(const nlohmann::json& j);

}  // namespace lab::runners::wire
