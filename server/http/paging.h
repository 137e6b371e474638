// Cursor paging of the list resources (/runs, /audit): `limit` within [1, 200] (default 50) and
// an opaque `cursor` (the next_cursor of the previous page) that only this server issues.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "server/http/http_types.h"

namespace lab::server {

inline constexpr int kMaxListLimit = 200;
inline constexpr int kDefaultListLimit = 50;

std::string EncodeCursor(std::int64_t seq);
std::optional<std::int64_t> DecodeCursor(const std::string& cursor);

// Reads `limit` and `cursor`; an error response when either is malformed.
std::optional<HttpResponse> ReadPaging(const HttpRequest& req, int& limit,
                                       std::optional<std::int64_t>& before);

}  // namespace lab::server
