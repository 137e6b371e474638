#include "server/http/json_body.h"

#include <set>
#include <vector>

#include "server/http/problem.h"

namespace lab::server {

using Json = nlohmann::json;

std::optional<Json> ParseBody(const std::string& text) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  bool duplicate = false;
  Json::parser_callback_t check = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) keys.emplace_back();
    if (event == Json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == Json::parse_event_t::key && !keys.empty() &&
        !keys.back().insert(parsed.get<std::string>()).second)
      duplicate = true;
    return true;
  };
  Json body = Json::parse(text, check, false);
  if (body.is_discarded() || duplicate) return std::nullopt;
  return body;
}

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = JsonBody(body);
  return r;
}

}  // namespace lab::server
