#include "runners/net/toxiproxy.h"

#include "runners/registry/http_client.h"

namespace lab::runners::net {
namespace {

domain::Error Failed(const std::string& what, const registry::HttpResponse& r) {
  return domain::MakeError(
      domain::ErrorCode::kUnavailable,
      "toxiproxy " + what + ": HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 200));
}

}  // namespace

int PortOf(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return 0;
  const std::string p = address.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoi(p);
}

domain::Result<int> Toxiproxy::CreateProxy(const std::string& name,
                                           const std::string& upstream) const {
  const nlohmann::json body = {
      {"name", name}, {"listen", "127.0.0.1:0"}, {"upstream", upstream}, {"enabled", true}};
  auto r =
      registry::HttpRequest("POST", base_ + "/proxies", body.dump(), "application/json", timeout_);
  if (!r) return r.error();
  if (r->status != 201 && r->status != 200) return Failed("create proxy " + name, *r);
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  const int port = j.is_object() ? PortOf(j.value("listen", "")) : 0;
  if (port == 0) {
    return domain::MakeError(domain::ErrorCode::kInternal,
                             "toxiproxy create proxy " + name + ": no listen port in " + r->body);
  }
  return port;
}

domain::Status Toxiproxy::DeleteProxy(const std::string& name) const {
  auto r = registry::HttpRequest("DELETE", base_ + "/proxies/" + name, "", "", timeout_);
  if (!r) return r.error();
  if (r->status != 204 && r->status != 200 && r->status != 404)
    return Failed("delete proxy " + name, *r);
  return {};
}

domain::Status Toxiproxy::AddToxic(const std::string& proxy, const std::string& toxic,
                                   const std::string& type, const std::string& stream,
                                   const nlohmann::json& attributes) const {
  const nlohmann::json body = {{"name", toxic},
                               {"type", type},
                               {"stream", stream},
                               {"toxicity", 1.0},
                               {"attributes", attributes}};
  auto r = registry::HttpRequest("POST", base_ + "/proxies/" + proxy + "/toxics", body.dump(),
                                 "application/json", timeout_);
  if (!r) return r.error();
  if (r->status != 200 && r->status != 201) return Failed("add toxic " + toxic, *r);
  return {};
}

domain::Status Toxiproxy::RemoveToxic(const std::string& proxy, const std::string& toxic) const {
  auto r = registry::HttpRequest("DELETE", base_ + "/proxies/" + proxy + "/toxics/" + toxic, "", "",
                                 timeout_);
  if (!r) return r.error();
  if (r->status != 204 && r->status != 200 && r->status != 404)
    return Failed("remove toxic " + toxic, *r);
  return {};
}

domain::Result<std::vector<ProxyInfo>> Toxiproxy::ListProxies() const {
  auto r = registry::HttpRequest("GET", base_ + "/proxies", "", "", timeout_);
  if (!r) return r.error();
  if (r->status != 200) return Failed("list proxies", *r);
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_object()) {
    return domain::MakeError(domain::ErrorCode::kInternal, "toxiproxy /proxies: not an object");
  }
  std::vector<ProxyInfo> out;
  for (const auto& [name, p] : j.items()) {
    if (!p.is_object()) continue;
    ProxyInfo info{
        name, p.value("listen", ""), p.value("upstream", ""), p.value("enabled", true), {}};
    if (p.contains("toxics") && p["toxics"].is_array()) {
      for (const auto& t : p["toxics"]) {
        if (t.is_object()) info.toxics.push_back(t.value("name", "?"));
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace lab::runners::net
