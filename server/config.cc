#include "server/config.h"

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace lab::server {
namespace {

using domain::ErrorCode;
using domain::MakeError;

// The bounds a setting has, whether it comes from a flag or from the config file.
struct Bounds {
  long min;
  long max;
};
constexpr Bounds kWorkerBounds{1, 64};
constexpr Bounds kQueueCapacityBounds{1, 1000000};
constexpr Bounds kRateBounds{0, 1000000};

domain::Result<long> ParseInt(const std::string& option, const std::string& value, long min,
                              long max) {
  try {
    std::size_t used = 0;
    long v = std::stol(value, &used);
    if (used == value.size() && v >= min && v <= max) return v;
  } catch (const std::exception&) {
  }
  return MakeError(ErrorCode::kInvalidArgument, option + " must be an integer within [" +
                                                    std::to_string(min) + ", " +
                                                    std::to_string(max) + "], got '" + value + "'");
}

domain::Status ParseListen(const std::string& value, ServerConfig& c) {
  auto colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--listen must be HOST:PORT, got '" + value + "'");
  }
  auto port = ParseInt("--listen port", value.substr(colon + 1), 0, 65535);
  if (!port.ok()) return port.error();
  c.listen_host = value.substr(0, colon);
  if (c.listen_host.size() > 2 && c.listen_host.front() == '[') {
    c.listen_host = c.listen_host.substr(1, c.listen_host.size() - 2);
  }
  c.listen_port = static_cast<unsigned short>(*port);
  return {};
}

domain::Result<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in)
    return MakeError(ErrorCode::kInvalidArgument, std::string("cannot read ") + what + " " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void ApplyEnvironment(runners::StackConfig& s) {
  // Start-up only, before any thread exists.
  auto env = [](const char* name) -> const char* {
    return std::getenv(name);  // NOLINT(concurrency-mt-unsafe)
  };
  if (const char* v = env("LAB_KAFKA_BOOTSTRAP")) s.kafka_bootstrap = v;
  if (const char* v = env("LAB_REGISTRY_URL")) s.registry_url = v;
  if (const char* v = env("LAB_MYSQL_HOST")) s.mysql_host = v;
  if (const char* v = env("LAB_MYSQL_PORT")) s.mysql_port = std::atoi(v);
  if (const char* v = env("LAB_MYSQL_USER")) s.mysql_user = v;
  if (const char* v = env("LAB_MYSQL_PASSWORD")) s.mysql_password = v;
  if (const char* v = env("LAB_MYSQL_DATABASE")) s.mysql_database = v;
  // LAB_REDIS=host:port is how infra/stack.env states it; LAB_REDIS_HOST/PORT override it.
  if (const char* v = env("LAB_REDIS")) {
    std::string hp = v;
    auto colon = hp.rfind(':');
    if (colon != std::string::npos) {
      s.redis_host = hp.substr(0, colon);
      s.redis_port = std::atoi(hp.c_str() + colon + 1);
    }
  }
  if (const char* v = env("LAB_REDIS_HOST")) s.redis_host = v;
  if (const char* v = env("LAB_REDIS_PORT")) s.redis_port = std::atoi(v);
  if (const char* v = env("LAB_TOXIPROXY_URL")) s.toxiproxy_url = v;
  if (const char* v = env("LAB_REDIS_CLUSTER_SEEDS")) {
    s.redis_cluster_seeds.clear();
    std::stringstream in(v);
    std::string seed;
    while (std::getline(in, seed, ',')) {
      if (!seed.empty()) s.redis_cluster_seeds.push_back(seed);
    }
  }
}

// Keys a config file may set, each with the bounds its command-line flag has.
domain::Status ApplyConfigFile(const std::string& path, ServerConfig& c) {
  auto text = ReadFile(path, "config file");
  if (!text.ok()) return text.error();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return MakeError(ErrorCode::kInvalidArgument, "config file " + path + " is not a JSON object");
  }
  auto bounded = [&](const std::string& key, Bounds b) -> domain::Result<long> {
    const auto& v = j[key];
    if (!v.is_number_integer()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "config file " + path + ": " + key + " must be an integer");
    }
    long n = v.get<long>();
    if (n < b.min || n > b.max) {
      return MakeError(ErrorCode::kInvalidArgument, "config file " + path + ": " + key + " " +
                                                        std::to_string(n) + " is outside [" +
                                                        std::to_string(b.min) + ", " +
                                                        std::to_string(b.max) + "]");
    }
    return n;
  };
  for (const auto& [key, value] : j.items()) {
    if (key == "stack") {
      try {
        runners::ApplyStackConfigJson(value, c.stack);
      } catch (const std::exception& e) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "config file " + path + ": stack: " + e.what());
      }
    } else if (key == "workers") {
      auto n = bounded(key, kWorkerBounds);
      if (!n.ok()) return n.error();
      c.workers = static_cast<int>(*n);
    } else if (key == "queue_capacity") {
      auto n = bounded(key, kQueueCapacityBounds);
      if (!n.ok()) return n.error();
      c.queue_capacity = static_cast<std::size_t>(*n);
    } else if (key == "rate_limit") {
      auto n = bounded(key, kRateBounds);
      if (!n.ok()) return n.error();
      c.rate_limit = static_cast<double>(*n);
    } else {
      // A misspelt key silently ignored would run the server with a default the user did not want.
      return MakeError(ErrorCode::kInvalidArgument,
                       "config file " + path + ": unknown key '" + key +
                           "' (known: stack, workers, queue_capacity, rate_limit)");
    }
  }
  return {};
}

// "a.example,b.example" appended to allowed_hosts; a name with spaces, a slash or nothing in it
// is refused.
domain::Status AddAllowedHosts(const std::string& what, const std::string& list, ServerConfig& c) {
  std::size_t from = 0;
  while (from <= list.size()) {
    auto comma = list.find(',', from);
    if (comma == std::string::npos) comma = list.size();
    const std::string name = list.substr(from, comma - from);
    if (name.empty() || name.find_first_of(" \t/@") != std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument,
                       what + " takes host names separated by commas, got '" + list + "'");
    }
    c.allowed_hosts.push_back(name);
    from = comma + 1;
  }
  return {};
}

}  // namespace

// One token per line ("token:role"), or comma-separated; blank lines and '#' comments skipped.
std::string TokensFileToSpec(const std::string& text) {
  std::string spec;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    line = line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
    spec += (spec.empty() ? "" : ",") + line;
  }
  return spec;
}

std::string Usage() {
  return R"(reliability-lab: the Reliability Lab control plane

usage: reliability-lab [options]
  --listen HOST:PORT      address to serve on (default 127.0.0.1:8080; port 0 picks one)
  --data-dir DIR          where the SQLite store lives (default .lab/data)
  --workers N             run workers, 1..64 (default 2)
  --http-threads N        HTTP I/O threads, 1..64 (default 2)
  --queue-capacity N      queued runs before 503, 1..1000000 (default 1000)
  --rate-limit RPS        API requests per second per client, 0 = off (default 100)
  --rate-burst N          requests a client may send at once (default 200)
  --body-limit BYTES      largest request body (default 65536)
  --max-event-streams N   open /runs/{id}/events streams, 1..10000 (default 64); 503 beyond
  --read-timeout S        seconds a client has to send a whole request (default 10)
  --idle-timeout S        seconds a kept-alive connection may idle (default 30)
  --shutdown-timeout S    on SIGTERM, how long running runs get to clean up (default 30)
  --config FILE           JSON: {"stack": {"kafka_bootstrap": …, "mysql_host": …}, "workers": …}
  --tokens-file FILE      tokens as "token:role" lines or comma-separated (or LAB_TOKENS)
  --web-root DIR          the static UI (default: this source tree's web/)
  --migrations DIR        SQL migrations (default: this source tree's migrations/)
  --port-file FILE        write the port actually bound (for tests)
  --allow-host NAMES      host names served besides localhost, 127.0.0.1, ::1 and the listen
                          address, comma-separated, repeatable (or LAB_ALLOWED_HOSTS); a request
                          whose Host or Origin names another host is refused with 403 (DNS
                          rebinding); "*" allows any
  --help                  this text

Stack endpoints can also come from LAB_KAFKA_BOOTSTRAP, LAB_REGISTRY_URL, LAB_MYSQL_HOST,
LAB_MYSQL_PORT, LAB_MYSQL_USER, LAB_MYSQL_PASSWORD, LAB_MYSQL_DATABASE, LAB_REDIS_HOST,
LAB_REDIS_PORT, LAB_REDIS_CLUSTER_SEEDS and LAB_TOXIPROXY_URL.
Bound to a non-loopback address the server refuses to start without tokens.
)";
}

namespace {

// The defaults that point into this source and build tree.
ServerConfig TreeDefaults() {
  ServerConfig c;
#ifdef LAB_SOURCE_DIR
  c.web_root = std::string(LAB_SOURCE_DIR) + "/web";
  c.migrations_dir = std::string(LAB_SOURCE_DIR) + "/migrations";
  c.stack.stack_script = std::string(LAB_SOURCE_DIR) + "/infra/stack.sh";
  c.stack.mysql_migrations_dir = std::string(LAB_SOURCE_DIR) + "/migrations/mysql";
#endif
#ifdef LAB_BINARY_DIR
  c.stack.role_binary = std::string(LAB_BINARY_DIR) + "/lab-role";
  c.stack.runner_host_binary = std::string(LAB_BINARY_DIR) + "/lab-runner-host";
#endif
  return c;
}

// A numeric option: its bounds and where its value goes.
struct IntOption {
  const char* name;
  long min;
  long max;
  void (*set)(ServerConfig&, long);
};

constexpr IntOption kIntOptions[] = {
    {"--workers", kWorkerBounds.min, kWorkerBounds.max,
     [](ServerConfig& c, long n) { c.workers = static_cast<int>(n); }},
    {"--http-threads", kWorkerBounds.min, kWorkerBounds.max,
     [](ServerConfig& c, long n) { c.http_threads = static_cast<int>(n); }},
    {"--queue-capacity", kQueueCapacityBounds.min, kQueueCapacityBounds.max,
     [](ServerConfig& c, long n) { c.queue_capacity = static_cast<std::size_t>(n); }},
    {"--rate-limit", kRateBounds.min, kRateBounds.max,
     [](ServerConfig& c, long n) { c.rate_limit = static_cast<double>(n); }},
    {"--rate-burst", kRateBounds.min, kRateBounds.max,
     [](ServerConfig& c, long n) { c.rate_burst = static_cast<double>(n); }},
    {"--body-limit", 1024, 16 * 1024 * 1024,
     [](ServerConfig& c, long n) { c.body_limit = static_cast<std::size_t>(n); }},
    {"--max-event-streams", 1, 10000,
     [](ServerConfig& c, long n) { c.max_event_streams = static_cast<int>(n); }},
    {"--read-timeout", 1, 3600,
     [](ServerConfig& c, long n) { c.read_timeout_seconds = static_cast<int>(n); }},
    {"--idle-timeout", 1, 3600,
     [](ServerConfig& c, long n) { c.idle_timeout_seconds = static_cast<int>(n); }},
    {"--shutdown-timeout", 1, 3600,
     [](ServerConfig& c, long n) { c.shutdown_timeout_seconds = static_cast<int>(n); }},
};

// A text option and the field it sets.
struct TextOption {
  const char* name;
  std::string ServerConfig::*field;
};

constexpr TextOption kTextOptions[] = {
    {"--data-dir", &ServerConfig::data_dir},
    {"--web-root", &ServerConfig::web_root},
    {"--migrations", &ServerConfig::migrations_dir},
    {"--port-file", &ServerConfig::port_file},
};

// One command-line option and its value; `tokens_file` receives --tokens-file.
domain::Status ApplyOption(const std::string& arg, const std::string& value, ServerConfig& c,
                           std::string& tokens_file) {
  for (const auto& o : kIntOptions) {
    if (arg != o.name) continue;
    auto n = ParseInt(arg, value, o.min, o.max);
    if (!n.ok()) return n.error();
    o.set(c, *n);
    return {};
  }
  for (const auto& o : kTextOptions) {
    if (arg != o.name) continue;
    c.*o.field = value;
    return {};
  }
  if (arg == "--listen") return ParseListen(value, c);
  if (arg == "--allow-host") return AddAllowedHosts(arg, value, c);
  if (arg == "--tokens-file") {
    tokens_file = value;
    return {};
  }
  if (arg == "--config") return {};  // read before the other options, which override the file
  return MakeError(ErrorCode::kInvalidArgument, "unknown option " + arg + " (see --help)");
}

// What the environment adds: stack endpoints, allowed hosts, and the tokens (a tokens file wins
// over LAB_TOKENS). Read once, at start-up.
domain::Status ApplyEnvironmentAndTokens(ServerConfig& c, const std::string& tokens_file) {
  ApplyEnvironment(c.stack);
  if (const char* v = std::getenv("LAB_ALLOWED_HOSTS")) {  // NOLINT(concurrency-mt-unsafe)
    if (auto s = AddAllowedHosts("LAB_ALLOWED_HOSTS", v, c); !s.ok()) return s;
  }
  if (!tokens_file.empty()) {
    auto text = ReadFile(tokens_file, "tokens file");
    if (!text.ok()) return text.error();
    c.tokens = TokensFileToSpec(*text);
  } else if (const char* t = std::getenv("LAB_TOKENS")) {  // NOLINT(concurrency-mt-unsafe)
    c.tokens = t;
  }
  return {};
}

}  // namespace

domain::Result<ServerConfig> LoadConfig(int argc, char** argv) {
  ServerConfig c = TreeDefaults();
  // The file first, then the command line over it: a flag always wins over the file.
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--config") {
      if (auto s = ApplyConfigFile(argv[i + 1], c); !s.ok()) return s.error();
    }
  }
  std::string tokens_file;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return MakeError(ErrorCode::kNotFound, Usage());
    if (i + 1 >= argc)
      return MakeError(ErrorCode::kInvalidArgument, arg + " needs a value (see --help)");
    if (auto s = ApplyOption(arg, argv[++i], c, tokens_file); !s.ok()) return s.error();
  }
  if (auto s = ApplyEnvironmentAndTokens(c, tokens_file); !s.ok()) return s.error();
  return c;
}

}  // namespace lab::server
