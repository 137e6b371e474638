// The run lifecycle (state machine) and the verdict vocabulary. Pure: no I/O, no clock.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "domain/result.h"

namespace lab::domain {

// A run's lifecycle. Terminal states never change again.
enum class RunState { kQueued, kRunning, kCompleted, kFailed, kCancelled, kInterrupted };

// What the evidence says about the claim; separate from the lifecycle (EXPERIMENTS.md).
enum class Verdict { kConfirmed, kRefuted, kInconclusive };

std::string_view ToString(RunState state);
std::string_view ToString(Verdict verdict);
std::optional<RunState> ParseRunState(std::string_view text);
std::optional<Verdict> ParseVerdict(std::string_view text);

bool IsTerminal(RunState state);

// The legal transitions:
//   queued  -> running | cancelled | interrupted(never: a queued run is re-queued on restart)
//   running -> completed | failed | cancelled | interrupted
// Everything else (including a terminal state moving again) is illegal.
bool CanTransition(RunState from, RunState to);

// Checks a transition and names both ends when it is illegal.
Status CheckTransition(RunState from, RunState to);

// Which verdicts a run in a terminal state may carry: completed runs carry the verdict the
// evidence gave; a failed run cannot decide, so it is always inconclusive; cancelled and
// interrupted runs carry none.
bool VerdictAllowed(RunState terminal_state, std::optional<Verdict> verdict);

}  // namespace lab::domain
