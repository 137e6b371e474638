// Factories of the experiment runners, one per file in this folder.
#pragma once

#include <memory>

#include "domain/ports.h"
#include "runners/experiments/experiment_base.h"
#include "runners/stack_config.h"

namespace lab::runners {

std::unique_ptr<domain::ExperimentRunner> MakeStackCheck(const StackConfig& config);
std::unique_ptr<domain::ExperimentRunner> MakeProduceAfterCommit(const StackConfig& config);
std::unique_ptr<domain::ExperimentRunner> MakeConsumeWithoutDedup(const StackConfig& config);
std::unique_ptr<domain::ExperimentRunner> MakeSchemaRollout(const StackConfig& config);
std::unique_ptr<domain::ExperimentRunner> MakeCommitBeforeProcess(const StackConfig& config);
std::unique_ptr<domain::ExperimentRunner> MakeDlqReplay(const StackConfig& config);
std::unique_ptr<domain::ExperimentRunner> MakeOpenTransactionLso(const StackConfig& config);
std::unique_ptr<domain::ExperimentRunner> MakeAcksDurability(const StackConfig& config);
std::unique_ptr<domain::ExperimentRunner> MakeCacheStampede(const StackConfig& config);
std::unique_ptr<domain::ExperimentRunner> MakeStandardPipeline(const StackConfig& config);
// E-013
std::unique_ptr<domain::ExperimentRunner> MakeLuaCacheDivergence(const StackConfig& config);
// E-039A
std::unique_ptr<domain::ExperimentRunner> MakeLockFailures(const StackConfig& config);
// E-039B
std::unique_ptr<domain::ExperimentRunner> MakeFencingTokens(const StackConfig& config);
// E-046
std::unique_ptr<domain::ExperimentRunner> MakeReconnectStorm(const StackConfig& config);
// E-047
std::unique_ptr<domain::ExperimentRunner> MakeSlowlogP99(const StackConfig& config);
// E-048
std::unique_ptr<domain::ExperimentRunner> MakePubsubVsStreams(const StackConfig& config);
// E-049
std::unique_ptr<domain::ExperimentRunner> MakeRestrictedCommands(const StackConfig& config);
// E-010
std::unique_ptr<domain::ExperimentRunner> MakeClusterMultiKey(const StackConfig& config);
// E-011
std::unique_ptr<domain::ExperimentRunner> MakeHotKey(const StackConfig& config);
// E-044
std::unique_ptr<domain::ExperimentRunner> MakeOnlineResharding(const StackConfig& config);
// E-045
std::unique_ptr<domain::ExperimentRunner> MakeFailoverDrill(const StackConfig& config);
// E-050
std::unique_ptr<domain::ExperimentRunner> MakeClusterModeBreaks(const StackConfig& config);
// E-012
std::unique_ptr<domain::ExperimentRunner> MakeReadCommitted(const StackConfig& config);
// E-014
std::unique_ptr<domain::ExperimentRunner> MakeRetentionStrategies(const StackConfig& config);
// E-015
std::unique_ptr<domain::ExperimentRunner> MakeCompatibilityGate(const StackConfig& config);
// E-019
std::unique_ptr<domain::ExperimentRunner> MakeLockOrderDeadlocks(const StackConfig& config);
// E-022
std::unique_ptr<domain::ExperimentRunner> MakeControlledBackfill(const StackConfig& config);
// E-024
std::unique_ptr<domain::ExperimentRunner> MakeCouponOversell(const StackConfig& config);
// E-018
std::unique_ptr<domain::ExperimentRunner> MakeRebalanceStorms(const StackConfig& config);
// N19
std::unique_ptr<domain::ExperimentRunner> MakeOutboxOutage(const StackConfig& config);
// N03
std::unique_ptr<domain::ExperimentRunner> MakeCallerRuns(const StackConfig& config);
// N04
std::unique_ptr<domain::ExperimentRunner> MakeConnectionHeld(const StackConfig& config);
// N06
std::unique_ptr<domain::ExperimentRunner> MakeMisalignedTimeouts(const StackConfig& config);
// N21
std::unique_ptr<domain::ExperimentRunner> MakeCircuitBreaker(const StackConfig& config);
// E-023
std::unique_ptr<domain::ExperimentRunner> MakePartialOutages(const StackConfig& config);

}  // namespace lab::runners
