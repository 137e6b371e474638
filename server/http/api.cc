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
#include "server/http/problem.h"
#include "server/json_codec.h"
#include "server/time_format.h"

namespace lab::server {
namespace {

constexpr int kMaxListLimit = 200;
constexpr int kDefaultListLimit = 50;
constexpr std::size_t kRunCacheEntries = 4096;

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = JsonBody(body);
  return r;
}

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

// A request body as JSON; nullopt when it is not JSON or an object repeats a key (which of two
// values was meant cannot be known: the parser would silently keep the last).
std::optional<Json> ParseBody(const std::string& text) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  bool duplicate = false;
  Json::parser_callback_t check = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) keys.emplace_back();
    if (event == Json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == Json::parse_event_t::key && !keys.empty() &&
        !keys.back().insert(parsed.get<std::string>()).second)
      duplicate = true;
    return true;
  };
  Json body = Json::parse(text, check, false);
  if (body.is_discarded() || duplicate) return std::nullopt;
  return body;
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

std::string EncodeCursor(std::int64_t seq) {
  std::ostringstream out;
  out << "c" << std::hex << (static_cast<std::uint64_t>(seq) ^ 0x5bd1e995ULL);
  return out.str();
}

std::optional<std::int64_t> DecodeCursor(const std::string& cursor) {
  if (cursor.size() < 2 || cursor.size() > 17 || cursor[0] != 'c') return std::nullopt;
  std::uint64_t value = 0;
  for (std::size_t i = 1; i < cursor.size(); ++i) {
    char c = cursor[i];
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    value = value * 16 + static_cast<std::uint64_t>(d);
  }
  return static_cast<std::int64_t>(value ^ 0x5bd1e995ULL);
}

// Reads `limit` and `cursor`; an error response when either is malformed.
std::optional<HttpResponse> ReadPaging(const HttpRequest& req, int& limit,
                                       std::optional<std::int64_t>& before) {
  limit = kDefaultListLimit;
  std::vector<domain::FieldError> errors;
  if (auto it = req.query.find("limit"); it != req.query.end()) {
    try {
      // Digits only: stol alone would also take "+5" and " 5".
      const std::string& text = it->second;
      if (text.empty() || text.size() > 4 ||
          !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw std::invalid_argument("");
      long v = std::stol(text);
      if (v < 1 || v > kMaxListLimit) throw std::out_of_range("");
      limit = static_cast<int>(v);
    } catch (const std::exception&) {
      errors.push_back({"limit", "must be an integer within [1, 200]"});
    }
  }
  if (auto it = req.query.find("cursor"); it != req.query.end()) {
    before = DecodeCursor(it->second);
    if (!before) errors.push_back({"cursor", "is not a cursor this server issued"});
  }
  if (!errors.empty())
    return Problem(400, "Invalid query", "the query parameters are invalid", errors);
  return std::nullopt;
}

std::string ContentTypeFor(const std::filesystem::path& p) {
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json; charset=utf-8"},
      {".woff2", "font/woff2"}};
  auto it = kTypes.find(p.extension().string());
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

std::string Sse(const std::string& event, const Json& data,
                std::optional<std::int64_t> id = std::nullopt) {
  std::string out;
  if (id) out += "id: " + std::to_string(*id) + "\n";
  out += "event: " + event + "\ndata: " + JsonBody(data) + "\n\n";
  return out;
}

class RunEventStream : public EventStream {
 public:
  // `open` counts this stream from its admission (Api::RunEvents) until it is destroyed.
  RunEventStream(RunStore& store, std::string id, std::int64_t after_seq,
                 std::shared_ptr<std::atomic<int>> open)
      : store_(store), id_(std::move(id)), last_seq_(after_seq), open_(std::move(open)) {}
  ~RunEventStream() override { open_->fetch_sub(1); }
  RunEventStream(const RunEventStream&) = delete;
  RunEventStream& operator=(const RunEventStream&) = delete;

  std::string Poll(bool& finished) override {
    std::string out;
    // Read the run first: steps written before a terminal state are then all in the batch below.
    auto run = store_.Get(id_);
    if (!run.ok() || !run->has_value()) {
      finished = true;
      return Sse("error", {{"detail", "the run is no longer readable"}});
    }
    const RunRecord& r = **run;
    for (;;) {
      auto steps = store_.Steps(id_, last_seq_, 500);
      if (!steps.ok() || steps->empty()) break;
      for (const auto& s : *steps) {
        out += Sse("step", {{"seq", s.seq}, {"at", s.at}, {"message", s.message}}, s.seq);
        last_seq_ = s.seq;
      }
      if (steps->size() < 500) break;
    }
    if (r.progress != last_progress_ || r.progress_step != last_step_) {
      last_progress_ = r.progress;
      last_step_ = r.progress_step;
      out += Sse("progress", {{"percent", r.progress}, {"step", r.progress_step}});
    }
    std::string state(domain::ToString(r.state));
    if (state != last_state_) {
      last_state_ = state;
      out +=
          Sse("state",
              {{"state", state},
               {"verdict", r.verdict ? Json(std::string(domain::ToString(*r.verdict))) : Json()}});
    }
    if (domain::IsTerminal(r.state)) {
      auto all = store_.Steps(id_, 0, 100000);
      out += Sse("end", RunToJson(r, all.ok() ? &*all : nullptr));
      finished = true;
    } else if (out.empty() && ++idle_polls_ % 75 == 0) {
      out = ": keep-alive\n\n";  // keeps proxies and our own idle timeout from closing the stream
    }
    return out;
  }

 private:
  RunStore& store_;
  std::string id_;
  std::int64_t last_seq_;
  double last_progress_ = -1;
  std::string last_step_ = "\x01";
  std::string last_state_;
  int idle_polls_ = 0;
  std::shared_ptr<std::atomic<int>> open_;
};

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string MarkdownReport(const Json& run, const domain::ExperimentSpec& spec) {
  std::ostringstream md;
  md << "# " << spec.id << " — " << spec.title << "\n\n";
  md << "**Claim:** " << spec.claim << "\n\n";
  md << "| run | state | verdict | started | finished |\n|---|---|---|---|---|\n";
  auto str = [](const Json& j) {
    return j.is_null() ? std::string("—") : j.is_string() ? j.get<std::string>() : j.dump();
  };
  md << "| " << str(run["id"]) << " | " << str(run["state"]) << " | " << str(run["verdict"])
     << " | " << str(run["started_at"]) << " | " << str(run["finished_at"]) << " |\n\n";
  md << "**Why:** " << str(run["verdict_reason"]) << "\n\n";
  if (!spec.criteria.empty()) {
    md << "**Confirmed when:** ";
    for (std::size_t i = 0; i < spec.criteria.size(); ++i) {
      md << (i ? ", " : "") << "`" << domain::Describe(spec.criteria[i]) << "`";
    }
    md << "\n\n";
  }
  md << "## Evidence\n\n";
  for (const auto& [mode, ev] : run["evidence"].items()) {
    md << "### " << mode << "\n\n| metric | value |\n|---|---|\n";
    const Json metrics = ev.value("metrics", Json::object());  // items() of a temporary dangles
    for (const auto& [name, value] : metrics.items()) {
      md << "| " << name << " | " << value.dump() << " |\n";
    }
    md << "\n";
  }
  md << "## Parameters\n\n```json\n" << run["params"].dump(2) << "\n```\n\n";
  if (run.contains("steps")) {
    md << "## Steps\n\n";
    for (const auto& s : run["steps"])
      md << "- `" << str(s["at"]) << "` " << str(s["message"]) << "\n";
  }
  return md.str();
}

std::string JunitReport(const Json& run, const domain::ExperimentSpec& spec) {
  std::string state = run.value("state", "");
  std::string verdict = run["verdict"].is_string() ? run["verdict"].get<std::string>() : "";
  std::string reason = run.value("verdict_reason", "");
  int failures = verdict == "refuted" ? 1 : 0;
  int errors = (state == "failed" || state == "interrupted") ? 1 : 0;
  int skipped = (verdict == "inconclusive" && errors == 0) || state == "cancelled" ? 1 : 0;
  std::ostringstream x;
  x << R"(<?xml version="1.0" encoding="UTF-8"?>)"
    << "\n";
  x << "<testsuites><testsuite name=\"" << XmlEscape(spec.id) << "\" tests=\"1\" failures=\""
    << failures << "\" errors=\"" << errors << "\" skipped=\"" << skipped << "\" time=\""
    << run.value("duration_seconds", Json(0)).dump() << "\">\n";
  x << "  <testcase classname=\"reliability-lab." << XmlEscape(spec.id) << "\" name=\""
    << XmlEscape(spec.claim) << "\">\n";
  if (errors) {
    x << "    <error message=\""
      << XmlEscape(run["error"].is_string() ? run["error"].get<std::string>() : state) << "\"/>\n";
  } else if (failures) {
    x << "    <failure message=\"" << XmlEscape(reason) << "\"/>\n";
  } else if (skipped) {
    x << "    <skipped message=\"" << XmlEscape(state == "cancelled" ? "cancelled" : reason)
      << "\"/>\n";
  }
  x << "    <system-out>" << XmlEscape(run["evidence"].dump()) << "</system-out>\n";
  x << "  </testcase>\n</testsuite></testsuites>\n";
  return x.str();
}

}  // namespace

Api::Api(RunStore& store, RunQueue& queue, RunExecutor& executor, LabMetrics& metrics,
         ReadinessMonitor* readiness, StackHealth& health, TokenTable tokens, RateLimiter& limiter,
         std::set<std::string> available, ApiOptions options)
    : store_(store),
      queue_(queue),
      executor_(executor),
      metrics_(metrics),
      readiness_(readiness),
      health_(health),
      tokens_(std::move(tokens)),
      limiter_(limiter),
      available_(std::move(available)),
      options_(std::move(options)),
      hosts_(options_.allowed_hosts, options_.listen_host),
      openapi_body_(std::make_shared<const std::string>(options_.openapi_json)),
      id_rng_(std::random_device{}()) {}

void Api::LoadHalt() {
  auto halt = store_.GetSetting("halt");
  if (halt.ok() && halt->has_value()) {
    std::lock_guard lock(halt_mu_);
    halt_reason_ = **halt;
    queue_.SetPaused(true);
  }
}

std::string Api::NewRunId() {
  std::lock_guard lock(id_mu_);
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id = "r";
  std::uint64_t v = id_rng_();
  for (int i = 0; i < 12; ++i) {
    id.push_back(kDigits[v % 36]);
    v /= 36;
  }
  return id;
}

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
    return StaticFile(req.path);
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

HttpResponse Api::Health() { return JsonResponse(200, {{"status", "ok"}}); }

HttpResponse Api::Ready() {
  std::lock_guard lock(ready_mu_);
  auto now = std::chrono::steady_clock::now();
  // The store's write check takes its write lock; an answer up to 1 s old is fresh enough.
  if (ready_status_ != 0 && now - ready_at_ < std::chrono::seconds(1)) {
    HttpResponse r;
    r.status = ready_status_;
    r.body = ready_body_;
    return r;
  }
  Json deps = Json::array();
  bool ok = true;
  auto writable = store_.CheckWritable();
  deps.push_back({{"name", "store"},
                  {"ok", writable.ok()},
                  {"detail", writable.ok() ? "writable" : writable.error().message}});
  ok = ok && writable.ok();
  // The stack as the readiness monitor last probed it (its own thread): never probed here.
  std::string probed_at;
  if (readiness_ != nullptr) {
    if (auto snap = readiness_->Latest()) {
      probed_at = FormatTime(snap->at);
      for (const auto& p : snap->parts) {
        deps.push_back({{"name", p.part},
                        {"ok", p.ok},
                        {"latency_ms", p.latency_ms},
                        {"version", p.version},
                        {"detail", p.detail}});
        ok = ok && p.ok;
      }
    } else {
      for (const auto& part : readiness_->parts()) {
        deps.push_back({{"name", part}, {"ok", false}, {"detail", "not probed yet"}});
      }
      ok = false;
    }
  }
  bool dirty = health_.dirty();
  Json body = {{"ready", ok && !dirty}, {"dependencies", deps}, {"stack_dirty", dirty}};
  if (!probed_at.empty()) body["stack_probed_at"] = probed_at;
  if (dirty) body["stack_dirty_reason"] = health_.why();
  {
    std::lock_guard halt_lock(halt_mu_);
    body["halted"] = halt_reason_.has_value();
  }
  ready_status_ = ok && !dirty ? 200 : 503;
  ready_body_ = JsonBody(body);
  ready_at_ = now;
  HttpResponse r;
  r.status = ready_status_;
  r.body = ready_body_;
  return r;
}

HttpResponse Api::Metrics() {
  metrics_.SetQueueDepth(static_cast<double>(queue_.Depth()));
  metrics_.SetStackDirty(health_.dirty());
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics_.Serialize();
  return r;
}

HttpResponse Api::ListExperiments() {
  const std::uint64_t generation = store_.finished_generation();
  std::shared_ptr<const std::string> cached;
  {
    std::lock_guard lock(catalog_mu_);
    if (generation == catalog_generation_) cached = catalog_body_;
  }
  if (cached) {
    HttpResponse r;
    r.shared_body = std::move(cached);
    return r;
  }
  auto latest = store_.LatestFinishedPerExperiment();
  std::map<std::string, RunRecord> last;
  if (latest.ok()) {
    for (auto& [exp, run] : *latest) last[exp] = run;
  }
  Json items = Json::array();
  for (const auto& spec : domain::Catalog()) {
    Json j = ExperimentToJson(spec, available_.count(spec.id) > 0);
    auto it = last.find(spec.id);
    j["last_verdict"] = it != last.end() && it->second.verdict
                            ? Json(std::string(domain::ToString(*it->second.verdict)))
                            : Json();
    j["last_run_id"] = it != last.end() ? Json(it->second.id) : Json();
    items.push_back(std::move(j));
  }
  HttpResponse r = JsonResponse(200, {{"items", items}});
  auto body = r.Share();
  std::lock_guard lock(catalog_mu_);
  catalog_generation_ = generation;
  catalog_body_ = std::move(body);
  return r;
}

HttpResponse Api::GetExperiment(const std::string& id) {
  const auto* spec = domain::FindExperiment(id);
  if (spec == nullptr) return Problem(404, "Unknown experiment", "there is no experiment " + id);
  Json j = ExperimentToJson(*spec, available_.count(id) > 0);
  RunFilter f;
  f.experiment = id;
  f.limit = 10;
  auto runs = store_.List(f);
  if (!runs.ok()) return ProblemFor(runs.error());
  Json last = Json::array();
  for (const auto& r : *runs) {
    last.push_back(
        {{"id", r.id},
         {"state", std::string(domain::ToString(r.state))},
         {"verdict", r.verdict ? Json(std::string(domain::ToString(*r.verdict))) : Json()},
         {"created_at", r.created_at}});
  }
  j["last_runs"] = last;
  j["last_verdict"] = Json();
  j["last_run_id"] = Json();
  for (const auto& r : *runs) {
    if (r.verdict) {
      j["last_verdict"] = std::string(domain::ToString(*r.verdict));
      j["last_run_id"] = r.id;
      break;
    }
  }
  return JsonResponse(200, j);
}

HttpResponse Api::CreateRun(const HttpRequest& req, const std::string& experiment,
                            const Principal& who) {
  const auto* spec = domain::FindExperiment(experiment);
  if (spec == nullptr)
    return Problem(404, "Unknown experiment", "there is no experiment " + experiment);
  if (available_.count(experiment) == 0) {
    return Problem(
        501, "Experiment not available",
        experiment + " is in the catalog but its runner is not built yet; nothing was queued");
  }
  {
    std::lock_guard lock(halt_mu_);
    if (halt_reason_) {
      metrics_.AdmissionRejected("halted");
      auto r = Problem(503, "Halted",
                       "the lab is halted (" + *halt_reason_ + "); DELETE /halt lifts it");
      r.AddHeader("Retry-After", "60");
      return r;
    }
  }
  if (draining_) {
    metrics_.AdmissionRejected("shutting_down");
    auto r = Problem(503, "Shutting down", "the server is shutting down and accepts no new runs");
    r.AddHeader("Retry-After", "10");
    return r;
  }
  Json body = Json::object();
  if (!req.body.empty()) {
    auto parsed = ParseBody(req.body);
    if (!parsed) {
      return Problem(400, "Malformed JSON", "the body is not valid JSON (or repeats a key)",
                     {{"body", "is not valid JSON or an object repeats a key"}});
    }
    body = std::move(*parsed);
    if (!body.is_object()) {
      return Problem(400, "Invalid request", "the body must be a JSON object",
                     {{"body", "must be an object"}});
    }
  }
  std::vector<domain::FieldError> errors;
  auto validated = domain::ValidateRunRequest(*spec, RunRequestInputFromJson(body), errors);
  if (!validated.ok()) {
    std::string detail =
        "the run request is invalid: " + errors.front().field + " " + errors.front().message;
    if (errors.size() > 1) detail += " (and " + std::to_string(errors.size() - 1) + " more)";
    return Problem(400, "Invalid run request", detail, errors);
  }
  Json request_json = RequestToJson(*validated);
  std::string body_hash = domain::Sha256Hex(experiment + "\n" + request_json.dump());
  std::optional<std::string> key = req.Header("idempotency-key");
  if (key && (key->empty() || key->size() > 200)) {
    return Problem(400, "Invalid Idempotency-Key", "the key must be 1 to 200 characters",
                   {{"Idempotency-Key", "must be 1 to 200 characters"}});
  }
  auto replay = [&](const IdempotencyRecord& rec) -> HttpResponse {
    if (rec.body_hash != body_hash) {
      return Problem(
          422, "Idempotency key reused",
          "this Idempotency-Key was used with a different request (run " + rec.run_id + ")");
    }
    auto original = GetRun(rec.run_id);
    original.AddHeader("Location", "/runs/" + rec.run_id);
    return original;
  };
  if (key) {
    auto found = store_.FindIdempotencyKey(who.name, *key);
    if (!found.ok()) return ProblemFor(found.error());
    if (found->has_value()) return replay(**found);
  }
  if (!queue_.TryReserve()) {
    metrics_.AdmissionRejected("queue_full");
    auto r = Problem(503, "Queue full",
                     "the run queue holds its maximum of " + std::to_string(queue_.capacity()) +
                         " runs; retry later");
    r.AddHeader("Retry-After", std::to_string(options_.retry_after_seconds));
    return r;
  }
  RunRecord run;
  run.id = NewRunId();
  run.experiment = experiment;
  run.request_json = request_json.dump();
  auto inserted = store_.InsertQueued(run, Actor{who.name, req.request_id}, key, body_hash);
  if (!inserted.ok()) {
    queue_.CancelReservation();
    if (key && inserted.error().code == domain::ErrorCode::kConflict) {  // a concurrent twin won
      auto found = store_.FindIdempotencyKey(who.name, *key);
      if (found.ok() && found->has_value()) return replay(**found);
    }
    return ProblemFor(inserted.error());
  }
  const auto locks = domain::LocksFor(*spec);
  queue_.PushReserved(QueuedRun{inserted->id, experiment, locks.exclusive, locks.shared});
  metrics_.SetQueueDepth(static_cast<double>(queue_.Depth()));
  std::vector<StepRecord> no_steps;
  auto r = JsonResponse(202, RunToJson(*inserted, &no_steps));
  r.AddHeader("Location", "/runs/" + inserted->id);
  return r;
}

HttpResponse Api::ListRuns(const HttpRequest& req) {
  RunFilter f;
  std::vector<domain::FieldError> errors;
  if (auto it = req.query.find("experiment"); it != req.query.end()) f.experiment = it->second;
  if (auto it = req.query.find("state"); it != req.query.end()) {
    if (!domain::ParseRunState(it->second)) errors.push_back({"state", "is not a run state"});
    f.state = it->second;
  }
  if (auto it = req.query.find("verdict"); it != req.query.end()) {
    if (!domain::ParseVerdict(it->second)) errors.push_back({"verdict", "is not a verdict"});
    f.verdict = it->second;
  }
  for (const char* name : {"since", "until"}) {
    if (auto it = req.query.find(name); it != req.query.end()) {
      auto t = ParseTime(it->second);
      if (!t) {
        errors.push_back({name, "must be an RFC 3339 UTC time like 2026-11-21T10:00:00Z"});
      } else {
        (std::string(name) == "since" ? f.since : f.until) = FormatTime(*t);
      }
    }
  }
  if (auto bad = ReadPaging(req, f.limit, f.before_seq)) return *bad;
  if (!errors.empty()) return Problem(400, "Invalid query", "the filters are invalid", errors);
  int wanted = f.limit;
  f.limit = wanted + 1;  // one more tells whether there is a next page
  auto runs = store_.List(f);
  if (!runs.ok()) return ProblemFor(runs.error());
  Json items = Json::array();
  for (int i = 0; i < static_cast<int>(runs->size()) && i < wanted; ++i)
    items.push_back(RunToJson((*runs)[i], nullptr));
  Json next = static_cast<int>(runs->size()) > wanted ? Json(EncodeCursor((*runs)[wanted - 1].seq))
                                                      : Json();
  return JsonResponse(200, {{"items", items}, {"next_cursor", next}});
}

HttpResponse Api::GetRun(const std::string& id) {
  {
    std::lock_guard lock(cache_mu_);
    if (auto it = finished_run_json_.find(id); it != finished_run_json_.end()) {
      HttpResponse r;
      r.shared_body = it->second;
      return r;
    }
  }
  auto run = store_.Get(id);
  if (!run.ok()) return ProblemFor(run.error());
  if (!run->has_value()) return Problem(404, "Unknown run", "there is no run " + id);
  auto steps = store_.Steps(id, 0, 100000);
  if (!steps.ok()) return ProblemFor(steps.error());
  HttpResponse r;
  Json view = RunToJson(**run, &*steps);
  if (!domain::IsTerminal((*run)->state)) {
    // What the run has created so far: a user (or a test) can see what cleanup will remove.
    if (auto artifacts = store_.Artifacts(id); artifacts.ok()) {
      view["artifacts"] = ArtifactsByMode(*artifacts);
    }
  }
  r.body = JsonBody(view);
  if (domain::IsTerminal((*run)->state)) {
    auto body = r.Share();
    std::lock_guard lock(cache_mu_);
    if (finished_run_json_.size() >= kRunCacheEntries) finished_run_json_.clear();
    finished_run_json_[id] = std::move(body);
  }
  return r;
}

HttpResponse Api::RunEvents(const HttpRequest& req, const std::string& id) {
  auto run = store_.Get(id);
  if (!run.ok()) return ProblemFor(run.error());
  if (!run->has_value()) return Problem(404, "Unknown run", "there is no run " + id);
  std::int64_t after = 0;
  if (auto last = req.Header("last-event-id")) {
    try {
      after = std::stoll(*last);
    } catch (const std::exception&) {
      after = 0;
    }
  }
  // Each open stream polls the store several times a second: their number is bounded.
  if (open_streams_->fetch_add(1) >= options_.max_event_streams) {
    open_streams_->fetch_sub(1);
    auto r = Problem(503, "Too many event streams",
                     "this server serves at most " + std::to_string(options_.max_event_streams) +
                         " event streams at once (--max-event-streams); poll GET /runs/" + id +
                         " or retry later");
    r.AddHeader("Retry-After", std::to_string(options_.retry_after_seconds));
    return r;
  }
  HttpResponse r;
  r.content_type = "text/event-stream";
  r.AddHeader("Cache-Control", "no-cache");
  r.stream = std::make_shared<RunEventStream>(store_, id, after, open_streams_);
  return r;
}

HttpResponse Api::RunReport(const HttpRequest& req, const std::string& id) {
  std::string format = "json";
  if (auto it = req.query.find("format"); it != req.query.end()) format = it->second;
  if (format != "json" && format != "markdown" && format != "junit") {
    return Problem(400, "Unknown report format", "format must be json, markdown or junit",
                   {{"format", "must be json, markdown or junit"}});
  }
  auto run = store_.Get(id);
  if (!run.ok()) return ProblemFor(run.error());
  if (!run->has_value()) return Problem(404, "Unknown run", "there is no run " + id);
  auto steps = store_.Steps(id, 0, 100000);
  Json j = RunToJson(**run, steps.ok() ? &*steps : nullptr);
  const auto* spec = domain::FindExperiment((*run)->experiment);
  if (spec == nullptr)
    return Problem(500, "Unknown experiment", "the run names an experiment not in the catalog");
  HttpResponse r;
  if (format == "json") {
    j["experiment_detail"] = ExperimentToJson(*spec, available_.count(spec->id) > 0);
    r.body = j.dump(2);
  } else if (format == "markdown") {
    r.content_type = "text/markdown; charset=utf-8";
    r.body = MarkdownReport(j, *spec);
  } else {
    r.content_type = "application/xml; charset=utf-8";
    r.body = JunitReport(j, *spec);
  }
  r.AddHeader("Content-Disposition", "inline; filename=\"" + id + "-report." +
                                         (format == "markdown" ? "md"
                                          : format == "junit"  ? "xml"
                                                               : "json") +
                                         "\"");
  return r;
}

HttpResponse Api::CancelRun(const HttpRequest& req, const std::string& id, const Principal& who) {
  Actor actor{who.name, req.request_id};
  auto finished = [&](const RunRecord& r) {
    return Problem(
        409, "Run already finished",
        "run " + id + " is " + std::string(domain::ToString(r.state)) + "; nothing to cancel");
  };
  // A run not yet finished is either waiting in the queue or claimed by the executor (a worker
  // claims it under the queue's lock as it takes it), so one look at each settles it.
  {
    auto run = store_.Get(id);
    if (!run.ok()) return ProblemFor(run.error());
    if (!run->has_value()) return Problem(404, "Unknown run", "there is no run " + id);
    const RunRecord& r = **run;
    if (domain::IsTerminal(r.state)) return finished(r);
    if (r.state == domain::RunState::kQueued && queue_.Remove(id)) {
      RunTransition t;
      t.to = domain::RunState::kCancelled;
      t.error = "cancelled by " + who.name + " before it started";
      t.audit_action = "run.cancelled";
      auto done = store_.Transition(id, t, actor);
      if (!done.ok()) return ProblemFor(done.error());
      metrics_.SetQueueDepth(static_cast<double>(queue_.Depth()));
      metrics_.RunFinished(r.experiment, "cancelled", "none", 0);
      return JsonResponse(202, RunToJson(*done, nullptr));
    }
    if (executor_.Cancel(id, actor)) {
      Json j = RunToJson(r, nullptr);
      j["cancel_requested"] = true;
      return JsonResponse(202, j);
    }
  }
  // Neither waiting nor claimed: it finished between the first look and now.
  auto now = store_.Get(id);
  if (!now.ok()) return ProblemFor(now.error());
  if (now->has_value() && domain::IsTerminal((*now)->state)) return finished(**now);
  return Problem(409, "Cannot cancel now",
                 "run " + id + " is neither queued nor running here (" +
                     (now->has_value() ? std::string(domain::ToString((*now)->state)) : "gone") +
                     ")");
}

HttpResponse Api::SetHalt(const HttpRequest& req, const Principal& who) {
  auto parsed = req.body.empty() ? std::optional<Json>(Json::object()) : ParseBody(req.body);
  Json body = parsed ? std::move(*parsed) : Json();
  if (!parsed || !body.is_object()) {
    return Problem(400, "Malformed JSON", "the body must be a JSON object with a reason",
                   {{"body", "is not a JSON object"}});
  }
  auto reason = body.find("reason");
  if (reason == body.end() || !reason->is_string() || reason->get<std::string>().empty() ||
      reason->get<std::string>().size() > 1000) {
    return Problem(400, "Invalid halt", "a halt needs a reason",
                   {{"reason", "must be a non-empty string (at most 1000 characters)"}});
  }
  Actor actor{who.name, req.request_id};
  std::string text = reason->get<std::string>();
  if (auto s = store_.SetSetting("halt", text, "halt.set", actor); !s.ok())
    return ProblemFor(s.error());
  {
    std::lock_guard lock(halt_mu_);
    halt_reason_ = text;
  }
  queue_.SetPaused(true);
  int cancelled = executor_.CancelAll(actor);
  return JsonResponse(202, {{"halted", true},
                            {"reason", text},
                            {"cancelled_runs", cancelled},
                            {"queued_runs_waiting", queue_.Depth()}});
}

HttpResponse Api::LiftHalt(const HttpRequest& req, const Principal& who) {
  if (auto s =
          store_.SetSetting("halt", std::nullopt, "halt.lifted", Actor{who.name, req.request_id});
      !s.ok()) {
    return ProblemFor(s.error());
  }
  {
    std::lock_guard lock(halt_mu_);
    halt_reason_.reset();
  }
  queue_.SetPaused(false);
  return JsonResponse(200, {{"halted", false}});
}

HttpResponse Api::HaltStatus() {
  std::lock_guard lock(halt_mu_);
  return JsonResponse(200, {{"halted", halt_reason_.has_value()},
                            {"reason", halt_reason_ ? Json(*halt_reason_) : Json()}});
}

HttpResponse Api::ListAudit(const HttpRequest& req) {
  AuditFilter f;
  for (auto [name, field] : {std::pair{"actor", &f.actor}, std::pair{"action", &f.action},
                             std::pair{"target", &f.target}}) {
    if (auto it = req.query.find(name); it != req.query.end()) *field = it->second;
  }
  if (auto bad = ReadPaging(req, f.limit, f.before_seq)) return *bad;
  int wanted = f.limit;
  f.limit = wanted + 1;
  auto entries = store_.ListAudit(f);
  if (!entries.ok()) return ProblemFor(entries.error());
  Json items = Json::array();
  for (int i = 0; i < static_cast<int>(entries->size()) && i < wanted; ++i)
    items.push_back(AuditToJson((*entries)[i]));
  Json next = static_cast<int>(entries->size()) > wanted
                  ? Json(EncodeCursor((*entries)[wanted - 1].seq))
                  : Json();
  return JsonResponse(200, {{"items", items}, {"next_cursor", next}});
}

HttpResponse Api::VerifyAudit() {
  auto check = store_.VerifyAudit();
  if (!check.ok()) return ProblemFor(check.error());
  Json j = {{"ok", check->ok}, {"entries", check->entries}};
  if (!check->ok) {
    j["first_broken_seq"] = *check->first_broken_seq;
    j["reason"] = check->reason;
  }
  return JsonResponse(200, j);
}

HttpResponse Api::StaticFile(const std::string& path) {
  namespace fs = std::filesystem;
  if (options_.web_root.empty()) return Problem(404, "Not found", "no UI is configured");
  std::string relative = path;
  if (relative.rfind("/ui/", 0) == 0) relative = relative.substr(3);
  if (relative == "/ui") relative = "/";
  // No "..", no hidden files: the UI folder is all this serves.
  for (const auto& part : Split(relative)) {
    if (part == ".." || part.front() == '.') return Problem(404, "Not found", "no file at " + path);
  }
  fs::path root = fs::path(options_.web_root);
  fs::path file = root / fs::path(relative).relative_path();
  std::error_code ec;
  if (relative == "/" || fs::is_directory(file, ec)) file = root / "index.html";
  bool spa_route = path.rfind("/ui/", 0) == 0 || path == "/ui";
  if (!fs::is_regular_file(file, ec)) {
    if (!spa_route || fs::path(relative).has_extension())
      return Problem(404, "Not found", "no file at " + path);
    file = root / "index.html";  // client-side routes of the single-page UI
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return Problem(404, "Not found", "no file at " + path);
  std::ostringstream content;
  content << in.rdbuf();
  HttpResponse r;
  r.content_type = ContentTypeFor(file);
  r.body = content.str();
  r.AddHeader("Cache-Control", "no-cache");
  r.AddHeader("X-Content-Type-Options", "nosniff");
  return r;
}

}  // namespace lab::server
