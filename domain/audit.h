// The audit chain: append-only entries, each holding the SHA-256 of the previous one, so an
// entry changed or removed behind the server's back is found by VerifyChain.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lab::domain {

struct AuditEntry {
  std::int64_t seq = 0;  // 1, 2, 3… without gaps
  std::string time;      // RFC 3339 UTC with milliseconds
  std::string actor;     // token name, "local", "system"
  std::string action;    // run.queued, run.started, auth.failed…
  std::string target;    // run id, "halt", a path
  std::string request_id;
  std::string before;     // JSON text of the state before, or empty
  std::string after;      // JSON text of the state after, or empty
  std::string prev_hash;  // hash of entry seq-1; kGenesisHash for the first
  std::string hash;       // EntryHash(*this)
};

inline constexpr const char* kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The hash covers every field but `hash` itself, length-prefixed so no two different entries
// serialise to the same bytes.
std::string EntryHash(const AuditEntry& entry);

// Fills seq, prev_hash and hash of `next` so that it extends a chain ending with `last`.
void Chain(const std::optional<AuditEntry>& last, AuditEntry& next);

struct ChainCheck {
  bool ok = true;
  std::int64_t entries = 0;
  std::optional<std::int64_t> first_broken_seq;
  std::string reason;
};

// Entries in ascending seq order.
ChainCheck VerifyChain(const std::vector<AuditEntry>& entries);

}  // namespace lab::domain
