#include "domain/audit.h"

#include <gtest/gtest.h>

namespace lab::domain {
namespace {

std::vector<AuditEntry> MakeChain(int n) {
  std::vector<AuditEntry> chain;
  for (int i = 0; i < n; ++i) {
    AuditEntry e;
    e.time = "2026-11-21T10:00:00.00" + std::to_string(i) + "Z";
    e.actor = "local";
    e.action = "run.queued";
    e.target = "run-" + std::to_string(i);
    e.request_id = "req-" + std::to_string(i);
    e.after = R"({"state":"queued"})";
    Chain(chain.empty() ? std::nullopt : std::optional<AuditEntry>(chain.back()), e);
    chain.push_back(e);
  }
  return chain;
}

// A chain built with Chain() verifies, and seqs start at 1 from the genesis hash.
TEST(AuditChain, IntactChainVerifies) {
  auto chain = MakeChain(5);
  EXPECT_EQ(chain.front().seq, 1);
  EXPECT_EQ(chain.front().prev_hash, kGenesisHash);
  auto check = VerifyChain(chain);
  EXPECT_TRUE(check.ok) << check.reason;
  EXPECT_EQ(check.entries, 5);
}

// Changing any field of an entry is detected at that entry.
TEST(AuditChain, ChangedFieldIsDetected) {
  for (int field = 0; field < 7; ++field) {
    auto chain = MakeChain(4);
    auto& e = chain[2];
    switch (field) {
      case 0:
        e.time += "x";
        break;
      case 1:
        e.actor = "mallory";
        break;
      case 2:
        e.action = "run.cancelled";
        break;
      case 3:
        e.target = "other";
        break;
      case 4:
        e.request_id = "forged";
        break;
      case 5:
        e.before = "{}";
        break;
      default:
        e.after = R"({"state":"completed"})";
        break;
    }
    auto check = VerifyChain(chain);
    EXPECT_FALSE(check.ok) << "field " << field;
    EXPECT_EQ(check.first_broken_seq, 3) << "field " << field;
  }
}

// Rehashing a changed entry does not help: the next entry's prev_hash no longer matches.
TEST(AuditChain, RehashedEntryBreaksTheNextLink) {
  auto chain = MakeChain(4);
  chain[1].actor = "mallory";
  chain[1].hash = EntryHash(chain[1]);
  auto check = VerifyChain(chain);
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.first_broken_seq, 3);
}

// Removing an entry is detected as a gap in the sequence.
TEST(AuditChain, RemovedEntryIsDetected) {
  auto chain = MakeChain(4);
  chain.erase(chain.begin() + 1);
  auto check = VerifyChain(chain);
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.first_broken_seq, 3);
  EXPECT_NE(check.reason.find("removed"), std::string::npos);
}

// Field boundaries are part of the hash: moving text between fields changes it.
TEST(AuditChain, FieldBoundariesMatter) {
  AuditEntry a;
  a.actor = "ab";
  a.action = "c";
  AuditEntry b;
  b.actor = "a";
  b.action = "bc";
  EXPECT_NE(EntryHash(a), EntryHash(b));
}

}  // namespace
}  // namespace lab::domain
