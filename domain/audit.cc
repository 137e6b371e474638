#include "domain/audit.h"

#include "domain/sha256.h"

namespace lab::domain {
namespace {

void Field(std::string& out, const std::string& value) {
  out += std::to_string(value.size());
  out += ':';
  out += value;
  out += ';';
}

}  // namespace

std::string EntryHash(const AuditEntry& e) {
  std::string canonical;
  Field(canonical, std::to_string(e.seq));
  Field(canonical, e.time);
  Field(canonical, e.actor);
  Field(canonical, e.action);
  Field(canonical, e.target);
  Field(canonical, e.request_id);
  Field(canonical, e.before);
  Field(canonical, e.after);
  Field(canonical, e.prev_hash);
  return Sha256Hex(canonical);
}

void Chain(const std::optional<AuditEntry>& last, AuditEntry& next) {
  next.seq = last ? last->seq + 1 : 1;
  next.prev_hash = last ? last->hash : kGenesisHash;
  next.hash = EntryHash(next);
}

ChainCheck VerifyChain(const std::vector<AuditEntry>& entries) {
  ChainCheck check;
  std::string expected_prev = kGenesisHash;
  std::int64_t expected_seq = 1;
  for (const auto& e : entries) {
    std::string problem;
    if (e.seq != expected_seq) {
      problem = "expected entry " + std::to_string(expected_seq) + ", found " +
                std::to_string(e.seq) + " (an entry was removed or inserted)";
    } else if (e.prev_hash != expected_prev) {
      problem = "its prev_hash does not match the hash of the entry before it";
    } else if (EntryHash(e) != e.hash) {
      problem = "its content does not match its hash (the entry was changed)";
    }
    if (!problem.empty()) {
      check.ok = false;
      check.first_broken_seq = e.seq;
      check.reason = "entry " + std::to_string(e.seq) + ": " + problem;
      return check;
    }
    expected_prev = e.hash;
    ++expected_seq;
    ++check.entries;
  }
  return check;
}

}  // namespace lab::domain
