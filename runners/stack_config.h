// Where the stack is. Defaults are the local stack of infra/ (ARCHITECTURE.md ports); the
// server loads overrides from its --config file and LAB_* environment variables.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace lab::runners {

struct StackConfig {
  // Kafka bootstrap servers, comma-separated.
  std::string kafka_bootstrap = "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094";
  // Confluent-compatible schema registry base URL (Apicurio's ccompat API).
  std::string registry_url = "http://127.0.0.1:18091/apis/ccompat/v7";
  std::string mysql_host = "127.0.0.1";
  int mysql_port = 13306;
  std::string mysql_user = "lab";
  std::string mysql_password = "lab";  // from LAB_MYSQL_PASSWORD in real deployments; never logged
  std::string mysql_database = "lab";
  std::string redis_host = "127.0.0.1";
  int redis_port = 16379;
  // Redis Cluster seed nodes, host:port.
  std::vector<std::string> redis_cluster_seeds = {"127.0.0.1:17001", "127.0.0.1:17002",
                                                  "127.0.0.1:17003"};
  std::string toxiproxy_url = "http://127.0.0.1:18474";
  // The stack control script (fault commands: kafka kill N, …), relative to the repo root.
  std::string stack_script = "infra/stack.sh";
  // The service-role binary runners start as child processes (crashable for real).
  std::string role_binary = "build/lab-role";
  // MySQL migrations for the experiment schema.
  std::string mysql_migrations_dir = "migrations/mysql";
  // The binary each run's modes and cleanup execute in (runners/runner_host_main.cc), so that a
  // crash of a client library ends that process, not the server.
  std::string runner_host_binary = "build/lab-runner-host";
};

// Every field but the MySQL password, which travels in LAB_MYSQL_PASSWORD only.
nlohmann::json StackConfigToJson(const StackConfig& config);
// Overrides the fields `j` names; leaves the others (and the password) as they are.
void ApplyStackConfigJson(const nlohmann::json& j, StackConfig& config);

}  // namespace lab::runners
