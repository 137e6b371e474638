// Which names this server answers to. A web page can rebind its own domain to 127.0.0.1 (DNS
// rebinding) and then talk to the lab as "same origin": its requests carry the page's own name in
// Host and Origin, so comparing the two proves nothing. Refusing every Host that is not one of
// ours closes that door: loopback names always, the address the server listens on, and the names
// an operator adds (--allow-host, LAB_ALLOWED_HOSTS; "*" turns the check off).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lab::server {

class HostAllowlist {
 public:
  HostAllowlist(const std::vector<std::string>& extra_hosts, const std::string& listen_host);

  // `authority` is a Host header value ("localhost:8080", "[::1]:8080"); an empty one (an
  // HTTP/1.0 client sends none) is allowed: a browser always sends Host.
  bool Allows(std::string_view authority) const;
  // The same for an Origin header ("http://localhost:8080"); "null" is never allowed.
  bool AllowsOrigin(std::string_view origin) const;
  // The names, comma-separated, for error messages.
  std::string Names() const;

  // The host name of an authority: lower-cased, port and IPv6 brackets removed.
  static std::string NameOf(std::string_view authority);

 private:
  std::vector<std::string> names_;
  bool any_ = false;
};

}  // namespace lab::server
