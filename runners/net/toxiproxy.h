// Toxiproxy's admin API (http://127.0.0.1:18474 on the local stack) for network faults between
// two processes of a run: a proxy per run and mode in front of a loopback port, toxics on it
// (latency, timeout, reset_peer…), removed again. Errors carry Toxiproxy's own message.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "domain/result.h"

namespace lab::runners::net {

struct ProxyInfo {
  std::string name;
  std::string listen;    // host:port
  std::string upstream;  // host:port
  bool enabled = true;
  std::vector<std::string> toxics;  // names
};

class Toxiproxy {
 public:
  explicit Toxiproxy(std::string base_url,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(3000))
      : base_(std::move(base_url)), timeout_(timeout) {}

  // POST /proxies listening on 127.0.0.1:0; returns the port Toxiproxy chose.
  domain::Result<int> CreateProxy(const std::string& name, const std::string& upstream) const;
  // DELETE /proxies/{name} (its toxics go with it); a proxy already gone is fine.
  domain::Status DeleteProxy(const std::string& name) const;
  // POST /proxies/{proxy}/toxics: type "latency" | "timeout" | "reset_peer" | …, stream
  // "downstream" (server -> client) or "upstream", attributes e.g. {"latency": 1500}.
  domain::Status AddToxic(const std::string& proxy, const std::string& toxic,
                          const std::string& type, const std::string& stream,
                          const nlohmann::json& attributes) const;
  // DELETE /proxies/{proxy}/toxics/{toxic}; one already gone is fine.
  domain::Status RemoveToxic(const std::string& proxy, const std::string& toxic) const;
  domain::Result<std::vector<ProxyInfo>> ListProxies() const;

 private:
  std::string base_;
  std::chrono::milliseconds timeout_;
};

// The port of "host:port", or 0.
int PortOf(const std::string& address);

}  // namespace lab::runners::net
