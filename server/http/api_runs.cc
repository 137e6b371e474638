// The run resources: create (admission, idempotency), list, read, events, report, cancel, and
// the removal of a finished run's artifacts.
#include <algorithm>
#include <sstream>
#include <variant>

#include "domain/catalog.h"
#include "domain/run_request.h"
#include "server/http/api.h"
#include "server/http/json_body.h"
#include "server/http/paging.h"
#include "server/http/problem.h"
#include "server/http/run_events.h"
#include "server/http/run_reports.h"
#include "server/json_codec.h"
#include "server/runs/artifact_cleanup.h"
#include "server/time_format.h"

namespace lab::server {
namespace {

constexpr std::size_t kRunCacheEntries = 4096;

}  // namespace

namespace {

// The request body as a validated RunRequest, or the 400 that says what is wrong with it.
std::variant<domain::RunRequest, HttpResponse> ReadRunRequest(const domain::ExperimentSpec& spec,
                                                              const std::string& text) {
  Json body = Json::object();
  if (!text.empty()) {
    auto parsed = ParseBody(text);
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
  auto validated = domain::ValidateRunRequest(spec, RunRequestInputFromJson(body), errors);
  if (validated.ok()) return std::move(validated).value();
  std::string detail =
      "the run request is invalid: " + errors.front().field + " " + errors.front().message;
  if (errors.size() > 1) detail += " (and " + std::to_string(errors.size() - 1) + " more)";
  return Problem(400, "Invalid run request", detail, errors);
}

HttpResponse Unavailable(std::string title, std::string detail, int retry_after) {
  auto r = Problem(503, std::move(title), std::move(detail));
  r.AddHeader("Retry-After", std::to_string(retry_after));
  return r;
}

}  // namespace

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
  // Before the body is read: a halted or draining lab refuses every run.
  if (auto closed = runs_.Closed()) return AdmissionResponse(*closed);
  auto request = ReadRunRequest(*spec, req.body);
  if (auto* refusal = std::get_if<HttpResponse>(&request)) return std::move(*refusal);
  std::optional<std::string> key = req.Header("idempotency-key");
  if (key && (key->empty() || key->size() > 200)) {
    return Problem(400, "Invalid Idempotency-Key", "the key must be 1 to 200 characters",
                   {{"Idempotency-Key", "must be 1 to 200 characters"}});
  }
  auto admission = runs_.Admit(*spec, std::get<domain::RunRequest>(request), key,
                               Actor{who.name, req.request_id});
  return AdmissionResponse(admission);
}

HttpResponse Api::AdmissionResponse(const Admission& admission) {
  using Outcome = Admission::Outcome;
  switch (admission.outcome) {
    case Outcome::kQueued: {
      std::vector<StepRecord> no_steps;
      auto r = JsonResponse(202, RunToJson(admission.run, &no_steps));
      r.AddHeader("Location", "/runs/" + admission.run.id);
      return r;
    }
    case Outcome::kReplayed: {
      auto original = GetRun(admission.run_id);
      original.AddHeader("Location", "/runs/" + admission.run_id);
      return original;
    }
    case Outcome::kKeyReused:
      return Problem(
          422, "Idempotency key reused",
          "this Idempotency-Key was used with a different request (run " + admission.run_id + ")");
    case Outcome::kHalted:
      return Unavailable("Halted",
                         "the lab is halted (" + admission.detail + "); DELETE /halt lifts it", 60);
    case Outcome::kDraining:
      return Unavailable("Shutting down", "the server is shutting down and accepts no new runs",
                         10);
    case Outcome::kQueueFull:
      return Unavailable(
          "Queue full",
          "the run queue holds its maximum of " + admission.detail + " runs; retry later",
          options_.retry_after_seconds);
    case Outcome::kFailed:
      break;
  }
  return ProblemFor(admission.error);
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
  // Read before the run: a body built from an older cleanup state is never cached as current.
  const std::uint64_t generation = store_.cleanup_generation();
  {
    std::lock_guard lock(cache_mu_);
    if (generation != cache_cleanup_generation_) {
      finished_run_json_.clear();
      cache_cleanup_generation_ = generation;
    }
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
  // A cleanup still to do changes the run's log as it is retried: such a run is not cached.
  bool cleanup_settled = true;
  if (auto cleanup = store_.GetCleanup(id); cleanup.ok() && cleanup->has_value()) {
    view["cleanup"] = CleanupToJson(**cleanup);
    cleanup_settled = (*cleanup)->state != CleanupRecord::kPending;
  }
  r.body = JsonBody(view);
  if (domain::IsTerminal((*run)->state) && cleanup_settled) {
    auto body = r.Share();
    std::lock_guard lock(cache_mu_);
    if (cache_cleanup_generation_ == generation) {
      if (finished_run_json_.size() >= kRunCacheEntries) finished_run_json_.clear();
      finished_run_json_[id] = std::move(body);
    }
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
  r.stream = MakeRunEventStream(store_, id, after, open_streams_);
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
  using Outcome = Cancellation::Outcome;
  const auto cancel = runs_.Cancel(id, Actor{who.name, req.request_id});
  switch (cancel.outcome) {
    case Outcome::kCancelled:
      return JsonResponse(202, RunToJson(*cancel.run, nullptr));
    case Outcome::kRequested: {
      Json j = RunToJson(*cancel.run, nullptr);
      j["cancel_requested"] = true;
      return JsonResponse(202, j);
    }
    case Outcome::kFinished:
      return Problem(409, "Run already finished",
                     "run " + id + " is " + std::string(domain::ToString(cancel.run->state)) +
                         "; nothing to cancel");
    case Outcome::kUnknown:
      return Problem(404, "Unknown run", "there is no run " + id);
    case Outcome::kNotHere:
      return Problem(409, "Cannot cancel now",
                     "run " + id + " is neither queued nor running here (" +
                         std::string(domain::ToString(cancel.run->state)) + ")");
    case Outcome::kFailed:
      break;
  }
  return ProblemFor(cancel.error);
}

HttpResponse Api::RemoveArtifacts(const HttpRequest& req, const std::string& id,
                                  const Principal& who) {
  const Actor actor{who.name, req.request_id};
  auto run = store_.Get(id);
  if (!run.ok()) return ProblemFor(run.error());
  if (!run->has_value()) return Problem(404, "Unknown run", "there is no run " + id);
  const RunRecord& r = **run;
  if (!domain::IsTerminal(r.state)) {
    return Problem(409, "Run still active",
                   "run " + id + " is " + std::string(domain::ToString(r.state)) +
                       "; its own cleanup runs when it ends (POST /runs/" + id +
                       "/cancel ends it now)");
  }
  auto cleanup = store_.GetCleanup(id);
  if (!cleanup.ok()) return ProblemFor(cleanup.error());
  std::vector<domain::Artifact> artifacts;
  if (cleanup->has_value() && (*cleanup)->state != CleanupRecord::kDone) {
    artifacts = (*cleanup)->artifacts;  // pending or given up: what is left, tried again now
  } else if (cleanup->has_value()) {
    return Problem(409, "Nothing left to remove",
                   "the artifacts of run " + id + " were removed at " + (*cleanup)->updated_at);
  } else {
    auto created = store_.Artifacts(id);
    if (!created.ok()) return ProblemFor(created.error());
    for (const auto& a : *created) artifacts.push_back(a.artifact);
    artifacts = RetryableArtifacts(artifacts);
  }
  if (artifacts.empty()) {
    return Problem(409, "Nothing left to remove",
                   "run " + id + " recorded no artifacts this server can remove");
  }
  auto queued = store_.QueueCleanup(id, artifacts, "removal requested by " + who.name,
                                    "run.artifacts.delete", actor);
  if (!queued.ok()) return ProblemFor(queued.error());
  if (cleanups_ != nullptr) cleanups_->Wake();
  auto resp = JsonResponse(
      202,
      {{"run_id", id}, {"cleanup", CleanupToJson(*queued)}, {"links", {{"run", "/runs/" + id}}}});
  resp.AddHeader("Location", "/runs/" + id);
  return resp;
}

}  // namespace lab::server
