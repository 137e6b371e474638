#include "server/http/run_reports.h"

#include <sstream>

#include "domain/verdict.h"

namespace lab::server {
namespace {

using Json = nlohmann::json;

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

}  // namespace

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

}  // namespace lab::server
