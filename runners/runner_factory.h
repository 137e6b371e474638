// The runners this build provides, and the stack probe. main() wires them into the server.
#pragma once

#include <memory>
#include <vector>

#include "domain/ports.h"
#include "runners/stack_config.h"

namespace lab::runners {

// One runner per experiment that exists; experiments without a runner are listed by the
// catalog as unavailable and refused with 501.
std::vector<std::unique_ptr<domain::ExperimentRunner>> MakeRunners(const StackConfig& config);

// Checks stack parts with their real clients (preflight, postflight, /readyz).
std::unique_ptr<domain::StackProbe> MakeStackProbe(const StackConfig& config);

}  // namespace lab::runners
