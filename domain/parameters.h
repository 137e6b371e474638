// Experiment parameters: declared types and bounds, and validation of what a caller sent.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "domain/result.h"

namespace lab::domain {

enum class ParamType { kInteger, kNumber, kBoolean, kEnum };

std::string_view ToString(ParamType type);

using ParamValue = std::variant<std::int64_t, double, bool, std::string>;
using ParamMap = std::map<std::string, ParamValue>;

struct ParameterSpec {
  std::string name;
  ParamType type = ParamType::kInteger;
  ParamValue default_value = std::int64_t{0};
  std::optional<double> min;  // inclusive; integers and numbers only
  std::optional<double> max;  // inclusive
  std::string unit;           // "events", "ms", "clients"…; empty when none
  std::string description;
  std::vector<std::string> choices;  // kEnum only
};

// What a caller sent for one parameter, before validation. The server maps its JSON here so
// the domain stays free of any JSON library.
struct RawNull {};
struct RawUnsupported {  // arrays and objects
  std::string kind;
};
using RawValue = std::variant<RawNull, bool, std::int64_t, double, std::string, RawUnsupported>;

struct FieldError {
  std::string field;  // JSON-pointer-like: "params.events", "modes[1]"
  std::string message;
};

// Checks every parameter against its spec; fills in defaults for the ones not given.
// Returns all field errors at once so a caller can fix everything in one go.
Result<ParamMap> ValidateParams(const std::vector<ParameterSpec>& specs,
                                const std::map<std::string, RawValue>& given,
                                std::vector<FieldError>& errors);

// Reads a validated parameter; the runner asked for a name its spec declares, so a miss is a bug.
std::int64_t GetInt(const ParamMap& params, const std::string& name);
double GetNumber(const ParamMap& params, const std::string& name);
bool GetBool(const ParamMap& params, const std::string& name);
std::string GetString(const ParamMap& params, const std::string& name);

}  // namespace lab::domain
