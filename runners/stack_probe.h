// The stack probe: asks each part of the stack, with its real client, for its version and times
// the round trip. Each part is checked on its own thread with a bounded timeout, so a dead stack
// answers promptly with ok=false and the reason; a stop token ends the wait within ~100 ms.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

#include "domain/ports.h"
#include "runners/stack_config.h"

namespace lab::runners {

// The standalone Redis's settings that experiments change for a run (CONFIG SET values, ACL
// users), or the Redis Cluster's topology, as this probe first saw them. Every later check compares
// with that first sight, so a run that did not restore what it changed makes Redis unhealthy in its
// postflight. A server started on an already drifted Redis takes the drift as its baseline (`./lab
// stack reset` restarts Redis with the stack's settings).
class RedisBaseline {
 public:
  // "" when `now` equals the first settings seen (recorded on the first call), else the
  // differences: "maxclients=300 (was 10000); acl_users=default,lab_x (was default)".
  std::string Drift(const std::map<std::string, std::string>& now);

 private:
  std::mutex mu_;
  std::optional<std::map<std::string, std::string>> first_;  // guarded by mu_
};

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
  std::shared_ptr<RedisBaseline> redis_baseline_ = std::make_shared<RedisBaseline>();
  // The Redis Cluster's topology (slot owners and roles), first seen.
  std::shared_ptr<RedisBaseline> cluster_baseline_ = std::make_shared<RedisBaseline>();
};

}  // namespace lab::runners
