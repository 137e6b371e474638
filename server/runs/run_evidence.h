// The result a run stores with its final state (API.md, GET /runs/{id} "result"): the recorded
// configuration, the stack's health before and after, each mode's evidence (the last
// repetition's as "evidence", every finished repetition with its verdict under "repetitions"),
// client-library failures kept apart, timings, the artifacts and the cleanup's state. Filled phase
// by phase by RunExecution; nothing here decides anything.
#pragma once

#include <string>
#include <vector>

#include "domain/ports.h"
#include "domain/run_request.h"
#include "domain/verdict.h"
#include "server/json_codec.h"
#include "server/store/run_store.h"

namespace lab::server {

class RunEvidence {
 public:
  RunEvidence(const domain::ExperimentRunner& runner, const domain::RunRequest& request);

  void Preflight(const std::vector<domain::PartHealth>& health);
  void Postflight(const std::vector<domain::PartHealth>& health);
  void Mode(int repetition, const std::string& mode, const domain::ModeResult& outcome,
            double seconds);
  // The repetition's modes so far become the run's "evidence"; with a decision (every mode ran)
  // the repetition is also listed with its verdict.
  void EndRepetition(int repetition, const domain::VerdictDecision* decision);
  void CleanupThrew(const std::string& error);
  void CleanupPending(std::size_t artifacts, const std::string& error);

  // The result's JSON text, with the artifacts the run recorded and its duration.
  std::string Text(const std::vector<ArtifactRecord>& artifacts, double seconds) const;

 private:
  Json result_;
  Json repetition_ = Json::object();  // the modes of the repetition in progress
  Json repetitions_ = Json::array();
  Json client_failures_ = Json::array();
  Json mode_seconds_ = Json::object();
  bool repeated_ = false;
};

// The parts `health` found unhealthy, as "part: detail; …" ("" when all are healthy).
std::string UnhealthyParts(const std::vector<domain::PartHealth>& health);

}  // namespace lab::server
