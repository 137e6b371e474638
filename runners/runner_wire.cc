#include "runners/runner_wire.h"

#include <variant>

namespace lab::runners::wire {
namespace {

using Json = nlohmann::json;

// Bytes that are not UTF-8 (a library's message) are replaced, never an exception.
std::string Line(const Json& j) {
  return std::string(kPrefix) + j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json ParamsToJson(const domain::ParamMap& params) {
  Json out = Json::object();
  for (const auto& [name, value] : params) {
    std::visit([&, &n = name](const auto& v) { out[n] = v; }, value);
  }
  return out;
}

domain::ParamMap ParamsFromJson(const Json& j) {
  domain::ParamMap out;
  for (const auto& [name, v] : j.items()) {
    if (v.is_boolean()) {
      out[name] = v.get<bool>();
    } else if (v.is_number_integer()) {
      out[name] = v.get<std::int64_t>();
    } else if (v.is_number()) {
      out[name] = v.get<double>();
    } else if (v.is_string()) {
      out[name] = v.get<std::string>();
    }
  }
  return out;
}

Json ArtifactToJson(const domain::Artifact& a) { return {{"kind", a.kind}, {"name", a.name}}; }

domain::Artifact ArtifactFromJson(const Json& j) {
  return {j.value("kind", std::string()), j.value("name", std::string())};
}

}  // namespace

Json JobToJson(const Job& job) {
  Json artifacts = Json::array();
  for (const auto& a : job.artifacts) artifacts.push_back(ArtifactToJson(a));
  return {{"op", job.op == Job::Op::kRunMode ? "run_mode" : "cleanup"},
          {"experiment", job.experiment},
          {"mode", job.mode},
          {"run_id", job.run_id},
          {"ns", job.ns},
          {"params", ParamsToJson(job.params)},
          {"keep_artifacts", job.keep_artifacts},
          {"repetition", job.repetition},
          {"artifacts", artifacts},
          {"stack", StackConfigToJson(job.stack)}};
}

domain::Result<Job> JobFromJson(const Json& j) {
  if (!j.is_object())
    return domain::MakeError(domain::ErrorCode::kInvalidArgument, "not an object");
  Job job;
  const std::string op = j.value("op", std::string());
  if (op == "run_mode") {
    job.op = Job::Op::kRunMode;
  } else if (op == "cleanup") {
    job.op = Job::Op::kCleanup;
  } else {
    return domain::MakeError(domain::ErrorCode::kInvalidArgument, "unknown op '" + op + "'");
  }
  job.experiment = j.value("experiment", std::string());
  job.mode = j.value("mode", std::string());
  job.run_id = j.value("run_id", std::string());
  job.ns = j.value("ns", std::string());
  if (j.contains("params")) job.params = ParamsFromJson(j["params"]);
  job.keep_artifacts = j.value("keep_artifacts", false);
  job.repetition = j.value("repetition", 0);
  for (const auto& a : j.value("artifacts", Json::array())) {
    job.artifacts.push_back(ArtifactFromJson(a));
  }
  if (j.contains("stack")) ApplyStackConfigJson(j["stack"], job.stack);
  if (job.experiment.empty() || job.ns.empty() ||
      (job.op == Job::Op::kRunMode && job.mode.empty())) {
    return domain::MakeError(domain::ErrorCode::kInvalidArgument,
                             "the job needs experiment, ns and (to run a mode) mode");
  }
  return job;
}

std::string StepLine(std::string_view message) { return Line({{"t", "step"}, {"m", message}}); }

std::string ProgressLine(double percent) { return Line({{"t", "progress"}, {"p", percent}}); }

std::string CreatedLine(std::string_view mode, const domain::Artifact& artifact) {
  return Line({{"t", "created"}, {"mode", mode}, {"artifact", ArtifactToJson(artifact)}});
}

std::string GaugeLine(std::string_view name, const std::map<std::string, std::string>& labels,
                      double value) {
  return Line({{"t", "gauge"}, {"name", name}, {"labels", labels}, {"v", value}});
}

std::string CountLine(std::string_view name, const std::map<std::string, std::string>& labels,
                      double increment) {
  return Line({{"t", "count"}, {"name", name}, {"labels", labels}, {"v", increment}});
}

std::string ResultLine(const domain::ModeResult& r) {
  Json artifacts = Json::array();
  for (const auto& a : r.artifacts) artifacts.push_back(ArtifactToJson(a));
  return Line({{"t", "result"},
               {"metrics", r.metrics},
               {"details", r.details_json},
               {"artifacts", artifacts},
               {"inconclusive", r.inconclusive ? Json(*r.inconclusive) : Json()},
               {"client_library_failures", r.client_library_failures}});
}

std::string ErrorLine(std::string_view message) { return Line({{"t", "error"}, {"m", message}}); }

std::string DoneLine() { return Line({{"t", "done"}}); }

std::string ValueLine(std::string_view key, std::string_view value) {
  return Line({{"t", "value"}, {"key", key}, {"value", value}});
}

std::string FailpointLine(std::string_view point, std::int64_t count) {
  return Line({{"t", "failpoint"}, {"point", point}, {"count", count}, {"action", "SIGKILL"}});
}

std::optional<Json> ParseLine(std::string_view line) {
  if (line.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  Json j = Json::parse(line.substr(kPrefix.size()), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("t") || !j["t"].is_string()) {
    return std::nullopt;
  }
  return j;
}

domain::ModeResult ResultFromJson(const Json& j) {
  domain::ModeResult r;
  r.metrics = j.value("metrics", domain::ModeMetrics{});
  r.details_json = j.value("details", std::string("{}"));
  for (const auto& a : j.value("artifacts", Json::array())) {
    r.artifacts.push_back(ArtifactFromJson(a));
  }
  if (j.contains("inconclusive") && j["inconclusive"].is_string()) {
    r.inconclusive = j["inconclusive"].get<std::string>();
  }
  r.client_library_failures = j.value("client_library_failures", std::vector<std::string>{});
  return r;
}

}  // namespace lab::runners::wire
