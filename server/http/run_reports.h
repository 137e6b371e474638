// A finished run as a Markdown page or a JUnit XML report (GET /runs/{id}/report?format=…), from
// the run's JSON as the API serves it and its catalog entry.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "domain/catalog.h"

namespace lab::server {

std::string MarkdownReport(const nlohmann::json& run, const domain::ExperimentSpec& spec);
std::string JunitReport(const nlohmann::json& run, const domain::ExperimentSpec& spec);

}  // namespace lab::server
