// RFC 9457 problem details: the one way errors leave the API.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "domain/parameters.h"
#include "domain/result.h"
#include "server/http/http_types.h"

namespace lab::server {

// A response body as JSON text. Text that reached it from a request (a path, a parameter) may
// hold bytes that are not UTF-8; they are sent as U+FFFD instead of failing the whole answer.
std::string JsonBody(const nlohmann::json& body);

HttpResponse Problem(int status, const std::string& title, const std::string& detail,
                     const std::vector<domain::FieldError>& errors = {});

// The one mapping from domain error codes to HTTP statuses.
int HttpStatusFor(domain::ErrorCode code);
HttpResponse ProblemFor(const domain::Error& error);

}  // namespace lab::server
