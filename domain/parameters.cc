#include "domain/parameters.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace lab::domain {
namespace {

std::string FormatBound(double value) {
  std::ostringstream out;
  if (std::floor(value) == value && std::fabs(value) < 1e15) {
    out << static_cast<std::int64_t>(value);
  } else {
    out << value;
  }
  return out.str();
}

std::string DescribeRaw(const RawValue& raw) {
  if (std::holds_alternative<RawNull>(raw)) return "null";
  if (std::holds_alternative<bool>(raw)) return "a boolean";
  if (std::holds_alternative<std::int64_t>(raw)) return "an integer";
  if (std::holds_alternative<double>(raw)) return "a number";
  if (std::holds_alternative<std::string>(raw)) return "a string";
  return "an " + std::get<RawUnsupported>(raw).kind;
}

std::optional<std::string> CheckBounds(const ParameterSpec& spec, double value) {
  if ((spec.min && value < *spec.min) || (spec.max && value > *spec.max)) {
    std::string range = "[" + (spec.min ? FormatBound(*spec.min) : std::string("-inf")) + ", " +
                        (spec.max ? FormatBound(*spec.max) : std::string("inf")) + "]";
    return "must be within " + range + (spec.unit.empty() ? "" : " " + spec.unit) + ", got " +
           FormatBound(value);
  }
  return std::nullopt;
}

// Converts one raw value; returns the message of what is wrong, or the value.
std::variant<ParamValue, std::string> Convert(const ParameterSpec& spec, const RawValue& raw) {
  switch (spec.type) {
    case ParamType::kInteger: {
      std::int64_t value = 0;
      if (const auto* i = std::get_if<std::int64_t>(&raw)) {
        value = *i;
      } else if (const auto* d = std::get_if<double>(&raw); d != nullptr && std::isfinite(*d) &&
                                                            std::floor(*d) == *d &&
                                                            std::fabs(*d) < 9e15) {
        value = static_cast<std::int64_t>(*d);
      } else {
        return "must be an integer, got " + DescribeRaw(raw);
      }
      if (auto bad = CheckBounds(spec, static_cast<double>(value))) return *bad;
      return ParamValue{value};
    }
    case ParamType::kNumber: {
      double value = 0;
      if (const auto* i = std::get_if<std::int64_t>(&raw)) {
        value = static_cast<double>(*i);
      } else if (const auto* d = std::get_if<double>(&raw); d != nullptr && std::isfinite(*d)) {
        value = *d;
      } else {
        return "must be a number, got " + DescribeRaw(raw);
      }
      if (auto bad = CheckBounds(spec, value)) return *bad;
      return ParamValue{value};
    }
    case ParamType::kBoolean:
      if (const auto* b = std::get_if<bool>(&raw)) return ParamValue{*b};
      return "must be a boolean, got " + DescribeRaw(raw);
    case ParamType::kEnum: {
      const auto* s = std::get_if<std::string>(&raw);
      if (s == nullptr) return "must be one of the listed choices, got " + DescribeRaw(raw);
      for (const auto& choice : spec.choices) {
        if (choice == *s) return ParamValue{*s};
      }
      std::string list;
      for (const auto& choice : spec.choices) list += (list.empty() ? "" : ", ") + choice;
      return "must be one of [" + list + "], got '" + *s + "'";
    }
  }
  return std::string("has an unknown type");
}

template <typename T>
const T& Get(const ParamMap& params, const std::string& name) {
  auto it = params.find(name);
  if (it == params.end() || !std::holds_alternative<T>(it->second)) {
    throw std::logic_error("parameter '" + name + "' is not declared with this type");
  }
  return std::get<T>(it->second);
}

}  // namespace

std::string_view ToString(ParamType type) {
  switch (type) {
    case ParamType::kInteger:
      return "integer";
    case ParamType::kNumber:
      return "number";
    case ParamType::kBoolean:
      return "boolean";
    case ParamType::kEnum:
      return "enum";
  }
  return "unknown";
}

Result<ParamMap> ValidateParams(const std::vector<ParameterSpec>& specs,
                                const std::map<std::string, RawValue>& given,
                                std::vector<FieldError>& errors) {
  const std::size_t errors_before = errors.size();
  ParamMap values;
  for (const auto& [name, raw] : given) {
    bool known = false;
    for (const auto& spec : specs) known = known || spec.name == name;
    if (!known) {
      std::string names;
      for (const auto& spec : specs) names += (names.empty() ? "" : ", ") + spec.name;
      errors.push_back({"params." + name, "is not a parameter of this experiment" +
                                              (names.empty() ? std::string(" (it takes none)")
                                                             : " (known: " + names + ")")});
    }
  }
  for (const auto& spec : specs) {
    auto it = given.find(spec.name);
    if (it == given.end() || std::holds_alternative<RawNull>(it->second)) {
      values[spec.name] = spec.default_value;
      continue;
    }
    auto converted = Convert(spec, it->second);
    if (auto* message = std::get_if<std::string>(&converted)) {
      errors.push_back({"params." + spec.name, *message});
    } else {
      values[spec.name] = std::get<ParamValue>(converted);
    }
  }
  if (errors.size() != errors_before) {
    return MakeError(ErrorCode::kInvalidArgument, "invalid parameters");
  }
  return values;
}

std::int64_t GetInt(const ParamMap& params, const std::string& name) {
  return Get<std::int64_t>(params, name);
}
double GetNumber(const ParamMap& params, const std::string& name) {
  return Get<double>(params, name);
}
bool GetBool(const ParamMap& params, const std::string& name) { return Get<bool>(params, name); }
std::string GetString(const ParamMap& params, const std::string& name) {
  return Get<std::string>(params, name);
}

}  // namespace lab::domain
