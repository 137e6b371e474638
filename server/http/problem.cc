#include "server/http/problem.h"

#include <nlohmann/json.hpp>

namespace lab::server {
namespace {

std::string TypeSlug(int status) {
  switch (status) {
    case 400:
      return "invalid-request";
    case 401:
      return "unauthenticated";
    case 403:
      return "forbidden";
    case 404:
      return "not-found";
    case 405:
      return "method-not-allowed";
    case 409:
      return "conflict";
    case 413:
      return "body-too-large";
    case 415:
      return "unsupported-media-type";
    case 422:
      return "idempotency-key-reused";
    case 429:
      return "rate-limited";
    case 501:
      return "not-implemented";
    case 503:
      return "unavailable";
    default:
      return "error";
  }
}

}  // namespace

std::string JsonBody(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

HttpResponse Problem(int status, const std::string& title, const std::string& detail,
                     const std::vector<domain::FieldError>& errors) {
  nlohmann::json body = {{"type", "https://reliability-lab.dev/problems/" + TypeSlug(status)},
                         {"title", title},
                         {"status", status},
                         {"detail", detail}};
  if (!errors.empty()) {
    auto list = nlohmann::json::array();
    for (const auto& e : errors) list.push_back({{"field", e.field}, {"message", e.message}});
    body["errors"] = std::move(list);
  }
  HttpResponse r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body = JsonBody(body);  // the detail may quote a request's path
  return r;
}

int HttpStatusFor(domain::ErrorCode code) {
  switch (code) {
    case domain::ErrorCode::kInvalidArgument:
      return 400;
    case domain::ErrorCode::kNotFound:
      return 404;
    case domain::ErrorCode::kConflict:
      return 409;
    case domain::ErrorCode::kUnavailable:
      return 503;
    case domain::ErrorCode::kTimeout:
      return 504;
    case domain::ErrorCode::kResourceExhausted:
      return 503;
    case domain::ErrorCode::kUnimplemented:
      return 501;
    case domain::ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

HttpResponse ProblemFor(const domain::Error& error) {
  int status = HttpStatusFor(error.code);
  const char* title = status == 500 ? "Internal error" : "Request failed";
  return Problem(status, title, error.message);
}

}  // namespace lab::server
