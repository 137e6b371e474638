// RFC 3339 UTC timestamps with milliseconds, the API's one time format.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace lab::server {

std::string FormatTime(std::chrono::system_clock::time_point t);
// Accepts "YYYY-MM-DDTHH:MM:SS[.fff]Z"; nullopt for anything else.
std::optional<std::chrono::system_clock::time_point> ParseTime(std::string_view text);

}  // namespace lab::server
