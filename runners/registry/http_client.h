// A small blocking HTTP client over libcurl (one easy handle per request; every request has a
// connect and a total timeout). Used for the schema registry's REST API and Toxiproxy.
#pragma once

#include <chrono>
#include <string>

#include "domain/result.h"

namespace lab::runners::registry {

struct HttpResponse {
  long status = 0;
  std::string body;
  double total_ms = 0;
};

domain::Result<HttpResponse> HttpRequest(const std::string& method, const std::string& url,
                                         const std::string& body, const std::string& content_type,
                                         std::chrono::milliseconds timeout);

}  // namespace lab::runners::registry
