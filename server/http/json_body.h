// JSON in and out of the API: a request body parsed strictly (an object that repeats a key is
// refused: which value was meant cannot be known) and a JSON response.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "server/http/http_types.h"

namespace lab::server {

std::optional<nlohmann::json> ParseBody(const std::string& text);
HttpResponse JsonResponse(int status, const nlohmann::json& body);

}  // namespace lab::server
