// E-000, the stack check: every part of the stack answers, with its version and round-trip time.
// Mode "check": metrics `<part>.reachable` (1/0), `<part>.rtt_ms`, and `unreachable` (the count
// of parts that did not answer); details carry versions and the reasons.
#include <nlohmann/json.hpp>

#include "domain/catalog.h"
#include "runners/experiments/experiments.h"
#include "runners/stack_probe.h"

namespace lab::runners {
namespace {

class StackCheck final : public domain::ExperimentRunner {
 public:
  explicit StackCheck(StackConfig config) : probe_(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-000"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    if (mode != "check") return Inconclusive(std::move(result), "unknown mode " + mode);
    auto timeout = std::chrono::milliseconds(domain::GetInt(ctx.params, "timeout_ms"));
    if (ctx.reporter) ctx.reporter->Step("asking every stack part for its version");
    // The stop token (cancel, per-run timeout) ends the probe within ~100 ms, even when a part
    // blocks for the whole timeout.
    auto health = probe_.Check({}, timeout, ctx.stop);
    nlohmann::json details = nlohmann::json::object();
    double unreachable = 0;
    std::vector<std::string> missing;
    for (const auto& h : health) {
      result.metrics[h.part + ".reachable"] = h.ok ? 1 : 0;
      result.metrics[h.part + ".rtt_ms"] = h.latency_ms;
      if (!h.ok) {
        ++unreachable;
        missing.push_back(h.part);
      }
      details[h.part] = {
          {"ok", h.ok}, {"rtt_ms", h.latency_ms}, {"version", h.version}, {"detail", h.detail}};
      if (ctx.reporter) {
        ctx.reporter->Step(
            h.part + (h.ok ? " answered in " : " did not answer: ") +
            (h.ok ? std::to_string(static_cast<int>(h.latency_ms)) + " ms, " + h.version
                  : h.detail));
      }
    }
    result.metrics["unreachable"] = unreachable;
    details["unreachable_parts"] = missing;
    result.details_json = details.dump();
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "stopped mid-probe");
    if (ctx.reporter) ctx.reporter->Progress(100);
    return result;
  }

  void Cleanup(const domain::RunContext&, const std::vector<domain::Artifact>&) override {}

 private:
  RealStackProbe probe_;
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeStackCheck(const StackConfig& config) {
  return std::make_unique<StackCheck>(config);
}

}  // namespace lab::runners
