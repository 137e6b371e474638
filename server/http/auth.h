// Tokens and roles. viewer: GET; operator: + run, cancel, halt; admin: + lift the halt and
// settings. With no tokens on a loopback address, local use needs none (actor "local").
#pragma once

#include <map>
#include <optional>
#include <string>

#include "domain/result.h"

namespace lab::server {

enum class Role { kViewer = 0, kOperator = 1, kAdmin = 2 };

std::optional<Role> ParseRole(const std::string& text);
const char* ToString(Role role);

struct Principal {
  std::string name;  // who, for the audit: "token:<first 4 chars>…" never the whole secret
  Role role = Role::kViewer;
};

class TokenTable {
 public:
  // "token:role,token:role". Errors name the bad entry (without echoing secrets in full).
  static domain::Result<TokenTable> Parse(const std::string& spec);
  bool empty() const { return tokens_.empty(); }
  std::optional<Principal> Find(const std::string& token) const;
  std::size_t size() const { return tokens_.size(); }

 private:
  std::map<std::string, Principal> tokens_;
};

bool IsLoopbackAddress(const std::string& host);

}  // namespace lab::server
