#include "runners/roles/role_common.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "runners/runner_wire.h"

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

namespace {
// One call per line, so lines of threads that report at once never interleave.
void WriteLine(std::FILE* stream, const std::string& line) {
  std::fprintf(stream, "%s\n", line.c_str());
  std::fflush(stream);
}
}  // namespace

void Emit(const std::string& key, const std::string& value) {
  WriteLine(stdout, wire::ValueLine(key, value));
}

void Emit(const std::string& key, std::int64_t value) { Emit(key, std::to_string(value)); }

void EmitFailpoint(const std::string& point, std::int64_t count) {
  WriteLine(stdout, wire::FailpointLine(point, count));
}

void EmitError(const std::string& message) { WriteLine(stderr, wire::ErrorLine(message)); }

}  // namespace lab::runners::roles
