#include "runners/service/http_wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace lab::runners::service {
namespace {

constexpr std::size_t kMaxHead = 16 * 1024;
constexpr std::size_t kMaxBody = 1024 * 1024;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// strerrordesc_np, unlike strerror, returns a constant string: safe from any thread.
std::string ErrnoText() {
  const char* what = strerrordesc_np(errno);
  return what != nullptr ? what : "errno " + std::to_string(errno);
}

int MsLeft(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

std::string WireRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

std::optional<WireRequest> ParseRequestHead(std::string_view head) {
  WireRequest r;
  const auto eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return std::nullopt;
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return std::nullopt;
  if (line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) return std::nullopt;
  r.method = std::string(line.substr(0, sp1));
  r.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  const auto q = r.target.find('?');
  r.path = r.target.substr(0, q);
  r.query = q == std::string::npos ? "" : r.target.substr(q + 1);
  std::string_view rest = eol == std::string_view::npos ? "" : head.substr(eol + 2);
  while (!rest.empty()) {
    const auto e = rest.find("\r\n");
    std::string_view h = rest.substr(0, e);
    rest = e == std::string_view::npos ? "" : rest.substr(e + 2);
    if (h.empty()) continue;
    const auto colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    r.headers[Lower(Trim(h.substr(0, colon)))] = std::string(Trim(h.substr(colon + 1)));
  }
  return r;
}

std::string QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1));
    }
  }
  return "";
}

domain::Result<WireRequest> ReadRequest(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string data;
  std::size_t head_end = std::string::npos;
  std::size_t need = 0;  // total bytes once the head is known
  char buf[4096];
  for (;;) {
    if (head_end == std::string::npos) {
      head_end = data.find("\r\n\r\n");
      if (head_end == std::string::npos && data.size() > kMaxHead)
        return domain::MakeError(domain::ErrorCode::kInvalidArgument, "request head too large");
      if (head_end != std::string::npos) {
        auto parsed = ParseRequestHead(std::string_view(data).substr(0, head_end));
        if (!parsed) return domain::MakeError(domain::ErrorCode::kInvalidArgument, "bad request");
        std::size_t length = 0;
        const std::string cl = parsed->Header("content-length");
        if (!cl.empty()) {
          if (cl.find_first_not_of("0123456789") != std::string::npos || cl.size() > 9)
            return domain::MakeError(domain::ErrorCode::kInvalidArgument, "bad content-length");
          length = static_cast<std::size_t>(std::stoul(cl));
          if (length > kMaxBody)
            return domain::MakeError(domain::ErrorCode::kInvalidArgument, "body too large");
        }
        need = head_end + 4 + length;
      }
    }
    if (head_end != std::string::npos && data.size() >= need) {
      auto parsed = ParseRequestHead(std::string_view(data).substr(0, head_end));
      parsed->body = data.substr(head_end + 4, need - head_end - 4);
      return std::move(*parsed);
    }
    pollfd p{fd, POLLIN, 0};
    const int left = MsLeft(deadline);
    const int rc = ::poll(&p, 1, left);
    if (rc == 0) return domain::MakeError(domain::ErrorCode::kTimeout, "request read timed out");
    if (rc < 0) {
      if (errno == EINTR) continue;
      return domain::MakeError(domain::ErrorCode::kUnavailable, ErrnoText());
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return domain::MakeError(domain::ErrorCode::kUnavailable, "peer closed");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return domain::MakeError(domain::ErrorCode::kUnavailable, ErrnoText());
    }
    data.append(buf, static_cast<std::size_t>(n));
  }
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

bool WriteResponse(int fd, int status, std::string_view body,
                   const std::vector<std::pair<std::string, std::string>>& headers,
                   std::string_view content_type, std::chrono::milliseconds timeout) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) + "\r\n";
  out += "Content-Type: " + std::string(content_type) + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += "Connection: close\r\n";
  for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  out.append(body);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t sent = 0;
  while (sent < out.size()) {
    pollfd p{fd, POLLOUT, 0};
    const int rc = ::poll(&p, 1, MsLeft(deadline));
    if (rc == 0) return false;
    if (rc < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return false;
    }
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    port_ = other.port_;
    other.fd_ = -1;
  }
  return *this;
}

Listener::~Listener() {
  if (fd_ >= 0) ::close(fd_);
}

domain::Result<Listener> Listener::Open(int port, int backlog) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return domain::MakeError(domain::ErrorCode::kUnavailable, ErrnoText());
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, backlog) != 0) {
    const std::string why = ErrnoText();
    ::close(fd);
    return domain::MakeError(domain::ErrorCode::kUnavailable, "bind/listen: " + why);
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return Listener(fd, ntohs(addr.sin_port));
}

int Listener::Accept(std::chrono::milliseconds wait) const {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return -1;
  const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

void CloseSocket(int fd) {
  if (fd < 0) return;
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
}

}  // namespace lab::runners::service
