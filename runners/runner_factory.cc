#include "runners/runner_factory.h"

#include "runners/experiments/experiments.h"
#include "runners/stack_probe.h"

namespace lab::runners {

std::vector<std::unique_ptr<domain::ExperimentRunner>> MakeRunners(const StackConfig& config) {
  std::vector<std::unique_ptr<domain::ExperimentRunner>> runners;
  runners.push_back(MakeStackCheck(config));
  runners.push_back(MakeStandardPipeline(config));
  runners.push_back(MakeProduceAfterCommit(config));
  runners.push_back(MakeConsumeWithoutDedup(config));
  runners.push_back(MakeCommitBeforeProcess(config));
  runners.push_back(MakeDlqReplay(config));
  runners.push_back(MakeSchemaRollout(config));
  runners.push_back(MakeOpenTransactionLso(config));
  runners.push_back(MakeAcksDurability(config));
  runners.push_back(MakeCacheStampede(config));
  runners.push_back(MakeLuaCacheDivergence(config));
  runners.push_back(MakeLockFailures(config));
  runners.push_back(MakeFencingTokens(config));
  runners.push_back(MakeReconnectStorm(config));
  runners.push_back(MakeSlowlogP99(config));
  runners.push_back(MakePubsubVsStreams(config));
  runners.push_back(MakeRestrictedCommands(config));
  runners.push_back(MakeClusterMultiKey(config));
  runners.push_back(MakeHotKey(config));
  runners.push_back(MakeOnlineResharding(config));
  runners.push_back(MakeFailoverDrill(config));
  runners.push_back(MakeClusterModeBreaks(config));
  runners.push_back(MakeReadCommitted(config));
  runners.push_back(MakeRetentionStrategies(config));
  runners.push_back(MakeCompatibilityGate(config));
  runners.push_back(MakeLockOrderDeadlocks(config));
  runners.push_back(MakeControlledBackfill(config));
  runners.push_back(MakeCouponOversell(config));
  runners.push_back(MakeRebalanceStorms(config));
  runners.push_back(MakeOutboxOutage(config));
  runners.push_back(MakeCallerRuns(config));
  runners.push_back(MakeConnectionHeld(config));
  runners.push_back(MakeMisalignedTimeouts(config));
  runners.push_back(MakeCircuitBreaker(config));
  runners.push_back(MakePartialOutages(config));
  return runners;
}

std::unique_ptr<domain::StackProbe> MakeStackProbe(const StackConfig& config) {
  return std::make_unique<RealStackProbe>(config);
}

}  // namespace lab::runners
