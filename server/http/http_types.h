// The HTTP request and response as the handlers see them: no sockets, no Beast types, so
// every route is tested without TCP.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lab::server {

struct HttpRequest {
  std::string method;                          // GET, POST…
  std::string target;                          // as sent: path?query
  std::string path;                            // decoded path, no query
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string remote_ip;
  std::string request_id;

  std::optional<std::string> Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    if (it == headers.end()) return std::nullopt;
    return it->second;
  }
};

// A server-sent event stream: the session polls it until it says it is finished.
class EventStream {
 public:
  virtual ~EventStream() = default;
  // Returns the text of the events that happened since the last call ("" if none) and sets
  // `finished` once the stream should close after that text.
  virtual std::string Poll(bool& finished) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json; charset=utf-8";
  std::string body;
  // A body that many responses share (the catalog, the OpenAPI document): sent from this
  // buffer instead of a per-request copy of it. Takes precedence over `body` when set.
  std::shared_ptr<const std::string> shared_body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<EventStream> stream;  // non-null: an SSE response, body ignored
  std::string route = "unmatched";      // the route template, for metrics

  std::string_view Body() const { return shared_body ? std::string_view(*shared_body) : body; }
  // Moves `body` into `shared_body` and returns it, for a cache to keep.
  std::shared_ptr<const std::string> Share() {
    if (!shared_body) shared_body = std::make_shared<const std::string>(std::exchange(body, {}));
    return shared_body;
  }

  void AddHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

// Splits "path?a=1&b=2" and percent-decodes; false on malformed encoding.
bool ParseTarget(const std::string& target, std::string& path,
                 std::map<std::string, std::string>& query);

}  // namespace lab::server
