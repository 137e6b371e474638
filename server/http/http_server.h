// The Beast listener and one session per connection (async, a strand each). Every read and
// write has a deadline, bodies and headers have limits, and a stalled client is dropped.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <memory>

#include "server/http/api.h"
#include "server/http/io_context_pool.h"

namespace lab::server {

struct HttpServerOptions {
  std::size_t body_limit = 64 * 1024;      // a run request is small; 413 beyond
  std::uint32_t header_limit = 16 * 1024;  // 431 beyond
  std::chrono::seconds read_timeout{10};   // to receive a whole request once it started
  std::chrono::seconds idle_timeout{30};   // keep-alive connection with no request
  std::chrono::seconds write_timeout{10};
  std::chrono::milliseconds sse_poll{200};
};

class HttpServer {
 public:
  // Listens on the pool's main context; each connection lives on the pool's next one.
  HttpServer(IoContextPool& contexts, Api& api, HttpServerOptions options);
  // Binds and listens; errors carry the address and the system's message.
  domain::Status Listen(const boost::asio::ip::tcp::endpoint& endpoint);
  unsigned short port() const;
  void Start();
  void StopAccepting();

 private:
  void DoAccept();
  void AcceptFailed(const boost::system::error_code& ec);

  IoContextPool& contexts_;
  Api& api_;
  HttpServerOptions options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  // After a failed accept (EMFILE…), the next one waits: on the main context only.
  boost::asio::steady_timer accept_retry_;
  std::chrono::milliseconds accept_backoff_{0};
  long accept_failures_ = 0;  // in the current streak
};

}  // namespace lab::server
