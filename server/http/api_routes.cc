// Every route of the API, declared once: method, path shape, metrics label, who may call it and
// the handler. Api::Route (api.cc) matches a request against this table.
#include "server/http/api.h"

namespace lab::server {

const std::vector<Api::RouteSpec>& Api::Routes() {
  constexpr std::optional<Role> kPublic;
  constexpr Role kViewer = Role::kViewer;
  constexpr Role kOperator = Role::kOperator;
  constexpr Role kAdmin = Role::kAdmin;
  static const std::vector<RouteSpec> kRoutes = {
      // Probes, metrics and the contract: public.
      {"GET", {"healthz"}, "/healthz", kPublic, [](Api& a, const Call&) { return a.Health(); }},
      {"HEAD", {"healthz"}, "/healthz", kPublic, [](Api& a, const Call&) { return a.Health(); }},
      {"GET", {"readyz"}, "/readyz", kPublic, [](Api& a, const Call&) { return a.Ready(); }},
      {"GET", {"metrics"}, "/metrics", kPublic, [](Api& a, const Call&) { return a.Metrics(); }},
      {"GET",
       {"openapi.json"},
       "/openapi.json",
       kPublic,
       [](Api& a, const Call&) {
         HttpResponse r;
         r.shared_body = a.openapi_body_;
         return r;
       }},
      // The catalog and runs.
      {"GET",
       {"experiments"},
       "/experiments",
       kViewer,
       [](Api& a, const Call&) { return a.ListExperiments(); }},
      {"GET",
       {"experiments", "*"},
       "/experiments/{id}",
       kViewer,
       [](Api& a, const Call& c) { return a.GetExperiment(c.parts[1]); }},
      {"POST",
       {"experiments", "*", "runs"},
       "/experiments/{id}/runs",
       kOperator,
       [](Api& a, const Call& c) { return a.CreateRun(c.req, c.parts[1], c.who); }},
      {"GET", {"runs"}, "/runs", kViewer, [](Api& a, const Call& c) { return a.ListRuns(c.req); }},
      {"GET",
       {"runs", "*"},
       "/runs/{id}",
       kViewer,
       [](Api& a, const Call& c) { return a.GetRun(c.parts[1]); }},
      {"GET",
       {"runs", "*", "events"},
       "/runs/{id}/events",
       kViewer,
       [](Api& a, const Call& c) { return a.RunEvents(c.req, c.parts[1]); }},
      {"GET",
       {"runs", "*", "report"},
       "/runs/{id}/report",
       kViewer,
       [](Api& a, const Call& c) { return a.RunReport(c.req, c.parts[1]); }},
      {"POST",
       {"runs", "*", "cancel"},
       "/runs/{id}/cancel",
       kOperator,
       [](Api& a, const Call& c) { return a.CancelRun(c.req, c.parts[1], c.who); }},
      {"DELETE",
       {"runs", "*", "artifacts"},
       "/runs/{id}/artifacts",
       kOperator,
       [](Api& a, const Call& c) { return a.RemoveArtifacts(c.req, c.parts[1], c.who); }},
      // The halt switch and the audit history.
      {"GET", {"halt"}, "/halt", kViewer, [](Api& a, const Call&) { return a.HaltStatus(); }},
      {"POST",
       {"halt"},
       "/halt",
       kOperator,
       [](Api& a, const Call& c) { return a.SetHalt(c.req, c.who); }},
      {"DELETE",
       {"halt"},
       "/halt",
       kAdmin,
       [](Api& a, const Call& c) { return a.LiftHalt(c.req, c.who); }},
      {"GET",
       {"audit"},
       "/audit",
       kViewer,
       [](Api& a, const Call& c) { return a.ListAudit(c.req); }},
      {"GET",
       {"audit", "verify"},
       "/audit/verify",
       kViewer,
       [](Api& a, const Call&) { return a.VerifyAudit(); }},
  };
  return kRoutes;
}

}  // namespace lab::server
