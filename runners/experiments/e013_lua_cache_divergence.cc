// E-013: STUB — being written; answers inconclusive until its runner exists.
#include "runners/experiments/experiments.h"

namespace lab::runners {
namespace {

class Stub final : public ExperimentBase {
 public:
  explicit Stub(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-013"; }
  domain::ModeResult RunMode(const domain::RunContext&, const std::string&) override {
    return Inconclusive({}, "not written yet");
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeLuaCacheDivergence(const StackConfig& config) {
  return std::make_unique<Stub>(config);
}

}  // namespace lab::runners
