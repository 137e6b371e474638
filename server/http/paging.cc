#include "server/http/paging.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "server/http/problem.h"

namespace lab::server {

std::string EncodeCursor(std::int64_t seq) {
  std::ostringstream out;
  out << "c" << std::hex << (static_cast<std::uint64_t>(seq) ^ 0x5bd1e995ULL);
  return out.str();
}

std::optional<std::int64_t> DecodeCursor(const std::string& cursor) {
  if (cursor.size() < 2 || cursor.size() > 17 || cursor[0] != 'c') return std::nullopt;
  std::uint64_t value = 0;
  for (std::size_t i = 1; i < cursor.size(); ++i) {
    char c = cursor[i];
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    value = value * 16 + static_cast<std::uint64_t>(d);
  }
  return static_cast<std::int64_t>(value ^ 0x5bd1e995ULL);
}

std::optional<HttpResponse> ReadPaging(const HttpRequest& req, int& limit,
                                       std::optional<std::int64_t>& before) {
  limit = kDefaultListLimit;
  std::vector<domain::FieldError> errors;
  if (auto it = req.query.find("limit"); it != req.query.end()) {
    try {
      // Digits only: stol alone would also take "+5" and " 5".
      const std::string& text = it->second;
      if (text.empty() || text.size() > 4 ||
          !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw std::invalid_argument("");
      long v = std::stol(text);
      if (v < 1 || v > kMaxListLimit) throw std::out_of_range("");
      limit = static_cast<int>(v);
    } catch (const std::exception&) {
      errors.push_back({"limit", "must be an integer within [1, 200]"});
    }
  }
  if (auto it = req.query.find("cursor"); it != req.query.end()) {
    before = DecodeCursor(it->second);
    if (!before) errors.push_back({"cursor", "is not a cursor this server issued"});
  }
  if (!errors.empty())
    return Problem(400, "Invalid query", "the query parameters are invalid", errors);
  return std::nullopt;
}

}  // namespace lab::server
