#include "tests/integration/api_harness.h"

#include <cstdlib>
#include <fstream>

#include "domain/catalog.h"
#include "domain/run.h"

namespace lab::testing {

using Json = nlohmann::json;
using namespace std::chrono_literals;

std::map<std::string, std::string> StackEnv() {
  std::map<std::string, std::string> kv;
  std::ifstream in(std::string(LAB_SOURCE_DIR) + "/infra/stack.env");
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  for (auto& [name, value] : kv) {
    if (const char* v = std::getenv(name.c_str())) value = v;
  }
  return kv;
}

ApiServer& ApiServer::Get() {
  static ApiServer server;
  return server;
}

ApiServer::ApiServer() : dir_(std::make_unique<e2e::TempDir>()) {
  e2e::ServerOptions options;
  options.data_dir = *dir_ / "data";
  // Two workers: concurrent runs of non-exclusive experiments really run side by side.
  options.extra_args = {"--workers", "2"};
  options.env = StackEnv();
  // The lab's DeadStackEnv defaults name the Redis port separately; the stack's LAB_REDIS wins.
  options.env.erase("LAB_REDIS_HOST");
  options.env.erase("LAB_REDIS_PORT");
  if (auto it = options.env.find("LAB_REDIS"); it != options.env.end()) {
    auto colon = it->second.rfind(':');
    options.env["LAB_REDIS_HOST"] = it->second.substr(0, colon);
    options.env["LAB_REDIS_PORT"] = it->second.substr(colon + 1);
  }
  server_ = std::make_unique<e2e::LabServer>(options);
  up_ = server_->Start();
}

namespace {

Json ParamsToJson(const std::map<std::string, domain::ParamValue>& params) {
  Json out = Json::object();
  for (const auto& [name, value] : params) {
    std::visit([&](const auto& v) { out[name] = v; }, value);
  }
  return out;
}

bool Terminal(const std::string& state) {
  return state == "completed" || state == "failed" || state == "cancelled" ||
         state == "interrupted";
}

}  // namespace

std::string QueueRun(const std::string& experiment,
                     const std::map<std::string, domain::ParamValue>& params,
                     const std::vector<std::string>& modes, const Json& extra) {
  auto& server = ApiServer::Get();
  if (!server.up()) {
    ADD_FAILURE() << "the lab server did not start:\n" << server.log();
    return "";
  }
  Json body = extra;
  body["params"] = ParamsToJson(params);
  if (!modes.empty()) body["modes"] = modes;
  auto c = server.client();
  auto r = c.PostJson("/experiments/" + experiment + "/runs", body);
  EXPECT_EQ(r.status, 202) << r.error << " " << r.body;
  if (r.status != 202) return "";
  return r.json().value("id", "");
}

Json WaitView(const std::string& id, const std::function<bool(const Json&)>& done,
              std::chrono::seconds timeout) {
  auto c = ApiServer::Get().client();
  Json last;
  e2e::WaitFor(
      [&] {
        auto r = c.Get("/runs/" + id);
        if (r.status == 200) last = r.json();
        return !last.is_null() && done(last);
      },
      timeout);
  return last;
}

ApiRun WaitRun(const std::string& id, std::chrono::seconds timeout) {
  ApiRun run;
  run.id = id;
  run.view = WaitView(
      id, [](const Json& v) { return Terminal(v.value("state", "")); }, timeout);
  run.state = run.view.value("state", "");
  return run;
}

RunOutcome ToOutcome(const ApiRun& run) {
  RunOutcome out;
  const Json& v = run.view;
  if (!v.is_object()) return out;
  if (auto verdict = domain::ParseVerdict(v.value("verdict", Json("")).is_string()
                                              ? v.value("verdict", std::string())
                                              : std::string())) {
    out.verdict.verdict = *verdict;
  }
  out.verdict.reason = v.value("verdict_reason", std::string()) + " [state " + run.state +
                       (v["error"].is_string() ? ", error " + v["error"].get<std::string>() : "") +
                       "]";
  if (v["duration_seconds"].is_number()) out.seconds = v["duration_seconds"].get<double>();
  // value() returns a copy: keep it alive for the loop (items() of a temporary dangles).
  const Json evidence_by_mode = v.value("evidence", Json::object());
  for (const auto& [mode, evidence] : evidence_by_mode.items()) {
    domain::ModeResult r;
    const Json metrics = evidence.value("metrics", Json::object());
    for (const auto& [name, value] : metrics.items()) {
      if (value.is_number()) r.metrics[name] = value.get<double>();
    }
    r.details_json = evidence.value("details", Json::object()).dump();
    if (evidence.contains("inconclusive")) r.inconclusive = evidence["inconclusive"].dump();
    out.modes[mode] = std::move(r);
  }
  for (const auto& f : v.value("client_library_failures", Json::array())) {
    std::string mode = f.value("mode", "");
    if (out.modes.count(mode)) out.modes[mode].client_library_failures.push_back(f.dump());
  }
  for (const auto& step : v.value("steps", Json::array()))
    out.steps.push_back(step.value("message", std::string()));
  const Json artifacts = v.value("artifacts", Json::object());
  for (const auto& [mode, list] : artifacts.items()) {
    for (const auto& a : list) {
      out.artifacts.push_back({a.value("kind", ""), a.value("name", "")});
    }
  }
  return out;
}

namespace {

RunOutcome QueueAndWait(const std::string& id,
                        const std::map<std::string, domain::ParamValue>& params,
                        const std::vector<std::string>& modes, const Json& extra) {
  std::string run_id = QueueRun(id, params, modes, extra);
  if (run_id.empty()) return {};
  const auto* spec = domain::FindExperiment(id);
  auto timeout = std::chrono::seconds(spec ? spec->default_timeout_seconds + 60 : 300);
  ApiRun run = WaitRun(run_id, timeout);
  EXPECT_EQ(run.state, "completed") << "run " << run_id << ": " << run.view.dump(2);
  return ToOutcome(run);
}

}  // namespace

RunOutcome RunThroughApi(const std::string& id,
                         const std::map<std::string, domain::ParamValue>& params,
                         std::vector<std::string> modes) {
  return QueueAndWait(id, params, modes, Json::object());
}

RunOutcome RunKeptThroughApi(const std::string& id,
                             const std::map<std::string, domain::ParamValue>& params,
                             std::vector<std::string> modes) {
  return QueueAndWait(id, params, modes, Json{{"keep_artifacts", true}});
}

nlohmann::json WaitForStep(const std::string& id, const std::string& text,
                           std::chrono::seconds timeout) {
  return WaitView(
      id,
      [&text](const nlohmann::json& v) {
        for (const auto& s : v.value("steps", nlohmann::json::array())) {
          if (s.value("message", "").find(text) != std::string::npos) return true;
        }
        return v.value("state", "") != "running" && v.value("state", "") != "queued";
      },
      timeout);
}

}  // namespace lab::testing
