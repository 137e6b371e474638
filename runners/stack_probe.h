// The stack probe: asks each part of the stack, with its real client, for its version and times
// the round trip. Each part is checked on its own thread with a bounded timeout, so a dead stack
// answers promptly with ok=false and the reason; a stop token ends the wait within ~100 ms.
#pragma once

#include <stop_token>

#include "domain/ports.h"
#include "runners/stack_config.h"

namespace lab::runners {

class RealStackProbe final : public domain::StackProbe {
 public:
  explicit RealStackProbe(StackConfig config) : config_(std::move(config)) {}
  std::vector<domain::PartHealth> Check(const std::vector<std::string>& parts,
                                        std::chrono::milliseconds timeout) override;
  // As Check, but returns within ~100 ms of `stop`: the parts that have not answered by then
  // are reported as not checked (their threads end alone, bounded by their clients' timeouts).
  std::vector<domain::PartHealth> Check(const std::vector<std::string>& parts,
                                        std::chrono::milliseconds timeout, std::stop_token stop);
  // One part, synchronously.
  domain::PartHealth CheckPart(const std::string& part, std::chrono::milliseconds timeout) const;

 private:
  StackConfig config_;
};

}  // namespace lab::runners
