// The OpenAPI document of API.md, embedded at build time from server/openapi.json.
#pragma once

#include <string_view>

namespace lab::server {
extern const std::string_view kOpenApiJson;
}  // namespace lab::server
