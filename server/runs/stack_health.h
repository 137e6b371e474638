// Which stack parts a run left unhealthy ("dirty") and why. A postflight records the parts it
// checked; a part stays dirty until a check finds it healthy again — a later run's postflight or
// the readiness monitor's periodic probe — so a run that only needs Kafka no longer clears a
// MariaDB another run broke, and a MariaDB started again clears without a run.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "domain/ports.h"

namespace lab::server {

class StackHealth {
 public:
  // Unhealthy parts of `checked` become dirty with `context` ("after run r-1"); healthy ones
  // clean. Returns the parts that became clean, as "part (was: reason)".
  std::vector<std::string> Record(const std::vector<domain::PartHealth>& checked,
                                  const std::string& context);
  // Only clears: healthy parts of `checked` become clean (a probe that no run asked for does not
  // make the stack dirty). Returns what became clean, as Record.
  std::vector<std::string> ClearHealthy(const std::vector<domain::PartHealth>& checked);
  bool dirty() const;
  // "kafka: after run r-1: kafka2 down; mysql: …", or "" when clean.
  std::string why() const;

 private:
  std::vector<std::string> Clear(const std::vector<domain::PartHealth>& checked);
  mutable std::mutex mu_;
  std::map<std::string, std::string> dirty_;  // part -> reason; guarded by mu_
};

}  // namespace lab::server
