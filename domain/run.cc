#include "domain/run.h"

#include <array>
#include <utility>

namespace lab::domain {
namespace {

constexpr std::array<std::pair<RunState, std::string_view>, 6> kStateNames{{
    {RunState::kQueued, "queued"},
    {RunState::kRunning, "running"},
    {RunState::kCompleted, "completed"},
    {RunState::kFailed, "failed"},
    {RunState::kCancelled, "cancelled"},
    {RunState::kInterrupted, "interrupted"},
}};

constexpr std::array<std::pair<Verdict, std::string_view>, 3> kVerdictNames{{
    {Verdict::kConfirmed, "confirmed"},
    {Verdict::kRefuted, "refuted"},
    {Verdict::kInconclusive, "inconclusive"},
}};

}  // namespace

std::string_view ToString(RunState state) {
  for (const auto& [value, name] : kStateNames) {
    if (value == state) return name;
  }
  return "unknown";
}

std::string_view ToString(Verdict verdict) {
  for (const auto& [value, name] : kVerdictNames) {
    if (value == verdict) return name;
  }
  return "unknown";
}

std::optional<RunState> ParseRunState(std::string_view text) {
  for (const auto& [value, name] : kStateNames) {
    if (name == text) return value;
  }
  return std::nullopt;
}

std::optional<Verdict> ParseVerdict(std::string_view text) {
  for (const auto& [value, name] : kVerdictNames) {
    if (name == text) return value;
  }
  return std::nullopt;
}

bool IsTerminal(RunState state) {
  return state != RunState::kQueued && state != RunState::kRunning;
}

bool CanTransition(RunState from, RunState to) {
  switch (from) {
    case RunState::kQueued:
      return to == RunState::kRunning || to == RunState::kCancelled;
    case RunState::kRunning:
      return to == RunState::kCompleted || to == RunState::kFailed || to == RunState::kCancelled ||
             to == RunState::kInterrupted;
    default:
      return false;
  }
}

Status CheckTransition(RunState from, RunState to) {
  if (CanTransition(from, to)) return {};
  return MakeError(ErrorCode::kConflict, "a run cannot go from '" + std::string(ToString(from)) +
                                             "' to '" + std::string(ToString(to)) + "'");
}

bool VerdictAllowed(RunState terminal_state, std::optional<Verdict> verdict) {
  switch (terminal_state) {
    case RunState::kCompleted:
      return verdict.has_value();
    case RunState::kFailed:
      return verdict == Verdict::kInconclusive;
    case RunState::kCancelled:
    case RunState::kInterrupted:
      return !verdict.has_value();
    default:
      return !verdict.has_value();
  }
}

}  // namespace lab::domain
