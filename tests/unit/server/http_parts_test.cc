// Small server parts: request target parsing, the rate limiter (injected time), token tables
// and the loopback rule, the Host allowlist, and the RFC 3339 time format.
#include <gtest/gtest.h>

#include "server/http/auth.h"
#include "server/http/host_allowlist.h"
#include "server/http/http_types.h"
#include "server/http/rate_limiter.h"
#include "server/time_format.h"

namespace lab::server {
namespace {

using namespace std::chrono_literals;

// ParseTarget splits path and query and percent-decodes both ('+' is a space only in the query).
TEST(ParseTarget, SplitsAndDecodes) {
  std::string path;
  std::map<std::string, std::string> q;
  ASSERT_TRUE(ParseTarget("/runs?experiment=E-000&state=queued&limit=5", path, q));
  EXPECT_EQ(path, "/runs");
  EXPECT_EQ(q, (std::map<std::string, std::string>{
                   {"experiment", "E-000"}, {"state", "queued"}, {"limit", "5"}}));
  q.clear();
  ASSERT_TRUE(ParseTarget("/ui/a%20b+c?note=hello+world%21&empty=&flag", path, q));
  EXPECT_EQ(path, "/ui/a b+c");
  EXPECT_EQ(q["note"], "hello world!");
  EXPECT_EQ(q["empty"], "");
  EXPECT_TRUE(q.count("flag"));
  q.clear();
  ASSERT_TRUE(ParseTarget("/x?a=1&&b=%41", path, q));
  EXPECT_EQ(q["b"], "A");
  ASSERT_TRUE(ParseTarget("/%2e%2e/etc", path, q));
  EXPECT_EQ(path, "/../etc") << "decoded, so the static handler sees the dots";
}

// Malformed targets are refused: bad escapes, no leading slash, NUL bytes.
TEST(ParseTarget, RejectsMalformed) {
  std::string path;
  std::map<std::string, std::string> q;
  for (const char* bad :
       {"", "runs", "http://x/runs", "/a%zz", "/a%4", "/a%", "/a%00b", "/x?a=%g1", "/x?%=1"}) {
    EXPECT_FALSE(ParseTarget(bad, path, q)) << bad;
  }
}

// The token bucket: `burst` at once, then `rate` per second; Retry-After in whole seconds ≥ 1;
// clients are independent; rate 0 turns it off.
TEST(RateLimiter, TokenBucketWithInjectedTime) {
  RateLimiter limiter(2, 2);
  auto t0 = std::chrono::steady_clock::time_point(std::chrono::seconds(1000));
  EXPECT_EQ(limiter.Acquire("a", t0), 0);
  EXPECT_EQ(limiter.Acquire("a", t0), 0);
  EXPECT_EQ(limiter.Acquire("a", t0), 1);
  EXPECT_EQ(limiter.Acquire("b", t0), 0) << "another client has its own bucket";
  EXPECT_EQ(limiter.Acquire("a", t0 + 500ms), 0) << "one token after 0.5 s at 2/s";
  EXPECT_EQ(limiter.Acquire("a", t0 + 500ms), 1);
  // A long pause refills only up to the burst.
  auto later = t0 + 60s;
  EXPECT_EQ(limiter.Acquire("a", later), 0);
  EXPECT_EQ(limiter.Acquire("a", later), 0);
  EXPECT_EQ(limiter.Acquire("a", later), 1);
  // A clock that goes backwards never grants extra tokens.
  EXPECT_EQ(limiter.Acquire("a", t0), 1);

  RateLimiter slow(0.5, 1);
  EXPECT_EQ(slow.Acquire("c", t0), 0);
  EXPECT_EQ(slow.Acquire("c", t0), 2) << "one token per 2 s";

  RateLimiter off(0, 0);
  EXPECT_FALSE(off.enabled());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(off.Acquire("a", t0), 0);
}

// LAB_TOKENS parsing: roles, trimming, the audit name without the secret, and errors that do
// not echo the secret.
TEST(TokenTable, Parse) {
  auto t =
      TokenTable::Parse(" viewer-token-1:viewer,\noperator-token:operator , admin:token:x:admin,,");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->size(), 3u);
  auto v = t->Find("viewer-token-1");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->role, Role::kViewer);
  EXPECT_EQ(v->name, "token:view…");
  EXPECT_EQ(t->Find("operator-token")->role, Role::kOperator);
  EXPECT_EQ(t->Find("admin:token:x")->role, Role::kAdmin) << "the role is after the last colon";
  EXPECT_FALSE(t->Find("viewer-token-2"));
  EXPECT_FALSE(t->Find(""));

  auto empty = TokenTable::Parse("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  for (const char* bad : {"no-role-here", ":viewer", "long-enough-token:root", "short:admin"}) {
    auto r = TokenTable::Parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
  auto bad_role = TokenTable::Parse("supersecret-token:superuser");
  ASSERT_FALSE(bad_role.ok());
  EXPECT_EQ(bad_role.error().message.find("supersecret"), std::string::npos)
      << bad_role.error().message;
}

// Roles are ordered viewer < operator < admin and round-trip through text.
TEST(TokenTable, Roles) {
  EXPECT_LT(static_cast<int>(Role::kViewer), static_cast<int>(Role::kOperator));
  EXPECT_LT(static_cast<int>(Role::kOperator), static_cast<int>(Role::kAdmin));
  for (auto r : {Role::kViewer, Role::kOperator, Role::kAdmin})
    EXPECT_EQ(ParseRole(ToString(r)), r);
  EXPECT_FALSE(ParseRole("root"));
}

// Only loopback addresses count as local.
TEST(TokenTable, LoopbackRule) {
  for (const char* h : {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"})
    EXPECT_TRUE(IsLoopbackAddress(h)) << h;
  for (const char* h : {"0.0.0.0", "::", "10.0.0.1", "192.168.1.5", "128.0.0.1", "example.com"}) {
    EXPECT_FALSE(IsLoopbackAddress(h)) << h;
  }
}

// FormatTime is RFC 3339 UTC with milliseconds; ParseTime reads it back exactly.
TEST(TimeFormat, RoundTrip) {
  auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1795255200123));
  EXPECT_EQ(FormatTime(t), "2026-11-21T10:00:00.123Z");
  EXPECT_EQ(ParseTime("2026-11-21T10:00:00.123Z"), t);
  for (long long ms :
       {0LL, 1LL, 999LL, 951782400000LL /* 2000-02-29 */, 4102444799999LL, -1LL, -1001LL}) {
    auto tp = std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
    auto text = FormatTime(tp);
    EXPECT_EQ(text.size(), 24u) << text;
    EXPECT_EQ(ParseTime(text), tp) << text;
  }
  EXPECT_EQ(FormatTime(std::chrono::system_clock::time_point(std::chrono::milliseconds(-1))),
            "1969-12-31T23:59:59.999Z");
}

// Only real calendar dates in the exact RFC 3339 shape: no 30 February, no signs or spaces.
TEST(TimeFormat, RefusesImpossibleDatesAndLooseShapes) {
  EXPECT_TRUE(ParseTime("2024-02-29T00:00:00Z"));  // a leap year
  EXPECT_TRUE(ParseTime("2000-02-29T12:00:00.5Z"));
  for (const char* text : {"2026-02-29T00:00:00Z", "2026-02-30T00:00:00Z", "1900-02-29T00:00:00Z",
                           "2026-04-31T00:00:00Z", "+026-01-01T00:00:00Z", " 2026-01-01T00:00:00Z",
                           "2026-1-01T00:00:00Z", "2026-01-01 00:00:00Z", "2026-01-01T00:00:00"}) {
    EXPECT_FALSE(ParseTime(text)) << text;
  }
}

// A time the clock cannot represent (system_clock counts ns: beyond 2262) is refused, not wrapped.
TEST(TimeFormat, FarFutureIsRefusedOrExact) {
  for (const char* text :
       {"2999-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z", "1000-01-01T00:00:00.000Z"}) {
    auto t = ParseTime(text);
    if (t) {
      EXPECT_EQ(FormatTime(*t), text) << "ParseTime wrapped around";
    }
  }
}

// ParseTime accepts whole seconds and fractions, and refuses anything not UTC RFC 3339.
TEST(TimeFormat, ParseAcceptsAndRejects) {
  auto base = ParseTime("2026-11-21T10:00:00Z");
  ASSERT_TRUE(base);
  EXPECT_EQ(FormatTime(*base), "2026-11-21T10:00:00.000Z");
  EXPECT_EQ(FormatTime(*ParseTime("2026-11-21T10:00:00.5Z")), "2026-11-21T10:00:00.500Z");
  EXPECT_EQ(FormatTime(*ParseTime("2026-11-21T10:00:00.123456Z")), "2026-11-21T10:00:00.123Z");
  for (const char* bad :
       {"", "yesterday", "2026-11-21", "2026-11-21T10:00:00", "2026-11-21T10:00:00+01:00",
        "2026-13-01T00:00:00Z", "2026-11-21T24:00:00Z", "2026-11-21T10:60:00Z",
        "2026-11-21T10:00:00.Z", "2026-11-21T10:00:00ZZ", "2026-11-21 10:00:00Z"}) {
    EXPECT_FALSE(ParseTime(bad)) << bad;
  }
}

// The names a DNS-rebinding page would use are refused; loopback names, the listen address
// and added names are served, with any port, in any case, with or without a trailing dot.
TEST(HostAllowlist, LoopbackListenAndAddedNames) {
  HostAllowlist hosts({"lab.internal"}, "10.1.2.3");
  for (const char* ok : {"localhost:8080", "LOCALHOST", "localhost.", "127.0.0.1:8080",
                         "[::1]:8080", "::1", "10.1.2.3:8080", "lab.internal:80", ""}) {
    EXPECT_TRUE(hosts.Allows(ok)) << ok;
  }
  for (const char* bad : {"attacker.example:8080", "127.0.0.1.nip.io", "localhost.attacker.example",
                          "[::2]:8080", "10.1.2.4"}) {
    EXPECT_FALSE(hosts.Allows(bad)) << bad;
  }
  EXPECT_TRUE(hosts.AllowsOrigin("http://localhost:8080"));
  EXPECT_TRUE(hosts.AllowsOrigin("https://lab.internal"));
  EXPECT_FALSE(hosts.AllowsOrigin("http://attacker.example:8080"));
  EXPECT_FALSE(hosts.AllowsOrigin("null"));
  EXPECT_FALSE(hosts.AllowsOrigin("file://localhost"));
  EXPECT_EQ(hosts.Names(), "localhost, 127.0.0.1, ::1, 10.1.2.3, lab.internal");
}

// A wildcard listen address is not a name; "*" turns the check off.
TEST(HostAllowlist, WildcardListenAndStar) {
  EXPECT_FALSE(HostAllowlist({}, "0.0.0.0").Allows("0.0.0.0:8080"));
  EXPECT_TRUE(HostAllowlist({"*"}, "127.0.0.1").Allows("anything.example"));
}

}  // namespace
}  // namespace lab::server
