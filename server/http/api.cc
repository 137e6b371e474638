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

HttpResponse Api::Route(const HttpRequest& req, std::string& route) {
  const auto parts = Split(req.path);
  const std::string& m = req.method;
  auto method_not_allowed = [&](const char* allowed) {
    auto r = Problem(405, "Method not allowed", m + " is not allowed on " + req.path);
    r.AddHeader("Allow", allowed);
    return r;
  };

  // Every resource, the UI included, answers only to this server's own names.
  if (auto refused = CheckHost(req)) {
    route = "host_refused";
    return *refused;
  }

  // Public: probes, metrics, the contract and the UI.
  if (parts.size() == 1 && parts[0] == "healthz") {
    route = "/healthz";
    return m == "GET" || m == "HEAD" ? Health() : method_not_allowed("GET");
  }
  if (parts.size() == 1 && parts[0] == "readyz") {
    route = "/readyz";
    return m == "GET" ? Ready() : method_not_allowed("GET");
  }
  if (parts.size() == 1 && parts[0] == "metrics") {
    route = "/metrics";
    return m == "GET" ? Metrics() : method_not_allowed("GET");
  }
  if (parts.size() == 1 && parts[0] == "openapi.json") {
    route = "/openapi.json";
    if (m != "GET") return method_not_allowed("GET");
    HttpResponse r;
    r.shared_body = openapi_body_;
    return r;
  }
  const bool api = !parts.empty() && (parts[0] == "experiments" || parts[0] == "runs" ||
                                      parts[0] == "halt" || parts[0] == "audit");
  if (!api) {
    route = "/ui";
    if (m != "GET" && m != "HEAD") return method_not_allowed("GET");
    return ServeStaticFile(options_.web_root, req.path);
  }

  // The API: rate limited per client, then authenticated and authorised.
  if (int wait = limiter_.Acquire(req.remote_ip, std::chrono::steady_clock::now()); wait > 0) {
    route = "/" + parts[0];
    metrics_.AdmissionRejected("rate_limited");
    auto r = Problem(429, "Too many requests", "slow down: this client is over its request rate");
    r.AddHeader("Retry-After", std::to_string(wait));
    return r;
  }
  const bool mutating = m != "GET" && m != "HEAD";
  Role needed = !mutating                               ? Role::kViewer
                : (m == "DELETE" && parts[0] == "halt") ? Role::kAdmin
                                                        : Role::kOperator;

  // The API's resources: matched once, by shape ("*" is an id), then dispatched by method.
  struct Call {
    const HttpRequest& req;
    const std::vector<std::string>& parts;
    const Principal& who;
  };
  struct Method {
    const char* verb;
    HttpResponse (*handle)(Api&, const Call&);
  };
  struct Resource {
    std::vector<const char*> shape;
    const char* name;
    std::vector<Method> methods;
  };
  static const std::vector<Resource> kResources = {
      {{"experiments"},
       "/experiments",
       {{"GET", [](Api& a, const Call&) { return a.ListExperiments(); }}}},
      {{"experiments", "*"},
       "/experiments/{id}",
       {{"GET", [](Api& a, const Call& c) { return a.GetExperiment(c.parts[1]); }}}},
      {{"experiments", "*", "runs"},
       "/experiments/{id}/runs",
       {{"POST", [](Api& a, const Call& c) { return a.CreateRun(c.req, c.parts[1], c.who); }}}},
      {{"runs"}, "/runs", {{"GET", [](Api& a, const Call& c) { return a.ListRuns(c.req); }}}},
      {{"runs", "*"},
       "/runs/{id}",
       {{"GET", [](Api& a, const Call& c) { return a.GetRun(c.parts[1]); }}}},
      {{"runs", "*", "events"},
       "/runs/{id}/events",
       {{"GET", [](Api& a, const Call& c) { return a.RunEvents(c.req, c.parts[1]); }}}},
      {{"runs", "*", "report"},
       "/runs/{id}/report",
       {{"GET", [](Api& a, const Call& c) { return a.RunReport(c.req, c.parts[1]); }}}},
      {{"runs", "*", "cancel"},
       "/runs/{id}/cancel",
       {{"POST", [](Api& a, const Call& c) { return a.CancelRun(c.req, c.parts[1], c.who); }}}},
      {{"runs", "*", "artifacts"},
       "/runs/{id}/artifacts",
       {{"DELETE",
         [](Api& a, const Call& c) { return a.RemoveArtifacts(c.req, c.parts[1], c.who); }}}},
      {{"halt"},
       "/halt",
       {{"GET", [](Api& a, const Call&) { return a.HaltStatus(); }},
        {"POST", [](Api& a, const Call& c) { return a.SetHalt(c.req, c.who); }},
        {"DELETE", [](Api& a, const Call& c) { return a.LiftHalt(c.req, c.who); }}}},
      {{"audit"}, "/audit", {{"GET", [](Api& a, const Call& c) { return a.ListAudit(c.req); }}}},
      {{"audit", "verify"},
       "/audit/verify",
       {{"GET", [](Api& a, const Call&) { return a.VerifyAudit(); }}}},
  };
  auto matches = [&](const Resource& r) {
    if (parts.size() != r.shape.size()) return false;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (std::string_view(r.shape[i]) != "*" && parts[i] != r.shape[i]) return false;
    }
    return true;
  };
  const auto resource = std::find_if(kResources.begin(), kResources.end(), matches);
  if (resource == kResources.end()) {
    route = "/" + parts[0];
    return Problem(404, "Not found", "no resource at " + req.path);
  }
  route = resource->name;

  auto auth = Authorise(req, needed);
  if (auth.refusal) return *auth.refusal;
  if (mutating) {
    if (auto refused = CheckSameOrigin(req)) return *refused;
  }
  for (const auto& method : resource->methods) {
    if (m == method.verb) return method.handle(*this, Call{req, parts, auth.principal});
  }
  std::string allowed;
  for (const auto& method : resource->methods)
    allowed += (allowed.empty() ? "" : ", ") + std::string(method.verb);
  return method_not_allowed(allowed.c_str());
}

}  // namespace lab::server
