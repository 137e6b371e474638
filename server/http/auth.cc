#include "server/http/auth.h"

#include <sstream>

namespace lab::server {

std::optional<Role> ParseRole(const std::string& text) {
  if (text == "viewer") return Role::kViewer;
  if (text == "operator") return Role::kOperator;
  if (text == "admin") return Role::kAdmin;
  return std::nullopt;
}

const char* ToString(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

domain::Result<TokenTable> TokenTable::Parse(const std::string& spec) {
  TokenTable table;
  std::stringstream in(spec);
  std::string item;
  int index = 0;
  while (std::getline(in, item, ',')) {
    ++index;
    // Trim spaces and newlines (token files may hold one entry per line).
    auto first = item.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) continue;
    item = item.substr(first, item.find_last_not_of(" \t\r\n") - first + 1);
    auto colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return domain::MakeError(domain::ErrorCode::kInvalidArgument,
                               "token entry " + std::to_string(index) + " is not 'token:role'");
    }
    std::string token = item.substr(0, colon);
    auto role = ParseRole(item.substr(colon + 1));
    if (!role) {
      return domain::MakeError(domain::ErrorCode::kInvalidArgument,
                               "token entry " + std::to_string(index) + " has an unknown role '" +
                                   item.substr(colon + 1) + "' (viewer, operator, admin)");
    }
    if (token.size() < 8) {
      return domain::MakeError(
          domain::ErrorCode::kInvalidArgument,
          "token entry " + std::to_string(index) + " is shorter than 8 characters");
    }
    table.tokens_[token] = Principal{"token:" + token.substr(0, 4) + "…", *role};
  }
  return table;
}

std::optional<Principal> TokenTable::Find(const std::string& token) const {
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  return it->second;
}

bool IsLoopbackAddress(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

}  // namespace lab::server
