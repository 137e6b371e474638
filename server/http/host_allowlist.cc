#include "server/http/host_allowlist.h"

#include <algorithm>
#include <cctype>

namespace lab::server {

HostAllowlist::HostAllowlist(const std::vector<std::string>& extra_hosts,
                             const std::string& listen_host)
    : names_{"localhost", "127.0.0.1", "::1"} {
  auto add = [&](const std::string& host) {
    if (host == "*") any_ = true;
    const std::string name = NameOf(host);
    if (name.empty() || std::find(names_.begin(), names_.end(), name) != names_.end()) return;
    names_.push_back(name);
  };
  // A wildcard listen address is not a name anyone sends in Host.
  if (listen_host != "0.0.0.0" && listen_host != "::") add(listen_host);
  for (const auto& h : extra_hosts) add(h);
}

std::string HostAllowlist::NameOf(std::string_view authority) {
  std::string_view host = authority;
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    host = close == std::string_view::npos ? host.substr(1) : host.substr(1, close - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  std::string name(host);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!name.empty() && name.back() == '.') name.pop_back();  // "localhost." is localhost
  return name;
}

bool HostAllowlist::Allows(std::string_view authority) const {
  if (any_ || authority.empty()) return true;
  const std::string name = NameOf(authority);
  return std::find(names_.begin(), names_.end(), name) != names_.end();
}

bool HostAllowlist::AllowsOrigin(std::string_view origin) const {
  if (any_) return true;
  for (std::string_view scheme : {"http://", "https://"}) {
    if (origin.substr(0, scheme.size()) != scheme) continue;
    std::string_view rest = origin.substr(scheme.size());
    if (rest.empty()) return false;
    return Allows(rest.substr(0, rest.find('/')));
  }
  return false;
}

std::string HostAllowlist::Names() const {
  if (any_) return "*";
  std::string out;
  for (const auto& n : names_) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace lab::server
