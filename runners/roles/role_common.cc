#include "runners/roles/role_common.h"

#include <atomic>
#include <cstdlib>

namespace lab::runners::roles {

RoleArgs::RoleArgs(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) continue;
    std::string key = a.substr(2);
    if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      kv_[key] = argv[++i];
    } else {
      kv_[key] = "1";
    }
  }
}

std::string RoleArgs::Get(const std::string& name, const std::string& def) const {
  auto it = kv_.find(name);
  return it == kv_.end() ? def : it->second;
}

std::int64_t RoleArgs::Int(const std::string& name, std::int64_t def) const {
  auto it = kv_.find(name);
  return it == kv_.end() ? def : std::stoll(it->second);
}

mysql::MysqlConfig MysqlFromArgs(const RoleArgs& args) {
  mysql::MysqlConfig mc;
  mc.host = args.Get("mysql-host", "127.0.0.1");
  mc.port = static_cast<int>(args.Int("mysql-port", 13306));
  mc.user = args.Get("mysql-user", "lab");
  mc.database = args.Get("mysql-db", "lab");
  // Secrets by environment, not argv; read at start-up, before the role starts threads.
  const char* pw = std::getenv("LAB_MYSQL_PASSWORD");  // NOLINT(concurrency-mt-unsafe)
  mc.password = pw != nullptr ? pw : "";
  return mc;
}

namespace {
std::atomic<bool> g_stop{false};
void OnSigterm(int) { g_stop.store(true); }
}  // namespace

void StopOnSigterm() { ::signal(SIGTERM, OnSigterm); }
bool StopRequested() { return g_stop.load(); }

void Emit(const std::string& key, const std::string& value) {
  std::printf("%s=%s\n", key.c_str(), value.c_str());
  std::fflush(stdout);
}

void Emit(const std::string& key, std::int64_t value) { Emit(key, std::to_string(value)); }

}  // namespace lab::runners::roles
