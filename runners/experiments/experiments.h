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

}  // namespace lab::runners
