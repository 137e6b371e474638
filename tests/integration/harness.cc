#include "harness.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "runners/runner_factory.h"

namespace lab::testing {

void RecordingReporter::Step(std::string_view message) {
  {
    std::lock_guard lock(mu_);
    steps_.emplace_back(message);
    if (echo)
      std::fprintf(stderr, "  step: %.*s\n", static_cast<int>(message.size()), message.data());
  }
  if (on_step) on_step(message);
}

void RecordingReporter::Progress(double) {}

std::vector<std::string> RecordingReporter::steps() const {
  std::lock_guard lock(mu_);
  return steps_;
}

void RecordingReporter::Created(std::string_view, const domain::Artifact& artifact) {
  std::lock_guard lock(mu_);
  artifacts_.push_back(artifact);
}

std::vector<domain::Artifact> RecordingReporter::artifacts() const {
  std::lock_guard lock(mu_);
  return artifacts_;
}

runners::StackConfig TestStackConfig() {
  runners::StackConfig c;
  // infra/stack.env is the stack's own statement of its endpoints.
  std::ifstream env(std::string(LAB_SOURCE_DIR) + "/infra/stack.env");
  std::string line;
  std::map<std::string, std::string> kv;
  while (std::getline(env, line)) {
    auto eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  for (const char* name :
       {"LAB_KAFKA_BOOTSTRAP", "LAB_REGISTRY_URL", "LAB_MYSQL_PORT", "LAB_REDIS"}) {
    if (const char* v = std::getenv(name)) kv[name] = v;
  }
  if (kv.count("LAB_KAFKA_BOOTSTRAP")) c.kafka_bootstrap = kv["LAB_KAFKA_BOOTSTRAP"];
  if (kv.count("LAB_REGISTRY_URL")) c.registry_url = kv["LAB_REGISTRY_URL"];
  if (kv.count("LAB_MYSQL_PORT")) c.mysql_port = std::stoi(kv["LAB_MYSQL_PORT"]);
  if (kv.count("LAB_REDIS")) {
    auto r = kv["LAB_REDIS"];
    c.redis_host = r.substr(0, r.rfind(':'));
    c.redis_port = std::stoi(r.substr(r.rfind(':') + 1));
  }
  c.role_binary = LAB_ROLE_BINARY;
  c.mysql_migrations_dir = std::string(LAB_SOURCE_DIR) + "/migrations/mysql";
  c.stack_script = std::string(LAB_SOURCE_DIR) + "/infra/stack.sh";
  return c;
}

RunOutcome RunExperiment(const std::string& id,
                         const std::map<std::string, domain::ParamValue>& params,
                         std::vector<std::string> modes, bool echo, std::stop_token stop,
                         const std::string& ns_hint,
                         std::function<void(std::string_view)> on_step) {
  RunOutcome outcome;
  const auto* spec = domain::FindExperiment(id);
  if (spec == nullptr) return outcome;
  auto runners = runners::MakeRunners(TestStackConfig());
  domain::ExperimentRunner* runner = nullptr;
  for (auto& r : runners) {
    if (r->ExperimentId() == id) runner = r.get();
  }
  if (runner == nullptr) return outcome;
  RecordingReporter reporter;
  reporter.echo = echo;
  reporter.on_step = std::move(on_step);
  domain::RunContext ctx;
  std::random_device rd;
  ctx.run_id = "it" + std::to_string(rd() % 1000000);
  ctx.ns = ns_hint.empty() ? ctx.run_id : ns_hint + ctx.run_id;
  for (const auto& p : spec->parameters) ctx.params[p.name] = p.default_value;
  for (const auto& [k, v] : params) ctx.params[k] = v;
  ctx.reporter = &reporter;
  ctx.stop = stop;
  if (modes.empty()) {
    for (const auto& m : spec->modes) modes.push_back(m.name);
  }
  auto start = std::chrono::steady_clock::now();
  domain::EvidenceMetrics evidence;
  std::map<std::string, std::string> inconclusive;
  for (const auto& mode : modes) {
    auto result = runner->RunMode(ctx, mode);
    evidence[mode] = result.metrics;
    if (result.inconclusive) inconclusive[mode] = *result.inconclusive;
    outcome.modes[mode] = std::move(result);
  }
  outcome.verdict = domain::DecideVerdict(spec->criteria, evidence, inconclusive);
  outcome.artifacts = reporter.artifacts();
  if (!echo) outcome.steps = reporter.steps();  // echoed ones were printed already
  runner->Cleanup(ctx, outcome.artifacts);
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return outcome;
}

void CleanupKept(const std::string& id, const RunOutcome& outcome) {
  auto runners = runners::MakeRunners(TestStackConfig());
  for (auto& r : runners) {
    if (r->ExperimentId() != id) continue;
    RecordingReporter reporter;
    domain::RunContext ctx;
    ctx.run_id = "cleanup";
    ctx.reporter = &reporter;
    r->Cleanup(ctx, outcome.artifacts);
  }
}

std::string Describe(const RunOutcome& outcome) {
  std::ostringstream out;
  out << "verdict=" << domain::ToString(outcome.verdict.verdict) << " (" << outcome.verdict.reason
      << ") in " << outcome.seconds << " s\n";
  for (const auto& [mode, r] : outcome.modes) {
    out << "  " << mode << ":";
    for (const auto& [k, v] : r.metrics) out << " " << k << "=" << v;
    if (r.inconclusive) out << " inconclusive=" << *r.inconclusive;
    for (const auto& f : r.client_library_failures) out << "\n    client-library: " << f;
    out << "\n    details: " << r.details_json << "\n";
  }
  // The tail of the step log: what the runner saw last is what explains a failure.
  const std::size_t shown = 40;
  std::size_t from = outcome.steps.size() > shown ? outcome.steps.size() - shown : 0;
  if (!outcome.steps.empty()) out << "  steps (last " << outcome.steps.size() - from << "):\n";
  for (std::size_t i = from; i < outcome.steps.size(); ++i)
    out << "    " << outcome.steps[i] << "\n";
  return out.str();
}

}  // namespace lab::testing
