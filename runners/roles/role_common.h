// What the service roles share: argument parsing (--key value), the failpoint (kills the
// process with SIGKILL at a named point — it never fabricates an outcome), connection settings
// and the output the runner reads from the process log: "@lab" JSON lines (runners/runner_wire.h)
// of reported values, the failpoint that fired and a fatal error.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <string>

#include "runners/mysql/mysql_client.h"

namespace lab::runners::roles {

// One line each on the process log, flushed at once (the process may be killed next).
void Emit(const std::string& key, const std::string& value);       // a reported value
void Emit(const std::string& key, std::int64_t value);             // as its decimal text
void EmitFailpoint(const std::string& point, std::int64_t count);  // about to SIGKILL itself
void EmitError(const std::string& message);  // the role's fatal error, on stderr

class RoleArgs {
 public:
  RoleArgs(int argc, char** argv);
  std::string Get(const std::string& name, const std::string& def = "") const;
  std::int64_t Int(const std::string& name, std::int64_t def = 0) const;
  bool Has(const std::string& name) const { return kv_.count(name) > 0; }

 private:
  std::map<std::string, std::string> kv_;
};

class Failpoint {
 public:
  explicit Failpoint(const RoleArgs& args)
      : name_(args.Get("failpoint", "none")), after_(args.Int("failpoint-after", 1)) {}
  // Counts one pass through `point`; when it is the armed failpoint and the count reaches
  // `after`, the process dies here, with whatever it has in memory.
  void Hit(const char* point) {
    if (name_ != point) return;
    if (++count_ < after_) return;
    EmitFailpoint(point, count_);  // flushed before the kill
    ::kill(::getpid(), SIGKILL);
    ::_exit(137);  // not reached
  }
  bool Armed(const char* point) const { return name_ == point; }

 private:
  std::string name_;
  std::int64_t after_;
  std::int64_t count_ = 0;
};

// SIGTERM asks a role to stop where it is consistent (after the batch in hand); the runner
// uses it to stop long-running roles without losing what they already did.
void StopOnSigterm();
bool StopRequested();

mysql::MysqlConfig MysqlFromArgs(const RoleArgs& args);

int RunCommandService(const RoleArgs& args);
int RunOutboxRelay(const RoleArgs& args);
int RunConsumerService(const RoleArgs& args);
int RunReplayWorker(const RoleArgs& args);
int RunSchemaProducer(const RoleArgs& args);  // E-006
int RunSchemaConsumer(const RoleArgs& args);  // E-006
int RunLockHolder(const RoleArgs& args);      // E-039A, E-039B
int RunRedisClients(const RoleArgs& args);    // E-046
int RunBackfillWorker(const RoleArgs& args);  // E-022
// N03, N04, N06, N21: the HTTP service under test and its dependency.
int RunValuationService(const RoleArgs& args);
int RunDownstreamService(const RoleArgs& args);
// E-023: the shop service taken through Redis, MariaDB and Kafka outages.
int RunShopService(const RoleArgs& args);

}  // namespace lab::runners::roles
