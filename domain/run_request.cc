#include "domain/run_request.h"

#include <algorithm>
#include <cmath>

namespace lab::domain {
namespace {

std::optional<std::int64_t> AsInteger(const RawValue& raw) {
  if (const auto* i = std::get_if<std::int64_t>(&raw)) return *i;
  if (const auto* d = std::get_if<double>(&raw);
      d != nullptr && std::isfinite(*d) && std::floor(*d) == *d && std::fabs(*d) < 9e15) {
    return static_cast<std::int64_t>(*d);
  }
  return std::nullopt;
}

std::string ModeNames(const ExperimentSpec& spec) {
  std::string names;
  for (const auto& m : spec.modes) names += (names.empty() ? "" : ", ") + m.name;
  return names;
}

}  // namespace

Result<RunRequest> ValidateRunRequest(const ExperimentSpec& spec, const RunRequestInput& input,
                                      std::vector<FieldError>& errors) {
  const std::size_t errors_before = errors.size();
  RunRequest request;
  request.timeout_seconds = spec.default_timeout_seconds;

  for (const auto& field : input.unknown_fields) {
    errors.push_back({field,
                      "is not a field of a run request (known: modes, params, note, "
                      "keep_artifacts, repeat, timeout_seconds)"});
  }

  if (input.modes_scalar) {
    errors.push_back({"modes", "must be an array of mode names"});
  } else if (input.modes) {
    if (input.modes->empty()) errors.push_back({"modes", "must name at least one mode"});
    std::vector<std::string> asked;
    for (std::size_t i = 0; i < input.modes->size(); ++i) {
      const auto* name = std::get_if<std::string>(&(*input.modes)[i]);
      std::string field = "modes[" + std::to_string(i) + "]";
      if (name == nullptr) {
        errors.push_back({field, "must be a string"});
        continue;
      }
      bool known = std::any_of(spec.modes.begin(), spec.modes.end(),
                               [&](const ModeSpec& m) { return m.name == *name; });
      if (!known) {
        errors.push_back({field, "'" + *name + "' is not a mode of " + spec.id +
                                     " (modes: " + ModeNames(spec) + ")"});
      } else if (std::find(asked.begin(), asked.end(), *name) != asked.end()) {
        errors.push_back({field, "'" + *name + "' is listed twice"});
      } else {
        asked.push_back(*name);
      }
    }
    for (const auto& m : spec.modes) {
      if (std::find(asked.begin(), asked.end(), m.name) != asked.end()) {
        request.modes.push_back(m.name);
      }
    }
  } else {
    for (const auto& m : spec.modes) request.modes.push_back(m.name);
  }

  if (input.params_scalar) {
    errors.push_back({"params", "must be an object of parameter values"});
  } else {
    auto params = ValidateParams(spec.parameters, input.params, errors);
    if (params.ok()) request.params = std::move(params).value();
  }

  if (input.note) {
    const auto* note = std::get_if<std::string>(&*input.note);
    if (note == nullptr && !std::holds_alternative<RawNull>(*input.note)) {
      errors.push_back({"note", "must be a string"});
    } else if (note != nullptr && note->size() > kMaxNoteLength) {
      errors.push_back(
          {"note", "must be at most " + std::to_string(kMaxNoteLength) + " characters"});
    } else if (note != nullptr) {
      request.note = *note;
    }
  }

  if (input.keep_artifacts) {
    if (const auto* keep = std::get_if<bool>(&*input.keep_artifacts)) {
      request.keep_artifacts = *keep;
    } else {
      errors.push_back({"keep_artifacts", "must be a boolean"});
    }
  }

  if (input.repeat) {
    auto n = AsInteger(*input.repeat);
    if (!n || *n < 1 || *n > kMaxRepeat) {
      errors.push_back(
          {"repeat", "must be an integer within [1, " + std::to_string(kMaxRepeat) + "]"});
    } else {
      request.repeat = static_cast<int>(*n);
      // The default timeout is one run's; unless the request sets its own, it covers every
      // repetition (within the bound).
      request.timeout_seconds =
          std::min(kMaxTimeoutSeconds, spec.default_timeout_seconds * request.repeat);
    }
  }

  if (input.timeout_seconds) {
    auto n = AsInteger(*input.timeout_seconds);
    if (!n || *n < kMinTimeoutSeconds || *n > kMaxTimeoutSeconds) {
      errors.push_back({"timeout_seconds", "must be an integer within [" +
                                               std::to_string(kMinTimeoutSeconds) + ", " +
                                               std::to_string(kMaxTimeoutSeconds) + "] s"});
    } else {
      request.timeout_seconds = static_cast<int>(*n);
    }
  }

  if (errors.size() != errors_before) {
    return MakeError(ErrorCode::kInvalidArgument, "the run request is invalid");
  }
  return request;
}

}  // namespace lab::domain
