// Just enough HTTP/1.1 for the service under test and its downstream: a listening socket on
// loopback, reading one request (request line, headers, a Content-Length body) with a bound on
// time and size, and writing one response with `Connection: close`. One request per
// connection keeps the service's threading plain: whoever reads a request answers it.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/result.h"

namespace lab::runners::service {

struct WireRequest {
  std::string method;
  std::string target;  // as sent: path?query
  std::string path;
  std::string query;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string Header(const std::string& lower_name) const;
};

// Parses the head (up to and excluding the blank line); nullopt when malformed.
std::optional<WireRequest> ParseRequestHead(std::string_view head);
// The value of `name` in a query string ("id=7&x=1"), or "".
std::string QueryParam(std::string_view query, std::string_view name);

// Reads one request from `fd`; fails on timeout, EOF, a head over 16 KiB or a body over 1 MiB.
domain::Result<WireRequest> ReadRequest(int fd, std::chrono::milliseconds timeout);
// Writes a whole response (bounded by `timeout`); false when the peer is gone.
bool WriteResponse(int fd, int status, std::string_view body,
                   const std::vector<std::pair<std::string, std::string>>& headers = {},
                   std::string_view content_type = "application/json",
                   std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
const char* ReasonPhrase(int status);

// A listening TCP socket on 127.0.0.1 (port 0: the kernel picks one).
class Listener {
 public:
  static domain::Result<Listener> Open(int port, int backlog = 128);
  Listener(Listener&& other) noexcept : fd_(other.fd_), port_(other.port_) { other.fd_ = -1; }
  Listener& operator=(Listener&& other) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener();
  int port() const { return port_; }
  // A connected socket, or -1 when none arrived within `wait` (so the caller can check for a
  // stop between waits).
  int Accept(std::chrono::milliseconds wait) const;

 private:
  Listener(int fd, int port) : fd_(fd), port_(port) {}
  int fd_ = -1;
  int port_ = 0;
};

// Closes a socket (after a shutdown of the write side, so the peer reads the whole response).
void CloseSocket(int fd);

}  // namespace lab::runners::service
