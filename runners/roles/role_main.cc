// lab-role: the service roles of EXPERIMENTS.md as one binary, so that a run can start each as
// a child process and a failpoint kills a real process.
//   lab-role command-service|outbox-relay|consumer-service|replay-worker --ns NS [--key value]…
// Common flags: --bootstrap, --mysql-host/--mysql-port/--mysql-user/--mysql-db (password from
// LAB_MYSQL_PASSWORD), --failpoint NAME --failpoint-after N. Exit 0 when the work is done.
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>

#include "runners/common/process.h"
#include "runners/roles/role_common.h"

int main(int argc, char** argv) {
  using namespace lab::runners::roles;
  // A role dies with the process that started it (the run's lab-runner-host): if that process
  // is killed, nothing else would stop the role, and it would go on writing into a run whose
  // cleanup has already removed its tables and topics.
  if (!lab::runners::DieWithParent(SIGKILL)) return 1;
  if (argc < 2) {
    std::fprintf(stderr, "usage: lab-role ROLE --ns NS [--key value]...\n");
    return 2;
  }
  std::string role = argv[1];
  RoleArgs args(argc, argv);
  try {
    if (role == "command-service") return RunCommandService(args);
    if (role == "outbox-relay") return RunOutboxRelay(args);
    if (role == "consumer-service") return RunConsumerService(args);
    if (role == "replay-worker") return RunReplayWorker(args);
    if (role == "schema-producer") return RunSchemaProducer(args);
    if (role == "schema-consumer") return RunSchemaConsumer(args);
    if (role == "lock-holder") return RunLockHolder(args);
    if (role == "redis-clients") return RunRedisClients(args);
    if (role == "backfill-worker") return RunBackfillWorker(args);
    if (role == "valuation-service") return RunValuationService(args);
    if (role == "downstream-service") return RunDownstreamService(args);
    if (role == "shop-service") return RunShopService(args);
  } catch (const std::exception& e) {
    EmitError(e.what());
    return 1;
  }
  EmitError("unknown role " + role);
  return 2;
}
