#include "domain/run_locks.h"

#include <algorithm>

namespace lab::domain {

std::string LockOfPart(const std::string& part) {
  if (part == kPartKafka) return kLockKafkaBrokers;
  if (part == kPartMysql) return kLockMysqlServer;
  if (part == kPartRedis) return kLockRedisServer;
  if (part == kPartRedisCluster) return kLockRedisCluster;
  if (part == kPartToxiproxy) return kLockNetwork;
  return "";
}

RunLocks LocksFor(const ExperimentSpec& spec) {
  RunLocks locks;
  locks.exclusive = spec.exclusive;
  auto held = [&](const std::string& lock) {
    return std::find(locks.exclusive.begin(), locks.exclusive.end(), lock) !=
               locks.exclusive.end() ||
           std::find(locks.shared.begin(), locks.shared.end(), lock) != locks.shared.end();
  };
  for (const auto& part : spec.requires_parts) {
    const std::string lock = LockOfPart(part);
    if (!lock.empty() && !held(lock)) locks.shared.push_back(lock);
  }
  return locks;
}

}  // namespace lab::domain
