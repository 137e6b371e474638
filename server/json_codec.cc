#include "server/json_codec.h"

namespace lab::server {

domain::RawValue ToRawValue(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return domain::RawNull{};
    case Json::value_t::boolean:
      return v.get<bool>();
    case Json::value_t::number_integer:
      return v.get<std::int64_t>();
    case Json::value_t::number_unsigned: {
      auto u = v.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(INT64_MAX)) return static_cast<double>(u);
      return static_cast<std::int64_t>(u);
    }
    case Json::value_t::number_float:
      return v.get<double>();
    case Json::value_t::string:
      return v.get<std::string>();
    case Json::value_t::array:
      return domain::RawUnsupported{"array"};
    default:
      return domain::RawUnsupported{"object"};
  }
}

Json ToJson(const domain::ParamValue& value) {
  return std::visit([](const auto& v) { return Json(v); }, value);
}

Json ToJson(const domain::ParamMap& params) {
  Json out = Json::object();
  for (const auto& [name, value] : params) out[name] = ToJson(value);
  return out;
}

domain::ParamMap ParamsFromJson(const std::vector<domain::ParameterSpec>& specs, const Json& json) {
  domain::ParamMap params;
  for (const auto& spec : specs) {
    auto it = json.find(spec.name);
    if (it == json.end()) {
      params[spec.name] = spec.default_value;
      continue;
    }
    switch (spec.type) {
      case domain::ParamType::kInteger:
        params[spec.name] = it->get<std::int64_t>();
        break;
      case domain::ParamType::kNumber:
        params[spec.name] = it->get<double>();
        break;
      case domain::ParamType::kBoolean:
        params[spec.name] = it->get<bool>();
        break;
      case domain::ParamType::kEnum:
        params[spec.name] = it->get<std::string>();
        break;
    }
  }
  return params;
}

domain::RunRequestInput RunRequestInputFromJson(const Json& body) {
  domain::RunRequestInput in;
  for (const auto& [key, value] : body.items()) {
    if (key == "modes") {
      if (value.is_array()) {
        std::vector<domain::RawValue> modes;
        for (const auto& m : value) modes.push_back(ToRawValue(m));
        in.modes = std::move(modes);
      } else if (!value.is_null()) {
        in.modes_scalar = ToRawValue(value);
      }
    } else if (key == "params") {
      if (value.is_object()) {
        for (const auto& [name, raw] : value.items()) in.params[name] = ToRawValue(raw);
      } else if (!value.is_null()) {
        in.params_scalar = ToRawValue(value);
      }
    } else if (key == "note") {
      in.note = ToRawValue(value);
    } else if (key == "keep_artifacts") {
      in.keep_artifacts = ToRawValue(value);
    } else if (key == "repeat") {
      in.repeat = ToRawValue(value);
    } else if (key == "timeout_seconds") {
      in.timeout_seconds = ToRawValue(value);
    } else {
      in.unknown_fields.push_back(key);
    }
  }
  return in;
}

Json RequestToJson(const domain::RunRequest& r) {
  return Json{{"modes", r.modes},   {"params", ToJson(r.params)},
              {"note", r.note},     {"keep_artifacts", r.keep_artifacts},
              {"repeat", r.repeat}, {"timeout_seconds", r.timeout_seconds}};
}

domain::RunRequest RequestFromJson(const domain::ExperimentSpec& spec, const Json& j) {
  domain::RunRequest r;
  r.modes = j.value("modes", std::vector<std::string>{});
  r.params = ParamsFromJson(spec.parameters, j.value("params", Json::object()));
  r.note = j.value("note", std::string());
  r.keep_artifacts = j.value("keep_artifacts", false);
  r.repeat = j.value("repeat", 1);
  r.timeout_seconds = j.value("timeout_seconds", spec.default_timeout_seconds);
  return r;
}

Json ExperimentToJson(const domain::ExperimentSpec& spec, bool available) {
  Json modes = Json::array();
  for (const auto& m : spec.modes)
    modes.push_back({{"name", m.name}, {"description", m.description}});
  Json params = Json::array();
  for (const auto& p : spec.parameters) {
    Json j = {{"name", p.name},
              {"type", std::string(domain::ToString(p.type))},
              {"default", ToJson(p.default_value)},
              {"min", p.min ? Json(*p.min) : Json()},
              {"max", p.max ? Json(*p.max) : Json()},
              {"unit", p.unit},
              {"description", p.description}};
    if (p.type == domain::ParamType::kEnum) j["choices"] = p.choices;
    params.push_back(std::move(j));
  }
  Json criteria = Json::array();
  for (const auto& c : spec.criteria) criteria.push_back(domain::Describe(c));
  return Json{{"id", spec.id},
              {"title", spec.title},
              {"category", spec.category},
              {"claim", spec.claim},
              {"how", spec.how},
              {"reading", spec.reading},
              {"modes", modes},
              {"parameters", params},
              {"requires", spec.requires_parts},
              {"exclusive", spec.exclusive},
              {"criteria", criteria},
              {"default_timeout_seconds", spec.default_timeout_seconds},
              {"available", available}};
}

Json RunToJson(const RunRecord& run, const std::vector<StepRecord>* steps) {
  Json request = Json::parse(run.request_json, nullptr, false);
  if (request.is_discarded()) request = Json::object();
  Json result = Json::parse(run.result_json, nullptr, false);
  if (result.is_discarded() || !result.is_object()) result = Json::object();
  auto opt = [](const std::optional<std::string>& s) { return s ? Json(*s) : Json(); };
  Json duration;
  if (run.started_at && run.finished_at) {
    auto a = result.find("duration_seconds");
    if (a != result.end()) duration = *a;
  }
  Json j = {
      {"id", run.id},
      {"experiment", run.experiment},
      {"state", std::string(domain::ToString(run.state))},
      {"verdict", run.verdict ? Json(std::string(domain::ToString(*run.verdict))) : Json()},
      {"verdict_reason", run.verdict_reason},
      {"modes", request.value("modes", Json::array())},
      {"params", request.value("params", Json::object())},
      {"note", request.value("note", "")},
      {"keep_artifacts", request.value("keep_artifacts", false)},
      {"repeat", request.value("repeat", 1)},
      {"timeout_seconds", request.value("timeout_seconds", 0)},
      {"actor", run.actor},
      {"created_at", run.created_at},
      {"started_at", opt(run.started_at)},
      {"finished_at", opt(run.finished_at)},
      {"duration_seconds", duration},
      {"progress", {{"percent", run.progress}, {"step", run.progress_step}}},
      {"evidence", result.value("evidence", Json::object())},
      {"artifacts", result.value("artifacts", Json::object())},
      {"stack", result.value("stack", Json::object())},
      {"postflight", result.value("postflight", Json::object())},
      {"configuration", result.value("configuration", Json::object())},
      {"client_library_failures", result.value("client_library_failures", Json::array())},
      {"error", opt(run.error)},
      {"links",
       {{"self", "/runs/" + run.id},
        {"events", "/runs/" + run.id + "/events"},
        {"report", "/runs/" + run.id + "/report"}}},
  };
  if (result.contains("repetitions")) j["repetitions"] = result["repetitions"];
  if (result.contains("mode_seconds")) j["mode_seconds"] = result["mode_seconds"];
  if (steps != nullptr) {
    Json s = Json::array();
    for (const auto& step : *steps)
      s.push_back({{"seq", step.seq}, {"at", step.at}, {"message", step.message}});
    j["steps"] = std::move(s);
  }
  return j;
}

Json ArtifactsByMode(const std::vector<ArtifactRecord>& records) {
  Json out = Json::object();
  for (const auto& r : records) {
    out[r.mode].push_back({{"kind", r.artifact.kind}, {"name", r.artifact.name}});
  }
  return out;
}

Json AuditToJson(const domain::AuditEntry& e) {
  auto maybe_json = [](const std::string& text) {
    if (text.empty()) return Json();
    Json parsed = Json::parse(text, nullptr, false);
    return parsed.is_discarded() ? Json(text) : parsed;
  };
  return Json{{"seq", e.seq},
              {"time", e.time},
              {"actor", e.actor},
              {"action", e.action},
              {"target", e.target},
              {"request_id", e.request_id},
              {"before", maybe_json(e.before)},
              {"after", maybe_json(e.after)},
              {"prev_hash", e.prev_hash},
              {"hash", e.hash}};
}

Json CleanupToJson(const CleanupRecord& cleanup) {
  Json left = Json::array();
  for (const auto& a : cleanup.artifacts) left.push_back({{"kind", a.kind}, {"name", a.name}});
  return {{"state", cleanup.state},
          {"reason", cleanup.reason},
          {"artifacts_left", left},
          {"attempts", cleanup.attempts},
          {"last_error", cleanup.last_error ? Json(*cleanup.last_error) : Json()},
          {"next_attempt_at",
           cleanup.state == CleanupRecord::kPending ? Json(cleanup.next_attempt_at) : Json()},
          {"created_at", cleanup.created_at},
          {"updated_at", cleanup.updated_at}};
}

}  // namespace lab::server
