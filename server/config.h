// The server's configuration: a plain struct with commented defaults, loaded once at start
// from the command line, an optional JSON file (--config) and LAB_* environment variables.
#pragma once

#include <string>
#include <vector>

#include "domain/result.h"
#include "runners/stack_config.h"

namespace lab::server {

struct ServerConfig {
  std::string listen_host = "127.0.0.1";
  unsigned short listen_port = 8080;
  std::string data_dir = ".lab/data";  // SQLite store lives here (lab.db)
  int workers = 2;                     // run workers, separate from HTTP threads
  int http_threads = 2;
  std::size_t queue_capacity = 1000;  // queued runs beyond this get 503 + Retry-After
  double rate_limit = 100;            // API requests per second per client; 0 = off
  double rate_burst = 200;
  std::size_t body_limit = 64 * 1024;
  int max_event_streams = 64;         // open SSE streams (each polls the store); 503 beyond
  int read_timeout_seconds = 10;      // a started request must arrive whole within this
  int idle_timeout_seconds = 30;      // a kept-alive connection may idle this long
  int shutdown_timeout_seconds = 30;  // SIGTERM: running runs get this long to clean up
  std::string web_root;               // default: the source tree's web/
  std::string migrations_dir;         // default: the source tree's migrations/
  std::string port_file;              // write the bound port here (tests use port 0)
  std::string tokens;                 // "token:role,…" from LAB_TOKENS or --tokens-file
  // Host names served besides loopback and listen_host (--allow-host, LAB_ALLOWED_HOSTS); a
  // request naming another host is refused (DNS rebinding). "*" allows any.
  std::vector<std::string> allowed_hosts;
  runners::StackConfig stack;
};

// Parses argv (and the files and environment it points to). Errors name the bad option.
// --help comes back as an error with code kNotFound whose message is the usage text.
domain::Result<ServerConfig> LoadConfig(int argc, char** argv);

// A tokens file's text as a LAB_TOKENS spec: one "token:role" per line or comma-separated;
// blank lines and lines starting with '#' are skipped.
std::string TokensFileToSpec(const std::string& text);

std::string Usage();

}  // namespace lab::server
