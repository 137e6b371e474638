// The probes, metrics, catalog, halt switch and audit resources.
#include <algorithm>
#include <sstream>

#include "domain/catalog.h"
#include "domain/run_locks.h"
#include "domain/run_request.h"
#include "domain/sha256.h"
#include "server/http/api.h"
#include "server/http/json_body.h"
#include "server/http/paging.h"
#include "server/http/problem.h"
#include "server/http/run_events.h"
#include "server/http/run_reports.h"
#include "server/json_codec.h"
#include "server/time_format.h"

namespace lab::server {

HttpResponse Api::Health() { return JsonResponse(200, {{"status", "ok"}}); }

HttpResponse Api::Ready() {
  std::lock_guard lock(ready_mu_);
  auto now = std::chrono::steady_clock::now();
  // Cleanups still to do, as the retrier last counted them (never a store read here).
  const std::optional<CleanupCounts> cleanups =
      cleanups_ != nullptr ? std::optional(cleanups_->counts()) : std::nullopt;
  // The store's write check takes its write lock; an answer up to 1 s old is fresh enough, unless
  // the cleanups it counts changed since.
  if (ready_status_ != 0 && now - ready_at_ < std::chrono::seconds(1) &&
      ready_cleanups_ == cleanups) {
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
  body["halted"] = runs_.HaltReason().has_value();
  // Informative, not a reason to be unready: the lab can run while a dead MariaDB keeps an old
  // run's rows. Given-up cleanups are still to do, so they are counted.
  if (cleanups) {
    body["pending_cleanups"] = cleanups->pending + cleanups->given_up;
    body["cleanups_given_up"] = cleanups->given_up;
  }
  ready_cleanups_ = cleanups;
  ready_status_ = ok && !dirty ? 200 : 503;
  ready_body_ = JsonBody(body);
  ready_at_ = now;
  HttpResponse r;
  r.status = ready_status_;
  r.body = ready_body_;
  return r;
}

HttpResponse Api::Metrics() {
  metrics_.SetQueueDepth(static_cast<double>(runs_.QueueDepth()));
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
  const std::string text = reason->get<std::string>();
  auto halted = runs_.Halt(text, Actor{who.name, req.request_id});
  if (!halted.ok()) return ProblemFor(halted.error());
  return JsonResponse(202, {{"halted", true},
                            {"reason", text},
                            {"cancelled_runs", halted->cancelled_runs},
                            {"queued_runs_waiting", halted->queued_runs_waiting}});
}

HttpResponse Api::LiftHalt(const HttpRequest& req, const Principal& who) {
  if (auto s = runs_.LiftHalt(Actor{who.name, req.request_id}); !s.ok())
    return ProblemFor(s.error());
  return JsonResponse(200, {{"halted", false}});
}

HttpResponse Api::HaltStatus() {
  const auto reason = runs_.HaltReason();
  return JsonResponse(
      200, {{"halted", reason.has_value()}, {"reason", reason ? Json(*reason) : Json()}});
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

}  // namespace lab::server
