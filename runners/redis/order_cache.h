// The cached order of E-001's pipeline: a Redis hash {version, amount} per order, written only
// by a newer version. One script for every writer (the consumers' version-guarded update and the
// query-service's fill after a miss), so the guard they rely on is the same guard.
#pragma once

namespace lab::runners::redis {

// KEYS[1] the order's cache key; ARGV: version, amount, TTL in ms. Returns 1 when it wrote,
// 0 when the cache already held this version or a newer one.
inline constexpr const char* kVersionedOrderSet = R"(
local cur = redis.call('HGET', KEYS[1], 'version')
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'amount', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1)";

}  // namespace lab::runners::redis
