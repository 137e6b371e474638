// A small synchronous HTTP/1.1 client for the end-to-end tests (Boost.Beast). Every call has a
// deadline (async operations driven by io_context::run, so a hung server fails the test instead
// of hanging it). One connection per request unless a RawConnection is used.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace lab::e2e {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Json = nlohmann::json;
using Headers = std::map<std::string, std::string>;

struct HttpResult {
  int status = 0;     // 0: no response (the error says why)
  std::string error;  // transport error, empty when a response arrived
  Headers headers;    // names lower-cased
  std::string body;

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool HasHeader(const std::string& lower_name) const { return headers.count(lower_name) > 0; }
  Json json() const { return Json::parse(body, nullptr, false); }
};

inline std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Runs one asynchronous operation to completion on `ioc` and returns its error.
template <typename Start>
beast::error_code RunOp(net::io_context& ioc, Start&& start) {
  beast::error_code result = net::error::would_block;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

class HttpClient {
 public:
  explicit HttpClient(unsigned short port, std::string host = "127.0.0.1")
      : port_(port), host_(std::move(host)) {}

  HttpResult Get(const std::string& target, const Headers& headers = {}) {
    return Request("GET", target, "", headers);
  }
  HttpResult Post(const std::string& target, const std::string& body = "",
                  const Headers& headers = {}) {
    return Request("POST", target, body, headers);
  }
  HttpResult PostJson(const std::string& target, const Json& body, const Headers& headers = {}) {
    return Request("POST", target, body.dump(), headers);
  }
  HttpResult Delete(const std::string& target, const Headers& headers = {}) {
    return Request("DELETE", target, "", headers);
  }

  // Sends one request and reads the whole response (for SSE: until the server closes or the
  // deadline passes; the partial body is returned with error "timeout").
  HttpResult Request(const std::string& method, const std::string& target, const std::string& body,
                     const Headers& headers = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    HttpResult out;
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(timeout);
    tcp::endpoint ep(net::ip::make_address(host_), port_);
    if (auto ec = RunOp(ioc, [&](auto h) { stream.async_connect(ep, h); })) {
      out.error = "connect: " + ec.message();
      return out;
    }
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    if (req.method() == http::verb::unknown) req.method_string(method);
    req.set(http::field::host, host_ + ":" + std::to_string(port_));
    req.set(http::field::user_agent, "lab-e2e");
    bool has_content_type = false;
    for (const auto& [name, value] : headers) {
      req.set(name, value);
      if (Lower(name) == "content-type") has_content_type = true;
    }
    if (!body.empty() && !has_content_type) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    if (auto ec = RunOp(ioc, [&](auto h) { http::async_write(stream, req, h); })) {
      out.error = "write: " + ec.message();
      return out;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    auto ec = RunOp(ioc, [&](auto h) { http::async_read(stream, buffer, parser, h); });
    if (ec && !parser.is_header_done()) {
      out.error = "read: " + ec.message();
      return out;
    }
    if (ec) out.error = ec == beast::error::timeout ? "timeout" : ec.message();
    const auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res)
      out.headers[Lower(std::string(f.name_string()))] = std::string(f.value());
    out.body = res.body();
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    return out;
  }

  unsigned short port() const { return port_; }

 private:
  unsigned short port_;
  std::string host_;
};

// A raw TCP connection: for requests a well-behaved client never sends (half requests,
// oversized headers) and for watching when the server closes the connection.
class RawConnection {
 public:
  explicit RawConnection(unsigned short port) : stream_(ioc_) {
    stream_.expires_after(std::chrono::seconds(5));
    tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port);
    connect_error_ = RunOp(ioc_, [&](auto h) { stream_.async_connect(ep, h); });
  }

  bool connected() const { return !connect_error_; }

  beast::error_code Send(const std::string& bytes) {
    stream_.expires_after(std::chrono::seconds(5));
    return RunOp(ioc_, [&](auto h) { net::async_write(stream_, net::buffer(bytes), h); });
  }

  // Reads until the server closes the connection (returns true) or `timeout` passes (false).
  // Everything received is appended to received().
  bool ReadUntilClosed(std::chrono::milliseconds timeout) {
    stream_.expires_after(timeout);
    for (;;) {
      char buf[4096];
      std::size_t n = 0;
      beast::error_code ec = net::error::would_block;
      stream_.async_read_some(net::buffer(buf), [&](beast::error_code e, std::size_t bytes) {
        ec = e;
        n = bytes;
      });
      ioc_.restart();
      ioc_.run();
      received_.append(buf, n);
      if (ec == beast::error::timeout) return false;
      if (ec) return true;  // eof or reset: closed by the server
    }
  }

  // Reads one complete response (headers and body by Content-Length) within `timeout`.
  HttpResult ReadResponse(std::chrono::milliseconds timeout) {
    HttpResult out;
    stream_.expires_after(timeout);
    http::response_parser<http::string_body> parser;
    auto ec = RunOp(ioc_, [&](auto h) { http::async_read(stream_, buffer_, parser, h); });
    if (ec && !parser.is_header_done()) {
      out.error = ec.message();
      return out;
    }
    const auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res)
      out.headers[Lower(std::string(f.name_string()))] = std::string(f.value());
    out.body = res.body();
    return out;
  }

  const std::string& received() const { return received_; }

 private:
  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  beast::error_code connect_error_;
  std::string received_;
};

// The status code of the first response line in raw bytes ("HTTP/1.1 413 ..."), 0 if none.
inline int StatusOf(const std::string& raw) {
  if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12) return 0;
  return std::atoi(raw.substr(9, 3).c_str());
}

}  // namespace lab::e2e
