// Which stack resources a run holds while it executes, and how. A run that injects faults into
// a part (stops brokers, kills MariaDB, moves cluster slots, adds toxics) holds that part's lock
// exclusively — the catalog's `exclusive` list; a run that only uses a part holds its lock
// shared. The scheduler never overlaps an exclusive holder with any other holder of the same
// lock, so a run that merely uses Kafka never runs while another kills its brokers.
#pragma once

#include <string>
#include <vector>

#include "domain/catalog.h"

namespace lab::domain {

struct RunLocks {
  std::vector<std::string> exclusive;
  std::vector<std::string> shared;  // never one of `exclusive`
};

// The lock a run that uses `part` shares; "" when the part has no lock (nothing faults it).
std::string LockOfPart(const std::string& part);

RunLocks LocksFor(const ExperimentSpec& spec);

}  // namespace lab::domain
