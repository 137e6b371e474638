// Translation between the domain's types and the API's JSON (nlohmann).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "domain/audit.h"
#include "domain/catalog.h"
#include "domain/run_request.h"
#include "server/store/run_store.h"

namespace lab::server {

using Json = nlohmann::json;

domain::RawValue ToRawValue(const Json& value);
Json ToJson(const domain::ParamValue& value);
Json ToJson(const domain::ParamMap& params);
// Reads params stored by RequestToJson back with the types their specs declare.
domain::ParamMap ParamsFromJson(const std::vector<domain::ParameterSpec>& specs, const Json& json);

// Maps a parsed POST body to the domain's unchecked input.
domain::RunRequestInput RunRequestInputFromJson(const Json& body);
Json RequestToJson(const domain::RunRequest& request);
domain::RunRequest RequestFromJson(const domain::ExperimentSpec& spec, const Json& json);

Json ExperimentToJson(const domain::ExperimentSpec& spec, bool available);

// The run resource. `steps` is included when non-null.
Json RunToJson(const RunRecord& run, const std::vector<StepRecord>* steps);

// A run's artifacts grouped by mode: {"mode": [{"kind", "name"}, ...]}.
Json ArtifactsByMode(const std::vector<ArtifactRecord>& records);

Json AuditToJson(const domain::AuditEntry& entry);

// A run's cleanup as the run resource shows it (state, what is left, attempts, last error).
Json CleanupToJson(const CleanupRecord& cleanup);

}  // namespace lab::server
