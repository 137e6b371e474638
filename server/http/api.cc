#include "server/http/api.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "domain/catalog.h"
#include "domain/run_locks.h"
#include "domain/run_request.h"
#include "domain/sha256.h"
#include "server/http/json_body.h"
#include "server/http/problem.h"
#include "server/http/static_files.h"
#include "server/json_codec.h"
#include "server/time_format.h"

namespace lab::server {
namespace {

// What an unauthenticated request asked for, as the audit keeps it: bytes outside printable
// ASCII percent-encoded (the audit is JSON, always valid UTF-8) and at most kAuditTargetMax
// characters, so a stranger cannot grow the audit by sending long paths.
constexpr std::size_t kAuditTargetMax = 256;
std::string AuditTarget(const std::string& method, const std::string& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = method.substr(0, 16) + " ";
  for (unsigned char ch : path) {
    if (out.size() >= kAuditTargetMax) {
      out += "...(" + std::to_string(path.size()) + " bytes)";
      break;
    }
    if (ch > 0x20 && ch < 0x7F) {
      out += static_cast<char>(ch);
    } else {
      out += {'%', kHex[ch >> 4], kHex[ch & 15]};
    }
  }
  return out;
}

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream in(path);
  std::string part;
  while (std::getline(in, part, '/')) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

}  // namespace

Api::Api(RunStore& store, RunService& runs, LabMetrics& metrics, ReadinessMonitor* readiness,
         StackHealth& health, TokenTable tokens, RateLimiter& limiter,
         std::set<std::string> available, ApiOptions options, CleanupRetrier* cleanups)
    : store_(store),
      runs_(runs),
      metrics_(metrics),
      readiness_(readiness),
      health_(health),
      cleanups_(cleanups),
      tokens_(std::move(tokens)),
      limiter_(limiter),
      available_(std::move(available)),
      options_(std::move(options)),
      hosts_(options_.allowed_hosts, options_.listen_host),
      openapi_body_(std::make_shared<const std::string>(options_.openapi_json)) {}

HttpResponse Api::Handle(const HttpRequest& request) {
  auto started = std::chrono::steady_clock::now();
  std::string route = "unmatched";
  HttpResponse response;
  try {
    response = Route(request, route);
  } catch (const std::exception& e) {
    response = Problem(500, "Internal error", std::string("the server failed: ") + e.what());
  }
  response.route = route;
  response.AddHeader("X-Request-Id", request.request_id);
  metrics_.ObserveHttp(
      route, request.method, response.status,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return response;
}

void Api::AuditRefusal(const HttpRequest& req, const std::string& why) {
  (void)store_.AppendAudit(
      "request.refused", AuditTarget(req.method, req.path), "",
      JsonBody(Json{{"reason", why.substr(0, 256)}, {"remote", req.remote_ip}}),
      Actor{"anonymous", req.request_id});
}

std::optional<HttpResponse> Api::CheckHost(const HttpRequest& req) {
  const std::string host = req.Header("host").value_or("");
  if (hosts_.Allows(host)) return std::nullopt;
  const std::string why = "Host " + host.substr(0, 100) + " is not one of this server's names (" +
                          hosts_.Names() + "); add it with --allow-host";
  AuditRefusal(req, why);
  return Problem(403, "Host not allowed", why);
}

std::optional<HttpResponse> Api::CheckSameOrigin(const HttpRequest& req) {
  // A browser on another site cannot start or cancel runs: it always sends Origin (and
  // Sec-Fetch-Site) on a cross-site POST, and we refuse those. curl sends neither. The Origin
  // must also be one of our names: Host alone is the attacker's choice after DNS rebinding.
  if (auto site = req.Header("sec-fetch-site"); site && *site != "same-origin" && *site != "none") {
    const std::string why =
        "mutating requests must come from this server's own pages (Sec-Fetch-Site: " +
        site->substr(0, 50) + ")";
    AuditRefusal(req, why);
    return Problem(403, "Cross-site request refused", why);
  }
  if (auto origin = req.Header("origin")) {
    auto host = req.Header("host").value_or("");
    if ((*origin != "http://" + host && *origin != "https://" + host) ||
        !hosts_.AllowsOrigin(*origin)) {
      const std::string why = "Origin " + origin->substr(0, 100) + " does not match this server (" +
                              host.substr(0, 100) + ")";
      AuditRefusal(req, why);
      return Problem(403, "Cross-origin request refused", why);
    }
  }
  return std::nullopt;
}

Api::Authorised Api::Authorise(const HttpRequest& req, Role needed) {
  Authorised result;
  auto header = req.Header("authorization");
  auto audit_failure = [&](const std::string& action, const std::string& why) {
    (void)store_.AppendAudit(action, AuditTarget(req.method, req.path), "",
                             Json{{"reason", why}, {"remote", req.remote_ip}}.dump(),
                             Actor{"anonymous", req.request_id});
  };
  if (header) {
    const std::string prefix = "Bearer ";
    std::optional<Principal> who;
    if (header->rfind(prefix, 0) == 0) who = tokens_.Find(header->substr(prefix.size()));
    if (!who) {
      audit_failure("auth.failed", "unknown or malformed bearer token");
      auto r = Problem(401, "Unauthenticated", "the bearer token is not valid");
      r.AddHeader("WWW-Authenticate", "Bearer");
      result.refusal = r;
      return result;
    }
    result.principal = *who;
  } else if (options_.allow_anonymous) {
    result.principal = Principal{"local", Role::kAdmin};
  } else {
    audit_failure("auth.failed", "no bearer token");
    auto r =
        Problem(401, "Unauthenticated", "this server requires 'Authorization: Bearer <token>'");
    r.AddHeader("WWW-Authenticate", "Bearer");
    result.refusal = r;
    return result;
  }
  if (static_cast<int>(result.principal.role) < static_cast<int>(needed)) {
    (void)store_.AppendAudit(
        "auth.forbidden", AuditTarget(req.method, req.path), "",
        Json{{"role", ToString(result.principal.role)}, {"needed", ToString(needed)}}.dump(),
        Actor{result.principal.name, req.request_id});
    result.refusal = Problem(403, "Forbidden",
                             std::string("this needs the ") + ToString(needed) +
                                 " role; the token has " + ToString(result.principal.role));
  }
  return result;
}

namespace {

bool Matches(const std::vector<const char*>& shape, const std::vector<std::string>& parts) {
  if (parts.size() != shape.size()) return false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (std::string_view(shape[i]) != "*" && parts[i] != shape[i]) return false;
  }
  return true;
}

// The API's own paths: under them, an unknown path is a 404, never the UI.
bool IsApiPath(const std::vector<std::string>& parts) {
  return !parts.empty() && (parts[0] == "experiments" || parts[0] == "runs" || parts[0] == "halt" ||
                            parts[0] == "audit");
}

HttpResponse MethodNotAllowed(const HttpRequest& req, const std::string& allowed) {
  auto r = Problem(405, "Method not allowed", req.method + " is not allowed on " + req.path);
  r.AddHeader("Allow", allowed);
  return r;
}

}  // namespace

std::string Api::AllowedAt(const std::vector<std::string>& parts) {
  std::string allowed;
  for (const auto& r : Routes()) {
    if (Matches(r.shape, parts) && std::string_view(r.method) != "HEAD")
      allowed += (allowed.empty() ? "" : ", ") + std::string(r.method);
  }
  return allowed;
}

std::optional<HttpResponse> Api::RateLimit(const HttpRequest& req) {
  const int wait = limiter_.Acquire(req.remote_ip, std::chrono::steady_clock::now());
  if (wait <= 0) return std::nullopt;
  metrics_.AdmissionRejected("rate_limited");
  auto r = Problem(429, "Too many requests", "slow down: this client is over its request rate");
  r.AddHeader("Retry-After", std::to_string(wait));
  return r;
}

// Host check, then the route: a public one is answered at once; an API one after the client's
// rate limit, its token and role, and (for a change) the same-origin check; anything else is
// the UI's static files.
HttpResponse Api::Route(const HttpRequest& req, std::string& route) {
  if (auto refused = CheckHost(req)) {  // every resource answers only to this server's names
    route = "host_refused";
    return *refused;
  }
  const auto parts = Split(req.path);
  const RouteSpec* here = nullptr;  // the first route at this path, whatever its method
  const RouteSpec* chosen = nullptr;
  for (const auto& r : Routes()) {
    if (!Matches(r.shape, parts)) continue;
    if (here == nullptr) here = &r;
    if (req.method == r.method) {
      chosen = &r;
      break;
    }
  }
  if (here == nullptr && !IsApiPath(parts)) {
    route = "/ui";
    if (req.method != "GET" && req.method != "HEAD") return MethodNotAllowed(req, "GET");
    return ServeStaticFile(options_.web_root, req.path);
  }
  if (here != nullptr && !here->role) {  // public
    route = here->name;
    return chosen ? chosen->handle(*this, Call{req, parts, Principal{}})
                  : MethodNotAllowed(req, AllowedAt(parts));
  }
  route = here == nullptr ? "/" + parts[0] : here->name;
  if (auto limited = RateLimit(req)) return *limited;
  if (here == nullptr) return Problem(404, "Not found", "no resource at " + req.path);
  const bool mutating = req.method != "GET" && req.method != "HEAD";
  // A method the path does not have is refused after authentication, as its kind needs.
  const Role needed = chosen ? *chosen->role : mutating ? Role::kOperator : Role::kViewer;
  auto auth = Authorise(req, needed);
  if (auth.refusal) return *auth.refusal;
  if (mutating) {
    if (auto refused = CheckSameOrigin(req)) return *refused;
  }
  if (!chosen) return MethodNotAllowed(req, AllowedAt(parts));
  return chosen->handle(*this, Call{req, parts, auth.principal});
}

}  // namespace lab::server
