#include "runners/stack_config.h"

#include <nlohmann/json.hpp>

namespace lab::runners {

nlohmann::json StackConfigToJson(const StackConfig& c) {
  return {{"kafka_bootstrap", c.kafka_bootstrap},
          {"registry_url", c.registry_url},
          {"mysql_host", c.mysql_host},
          {"mysql_port", c.mysql_port},
          {"mysql_user", c.mysql_user},
          {"mysql_database", c.mysql_database},
          {"redis_host", c.redis_host},
          {"redis_port", c.redis_port},
          {"redis_cluster_seeds", c.redis_cluster_seeds},
          {"toxiproxy_url", c.toxiproxy_url},
          {"stack_script", c.stack_script},
          {"role_binary", c.role_binary},
          {"mysql_migrations_dir", c.mysql_migrations_dir},
          {"runner_host_binary", c.runner_host_binary}};
}

void ApplyStackConfigJson(const nlohmann::json& j, StackConfig& c) {
  c.kafka_bootstrap = j.value("kafka_bootstrap", c.kafka_bootstrap);
  c.registry_url = j.value("registry_url", c.registry_url);
  c.mysql_host = j.value("mysql_host", c.mysql_host);
  c.mysql_port = j.value("mysql_port", c.mysql_port);
  c.mysql_user = j.value("mysql_user", c.mysql_user);
  c.mysql_database = j.value("mysql_database", c.mysql_database);
  c.redis_host = j.value("redis_host", c.redis_host);
  c.redis_port = j.value("redis_port", c.redis_port);
  c.redis_cluster_seeds = j.value("redis_cluster_seeds", c.redis_cluster_seeds);
  c.toxiproxy_url = j.value("toxiproxy_url", c.toxiproxy_url);
  c.stack_script = j.value("stack_script", c.stack_script);
  c.role_binary = j.value("role_binary", c.role_binary);
  c.mysql_migrations_dir = j.value("mysql_migrations_dir", c.mysql_migrations_dir);
  c.runner_host_binary = j.value("runner_host_binary", c.runner_host_binary);
}

}  // namespace lab::runners
