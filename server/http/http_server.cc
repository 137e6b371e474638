#include "server/http/http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <iostream>
#include <memory>
#include <random>

#include "server/http/problem.h"

namespace lab::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

std::string NewRequestId() {
  static std::atomic<std::uint64_t> counter{0};
  static const std::uint64_t prefix = std::random_device{}();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06llx-%llx", static_cast<unsigned long long>(prefix & 0xffffff),
                static_cast<unsigned long long>(++counter));
  return buf;
}

bool SafeRequestId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return false;
  }
  return true;
}

// What one read of an idle kept-alive connection asks for: the start of the next request.
constexpr std::size_t kIdleReadChunk = 4096;
// A lingering close reads and drops at most this long and this much.
constexpr auto kLingerTime = std::chrono::seconds(5);
constexpr std::size_t kLingerBytes = 64 * 1024 * 1024;
constexpr std::size_t kDiscardChunk = 16 * 1024;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, Api& api, const HttpServerOptions& options)
      : stream_(std::move(socket)), api_(api), options_(options), timer_(stream_.get_executor()) {}

  void Run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::DoRead, shared_from_this()));
  }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->body_limit(options_.body_limit);
    parser_->header_limit(options_.header_limit);
    // Between requests a kept-alive connection may idle for the idle timeout; once a request's
    // first byte is in, the whole request must follow within the read timeout, so half a
    // request cannot hold the connection for the idle timeout. A new connection has sent
    // nothing yet and gets only the read timeout: connecting and staying silent is not idling.
    if (requests_ > 0 && buffer_.size() == 0) {
      stream_.expires_after(options_.idle_timeout);
      stream_.async_read_some(buffer_.prepare(kIdleReadChunk),
                              beast::bind_front_handler(&Session::OnIdleRead, shared_from_this()));
      return;
    }
    ReadRequest();
  }

  void OnIdleRead(beast::error_code ec, std::size_t bytes) {
    if (ec) return Close();  // idle timeout, or the client went away
    buffer_.commit(bytes);
    ReadRequest();
  }

  void ReadRequest() {
    stream_.expires_after(options_.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      return WriteError(
          413, "Body too large",
          "the body is over the limit of " + std::to_string(options_.body_limit) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return WriteError(431, "Headers too large", "the request headers are over the limit");
    }
    if (ec)
      return WriteError(400, "Malformed request",
                        "the request is not valid HTTP/1.1: " + ec.message());
    ++requests_;
    const auto& msg = parser_->get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    if (!ParseTarget(req.target, req.path, req.query)) {
      return WriteError(400, "Malformed URL", "the request target is not a valid path");
    }
    for (const auto& field : msg) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers[name] = std::string(field.value());
    }
    req.body = msg.body();
    req.remote_ip = RemoteIp();
    auto incoming = req.Header("x-request-id");
    req.request_id = incoming && SafeRequestId(*incoming) ? *incoming : NewRequestId();
    keep_alive_ = msg.keep_alive();
    HttpResponse response = api_.Handle(req);
    if (response.stream) return StartEvents(req, std::move(response));
    Write(std::move(response), req.method == "HEAD");
  }

  // Asked of the socket once per connection, not per request (getpeername is a system call).
  const std::string& RemoteIp() {
    if (remote_ip_.empty()) {
      beast::error_code ec;
      auto remote = stream_.socket().remote_endpoint(ec);
      remote_ip_ = ec ? "unknown" : remote.address().to_string();
    }
    return remote_ip_;
  }

  // An error found before the request was read to its end (413, 431, 400): the client may
  // still be sending, so the connection is closed lingeringly (below).
  void WriteError(int status, const std::string& title, const std::string& detail) {
    keep_alive_ = false;
    linger_ = true;
    Write(Problem(status, title, detail), false);
  }

  // What one write sends: the message points into `owned` or `shared`, which live as long as
  // the write does.
  struct Outgoing {
    std::string owned;
    std::shared_ptr<const std::string> shared;
    http::response<http::span_body<const char>> message;
  };

  void Write(HttpResponse response, bool head) {
    auto out = std::make_shared<Outgoing>();
    out->owned = std::move(response.body);
    out->shared = std::move(response.shared_body);
    std::string_view body = out->shared ? std::string_view(*out->shared) : out->owned;
    auto& res = out->message;
    res.result(static_cast<unsigned>(response.status));
    res.version(11);
    res.set(http::field::server, "reliability-lab");
    res.set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) res.insert(name, value);
    res.keep_alive(keep_alive_);
    if (head) {
      res.content_length(body.size());
    } else {
      res.body() = beast::span<const char>(body.data(), body.size());
      res.prepare_payload();
    }
    stream_.expires_after(options_.write_timeout);
    http::async_write(stream_, res,
                      [self = shared_from_this(), out](beast::error_code ec, std::size_t) {
                        if (!ec && self->linger_) return self->LingeringClose();
                        if (ec || !self->keep_alive_ || out->message.need_eof())
                          return self->Close();
                        self->DoRead();
                      });
  }

  // Closing a socket with unread input resets the connection, and a client still writing its
  // body (most do, before they read) sees a broken pipe instead of the answer. So: stop
  // sending, then read and drop what the client still sends, until it closes or a bound of time
  // or bytes is reached (nginx's "lingering close").
  void LingeringClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return Close();
    linger_until_ = std::chrono::steady_clock::now() + kLingerTime;
    discard_ = std::make_unique<char[]>(kDiscardChunk);
    DiscardInput();
  }

  void DiscardInput() {
    const auto left = linger_until_ - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero() || discarded_ > kLingerBytes)
      return Close();
    stream_.expires_after(std::chrono::duration_cast<std::chrono::milliseconds>(left));
    stream_.async_read_some(net::buffer(discard_.get(), kDiscardChunk),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->Close();  // closed by the client, or time
                              self->discarded_ += n;
                              self->DiscardInput();
                            });
  }

  // Server-sent events: a plain HTTP/1.1 response without a length, closed by the server
  // when the run ends; the stream is polled on this connection's strand.
  void StartEvents(const HttpRequest& req, HttpResponse response) {
    events_ = response.stream;
    std::string head =
        "HTTP/1.1 200 OK\r\nServer: reliability-lab\r\nContent-Type: text/event-stream\r\n"
        "Cache-Control: no-cache\r\nConnection: close\r\nX-Request-Id: " +
        req.request_id + "\r\n\r\n";
    WriteEvents(std::move(head), false);
  }

  void WriteEvents(std::string text, bool finished) {
    auto buf = std::make_shared<std::string>(std::move(text));
    stream_.expires_after(options_.write_timeout);
    net::async_write(stream_, net::buffer(*buf),
                     [self = shared_from_this(), buf, finished](beast::error_code ec, std::size_t) {
                       if (ec || finished) return self->Close();
                       self->SchedulePoll();
                     });
  }

  void SchedulePoll() {
    timer_.expires_after(options_.sse_poll);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->Close();
      bool finished = false;
      std::string text;
      try {
        text = self->events_->Poll(finished);
      } catch (const std::exception& e) {
        std::clog << "event=sse.failed error=\"" << e.what() << "\"\n";
        return self->Close();
      }
      if (text.empty() && !finished) return self->SchedulePoll();
      self->WriteEvents(std::move(text), finished);
    });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Api& api_;
  const HttpServerOptions& options_;
  net::steady_timer timer_;
  std::shared_ptr<EventStream> events_;
  bool keep_alive_ = false;
  bool linger_ = false;
  std::chrono::steady_clock::time_point linger_until_;
  std::unique_ptr<char[]> discard_;  // only while lingering
  std::size_t discarded_ = 0;
  int requests_ = 0;
  std::string remote_ip_;
};

}  // namespace

HttpServer::HttpServer(IoContextPool& contexts, Api& api, HttpServerOptions options)
    : contexts_(contexts),
      api_(api),
      options_(options),
      acceptor_(contexts.main()),
      accept_retry_(contexts.main()) {}

domain::Status HttpServer::Listen(const tcp::endpoint& endpoint) {
  beast::error_code ec;
  auto fail = [&](const char* what) {
    return domain::MakeError(domain::ErrorCode::kUnavailable,
                             std::string("cannot ") + what + " " + endpoint.address().to_string() +
                                 ":" + std::to_string(endpoint.port()) + ": " + ec.message());
  };
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return fail("open");
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  acceptor_.bind(endpoint, ec);
  if (ec) return fail("bind");
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on");
  return {};
}

unsigned short HttpServer::port() const {
  beast::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void HttpServer::Start() { DoAccept(); }

void HttpServer::StopAccepting() {
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
    accept_retry_.cancel();
  });
}

void HttpServer::DoAccept() {
  acceptor_.async_accept(contexts_.next(), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      AcceptFailed(ec);
      return;
    }
    if (accept_failures_ > 0) {
      std::clog << "event=accept.recovered failures=" << accept_failures_ << "\n";
      accept_failures_ = 0;
      accept_backoff_ = std::chrono::milliseconds(0);
    }
    std::make_shared<Session>(std::move(socket), api_, options_)->Run();
    DoAccept();
  });
}

// Out of file descriptors (EMFILE, ENFILE) or memory, an accept fails at once and keeps failing:
// retrying at once spun a core (10 s of CPU in 13 s, nothing logged). Wait instead, doubling from
// 10 ms to 1 s, and say so at the first failure and every 50th.
void HttpServer::AcceptFailed(const boost::system::error_code& ec) {
  accept_backoff_ = std::clamp(accept_backoff_ * 2, std::chrono::milliseconds(10),
                               std::chrono::milliseconds(1000));
  if (accept_failures_++ % 50 == 0) {
    std::clog << "event=accept.failed error=\"" << ec.message()
              << "\" failures=" << accept_failures_ << " retry_in_ms=" << accept_backoff_.count()
              << "\n";
  }
  accept_retry_.expires_after(accept_backoff_);
  accept_retry_.async_wait([this](const boost::system::error_code& wait_ec) {
    if (!wait_ec && acceptor_.is_open()) DoAccept();
  });
}

}  // namespace lab::server
