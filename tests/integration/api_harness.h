// Runs experiments the way a user does: through the HTTP API of the real server binary, started
// against the real local stack (endpoints from infra/stack.env). A run is queued with POST,
// followed with GET until it ends, and its evidence is read back into a RunOutcome.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "domain/parameters.h"
#include "tests/e2e/lab_process.h"
#include "tests/integration/harness.h"

namespace lab::testing {

// LAB_* endpoints of the local stack, as infra/stack.env states them (the environment wins).
std::map<std::string, std::string> StackEnv();

// One server process per test binary run; started on first use, killed at exit.
class ApiServer {
 public:
  static ApiServer& Get();
  e2e::HttpClient client() const { return server_->client(); }
  std::string log() const { return server_->log(); }
  bool up() const { return up_; }

 private:
  ApiServer();
  std::unique_ptr<e2e::TempDir> dir_;
  std::unique_ptr<e2e::LabServer> server_;
  bool up_ = false;
};

// The whole view of a run the API returns, and the parts a test checks.
struct ApiRun {
  std::string id;
  std::string state;
  nlohmann::json view;  // GET /runs/{id}
};

// POSTs a run (body: modes, params and anything else given in `extra`), returns its id or "".
std::string QueueRun(const std::string& experiment,
                     const std::map<std::string, domain::ParamValue>& params,
                     const std::vector<std::string>& modes = {},
                     const nlohmann::json& extra = nlohmann::json::object());

// Polls GET /runs/{id} until the run is in a terminal state or `timeout` passes.
ApiRun WaitRun(const std::string& id, std::chrono::seconds timeout);

// Polls until `done(view)` holds (bounded); returns the last view.
nlohmann::json WaitView(const std::string& id,
                        const std::function<bool(const nlohmann::json&)>& done,
                        std::chrono::seconds timeout);
// WaitView until a step containing `text` is logged or the run is no longer queued or running.
nlohmann::json WaitForStep(const std::string& id, const std::string& text,
                           std::chrono::seconds timeout);

// The run's evidence, verdict and artifacts as a RunOutcome.
RunOutcome ToOutcome(const ApiRun& run);

// Queue + wait + convert: RunExperiment's counterpart through the API.
RunOutcome RunThroughApi(const std::string& id,
                         const std::map<std::string, domain::ParamValue>& params,
                         std::vector<std::string> modes = {});

// As RunThroughApi with keep_artifacts: the run's topics, rows and keys stay for a test to
// recount; CleanupKept removes them afterwards.
RunOutcome RunKeptThroughApi(const std::string& id,
                             const std::map<std::string, domain::ParamValue>& params,
                             std::vector<std::string> modes = {});

}  // namespace lab::testing
