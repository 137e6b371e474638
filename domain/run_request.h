// Validation of a request to run an experiment (the POST body), against the catalog entry.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "domain/catalog.h"
#include "domain/parameters.h"

namespace lab::domain {

// The body as the server parsed it, still unchecked.
struct RunRequestInput {
  std::optional<RawValue> modes_scalar;  // "modes" given but not an array
  std::optional<std::vector<RawValue>> modes;
  std::optional<RawValue> params_scalar;  // "params" given but not an object
  std::map<std::string, RawValue> params;
  std::optional<RawValue> note;
  std::optional<RawValue> keep_artifacts;
  std::optional<RawValue> repeat;
  std::optional<RawValue> timeout_seconds;
  std::vector<std::string> unknown_fields;
};

struct RunRequest {
  std::vector<std::string> modes;  // in catalog order, no duplicates
  ParamMap params;                 // every declared parameter, defaults filled in
  std::string note;
  bool keep_artifacts = false;
  int repeat = 1;
  int timeout_seconds = 0;
};

inline constexpr std::size_t kMaxNoteLength = 1000;

// All problems are reported at once in `errors`; the result is an error if there was any.
Result<RunRequest> ValidateRunRequest(const ExperimentSpec& spec, const RunRequestInput& input,
                                      std::vector<FieldError>& errors);

}  // namespace lab::domain
