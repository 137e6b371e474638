// redis-clients: Redis client processes for the redis-ops experiments.
//
// `--mode storm` (E-046): `--connections N` threads, each holding one connection to the
// standalone Redis (named `--name` with CLIENT SETNAME, so the server can count them) and sending
// PING every `--ping-ms`. When a connection breaks (Redis killed) it reconnects per `--policy`:
//   immediate: at once, and again at once after every failed attempt (the anti-pattern);
//   backoff:   exponential backoff with full jitter: before attempt n sleep
//              uniform(0, min(cap-ms, base-ms x 2^n)).
// A connection is "served again" when a PING after its break is answered. Runs until SIGTERM or
// `--seconds`. Output: attempts (connect attempts, including the first), refused (connects the
// kernel refused: Redis down), refused_maxclients ("max number of clients reached" replies),
// connected_initially, broken, served_again, unserved (broken and never served again),
// served_after_restart_us (wall clock of the last connection served again),
// attempts_second=<unix s>:<attempts in that second> lines.
//
// `--mode stream-consumer` (E-048): one consumer of group `--group` on stream `--stream`
// (XREADGROUP COUNT `--count`); processing an entry is SADD of its seq to `--processed-key`,
// then XACK. Failpoint `after-read-before-ack` (per batch read) kills the process with the
// batch pending. After the stream is drained (`--idle-exit-ms` without new entries) a consumer
// with `--claim-idle-ms` > 0 claims the group's entries idle that long (XAUTOCLAIM), processes
// and acks them, until nothing is pending (bounded by `--seconds`). Output: read, acked,
// reclaimed.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "runners/common/c_handle.h"
#include "runners/common/util.h"
#include "runners/roles/role_common.h"

namespace lab::runners::roles {
namespace {

using namespace std::chrono_literals;
using Context = CHandle<redisContext, redisFree>;
using ReplyPtr = CHandle<redisReply, freeReplyObject>;

timeval Tv(std::int64_t ms) {
  return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

std::int64_t UnixSeconds() { return NowMicros() / 1000000; }

// Sends argv and reads its reply; nullptr on an I/O error (the context is then dead).
ReplyPtr Call(redisContext* c, const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  return ReplyPtr(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data())));
}

// ----- storm ------------------------------------------------------------------------------------

struct StormShared {
  std::string host;
  int port = 0;
  std::string name;
  bool backoff = false;
  std::int64_t ping_ms = 100;
  std::int64_t base_ms = 50;
  std::int64_t cap_ms = 2000;
  SteadyClock::time_point deadline;
  std::int64_t start_s = 0;
  std::vector<std::atomic<std::int64_t>> per_second;  // attempts by second since start_s
  std::atomic<std::int64_t> attempts{0};
  std::atomic<std::int64_t> refused{0};
  std::atomic<std::int64_t> refused_maxclients{0};
  std::atomic<std::int64_t> connected_initially{0};
  std::atomic<std::int64_t> broken{0};
  std::atomic<std::int64_t> served_again{0};
  std::atomic<std::int64_t> last_served_us{0};
  explicit StormShared(std::size_t seconds) : per_second(seconds) {}

  bool Running() const { return !StopRequested() && SteadyClock::now() < deadline; }
  void CountAttempt() {
    ++attempts;
    const auto slot = static_cast<std::size_t>(std::max<std::int64_t>(0, UnixSeconds() - start_s));
    if (slot < per_second.size()) ++per_second[slot];
  }
};

// One connect attempt plus the first request (CLIENT SETNAME + PING); nullptr when refused.
Context ConnectOnce(StormShared& s) {
  s.CountAttempt();
  Context c(redisConnectWithTimeout(s.host.c_str(), s.port, Tv(1000)));
  if (!c || c->err != 0) {
    ++s.refused;
    return Context();
  }
  redisSetTimeout(c.get(), Tv(1000));
  // A Redis at maxclients accepts the TCP connection, writes the error and closes it.
  redisAppendCommand(c.get(), "CLIENT SETNAME %s", s.name.c_str());
  redisAppendCommand(c.get(), "PING");
  for (int i = 0; i < 2; ++i) {
    void* raw = nullptr;
    if (redisGetReply(c.get(), &raw) != REDIS_OK) {
      ++s.refused;
      return Context();
    }
    ReplyPtr reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR) {
      if (std::string(reply->str, reply->len).find("max number of clients") != std::string::npos)
        ++s.refused_maxclients;
      else
        ++s.refused;
      return Context();
    }
  }
  return c;
}

// Connects per the policy until served or the role ends; nullptr when it ended first.
Context Reconnect(StormShared& s, std::mt19937_64& rng) {
  for (int attempt = 0; s.Running(); ++attempt) {
    if (s.backoff) {
      const std::int64_t ceiling =
          std::min<std::int64_t>(s.cap_ms, s.base_ms * (std::int64_t{1} << std::min(attempt, 20)));
      std::uniform_int_distribution<std::int64_t> jitter(0, ceiling);
      std::this_thread::sleep_for(std::chrono::milliseconds(jitter(rng)));
      if (!s.Running()) break;
    }
    if (auto c = ConnectOnce(s)) return c;
  }
  return Context();
}

void StormConnection(StormShared& s, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Context c = Reconnect(s, rng);  // the first connect, before any fault
  if (!c) return;
  ++s.connected_initially;
  bool waiting = false;  // broken and not yet served again
  while (s.Running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(s.ping_ms));
    ReplyPtr pong = Call(c.get(), {"PING"});
    if (pong && pong->type != REDIS_REPLY_ERROR) continue;
    if (!waiting) ++s.broken;
    waiting = true;
    c = Reconnect(s, rng);
    if (!c) break;
    waiting = false;
    ++s.served_again;
    const std::int64_t now = NowMicros();
    std::int64_t prev = s.last_served_us.load();
    while (prev < now && !s.last_served_us.compare_exchange_weak(prev, now)) {
    }
  }
}

int RunStorm(const RoleArgs& args) {
  const auto connections =
      static_cast<int>(std::clamp<std::int64_t>(args.Int("connections", 50), 1, 1000));
  const std::int64_t seconds = std::clamp<std::int64_t>(args.Int("seconds", 60), 1, 600);
  StormShared s(static_cast<std::size_t>(seconds + 5));
  s.host = args.Get("redis-host", "127.0.0.1");
  s.port = static_cast<int>(args.Int("redis-port", 16379));
  s.name = args.Get("name", "lab-redis-clients");
  s.backoff = args.Get("policy", "backoff") == "backoff";
  s.ping_ms = args.Int("ping-ms", 100);
  s.base_ms = args.Int("base-ms", 50);
  s.cap_ms = args.Int("cap-ms", 2000);
  s.deadline = SteadyClock::now() + std::chrono::seconds(seconds);
  s.start_s = UnixSeconds();
  std::vector<std::thread> threads;
  std::random_device rd;
  for (int i = 0; i < connections; ++i) {
    threads.emplace_back(StormConnection, std::ref(s),
                         (static_cast<std::uint64_t>(rd()) << 32) ^ static_cast<std::uint64_t>(i));
  }
  for (auto& t : threads) t.join();
  Emit("connections", connections);
  Emit("attempts", s.attempts.load());
  Emit("refused", s.refused.load());
  Emit("refused_maxclients", s.refused_maxclients.load());
  Emit("connected_initially", s.connected_initially.load());
  Emit("broken", s.broken.load());
  Emit("served_again", s.served_again.load());
  Emit("unserved", s.broken.load() - s.served_again.load());
  Emit("served_after_restart_us", s.last_served_us.load());
  for (std::size_t i = 0; i < s.per_second.size(); ++i) {
    if (const auto n = s.per_second[i].load(); n > 0)
      Emit("attempts_second",
           std::to_string(s.start_s + static_cast<std::int64_t>(i)) + ":" + std::to_string(n));
  }
  return 0;
}

// ----- stream consumer --------------------------------------------------------------------------

struct Entry {
  std::string id;
  std::string seq;
};

// Entries of an XREADGROUP/XAUTOCLAIM entry array: [[id, [field, value, ...]], ...].
std::vector<Entry> ParseEntries(const redisReply* list) {
  std::vector<Entry> out;
  if (list == nullptr || list->type != REDIS_REPLY_ARRAY) return out;
  for (size_t i = 0; i < list->elements; ++i) {
    const redisReply* e = list->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) continue;
    Entry entry{std::string(e->element[0]->str, e->element[0]->len), ""};
    const redisReply* fields = e->element[1];
    if (fields->type == REDIS_REPLY_ARRAY) {
      for (size_t f = 0; f + 1 < fields->elements; f += 2) {
        if (std::string(fields->element[f]->str, fields->element[f]->len) == "seq")
          entry.seq.assign(fields->element[f + 1]->str, fields->element[f + 1]->len);
      }
    }
    out.push_back(std::move(entry));  // a deleted entry (nil fields) is acked without a seq
  }
  return out;
}

// The side effect (SADD seq), then XACK, in one round trip; false on an I/O error.
bool ProcessAndAck(redisContext* c, const std::string& stream, const std::string& group,
                   const std::string& processed, const std::vector<Entry>& entries,
                   std::int64_t& acked) {
  if (entries.empty()) return true;
  std::vector<std::string> sadd = {"SADD", processed};
  std::vector<std::string> xack = {"XACK", stream, group};
  for (const auto& e : entries) {
    if (!e.seq.empty()) sadd.push_back(e.seq);
    xack.push_back(e.id);
  }
  if (sadd.size() > 2) {
    ReplyPtr r = Call(c, sadd);
    if (!r || r->type == REDIS_REPLY_ERROR) return false;
  }
  ReplyPtr r = Call(c, xack);
  if (!r || r->type != REDIS_REPLY_INTEGER) return false;
  acked += r->integer;
  return true;
}

int RunStreamConsumer(const RoleArgs& args) {
  const std::string stream = args.Get("stream");
  const std::string group = args.Get("group");
  const std::string consumer = args.Get("consumer", "c1");
  const std::string processed = args.Get("processed-key");
  const std::string count = std::to_string(args.Int("count", 100));
  const std::int64_t claim_idle_ms = args.Int("claim-idle-ms", 0);
  const auto idle_exit = std::chrono::milliseconds(args.Int("idle-exit-ms", 1500));
  const auto deadline = SteadyClock::now() + std::chrono::seconds(args.Int("seconds", 60));
  Failpoint failpoint(args);
  Context c(redisConnectWithTimeout(args.Get("redis-host", "127.0.0.1").c_str(),
                                    static_cast<int>(args.Int("redis-port", 16379)), Tv(2000)));
  if (!c || c->err != 0) {
    Emit("error", std::string("redis connect: ") + (c ? c->errstr : "no context"));
    return 1;
  }
  redisSetTimeout(c.get(), Tv(5000));
  std::int64_t read = 0;
  std::int64_t acked = 0;
  std::int64_t reclaimed = 0;
  auto fail = [&](const std::string& what) {
    Emit("error", what + (c->err != 0 ? std::string(": ") + c->errstr : ""));
    return 1;
  };
  // Phase 1: new entries, until none arrive for idle_exit.
  auto last_new = SteadyClock::now();
  while (!StopRequested() && SteadyClock::now() < deadline &&
         SteadyClock::now() - last_new < idle_exit) {
    ReplyPtr r = Call(c.get(), {"XREADGROUP", "GROUP", group, consumer, "COUNT", count, "BLOCK",
                                "200", "STREAMS", stream, ">"});
    if (!r || r->type == REDIS_REPLY_ERROR) return fail("XREADGROUP");
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) continue;  // nil: nothing new
    auto entries = ParseEntries(r->element[0]->element[1]);
    if (entries.empty()) continue;
    last_new = SteadyClock::now();
    read += static_cast<std::int64_t>(entries.size());
    failpoint.Hit("after-read-before-ack");  // dies with this batch pending
    if (!ProcessAndAck(c.get(), stream, group, processed, entries, acked)) return fail("ack");
  }
  // Phase 2: claim what a dead consumer left pending, until the group has nothing pending.
  while (claim_idle_ms > 0 && !StopRequested() && SteadyClock::now() < deadline) {
    ReplyPtr r = Call(c.get(), {"XAUTOCLAIM", stream, group, consumer,
                                std::to_string(claim_idle_ms), "0-0", "COUNT", count});
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) return fail("XAUTOCLAIM");
    auto entries = ParseEntries(r->element[1]);
    reclaimed += static_cast<std::int64_t>(entries.size());
    if (!ProcessAndAck(c.get(), stream, group, processed, entries, acked)) return fail("ack");
    ReplyPtr pending = Call(c.get(), {"XPENDING", stream, group});
    if (!pending || pending->type != REDIS_REPLY_ARRAY || pending->elements < 1)
      return fail("XPENDING");
    if (pending->element[0]->integer == 0) break;
    if (entries.empty()) std::this_thread::sleep_for(100ms);
  }
  Emit("read", read);
  Emit("acked", acked);
  Emit("reclaimed", reclaimed);
  return 0;
}

}  // namespace

int RunRedisClients(const RoleArgs& args) {
  StopOnSigterm();
  const std::string mode = args.Get("mode", "storm");
  if (mode == "storm") return RunStorm(args);
  if (mode == "stream-consumer") return RunStreamConsumer(args);
  Emit("error", "unknown --mode " + mode);
  return 2;
}

}  // namespace lab::runners::roles
