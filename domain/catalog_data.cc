// The catalog's content. Wording follows ../shared/design/EXPERIMENTS.md; parameter bounds are
// chosen so that defaults finish in under 60 s on 2 cores and the maxima stay meaningful.
#include <algorithm>

#include "domain/catalog.h"

namespace lab::domain {
namespace {

ParameterSpec Int(std::string name, std::int64_t def, double min, double max, std::string unit,
                  std::string description) {
  return {std::move(name),
          ParamType::kInteger,
          ParamValue{def},
          min,
          max,
          std::move(unit),
          std::move(description),
          {}};
}

ParameterSpec Enum(std::string name, std::string def, std::vector<std::string> choices,
                   std::string description) {
  return {std::move(name),        ParamType::kEnum,  ParamValue{std::move(def)},
          std::nullopt,           std::nullopt,      "",
          std::move(description), std::move(choices)};
}

constexpr auto kGt = CompareOp::kGreater;
constexpr auto kGe = CompareOp::kGreaterEqual;
constexpr auto kEq = CompareOp::kEqual;
constexpr auto kLe = CompareOp::kLessEqual;
constexpr auto kLt = CompareOp::kLess;
constexpr auto kInc = Verdict::kInconclusive;

ModeSpec Failure(std::string d) { return {"failure", std::move(d)}; }
ModeSpec Success(std::string d) { return {"success", std::move(d)}; }

// The flip every experiment with a practice has: "off" runs the success mode with the
// anti-pattern instead, so a user (and a test) sees the verdict follow the evidence.
ParameterSpec Practice() {
  return Enum("practice", "on", {"on", "off"},
              "off runs the success mode without its practice (the anti-pattern), to see the "
              "verdict change");
}

ParameterSpec Events(std::int64_t def, std::int64_t max) {
  return Int("events", def, 1, static_cast<double>(max), "events",
             "how many domain events to write");
}

std::vector<ExperimentSpec> Build() {
  std::vector<ExperimentSpec> c;

  c.push_back(
      {"E-000",
       "Stack check",
       "stack",
       "every part of the stack answers, and we know which versions we run against",
       "connects to each part (Kafka, schema registry, MySQL, Redis, Redis Cluster, "
       "Toxiproxy) with its real client, records its version and round-trip time",
       "each part has reachable (1/0), a version and rtt_ms; `unreachable` counts the parts "
       "that did not answer. Confirmed when all answer; inconclusive names the missing ones.",
       {{"check", "ask each part for its version and time the round trip"}},
       {Int("timeout_ms", 2000, 100, 10000, "ms", "how long to wait for each part")},
       {},
       {},
       {Compare("check", "unreachable", kEq, 0, kInc)},
       30});

  c.push_back(
      {"E-001",
       "The standard pipeline loses and duplicates nothing",
       "core",
       "outbox + relay + processed_event + cache invalidation lose nothing, duplicate nothing "
       "and leave no stale cache",
       "command-service writes orders with an outbox row in the same transaction; the relay "
       "publishes with an idempotent producer; the consumer applies the projection and "
       "processed_event in one transaction and updates the cache version-guarded (VERSIONED, "
       "the default) or deletes the key (DEL); query-service reads through the cache while "
       "this runs. practice=off: the consumers do not invalidate the cache at all",
       "commands counts outbox rows and must equal commands_committed, the command-services' "
       "own count; applied must equal commands; mismatches compares each projection row with its "
       "order; "
       "stale_reads counts cache reads that disagree with MySQL after convergence; latency "
       "is commit to projection. With DEL a reader that loaded the old row just before the "
       "commit can write it back just after the delete: stale_reads > 0 in some runs (the "
       "verdict says refuted), which VERSIONED's version check prevents",
       {Success("outbox + relay + processed_event + invalidation")},
       {Events(2000, 1000000),
        Enum("invalidation", "versioned", {"versioned", "del"},
             "how the consumer invalidates the cache"),
        Int("rate", 1000, 10, 50000, "events/s", "offered load of the command-service"),
        Int("partitions", 3, 1, 24, "partitions", "partitions of the event topic"), Practice()},
       {kPartKafka, kPartMysql, kPartRedis},
       {},
       {Compare("success", "commands", kGt, 0, kInc),
        // The outbox holds one row per command the command-services say they committed.
        CompareRatio("success", "commands", kEq, 1, "success", "commands_committed"),
        CompareRatio("success", "applied", kEq, 1, "success", "commands"),
        Compare("success", "duplicates", kEq, 0), Compare("success", "mismatches", kEq, 0),
        Compare("success", "stale_reads", kEq, 0)},
       120});

  c.push_back(
      {"E-002",
       "Producing after commit loses events on a crash",
       "core",
       "producing directly after the DB commit loses events when the process dies; the "
       "outbox does not",
       "the command-service is killed (SIGKILL) after the commit and before delivery; in the "
       "outbox mode the relay is killed at the same point and restarted. practice=off: the "
       "success mode produces directly too",
       "committed counts rows in MySQL, read_back counts the events a fresh consumer reads "
       "from the topic; lost = committed - read_back (distinct event ids); crashed (and "
       "relay_crashed with the outbox) is 1 when waitpid saw the process killed by SIGKILL at "
       "its failpoint: the fault fired",
       {Failure("direct produce after commit, killed after commit before delivery"),
        Success("outbox row in the same transaction, relay killed at the same point")},
       {Events(500, 100000),
        Int("kill_after", 200, 1, 100000, "events", "commit this many before the crash"),
        Practice()},
       {kPartKafka, kPartMysql},
       {},
       {Compare("failure", "crashed", kEq, 1, kInc), Compare("success", "crashed", kEq, 1, kInc),
        Compare("failure", "lost", kGt, 0), Compare("success", "lost", kEq, 0),
        Compare("success", "committed", kGt, 0, kInc)},
       120});

  c.push_back(
      {"E-003",
       "Consuming without dedup applies side effects twice",
       "core",
       "without processed_event a redelivered event applies its side effect twice; "
       "processed_event in the same transaction prevents it",
       "real redelivery: the relay is killed after produce and before mark (so it publishes "
       "again) and the consumer is killed after apply and before the offset commit",
       "unique counts distinct event ids in the topic; applied counts side effects in MySQL; "
       "duplicates = applied - unique; relay_killed and consumer_killed are 1 when waitpid saw "
       "each killed by SIGKILL at its failpoint (the redelivery really happened). practice=off: "
       "the success mode's consumer runs without processed_event",
       {Failure("consumer without dedup"), Success("processed_event in the same transaction")},
       {Events(500, 100000),
        Int("kill_consumer_after", 150, 1, 100000, "events",
            "consumer dies after applying this many"),
        Practice()},
       {kPartKafka, kPartMysql},
       {},
       {Compare("failure", "relay_killed", kEq, 1, kInc),
        Compare("success", "relay_killed", kEq, 1, kInc),
        Compare("failure", "consumer_killed", kEq, 1, kInc),
        Compare("success", "consumer_killed", kEq, 1, kInc),
        Compare("failure", "duplicates", kGt, 0), Compare("success", "duplicates", kEq, 0),
        Compare("success", "unique", kGt, 0, kInc)},
       120});

  c.push_back(
      {"E-004",
       "Committing the offset before processing loses work",
       "core",
       "commit-then-process loses the in-flight batch on a crash; process-then-commit with "
       "idempotency does not",
       "a consumer commits offsets before applying a batch and is killed mid-batch; the "
       "other mode applies, records processed_event, then commits",
       "produced counts records in the topic; processed counts distinct events applied in "
       "MySQL; lost = produced - processed; consumer_killed is 1 when waitpid saw the "
       "first consumer killed by SIGKILL at its failpoint. practice=off: the success "
       "mode commits before processing too",
       {Failure("commit offset, then process; killed mid-batch"),
        Success("process, record processed_event, then commit")},
       {Events(500, 100000), Int("batch", 50, 1, 5000, "records", "records per poll batch"),
        Int("kill_after", 120, 1, 100000, "events", "the consumer dies after this many"),
        Practice()},
       {kPartKafka, kPartMysql},
       {},
       {Compare("failure", "consumer_killed", kEq, 1, kInc),
        Compare("success", "consumer_killed", kEq, 1, kInc), Compare("failure", "lost", kGt, 0),
        Compare("success", "lost", kEq, 0), Compare("success", "produced", kGt, 0, kInc)},
       120});

  c.push_back(
      {"E-005",
       "Retry, DLQ and replay recover everything",
       "core",
       "retry topics -> DLQ -> replay recovers every event, and replaying twice is harmless",
       "poison messages fail in the consumer, go through the retry topics to the DLQ with "
       "headers; the fault is cleared; the replay worker replays (filtered, rate limited, "
       "audited), then replays again",
       "final_applied must equal total after the replay; duplicates counts events applied "
       "more than once after the second replay; replay_audit counts audit rows",
       {Success("retry topics, DLQ with headers, replay twice")},
       {Events(300, 100000),
        Int("poison_every", 10, 2, 1000, "events", "every Nth event is poison"),
        Int("replay_rate", 500, 1, 100000, "events/s", "replay rate limit"),
        Enum("dedup", "processed_event", {"processed_event", "none"},
             "how the consumer deduplicates replayed events (none flips the practice)")},
       {kPartKafka, kPartMysql},
       {},
       {Compare("success", "dlq", kGt, 0, kInc),
        CompareRatio("success", "final_applied", kEq, 1, "success", "total"),
        Compare("success", "duplicates", kEq, 0)},
       120});

  c.push_back(
      {"E-006",
       "Schema rollout order",
       "core",
       "shipping a breaking schema producer-first breaks consumers; consumer-first converges",
       "the producer switches to Avro V2 while consumers read strictly with V1; then "
       "consumers are deployed first with dual-read (writer schema by registry id, Confluent "
       "wire format) and the producer follows",
       "parse_failures counts records a consumer could not decode; max_lag is the largest "
       "consumer lag seen; final_lag must come back to 0. records_v1/records_v2 are read back "
       "from the topic by schema id: a mode whose V2 records never reached it is inconclusive",
       {Failure("producer first, strict V1 consumers"),
        Success("consumers first with dual-read, then producer")},
       {Events(400, 100000),
        Int("rate", 400, 10, 100000, "records/s", "producer pace (lag then reflects consumers)"),
        Enum("on_parse_failure", "retry", {"retry", "skip"},
             "what a consumer does with a record it cannot parse: retry it (the partition "
             "stalls) or skip it (counted, committed past)"),
        Enum("success_reader", "dual-read", {"dual-read", "strict-v1"},
             "the consumers the success mode deploys first; strict-v1 is the flip check"),
        Int("converge_timeout_ms", 6000, 1000, 60000, "ms",
            "how long to wait for lag 0 after the producer stops")},
       {kPartKafka, kPartRegistry},
       {},
       {Compare("failure", "records_v2", kGt, 0, kInc),
        Compare("success", "records_v2", kGt, 0, kInc),
        Compare("failure", "parse_failures", kGt, 0), Compare("success", "parse_failures", kEq, 0),
        Compare("success", "final_lag", kEq, 0)},
       120});

  c.push_back(
      {"E-007",
       "An open transaction holds back read_committed readers",
       "core",
       "an open transaction pins the last stable offset: read_committed readers see nothing "
       "past it, even later plain records, until it commits",
       "a transactional producer writes and keeps its transaction open; a plain record is "
       "produced after it to the same partition; both isolation levels read; then commit",
       "high_watermark and last_stable_offset while open; visible_committed_open must be 0; "
       "visible_uncommitted_open shows the records exist; plain_acked says the later record "
       "was written; visible_committed_after and visible_uncommitted_after all",
       {Success("transaction held open, then committed")},
       {Int("records", 10, 1, 10000, "records", "records in the open transaction")},
       {kPartKafka},
       {},
       {Compare("success", "visible_committed_open", kEq, 0),
        Compare("success", "visible_uncommitted_open", kGt, 0, kInc),
        // Without an acknowledged plain record the run shows nothing about later records.
        Compare("success", "plain_acked", kGt, 0, kInc),
        CompareRatio("success", "visible_committed_after", kEq, 1, "success", "expected_after")},
       90});

  c.push_back(
      {"E-008",
       "Cache stampede and singleflight",
       "core",
       "a hot key expiring under load stampedes the database; singleflight + soft TTL "
       "prevents it",
       "C concurrent clients read one hot key through cache-aside; the key expires; naive "
       "reads all go to MySQL, the defended ones coalesce (singleflight per instance, soft "
       "TTL with early refresh, Redis lock across instances). practice=off: the success "
       "mode is naive cache-aside too",
       "db_reads counts queries MySQL served (db_read_log, read back); p50/p95/p99 are client "
       "latencies. A mode with no database read at all never saw the key expire: inconclusive",
       {Failure("naive cache-aside"), Success("singleflight + soft TTL + Redis lock")},
       {Int("clients", 200, 1, 2000, "clients", "concurrent clients"),
        Int("instances", 2, 1, 16, "instances", "query-service instances"),
        Int("db_delay_ms", 50, 0, 5000, "ms", "time the DB query takes (SLEEP)"),
        Int("expiries", 3, 1, 100, "expiries", "how many times the hot key expires"), Practice()},
       {kPartMysql, kPartRedis},
       {},
       // 0 >= 10 x 0 holds: a naive mode whose loads all failed shows no stampede, and
       // a defended mode whose clients failed read less for the wrong reason.
       {Compare("failure", "db_reads", kGt, 0, kInc), Compare("success", "db_reads", kGt, 0, kInc),
        Compare("success", "errors", kEq, 0, kInc),
        CompareRatio("failure", "db_reads", kGe, 10, "success", "db_reads"),
        CompareRatio("success", "db_reads_per_expiry", kLe, 1, "success", "instances")},
       120});

  c.push_back(
      {"E-009",
       "Durability: acks and min.insync.replicas",
       "core",
       "acks=1 with a lagging follower loses acknowledged records when the leader dies and "
       "an unclean election follows; acks=all + min.insync.replicas=2 loses none and rejects "
       "writes when ISR < 2",
       "a one-partition topic on a leader and one follower (the third broker keeps the "
       "controller quorum), unclean election allowed; the follower paused until it leaves "
       "the ISR; acks=1 produce; leader killed (SIGKILL); the follower resumes and is elected "
       "unclean; then acks=all + min ISR 2: writes refused while the ISR is 1, a clean "
       "failover loses nothing",
       "acknowledged counts delivery reports without error; read_back counts what a fresh "
       "consumer reads; lost_acked = acknowledged - read_back; rejected_isr counts "
       "NOT_ENOUGH_REPLICAS outcomes. Every write ends acknowledged, refused (the broker said "
       "no before appending) or indeterminate (timed out: the log may hold it); the read-back, "
       "after every producer is closed, goes to the final high watermark and counts "
       "indeterminate_landed, refused_landed (must be 0) and unexplained_read (records no write "
       "of the run accounts for, must be 0). practice=off: the success mode runs acks=1, min "
       "ISR 1 and the unclean election too",
       {Failure("acks=1, unclean election"), Success("acks=all, min.insync.replicas=2")},
       {Events(2000, 200000), Practice()},
       {kPartKafka},
       {kLockKafkaBrokers},
       {Compare("failure", "acknowledged", kGt, 0, kInc), Compare("failure", "lost_acked", kGt, 0),
        Compare("success", "acknowledged", kGt, 0, kInc), Compare("success", "lost_acked", kEq, 0),
        Compare("success", "rejected_isr", kGt, 0)},
       180});

  c.push_back(
      {"E-013",
       "Lua read-modify-write cache diverges from MySQL",
       "advanced",
       "updating the cache with a Lua read-modify-write while MySQL is the truth diverges; "
       "commit-then-invalidate and a versioned set do not",
       "concurrent writer threads change rows of cache_truth in MariaDB (value + delta, version "
       "+ 1; some transactions roll back on a business check) while readers read through the "
       "cache. failure: each writer updates the cached value with a Lua read-modify-write of "
       "the cache's own value, independent of the commit. success: two fixes in turn, "
       "commit-then-invalidate (DEL after commit; readers fill a miss from a locking read, "
       "SELECT ... LOCK IN SHARE MODE, and SET while the shared lock is held, so a fill can never "
       "land after a newer commit's DEL: the plain-fill race of E-001 would make the count flaky) "
       "and a versioned set (a Lua script writes only if the version is newer, also for readers' "
       "fills). practice=off: both fixes use the Lua read-modify-write",
       "after every writer stopped, each key's cached value is compared with its row in MariaDB "
       "(keys_compared = keys present, mismatches = present keys whose value differs: both read "
       "back; a missing key is filled on the next read, not a mismatch); writes_committed (the "
       "writers' count) is cross-checked with SUM(version - 1) over the rows "
       "(committed_read_back); stale_reads counts reads during the run whose cached value "
       "differed from the row read right after (approximate, self-reported). The success mode "
       "reports each metric per fix (suffix _invalidate, _versioned)",
       {Failure("write-through by a Lua read-modify-write independent of the DB commit"),
        Success("commit then invalidate (DEL); commit then versioned set")},
       {Int("writers", 8, 1, 64, "threads", "concurrent writers"),
        Int("updates", 300, 1, 100000, "updates", "updates per writer"),
        Int("items", 20, 1, 10000, "rows", "rows (and cache keys) the writers share"),
        Int("readers", 2, 0, 32, "threads", "concurrent readers through the cache"), Practice()},
       {kPartMysql, kPartRedis},
       {},
       {Compare("failure", "keys_compared", kGt, 0, kInc), Compare("failure", "mismatches", kGt, 0),
        Compare("success", "keys_compared", kGt, 0, kInc),
        Compare("success", "mismatches_invalidate", kEq, 0),
        Compare("success", "mismatches_versioned", kEq, 0)},
       90});

  c.push_back(
      {"E-039A",
       "Distributed locks fail in known ways",
       "redis-ops",
       "distributed locks (SET NX PX) fail in known ways: overlapping critical sections",
       "real lock-holder processes take a SET NX PX lock and record each critical section in "
       "MariaDB (lock_interval). Scenarios: pause (the holder is SIGSTOPped past the TTL while "
       "another acquires), unsafe_unlock (an unlock without an owner check deletes another "
       "holder's lock), timeout_retry (a holder whose work outlives the TTL keeps working while "
       "a retrying contender acquires), crash_restart (a holder killed with SIGKILL is "
       "restarted and resumes the work it believes it still holds the lock for)",
       "overlaps_<scenario> counts pairs of critical sections of different holders that overlap "
       "in time, read back from lock_interval; holder_paused and holder_killed prove the faults "
       "fired (the process was stopped / killed by the signal)",
       {Failure("SET NX PX locks, unlock with DEL, no fencing")},
       {Int("ttl_ms", 500, 100, 10000, "ms", "the lock's TTL"),
        Int("holders", 2, 2, 16, "processes",
            "holder processes per scenario: the first holder and holders-1 contenders "
            "(unsafe_unlock takes at least two contenders)")},
       {kPartMysql, kPartRedis},
       {},
       {Compare("failure", "holder_paused", kEq, 1, kInc),
        Compare("failure", "holder_killed", kEq, 1, kInc),
        Compare("failure", "overlaps_pause", kGt, 0),
        Compare("failure", "overlaps_unsafe_unlock", kGt, 0),
        Compare("failure", "overlaps_timeout_retry", kGt, 0),
        Compare("failure", "overlaps_crash_restart", kGt, 0)},
       90});

  c.push_back(
      {"E-039B",
       "Fencing tokens and a safe unlock",
       "redis-ops",
       "fencing tokens and a compare-and-delete unlock prevent the failures of E-039A",
       "the scenarios of E-039A with real holder processes; each lock comes with a token from "
       "INCR (monotonic). failure: the store (fenced_resource in MariaDB) accepts any write and "
       "unlock is a plain DEL. success: the store refuses a write whose token is older than the "
       "newest it accepted (one conditional UPDATE), and unlock is a compare-and-delete Lua "
       "script",
       "stale_writes_attempted counts writes by a holder whose lock had expired or been taken "
       "over (its token is older than one already written), stale_writes_accepted and "
       "stale_writes_refused come from fenced_write (read back); foreign_unlocks counts unlocks "
       "that deleted another holder's lock (checked against the lock's value in Redis); "
       "holder_paused proves the pause fired",
       {Failure("no fencing: the store accepts any write; unlock is DEL"),
        Success("fencing token checked by the store; compare-and-delete unlock")},
       {Int("ttl_ms", 500, 100, 10000, "ms", "the lock's TTL"),
        Int("holders", 2, 2, 16, "processes",
            "holder processes per scenario: the first holder and holders-1 contenders "
            "(unsafe_unlock takes at least two contenders)"),
        Practice()},
       {kPartMysql, kPartRedis},
       {},
       {Compare("failure", "holder_paused", kEq, 1, kInc),
        Compare("success", "holder_paused", kEq, 1, kInc),
        Compare("failure", "stale_writes_accepted", kGt, 0),
        Compare("success", "stale_writes_attempted", kGt, 0, kInc),
        Compare("success", "stale_writes_refused", kGt, 0),
        Compare("success", "stale_writes_accepted", kEq, 0),
        Compare("success", "foreign_unlocks", kEq, 0)},
       90});

  c.push_back(
      {"E-044",
       "Online resharding",
       "redis-ops",
       "online resharding under load is safe for a cluster-aware client",
       "`slots` slots holding `keys` keys migrate from one master to another (CLUSTER SETSLOT "
       "IMPORTING/MIGRATING, MIGRATE in batches, SETSLOT NODE) while `clients` threads read and "
       "write those keys; then they migrate back. failure: a client with a fixed slot map that "
       "treats ASK and MOVED as errors; success: the cluster-aware client (ASKING, MOVED "
       "refreshes its map). practice=off: the success mode uses the naive client",
       "slots_migrated and keys_migrated are the migration's own steps (SETSLOT and MIGRATE "
       "answers; every key in those slots, the other mode's included) and prove the fault; "
       "slots_moved_back and topology_restored (every node's CLUSTER NODES, read back) show the "
       "cluster as it was; ask_server and moved_server are the masters' errorstat deltas (server "
       "counters) and ask_client/moved_client the client's; client_errors are operations the "
       "client failed; keys_lost compares each key read back after the move with the last value "
       "a client wrote and the server acknowledged; p99_before_ms and p99_during_ms are client "
       "latencies",
       {Failure("a client that treats ASK/MOVED as errors"), Success("the cluster-aware client")},
       {Int("slots", 20, 1, 1000, "slots", "slots migrated"),
        Int("keys", 2000, 10, 200000, "keys", "keys in those slots"),
        Int("clients", 4, 1, 32, "clients", "client threads"), Practice()},
       {kPartRedisCluster},
       {kLockRedisCluster},
       {Compare("failure", "slots_migrated", kGt, 0, kInc),
        Compare("success", "slots_migrated", kGt, 0, kInc),
        Compare("success", "ask_server", kGt, 0, kInc), Compare("failure", "client_errors", kGt, 0),
        Compare("success", "client_errors", kEq, 0), Compare("success", "keys_lost", kEq, 0),
        Compare("failure", "keys_lost", kEq, 0)},
       90});

  c.push_back(
      {"E-045",
       "Failover drill",
       "redis-ops",
       "a failover drill shows the unavailability window and the async-replication loss",
       "a writer writes numbered keys to one master's slots. The master's replica is paused "
       "(SIGSTOP) and the replication link cut (CLIENT KILL TYPE replica on the master), `writes` "
       "more writes are acknowledged by the master alone, then the master is killed (SIGKILL), "
       "the replica resumed and promoted by the cluster; the writer keeps writing and measures "
       "the window. The killed node is restarted, rejoins as a replica and takes its role back "
       "(CLUSTER FAILOVER). failure: a write counts as durable once the master acknowledged it. "
       "success: only once WAIT 1 says a replica has it. practice=off: no WAIT",
       "acked_durable counts writes the client counted as durable; lost_durable those of them "
       "missing or stale when read back from the new master (read back); not_durable counts "
       "writes WAIT reported unreplicated (the client knew); master_killed (waitpid) and "
       "promoted (the replica's ROLE, server_counter) prove the fault; unavailability_ms is "
       "from the first failed write to the first acknowledged one after it (client clock)",
       {Failure("acknowledged by the master = durable"),
        Success("durable only after WAIT 1 confirms a replica")},
       {Int("writes", 100, 10, 5000, "writes",
            "writes while the replica is cut off (success: each waits up to 10 ms for WAIT)"),
        Practice()},
       {kPartRedisCluster},
       {kLockRedisCluster},
       {Compare("failure", "master_killed", kEq, 1, kInc),
        Compare("failure", "promoted", kEq, 1, kInc),
        Compare("success", "master_killed", kEq, 1, kInc),
        Compare("success", "promoted", kEq, 1, kInc),
        Compare("success", "not_durable", kGt, 0, kInc), Compare("failure", "lost_durable", kGt, 0),
        Compare("success", "lost_durable", kEq, 0)},
       120});

  c.push_back(
      {"E-046",
       "Reconnect storms",
       "redis-ops",
       "after a Redis restart, clients that retry at once storm it; backoff with full jitter "
       "spreads the reconnects",
       "client processes hold `clients` connections to the standalone Redis, with maxclients "
       "lowered for the run; Redis is killed (SIGKILL) and restarted on its port after "
       "`down_ms`. failure: every client reconnects immediately and again on each failure. "
       "success: exponential backoff with full jitter (sleep random(0, min(cap, base x 2^n)))",
       "peak_attempts_per_s is the busiest second of connection attempts the clients made "
       "(self_reported), cross-checked with the restarted Redis's own count of connections it "
       "accepted (accepted_after_restart, peak_accepted_per_s: total_connections_received, "
       "server_counter) and refused from its rejected_connections; "
       "recovery_ms is from Redis answering again until every client was served; redis_down_ms "
       "proves the fault fired",
       {Failure("immediate reconnect, retry at once on failure"),
        Success("exponential backoff with full jitter")},
       {Int("clients", 200, 10, 2000, "connections", "client connections (over 4 processes)"),
        Int("maxclients", 300, 10, 10000, "connections",
            "Redis maxclients during the run (restored afterwards); below clients + a few the "
            "surplus connections are refused for good, whatever the retry policy"),
        Int("down_ms", 2000, 500, 30000, "ms", "how long Redis stays down"), Practice()},
       {kPartRedis},
       {kLockRedisServer},
       {Compare("failure", "redis_down_ms", kGt, 0, kInc),
        Compare("success", "redis_down_ms", kGt, 0, kInc),
        CompareRatio("failure", "peak_attempts_per_s", kGe, 3, "success", "peak_attempts_per_s"),
        CompareRatio("failure", "accepted_after_restart", kGe, 3, "success",
                     "accepted_after_restart"),
        Compare("failure", "peak_accepted_per_s", kGt, 0, kInc),
        Compare("success", "unserved", kEq, 0)},
       90});

  c.push_back(
      {"E-047",
       "Slowlog finds what ruins p99",
       "redis-ops",
       "a few slow commands ruin every client's p99, and SLOWLOG/LATENCY name the culprit",
       "a steady load of GET/SET from several clients measures its latency (baseline); then "
       "slow commands are injected beside it (a KEYS over many keys, a SORT of a large list, a "
       "busy Lua script); slowlog-log-slower-than and latency-monitor-threshold are set for the "
       "run and restored",
       "p99_baseline_ms and p99_injected_ms are the load's own latencies (client clocks); "
       "p99_factor their ratio; slow_injected counts slow commands run (>0 proves the fault); "
       "culprit_named is 1 when the top entries of SLOWLOG GET (server_counter) are the "
       "injected commands and none of the load's; latency_events counts LATENCY LATEST events "
       "(the server saw itself blocked: the independent side of the clients' p99)",
       {{"check", "steady load, then slow commands injected; SLOWLOG/LATENCY read"}},
       {Int("clients", 4, 1, 32, "clients", "load clients"),
        Int("seconds", 3, 1, 60, "s", "duration of each phase"),
        Int("keys", 50000, 1000, 2000000, "keys", "keys the slow KEYS walks")},
       {kPartRedis},
       {kLockRedisServer},
       {Compare("check", "slow_injected", kGt, 0, kInc), Compare("check", "p99_factor", kGe, 5),
        Compare("check", "latency_events", kGt, 0), Compare("check", "culprit_named", kEq, 1)},
       90});

  c.push_back(
      {"E-048",
       "Pub/sub loses messages; streams do not",
       "redis-ops",
       "a slow pub/sub subscriber is disconnected and loses messages; a stream with a consumer "
       "group delivers everything",
       "failure: client-output-buffer-limit pubsub is lowered to 64kb/32kb/1s for the run "
       "(restored by cleanup); a subscriber that processes each message (SADD of its seq, 100 us "
       "of work) falls behind a publisher of `messages` PUBLISH and the server drops it. success: "
       "the same messages go to a stream read by a consumer group (XREADGROUP, XACK); consumer c1 "
       "(a real process) is SIGKILLed holding its first batch unacknowledged, c2 reads the rest "
       "and claims c1's pending entries (XAUTOCLAIM). practice=off: c2 does not claim",
       "published: PUBLISH commands answered (checked against INFO commandstats) or XLEN "
       "(read back); received: SCARD of the set the subscriber or consumers add each processed "
       "seq to (read back); lost = published - received; unrouted counts PUBLISH answered with "
       "0 receivers (delivered to no one); disconnected is 1 when the subscriber's connection "
       "was closed by the server and CLIENT LIST no longer lists it; consumer_killed (waitpid: "
       "SIGKILL) and pending_of_killed (XPENDING of c1, server_counter) prove the fault fired; "
       "reclaimed is c2's XAUTOCLAIM count; pending_after is XPENDING of the group at the end",
       {Failure("pub/sub with a slow subscriber"),
        Success("a stream with a consumer group, XACK and reclaim")},
       {Int("messages", 20000, 100, 1000000, "messages", "messages published"),
        Int("payload_bytes", 512, 16, 65536, "bytes", "size of each message"), Practice()},
       {kPartRedis},
       {kLockRedisServer},
       {Compare("failure", "published", kGt, 0, kInc),
        Compare("failure", "disconnected", kEq, 1, kInc), Compare("failure", "lost", kGt, 0),
        Compare("success", "published", kGt, 0, kInc),
        Compare("success", "consumer_killed", kEq, 1, kInc),
        Compare("success", "pending_of_killed", kGt, 0, kInc),
        Compare("success", "reclaimed", kGt, 0), Compare("success", "lost", kEq, 0),
        Compare("success", "pending_after", kEq, 0)},
       90});

  c.push_back(
      {"E-049",
       "Restricted commands gate",
       "redis-ops",
       "code that uses commands a managed Redis forbids fails there; a gate that watches the "
       "workload before deployment names them",
       "a restricted ACL user (no KEYS, FLUSHALL, FLUSHDB, CONFIG, DEBUG, …) stands for the "
       "managed service. The gate watches the application's workload against the unrestricted "
       "Redis (MONITOR, filtered to the workload's connection) and lists the forbidden commands "
       "it used; then the same workload runs as the restricted user. failure: the original "
       "workload (KEYS, DUMP + RESTORE, MIGRATE of a key that never exists); success: the "
       "rewritten one (SCAN instead of KEYS, COPY instead of DUMP + RESTORE, no MIGRATE, UNLINK "
       "of its own keys). Only harmless commands run on the shared, unrestricted Redis (no "
       "FLUSHDB/FLUSHALL), and MONITOR does not show admin commands (CONFIG, DEBUG, ...), so the "
       "workload's forbidden commands are ones the gate can see",
       "gate_forbidden is the number of distinct forbidden commands the gate saw; "
       "failed_restricted the number of distinct commands refused with NOPERM as the restricted "
       "user (server's answer); gate_matches is 1 when the two sets are equal; "
       "failed_unrestricted counts commands that failed on the unrestricted Redis; acl_log_denied "
       "(ACL LOG for the user) cross-checks the NOPERM answers",
       {Failure("the original workload, deployed without the gate"),
        Success("the workload rewritten after the gate's report")},
       {Practice()},
       {kPartRedis},
       {},
       {Compare("failure", "failed_restricted", kGt, 0), Compare("failure", "gate_matches", kEq, 1),
        Compare("success", "gate_matches", kEq, 1), Compare("success", "failed_restricted", kEq, 0),
        Compare("success", "failed_unrestricted", kEq, 0)},
       60});

  c.push_back(
      {"E-010",
       "Redis Cluster multi-key limits",
       "advanced",
       "Redis Cluster constrains multi-key work to one slot",
       "each round runs the same multi-key operations (MSET, MGET, MULTI + one SET per key + "
       "EXEC pinned to the first key's node, an EVAL over all the keys, a multi-key DEL) on the "
       "6-node cluster through a client that routes by the first key's slot; a second client "
       "reads every key back one by one after the writes and after the DEL. failure: plain "
       "keys, which fall in different slots; success: keys that share a {hash tag}, so one slot "
       "holds each round's keys; then a client whose slot map is deliberately stale (every slot "
       "of the phase pointed at the wrong master) runs the same rounds and must follow MOVED. "
       "practice=off: the success mode uses plain keys too",
       "ops_failed counts operations the cluster answered with an error (crossslot_errors: the "
       "CROSSSLOT answers, of MSET/MGET/DEL/EVAL and of an EXEC over two slots of one node; a "
       "SET queued for a key of another node answers MOVED and its EXEC EXECABORT), "
       "cross-checked with the masters' own errorstat_CROSSSLOT delta (crossslot_server) and "
       "the delta of every non-redirect errorstat (errors_server, server_counter); "
       "values_mismatched and partial_writes (a value of an operation that answered an error) "
       "are read back key by key, keys_left by SCAN on every master; moved_client counts the "
       "MOVED answers the clients received and moved_server the masters' errorstat_MOVED delta "
       "(proves the stale map was really corrected by the server)",
       {Failure("keys in different slots"), Success("hash-tagged keys; a stale slot map")},
       {Int("keys", 8, 2, 100, "keys", "keys per multi-key operation"),
        Int("rounds", 20, 1, 10000, "rounds", "how often each operation runs"), Practice()},
       {kPartRedisCluster},
       {kLockRedisCluster},
       {Compare("failure", "crossslot_server", kGt, 0, kInc),
        Compare("failure", "ops_failed", kGt, 0), Compare("success", "moved_server", kGt, 0, kInc),
        Compare("success", "ops_failed", kEq, 0), Compare("success", "errors_server", kEq, 0),
        Compare("success", "values_mismatched", kEq, 0)},
       60});

  c.push_back(
      {"E-011",
       "Hot key on one shard",
       "advanced",
       "a hot key overloads one shard; key splitting + local cache spreads it",
       "`clients` client threads read for `seconds`, one read in flight each: hot_pct% of the "
       "reads go to a hot value of `value_bytes`, the rest to a Zipf(0.99) tail of 1000 small "
       "keys placed by slot so every master holds an equal share of the tail's reads. failure: "
       "the hot value is one key, so one master serves it. success: it is written to `copies` "
       "keys placed by slot round-robin over the masters, each read picks one, and each client "
       "keeps it in a local cache for `cache_ms`. practice=off: the success mode reads the "
       "single hot key without a cache",
       "ops_<port> are each master's GET calls during the load (INFO commandstats delta, "
       "server_counter), ops_server their sum (cross-checked with the clients' reads_sent); "
       "load_ratio is the busiest master's over the least busy one's; cpu_<port>_ms the "
       "masters' used_cpu delta (INFO cpu); p50_ms/p99_ms the clients' own latency over all "
       "reads (client clocks, a cache hit counted as 0 ms); cache_hits the clients' count; the "
       "details give each master's tail p99, showing what the hot key does to its neighbours",
       {Failure("one hot key on one master"), Success("key splitting + local cache")},
       {Int("clients", 8, 1, 64, "clients", "load threads"),
        Int("seconds", 3, 1, 60, "s", "load duration per mode"),
        Int("hot_pct", 50, 1, 100, "%", "share of reads that go to the hot key"),
        Int("copies", 12, 3, 256, "keys", "copies of the hot key (success)"),
        Int("cache_ms", 100, 0, 10000, "ms", "local cache TTL (success)"),
        Int("value_bytes", 65536, 16, 1048576, "bytes", "size of the hot value"), Practice()},
       {kPartRedisCluster},
       {kLockRedisCluster},
       {Compare("failure", "ops_server", kGt, 0, kInc),
        Compare("success", "ops_server", kGt, 0, kInc),
        CompareRatio("failure", "load_ratio", kGe, 2, "success", "load_ratio"),
        CompareRatio("failure", "p99_ms", kGt, 1, "success", "p99_ms")},
       90});

  c.push_back(
      {"E-050",
       "Cluster mode breaks single-node code",
       "redis-ops",
       "a serverless/cluster-mode target breaks code written for a single node",
       "one application workload (multi-key DEL, MULTI/EXEC over several keys, KEYS and one "
       "SCAN loop to list its keys, a Lua script touching a key it did not declare, SELECT 1, "
       "pub/sub with SUBSCRIBE and PUBLISH on different nodes) runs against the standalone "
       "Redis and against the cluster, reached as naively ported code does: keyed commands "
       "routed by their first key's slot, a transaction on its first key's node, commands "
       "without a key on one node. failure: the code as written for one node; success: the "
       "cluster-safe rewrite (hash tags, SCAN on every master, declared keys, no SELECT; pub/sub "
       "unchanged). FLUSHDB is not run: the stack is shared. practice=off: the success mode "
       "runs the original code",
       "failed_standalone and failed_cluster count operations that answered an error or a "
       "wrong result, judged by reading the effect back (keys left after the DEL, values after "
       "the transaction and the script, a listing against the keys stored, counted by SCAN on "
       "every master, messages received); errors_server_cluster and errors_server_standalone "
       "are the servers' INFO errorstats deltas (server_counter), beside the error replies the "
       "code received (errors_cluster, errors_standalone); the table of operations in the "
       "details gives each one's answer on each target. The undeclared key of the Lua script "
       "falls on the node of the declared one in about a third of runs, and Redis 7.0 lets a "
       "script reach a key of its own node: the table then says it works on both",
       {Failure("code written for one node"), Success("the cluster-safe rewrite")},
       {Practice()},
       {kPartRedis, kPartRedisCluster},
       {kLockRedisCluster, kLockRedisServer},
       {Compare("failure", "failed_standalone", kEq, 0),
        Compare("failure", "failed_cluster", kGt, 0),
        Compare("success", "failed_standalone", kEq, 0),
        Compare("success", "failed_cluster", kEq, 0),
        Compare("success", "errors_server_cluster", kEq, 0)},
       60});

  c.push_back(
      {"E-012",
       "read_committed skips aborted transactions",
       "advanced",
       "read_committed skips aborted transactions (offset gaps are normal) and still reaches "
       "the end of the log; read_uncommitted applies the aborted records as phantom side effects",
       "a transactional producer interleaves committed and aborted transactions (every "
       "abort_every-th aborted after its records were delivered, so they are in the log) and, "
       "halfway, a zombie: its open transaction is fenced by a second producer with the same "
       "transactional.id (init_transactions bumps the epoch, the coordinator aborts it, the "
       "zombie's commit is refused). A consumer runs beside the producer from the beginning and "
       "writes one txn_effect row in MariaDB per record it receives. failure: the consumer reads "
       "read_uncommitted; success: read_committed. practice=off: the success mode's consumer "
       "reads read_uncommitted",
       "committed and aborted count the records of committed and of aborted or fenced "
       "transactions as the producer API answered (kafka_txn); committed_in_log and "
       "aborted_in_log count them in the log, read back with a fresh read_uncommitted consumer "
       "(aborted_in_log > 0: aborted records really are there); fenced is 1 when the zombie's "
       "commit was refused as fenced. applied counts txn_effect rows and phantoms those whose "
       "transaction did not commit (SQL join with kafka_txn). gaps counts the offsets below the "
       "end the consumer never received, classified against the read-back: gap_markers "
       "(transaction markers, never delivered at any isolation level), gap_aborted_records, "
       "gap_committed_records (a loss, must be 0); markers = high watermark - data records. "
       "reached_end is 1 when the consumer's fetches reached the high watermark of every "
       "partition once no transaction was open (last stable offset = high watermark), "
       "catch_up_ms the time from then; aborted_visible_read_committed is a second, fresh "
       "read_committed reader's count of aborted records",
       {Failure("the consumer reads read_uncommitted"),
        Success("the consumer reads read_committed")},
       {Int("transactions", 20, 2, 500, "transactions",
            "transactions of the producer (the zombie comes on top)"),
        Int("records_per_txn", 10, 1, 1000, "records", "records in each transaction"),
        Int("abort_every", 3, 2, 100, "transactions", "every Nth transaction is aborted"),
        Int("partitions", 3, 1, 12, "partitions", "partitions of the topic"), Practice()},
       {kPartKafka, kPartMysql},
       {},
       {Compare("failure", "aborted_in_log", kGt, 0, kInc),
        Compare("failure", "fenced", kEq, 1, kInc), Compare("failure", "reached_end", kEq, 1, kInc),
        Compare("failure", "phantoms", kGt, 0), Compare("success", "aborted_in_log", kGt, 0, kInc),
        Compare("success", "fenced", kEq, 1, kInc), Compare("success", "phantoms", kEq, 0),
        CompareRatio("success", "applied", kEq, 1, "success", "committed_in_log"),
        Compare("success", "gaps", kGt, 0), Compare("success", "gap_committed_records", kEq, 0),
        Compare("success", "reached_end", kEq, 1)},
       90});
  c.push_back(
      {"E-014",
       "processed_event retention strategies",
       "advanced",
       "removing old rows from a dedup table under insert load costs differently by strategy: "
       "batched DELETE, archive-and-delete, DROP PARTITION (a comparison, no winner assumed)",
       "one mode, the three strategies in turn, each on its own freshly seeded dedup table "
       "(`rows` rows older than the cut-off, `keep_rows` younger ones) while a live inserter "
       "adds dedup rows at `insert_rate`/s: (1) DELETE … ORDER BY processed_at_us LIMIT `batch` "
       "until none is left; (2) per batch, one transaction: INSERT … SELECT into an archive "
       "table, then DELETE those rows; (3) a table of the run RANGE-partitioned on "
       "processed_at_us, every partition entirely older than the cut-off dropped (ALTER TABLE … "
       "DROP PARTITION). partition_boundary=grid puts the cut-off inside a partition (a "
       "retention period that is not a whole number of partitions)",
       "per strategy (suffix _delete, _archive, _partition): duration_ms, statements, removed, "
       "eligible_left (must be 0) and wrongly_removed (seeded younger rows or acknowledged live "
       "inserts missing, must be 0), read back; live_acked is the inserter's own count, "
       "live_lost the acknowledged inserts absent on read-back (must be 0); insert p50/p99 "
       "before and during the strategy are the inserter's clocks; row_lock_waits and "
       "row_lock_time_ms are deltas of the server-wide InnoDB counters over the strategy; "
       "archived (read back) must equal removed. Confirmed when every strategy removes exactly "
       "the eligible rows and loses no live insert: the costs table in the details is the "
       "finding. With partition_boundary=grid the partition strategy leaves the eligible rows "
       "of the partition the cut-off falls in: refuted",
       {{"check", "the three strategies in turn under the same insert load"}},
       {Int("rows", 200000, 1000, 5000000, "rows", "rows older than the cut-off, per strategy"),
        Int("keep_rows", 20000, 0, 1000000, "rows", "younger rows that must stay, per strategy"),
        Int("batch", 1000, 10, 100000, "rows", "rows per DELETE statement / archive transaction"),
        Int("insert_rate", 200, 10, 5000, "rows/s", "offered live insert load"),
        Int("clients", 4, 1, 32, "clients", "live inserter threads"),
        Int("partitions", 4, 1, 64, "partitions", "partitions below the cut-off"),
        Enum("partition_boundary", "cutoff", {"cutoff", "grid"},
             "cutoff: the last old partition ends at the cut-off; grid: partitions half a "
             "partition off, so the cut-off falls inside one"),
        Int("baseline_ms", 1500, 200, 60000, "ms", "live load alone before each strategy")},
       {kPartMysql},
       {kLockMysqlServer},
       {Compare("check", "eligible_before_delete", kGt, 0, kInc),
        Compare("check", "eligible_before_archive", kGt, 0, kInc),
        Compare("check", "eligible_before_partition", kGt, 0, kInc),
        Compare("check", "live_acked_delete", kGt, 0, kInc),
        Compare("check", "live_acked_archive", kGt, 0, kInc),
        Compare("check", "live_acked_partition", kGt, 0, kInc),
        Compare("check", "eligible_left_delete", kEq, 0),
        Compare("check", "eligible_left_archive", kEq, 0),
        Compare("check", "eligible_left_partition", kEq, 0),
        Compare("check", "wrongly_removed_delete", kEq, 0),
        Compare("check", "wrongly_removed_archive", kEq, 0),
        Compare("check", "wrongly_removed_partition", kEq, 0),
        Compare("check", "live_lost_delete", kEq, 0), Compare("check", "live_lost_archive", kEq, 0),
        Compare("check", "live_lost_partition", kEq, 0),
        CompareRatio("check", "archived_archive", kEq, 1, "check", "removed_archive")},
       120});
  c.push_back(
      {"E-015",
       "Registry compatibility gate",
       "advanced",
       "the registry's compatibility rule blocks breaking changes before they ship",
       "V1 Order{id, amount double} is registered under the run's subject, which gets its own "
       "compatibility rule (the registry's global rule is only read, before and after), and V1 "
       "records are produced. Then a breaking V2 (amount becomes a string) and a compatible V2 (a "
       "new field with a default) are each checked with the compatibility endpoint and "
       "registered by the producer, which writes records with each schema the registry accepts. "
       "failure: the subject's rule is NONE; success: BACKWARD, and the breaking V2 ships "
       "through the escape hatch instead: a new subject on a new topic, read by a V2 consumer. "
       "A V1 consumer (writer schema by the record's id, resolved into V1 with avro-c) reads "
       "the topic from the beginning. practice=off: the success mode's rule is NONE too",
       "breaking_registered / breaking_rejected are the registry's answer to the breaking V2 "
       "(200 or 409, with its message in the details), breaking_in_registry reads the subject's "
       "versions back; records_v1, records_v2_breaking and records_v2_compatible count the "
       "topic's records by the schema id in their header (read back); parse_failures counts the "
       "records the V1 consumer could not read (failures_valid_writer: those whose bytes decode "
       "with their own writer schema, genuine V2 data); escape_hatch_registered and "
       "escape_decoded_v2 show the new subject taking the breaking schema; "
       "global_rule_unchanged is 1 when the global rule read after the mode equals the one "
       "before",
       {Failure("subject rule NONE: the breaking V2 is registered and produced"),
        Success("subject rule BACKWARD: breaking V2 rejected, compatible V2 accepted, new "
                "subject as the escape hatch")},
       {Int("events", 30, 1, 100000, "records", "records produced with each accepted schema"),
        Practice()},
       {kPartKafka, kPartRegistry},
       {},
       {Compare("failure", "breaking_registered", kEq, 1, kInc),
        Compare("failure", "records_v2_breaking", kGt, 0, kInc),
        Compare("failure", "parse_failures", kGt, 0),
        Compare("success", "records_v1", kGt, 0, kInc),
        Compare("success", "breaking_rejected", kEq, 1),
        Compare("success", "breaking_in_registry", kEq, 0),
        Compare("success", "compatible_registered", kEq, 1),
        Compare("success", "records_v2_compatible", kGt, 0, kInc),
        Compare("success", "parse_failures", kEq, 0),
        CompareRatio("success", "decoded", kEq, 1, "success", "records_in_topic"),
        Compare("success", "escape_hatch_registered", kEq, 1)},
       90});
  c.push_back(
      {"E-019",
       "Deadlocks from lock order",
       "advanced",
       "concurrent transfers that lock two rows in opposite orders deadlock (error 1213) and, "
       "without a retry, lose transfers; locking in one global order plus a bounded retry with "
       "backoff and a DLQ leaves no deadlock and loses nothing",
       "transfer requests between a few accounts (random directions, the same seeded workload in "
       "both modes) are written to transfer_request first; `threads` threads, one MariaDB "
       "connection each, carry them out, each transfer one transaction: UPDATE the first "
       "account, the transfer's work while holding that row lock (hold_ms: a fee lookup, a fraud "
       "check), UPDATE the second account, INSERT a transfer_log row, COMMIT. failure: debit "
       "first, then credit, so A->B and B->A lock in opposite orders; a failed transfer is given "
       "up (no retry). success: the two UPDATEs in ascending account id order; 1213/1205 retried "
       "up to max_retries times with exponential backoff and jitter; what still fails goes to "
       "transfer_dlq. practice=off: the success mode runs the failure practice",
       "applied (transfer_log rows), dlq (transfer_dlq rows) and lost (requests in neither) are "
       "read back; money_drift is the sum of balances minus what the accounts started with (0: "
       "money is conserved in both modes, a deadlock rolls the whole transfer back); "
       "ledger_mismatches counts accounts whose balance differs from the start plus their "
       "applied transfers (the log agrees with the balances). deadlocks_server and "
       "row_lock_waits are deltas of the server's Innodb_deadlocks and Innodb_row_lock_waits "
       "(server-wide counters: the run holds the mysql-server lock so no other run holding it "
       "adds to them), deadlocks_client the 1213 answers the run's connections got; "
       "row_lock_waits > 0 proves the transfers really contended in both modes",
       {Failure("opposite lock order, no retry"),
        Success("ascending lock order, retry with backoff, DLQ")},
       {Int("threads", 8, 2, 64, "threads", "concurrent transfer threads (one connection each)"),
        Int("transfers", 40, 1, 10000, "transfers", "transfers per thread"),
        Int("accounts", 4, 2, 100000, "accounts", "accounts the transfers move money between"),
        Int("hold_ms", 5, 0, 1000, "ms",
            "the transfer's work between its two UPDATEs, holding the first row lock"),
        Int("max_retries", 5, 0, 50, "retries", "success: retries of a 1213/1205 before the DLQ"),
        Int("backoff_ms", 5, 1, 1000, "ms", "success: first backoff, doubled per retry (cap 1 s)"),
        Practice()},
       {kPartMysql},
       {kLockMysqlServer},
       {Compare("failure", "row_lock_waits", kGt, 0, kInc),
        Compare("failure", "deadlocks_client", kGt, 0, kInc),
        Compare("failure", "ledger_mismatches", kEq, 0, kInc),
        Compare("failure", "deadlocks_server", kGt, 0), Compare("failure", "lost", kGt, 0),
        Compare("failure", "money_drift", kEq, 0),
        Compare("success", "row_lock_waits", kGt, 0, kInc),
        Compare("success", "applied", kGt, 0, kInc),
        Compare("success", "ledger_mismatches", kEq, 0, kInc),
        Compare("success", "deadlocks_server", kEq, 0),
        Compare("success", "deadlocks_client", kEq, 0), Compare("success", "lost", kEq, 0),
        Compare("success", "money_drift", kEq, 0)},
       90});
  c.push_back(
      {"E-022",
       "Controlled backfill",
       "advanced",
       "an uncontrolled backfill hurts live traffic; a sharded, batched, rate-limited, "
       "checkpointed one does not, and resumes after a kill with no gap and no double",
       "`rows` rows are seeded; a live load updates random rows of that range (`live_rate`/s "
       "from `clients` connections), alone for `baseline_ms`, then while a backfill (amount_cents "
       "= amount x 100) runs in a lab-role process. failure: one big pass, a single UPDATE over "
       "the range (every row it has passed stays locked until it commits). success: `shards` "
       "checkpoint rows, `batch` rows per transaction with the checkpoint moved in the same "
       "transaction, `rate` rows/s; the worker is SIGKILLed when the checkpoints pass "
       "`kill_at_percent` of the range and a new process resumes from the checkpoints. "
       "practice=off: the success mode runs the one big pass",
       "live_p99_before_ms / live_p99_during_ms are the live load's own latencies (from when "
       "each update was due; an update that timed out on a lock counts with its wait); "
       "p99_factor = during / max(before, 10 ms) — below 10 ms one fsync or scheduling hiccup "
       "of a shared 2-core machine moves a p99 by a multiple — and the stated bound is 10: "
       "success <= 10, failure > 10. "
       "gaps (backfill_count = 0), doubles (> 1) and wrong_values are read back with SQL; "
       "live_lost compares the load's acknowledged updates with SUM(live_updates). "
       "row_lock_waits / row_lock_time_ms are deltas of the server-wide InnoDB counters over "
       "the backfill. success: worker_killed (waitpid says SIGKILL), resume_point (the "
       "checkpoints once the server dropped the killed worker's connections), "
       "backfilled_at_kill (rows read back then: must equal resume_point), remaining_at_kill",
       {Failure("one big pass: a single UPDATE over the whole range"),
        Success("sharded, batched, rate-limited, checkpointed; killed mid-way and resumed")},
       {Int("rows", 250000, 1000, 5000000, "rows", "rows in the range to backfill"),
        Int("batch", 200, 10, 50000, "rows", "rows per backfill transaction (success)"),
        Int("shards", 4, 1, 16, "shards", "checkpoint shards, one worker thread each"),
        Int("rate", 25000, 100, 1000000, "rows/s", "backfill rate limit (success)"),
        Int("kill_at_percent", 40, 5, 95, "%", "checkpoint progress at which the worker is killed"),
        Int("live_rate", 200, 10, 5000, "ops/s", "offered live update load"),
        Int("clients", 4, 1, 32, "clients", "live load connections"),
        Int("baseline_ms", 2000, 200, 60000, "ms", "live load alone before the backfill"),
        Practice()},
       {kPartMysql},
       {kLockMysqlServer},
       {Compare("failure", "backfilled", kGt, 0, kInc),
        Compare("failure", "live_ops_during", kGt, 0, kInc),
        Compare("failure", "p99_factor", kGt, 10),
        Compare("success", "worker_killed", kEq, 1, kInc),
        Compare("success", "resume_point", kGt, 0, kInc),
        Compare("success", "remaining_at_kill", kGt, 0, kInc),
        Compare("success", "live_ops_during", kGt, 0, kInc), Compare("success", "gaps", kEq, 0),
        Compare("success", "doubles", kEq, 0), Compare("success", "wrong_values", kEq, 0),
        Compare("success", "live_lost", kEq, 0),
        CompareRatio("success", "backfilled_at_kill", kEq, 1, "success", "resume_point"),
        Compare("success", "p99_factor", kLe, 10)},
       120});
  c.push_back(
      {"E-024",
       "Coupon oversell",
       "advanced",
       "coupon issuance under concurrency oversells unless the decision is atomic; an atomic "
       "conditional UPDATE and a Redis Lua script with per-user dedup issue exactly the stock",
       "a coupon with limited stock; `clients` threads (one MariaDB connection each, and one "
       "Redis connection for the Redis fix) serve `requests` requests, requests_per_user of them "
       "per user arriving together (a double click, a retry), more distinct users than coupons. "
       "Each request does its work (think_ms: user validation, a fraud check). failure: "
       "read-then-write in a REPEATABLE READ transaction without a lock: SELECT the stock and "
       "whether the user holds one, the work (between the read and the write, where such code "
       "decides from what it read), UPDATE stock = read - 1, INSERT the coupon. success: two "
       "fixes on their own stock: atomic_update (UPDATE ... SET stock = stock - 1 WHERE stock > "
       "0, the affected rows decide; a unique per-user key refuses a second coupon) and redis "
       "(a Lua script: SISMEMBER the user, stock > 0, DECR, SADD; the coupon recorded in "
       "MariaDB with the same unique key; a failed record compensated in Redis). practice=off: "
       "both fixes run the read-then-write",
       "issued counts coupon_issue rows (read back), oversold = issued - stock, duplicates = "
       "rows - distinct users; stock_left is the stock read back (MariaDB's row; the Redis "
       "counter for redis) and stock_mismatch = issued - (stock - stock_left) the decrements "
       "the blind write lost; for redis, users (SCARD) and record_mismatch = users - issued "
       "check that every coupon Redis granted has its durable row. accepted, sold_out, "
       "duplicate_refused and errors are what clients were told; requests_per_s compares "
       "throughput (think_ms=0 compares the decision alone). The success mode reports each metric "
       "per fix (suffix _atomic_update, _redis)",
       {Failure("read-then-write without a lock"),
        Success("atomic conditional UPDATE; Redis Lua with per-user dedup + MariaDB record")},
       {Int("clients", 16, 2, 128, "clients", "concurrent clients (one connection each)"),
        Int("requests", 320, 2, 100000, "requests", "requests per variant"),
        Int("stock", 50, 1, 50000, "coupons", "coupons in stock (fewer than distinct users)"),
        Int("requests_per_user", 2, 1, 10, "requests", "requests each user sends together"),
        Int("think_ms", 5, 0, 1000, "ms", "each request's work (see how)"), Practice()},
       {kPartMysql, kPartRedis},
       {},
       {Compare("failure", "issued", kGt, 0, kInc), Compare("failure", "oversold", kGt, 0),
        Compare("success", "errors_atomic_update", kEq, 0, kInc),
        Compare("success", "errors_redis", kEq, 0, kInc),
        Compare("success", "oversold_atomic_update", kEq, 0),
        Compare("success", "duplicates_atomic_update", kEq, 0),
        Compare("success", "stock_left_atomic_update", kEq, 0),
        Compare("success", "oversold_redis", kEq, 0),
        Compare("success", "duplicates_redis", kEq, 0),
        Compare("success", "stock_left_redis", kEq, 0),
        Compare("success", "record_mismatch_redis", kEq, 0)},
       90});

  c.push_back(
      {"E-018",
       "Rebalance storms",
       "advanced",
       "slow handlers cause rebalance storms; tuning stops them",
       "`events` records wait in a topic of 6 partitions; `consumers` real group members (one "
       "librdkafka consumer each) poll a batch, apply each record (`process_ms` of work, then a "
       "side_effect row in MariaDB) and commit its offset right after it; max.poll.interval.ms "
       "is 6000. failure: the eager assignor (range) and batches of up to 300 (150 records at 60 "
       "ms are 9 s of work between polls): a member still busy after 6 s is dropped from the "
       "group, every member "
       "gives up every partition, the dropped member's commits fail and its later work is "
       "applied again by the next owner. success: cooperative-sticky, static membership "
       "(group.instance.id) and batches of 20. practice=off: the failure mode's settings",
       "side_effects, distinct_applied, duplicates (side_effects - distinct) and lost (events - "
       "distinct) are counted in MariaDB; committed_to_end is the group coordinator's committed "
       "offsets against each partition's end; max_poll_exceeded (librdkafka's "
       "MAX_POLL_EXCEEDED events: proves the slow handler really overran), rebalances (callbacks), "
       "partitions_revoked and commit_failures are the members' own counts; drain_ms and "
       "events_per_s the time until everything was applied and committed. More than 60 "
       "rebalances with cooperative-sticky is reported as librdkafka 2.0.2's rejoin loop (a "
       "client-library failure), never as the phenomenon",
       {Failure("eager assignor, batches longer than max.poll.interval.ms"),
        Success("cooperative-sticky + static membership + bounded batches")},
       {Int("events", 450, 60, 100000, "events", "records to process"),
        Int("consumers", 3, 2, 6, "consumers", "group members"),
        Int("process_ms", 60, 40, 1000, "ms",
            "work per record; a failure-mode batch must take more than the 6 s poll interval "
            "(max_poll_exceeded says whether it did)"),
        Practice()},
       {kPartKafka, kPartMysql},
       {},
       {Compare("failure", "max_poll_exceeded", kGt, 0, kInc),
        Compare("failure", "duplicates", kGt, 0),
        CompareRatio("failure", "partitions_revoked", kGt, 1, "success", "partitions_revoked"),
        Compare("success", "max_poll_exceeded", kEq, 0), Compare("success", "duplicates", kEq, 0),
        Compare("success", "lost", kEq, 0), Compare("success", "committed_to_end", kEq, 1, kInc),
        Compare("failure", "lost", kEq, 0)},
       150});
  c.push_back(
      {"E-023",
       "Partial outages degrade",
       "advanced",
       "partial outages should degrade, not collapse: bounded latency and errors during each "
       "outage, zero loss after recovery",
       "a real shop-service (lab-role: GET /item through a Redis cache in front of MariaDB, POST "
       "/order whose event must reach Kafka) reaches Redis and MariaDB through Toxiproxy proxies "
       "of the run. Under a closed-loop load of `clients` threads (every `write_every`-th request "
       "an order, the others item reads; client timeout `client_timeout_ms`), Redis, then "
       "MariaDB, then Kafka are taken down in turn for `outage_ms` each, `gap_ms` apart: a "
       "timeout toxic (every byte to the server dropped) on the service's Redis proxy, the same "
       "on its MariaDB proxy, then all three brokers paused (infra/stack.sh kafka pause: "
       "SIGSTOP) and resumed. failure: long client timeouts, no breaker, a Redis error fails the "
       "read, cache keys expire, the order's event produced synchronously after the commit "
       "(message.timeout.ms = message_timeout_ms). success: a breaker per dependency, bounded "
       "calls, reads bypass a dead cache, stale cached values served when MariaDB is gone, orders "
       "refused at once (503) when they cannot be made durable, the outbox row in the order's "
       "transaction and the outbox-relay publishing it once Kafka is back. practice=off: the "
       "success mode runs the failure mode's service. Every fault is undone on every exit path "
       "(paused brokers resumed, proxies and their toxics deleted)",
       "per outage (redis, mysql, kafka): p99_<o>_ms, error_pct_<o> and read_error_pct_<o> are "
       "the clients' view of the requests sent during it (client_observed); <o>_fault_fired = 1 "
       "when this run's own probe saw the part down (a Redis PING / a MariaDB login through the "
       "proxy that got no answer; for kafka infra/stack.sh status reporting the three brokers "
       "paused and a metadata request unanswered), <o>_service_errors is the service's own count "
       "(self_reported). p99_max_during_ms and read_error_pct_max are the worst of the three. "
       "acked_orders are orders answered 2xx (client_observed); orders_in_db and events_in_topic "
       "are read back from MariaDB and, with a fresh consumer, from the topic after every fault "
       "was undone and the outbox drained; lost = acknowledged orders without a row + rows whose "
       "event never reached the topic. peak_outbox_backlog counts pending outbox rows in MariaDB "
       "during the kafka outage; stale_reads_mysql and writes_refused_mysql show the degradation "
       "while MariaDB was gone. details.provenance names the origin of each number",
       {Failure("no breaker, long timeouts, cache errors fail reads, direct produce after commit"),
        Success("breakers, bounded calls, stale reads, fast write rejection, outbox")},
       {Int("outage_ms", 2500, 1000, 30000, "ms", "how long each part is down"),
        Int("gap_ms", 1000, 500, 30000, "ms", "load between two outages (and after the last)"),
        Int("clients", 8, 1, 64, "clients", "concurrent clients, one request each at a time"),
        Int("client_timeout_ms", 2000, 200, 30000, "ms", "the clients' timeout"),
        Int("items", 50, 1, 10000, "items", "items in MariaDB (all read once before the load)"),
        Int("write_every", 4, 1, 100, "requests", "one request in this many is an order"),
        Int("message_timeout_ms", 1000, 500, 15000, "ms",
            "the failure mode's synchronous produce: message.timeout.ms and request.timeout.ms "
            "(a paused broker appends what was already sent to it when it resumes, so only "
            "records queued after the first timeout can be lost: outage_ms must be at least "
            "twice this, or the failure mode is inconclusive)"),
        Practice()},
       {kPartKafka, kPartMysql, kPartRedis, kPartToxiproxy},
       // It pauses every broker, and its proxies and toxics would make a concurrent run's
       // postflight find Toxiproxy unclean.
       {kLockKafkaBrokers, kLockNetwork},
       {Compare("failure", "redis_fault_fired", kEq, 1, kInc),
        Compare("failure", "mysql_fault_fired", kEq, 1, kInc),
        Compare("failure", "kafka_fault_fired", kEq, 1, kInc),
        Compare("failure", "outage_over_message_timeout", kEq, 1, kInc),
        Compare("failure", "acked_orders", kGt, 0, kInc),
        Compare("success", "redis_fault_fired", kEq, 1, kInc),
        Compare("success", "mysql_fault_fired", kEq, 1, kInc),
        Compare("success", "kafka_fault_fired", kEq, 1, kInc),
        Compare("success", "acked_orders", kGt, 0, kInc), Compare("failure", "lost", kGt, 0),
        CompareRatio("failure", "p99_max_during_ms", kGe, 2, "success", "p99_max_during_ms"),
        Compare("success", "lost", kEq, 0), Compare("success", "p99_max_during_ms", kLe, 1000),
        Compare("success", "read_error_pct_max", kLe, 10),
        Compare("success", "peak_outbox_backlog", kGt, 0),
        Compare("success", "error_pct_after", kLe, 5)},
       90});
  c.push_back(
      {"N03",
       "Caller-runs executor",
       "resilience",
       "a caller-runs executor blocks its caller under overload; abort + a bulkhead per "
       "dependency keeps the service responsive",
       "a real valuation-service (lab-role): one acceptor thread that also answers GET /healthz, "
       "a pool of `workers` threads with `queue` slots; each request does work_ms of its own work "
       "and calls a real downstream-service that takes downstream_ms. `clients` threads of the "
       "runner flood POST /value for `seconds` (20 ms apart per client) while a prober GETs "
       "/healthz every 20 ms (1 s timeout), both outside the service. failure: --executor "
       "caller-runs (a full queue runs the request on the acceptor thread). success: --executor "
       "abort (a full queue answers 503 at once) and --bulkhead `bulkhead` (more concurrent "
       "downstream calls answer 429 at once). "
       "practice=off: the success mode runs caller-runs without a bulkhead",
       "probe_p50_ms / probe_p99_ms / probe_timeouts are the prober's (client_observed; a "
       "timed-out probe counts as 1000 ms); rejected_client_seen counts the 503 and 429 answers "
       "the flooding clients received; caller_runs and acceptor_busy_ms (the time the acceptor "
       "spent running requests instead of accepting) and rejected_503/429 are the service's own "
       "/metrics (self_reported), rejected_mismatch compares them with the clients' count. "
       "saturated is 1 when the pool was really full (caller_runs > 0 or rejections seen): "
       "otherwise the mode is inconclusive. Confirmed when the failure's probe p99 is at least "
       "10x the success's and the success rejected visibly with no probe timing out",
       {Failure("caller-runs: a full queue runs work on the accepting thread"),
        Success("abort + a bulkhead per dependency: 503/429 at once")},
       {Int("clients", 32, 4, 256, "clients",
            "concurrent flooding clients (one request each at a "
            "time)"),
        Int("seconds", 4, 1, 60, "s", "how long the flood lasts"),
        Int("workers", 2, 1, 32, "threads", "the service's worker threads"),
        Int("queue", 4, 1, 256, "slots", "the service's queue slots"),
        Int("work_ms", 50, 0, 2000, "ms", "each request's own work"),
        Int("downstream_ms", 150, 10, 5000, "ms", "each downstream call's time"),
        Int("bulkhead", 1, 1, 32, "calls", "concurrent downstream calls allowed (success)"),
        Practice()},
       {},
       {},
       {Compare("failure", "saturated", kEq, 1, kInc),
        Compare("failure", "caller_runs", kGt, 0, kInc),
        Compare("success", "saturated", kEq, 1, kInc),
        CompareRatio("failure", "probe_p99_ms", kGe, 10, "success", "probe_p99_ms"),
        Compare("success", "rejected_client_seen", kGt, 0),
        Compare("success", "probe_timeouts", kEq, 0)},
       60});
  c.push_back(
      {"N04",
       "DB connection held across slow I/O",
       "resilience",
       "holding a DB connection (an open transaction) across a slow downstream call exhausts "
       "the pool; making the call outside the transaction does not",
       "a real valuation-service (lab-role) with a pool of `pool` MariaDB connections (a wait "
       "longer than pool_timeout_ms answers 503) writes one `valuation` row per request and calls "
       "a real downstream-service through a Toxiproxy proxy whose latency toxic adds latency_ms "
       "to each answer; `clients` threads of the runner send POST /value for `seconds`, the "
       "same load in both modes. failure: --db tx-around-call (connection, BEGIN, INSERT, the "
       "slow call, COMMIT). success: --db call-outside-tx (the slow call, then connection, BEGIN, "
       "INSERT, COMMIT). practice=off: the success mode holds the transaction across the call",
       "pool_timeouts, pool_waits and pool_wait_ms_total are the service's /metrics "
       "(self_reported), cross-checked with client_503, the 503 answers the clients received "
       "(the queue is larger than the clients, so a 503 is a pool timeout); idle_in_tx_max is "
       "MariaDB's own view (server_counter): the most of the service's connections that "
       "INNODB_TRX showed with an open transaction while PROCESSLIST showed them idle (Sleep) "
       "for at least 100 ms, sampled every 50 ms; rows are the run's `valuation` rows read back "
       "after the service "
       "stopped, rows_missing the ok answers without a row; ok_per_s is the throughput the "
       "clients saw. toxic_fired: the runner's own call through the proxy and every ok answer "
       "took at least 0.9 x latency_ms, else inconclusive. Confirmed when the failure has pool "
       "timeouts (and clients saw 503s) and the success none at the same load",
       {Failure("transaction open across the slow call"),
        Success("the call outside the transaction")},
       {Int("clients", 12, 2, 128, "clients", "concurrent clients (one request each at a time)"),
        Int("seconds", 5, 1, 60, "s", "how long the load lasts"),
        Int("pool", 4, 1, 32, "connections", "the service's MariaDB pool"),
        Int("pool_timeout_ms", 300, 50, 10000, "ms", "how long a request waits for a connection"),
        Int("latency_ms", 400, 50, 5000, "ms", "latency the toxic adds to the dependency"),
        Practice()},
       {kPartMysql, kPartToxiproxy},
       // Its own proxies and toxics would make a concurrent run's postflight find
       // Toxiproxy unclean: it holds Toxiproxy alone.
       {kLockNetwork},
       {Compare("failure", "toxic_fired", kEq, 1, kInc),
        Compare("success", "toxic_fired", kEq, 1, kInc),
        Compare("failure", "idle_in_tx_max", kGt, 0, kInc),
        Compare("failure", "rows_missing", kEq, 0, kInc),
        Compare("success", "rows_missing", kEq, 0, kInc), Compare("success", "ok", kGt, 0, kInc),
        Compare("failure", "pool_timeouts", kGt, 0), Compare("failure", "client_503", kGt, 0),
        Compare("success", "pool_timeouts", kEq, 0), Compare("success", "client_503", kEq, 0)},
       60});
  c.push_back(
      {"N06",
       "Misaligned timeouts",
       "resilience",
       "when the client gives up before the service's retry chain ends, the work goes on for "
       "nobody (zombie work); a propagated deadline stops it",
       "a real valuation-service (lab-role) calls a real downstream-service through a Toxiproxy "
       "proxy whose latency toxic adds latency_ms to each answer, more than the service's "
       "attempt_timeout_ms, so every attempt times out and the service retries (`retries` x "
       "attempt_timeout_ms, backoff_ms doubling between them). `clients` threads of the runner "
       "send `requests` "
       "POST /value with X-Deadline-Ms = start + deadline_ms and give up after deadline_ms. "
       "failure: --deadline ignore (neither checked nor passed on). success: --deadline propagate "
       "(no attempt starts past the deadline, attempts capped by the time left, 504). "
       "practice=off: the success mode ignores the deadline. The service always forwards the "
       "client's deadline as X-Client-Deadline-Ms, an observation header it never acts on",
       "zombie_requests (calls that arrived after the client's deadline) and zombie_s (the sum of "
       "max(0, finish - deadline) / 1000) are counted by the downstream, a separate process, "
       "read from its /stats once the service has nothing in flight; zombie_ms_per_request is "
       "zombie_s per request. client_gave_up (client timeouts + 504s) is what the clients saw: "
       "none is inconclusive; toxic_fired: the runner's own call through the proxy took at "
       "least 0.9 x latency_ms, else inconclusive. downstream_calls and downstream_timeouts are "
       "the service's /metrics, calls_mismatch compares them with the downstream's received. "
       "Confirmed when the failure leaves zombie work and the success none: no call after the "
       "deadline and at most 20 ms of zombie time per request (one sampling interval)",
       {Failure("the deadline ignored: retries go on after the client left"),
        Success("the deadline propagated: no attempt past it")},
       {Int("clients", 4, 1, 64, "clients", "concurrent clients (one request each at a time)"),
        Int("requests", 24, 1, 2000, "requests", "requests in all"),
        Int("deadline_ms", 300, 50, 5000, "ms", "the client's deadline (and its timeout)"),
        Int("latency_ms", 1000, 100, 10000, "ms", "latency the toxic adds to the dependency"),
        Int("retries", 3, 1, 6, "retries", "the service's retries after the first attempt"),
        Int("attempt_timeout_ms", 400, 50, 5000, "ms", "the service's timeout per attempt"),
        Int("backoff_ms", 50, 0, 1000, "ms",
            "the service's pause before the first retry (doubling for each next one)"),
        Practice()},
       {kPartToxiproxy},
       // Its own proxies and toxics would make a concurrent run's postflight find
       // Toxiproxy unclean: it holds Toxiproxy alone.
       {kLockNetwork},
       {Compare("failure", "toxic_fired", kEq, 1, kInc),
        Compare("success", "toxic_fired", kEq, 1, kInc),
        Compare("failure", "client_gave_up", kGt, 0, kInc),
        Compare("success", "client_gave_up", kGt, 0, kInc),
        Compare("failure", "zombie_requests", kGt, 0), Compare("failure", "zombie_s", kGt, 0),
        Compare("success", "zombie_requests", kEq, 0),
        Compare("success", "zombie_ms_per_request", kLe, 20)},
       60});
  c.push_back(
      {"N19",
       "Outbox survives a broker outage",
       "resilience",
       "an outbox survives a long broker outage and drains the backlog with zero loss; producing "
       "directly to Kafka loses the events written while the brokers are down",
       "the command-service writes orders at `rate` commands/s (clamp(rate/50, 1, 32) MariaDB "
       "connections). After about a second of traffic all three brokers are really stopped "
       "(infra/stack.sh kafka stop N, the three at once; broker_fault=kill: SIGKILL) and kept "
       "down at least outage_seconds after every port refuses connections, and until `backlog` "
       "orders were written since the stop; the writer is stopped (SIGTERM), then the brokers "
       "are started again. failure: each event is produced directly after its commit "
       "(idempotent, acks=all, message.timeout.ms = delivery_timeout_ms, shorter than the "
       "outage). success: the outbox row is written in the order's transaction and the "
       "outbox-relay, running throughout, drains the backlog once the brokers are back. "
       "practice=off: the success mode produces directly too. Every stopped broker is started "
       "again on every exit path (cancel and timeout included)",
       "committed counts the run's orders rows and written_during_outage those created while "
       "every broker refused connections (read back from MariaDB; the window from a TCP probe "
       "of each broker's port every 200 ms: brokers_down = 1 when all three refused, the fault "
       "fired, all_down_ms its length); read_back counts distinct event ids a fresh consumer "
       "reads from the topic after the brokers returned, lost = committed orders whose event is "
       "absent, duplicates = records beyond the first per event, mismatches = lost + records "
       "without an order (+ for the outbox: rows still pending and outbox rows != orders). "
       "peak_backlog, oldest_age_at_peak_s and time_to_zero_ms (from the first broker accepting "
       "again to no pending row) are sampled from the outbox table; drained counts the rows the "
       "relay marked (published_at_us) from that moment on, drain_ms runs from it to the last "
       "mark and drain_events_per_s = drained / drain_ms; outage_ms (first stop to every broker "
       "healthy) and restart_ms are measured "
       "around infra/stack.sh. outage_over_timeout = 1 when all_down_ms exceeded the direct "
       "producer's delivery_timeout_ms (the outage was long for it). The writer's acked and "
       "delivery_failed and the relay's published are self-reported, in the details only. "
       "duplicates are reported, not judged: a record in flight when a broker stops can be "
       "appended without its acknowledgement, and the relay publishes it again (at least once; "
       "the consumer's processed_event absorbs it, E-003)",
       {Failure("direct produce after commit during the outage"),
        Success("outbox row in the same transaction, relay drains after the outage")},
       {Int("backlog", 3000, 100, 5000000, "events",
            "orders written after the stop before the brokers return (the backlog the outbox "
            "holds); at `rate` this also sets the outage's length"),
        Int("rate", 500, 50, 20000, "commands/s", "commands offered per second by the writer"),
        Int("outage_seconds", 3, 1, 3600, "s",
            "the least time all three brokers stay down, counted from when every port refuses"),
        Int("delivery_timeout_ms", 2000, 500, 300000, "ms",
            "the direct producer's message.timeout.ms (the failure mode needs an outage longer "
            "than this)"),
        Enum("broker_fault", "stop", {"stop", "kill"},
             "stop: SIGTERM and a controlled shutdown; kill: SIGKILL"),
        Practice()},
       {kPartKafka, kPartMysql},
       {kLockKafkaBrokers},
       {Compare("failure", "brokers_down", kEq, 1, kInc),
        Compare("failure", "written_during_outage", kGt, 0, kInc),
        Compare("failure", "outage_over_timeout", kEq, 1, kInc), Compare("failure", "lost", kGt, 0),
        Compare("success", "brokers_down", kEq, 1, kInc),
        Compare("success", "written_during_outage", kGt, 0, kInc),
        Compare("success", "lost", kEq, 0), Compare("success", "mismatches", kEq, 0),
        Compare("success", "peak_backlog", kGt, 0, kInc)},
       300});
  c.push_back(
      {"N21",
       "Circuit breaker",
       "resilience",
       "a circuit breaker contains a latency spike and recovers by itself",
       "a real valuation service (`workers` threads, a queue of 2 x workers, each call to its "
       "dependency bounded by `call_timeout_ms`, the last good value per id served when a call "
       "fails) calls a real downstream service through a Toxiproxy proxy of the run. An "
       "open-loop load of `rate` requests/s (client timeout `client_timeout_ms`) runs for "
       "`baseline_s`, then a latency toxic of `latency_ms` is on the proxy's answers for "
       "`fault_s`, then removed, and the load goes on for `after_s`. failure: no breaker. "
       "success: a breaker (window 20 calls, min 10, failure or slow-call rate >= 50%, slow = "
       "200 ms, open for `open_ms`, 3 half-open trial calls) that answers at once while open. "
       "practice=off: no breaker",
       "time_to_open_ms (MTTD) is the fault's start to the first answer clients got with "
       "X-Breaker: open; recovery_ms (MTTR) the fault's end to the first 250 ms slot from which "
       "every answer is fresh and as fast as the baseline (client side); p99_settled_ms and "
       "error_pct_settled are the clients' view from `settle_ms` after the fault's start to its "
       "end; downstream_calls_during is the dependency's own count; fault_fired is this run's own "
       "call through the proxy taking >= 80% of latency_ms; breaker_opened, closed_at_end and "
       "time_to_close_ms come from the service's /metrics (self_reported, paired with the "
       "clients' numbers); the timeline charts p99, errors and the breaker state over time",
       {Failure("no breaker: requests wait for slow calls, the queue fills"),
        Success("circuit breaker: opens, answers at once, half-open trials, closes by itself")},
       {Int("rate", 100, 10, 1000, "requests/s", "offered load (open loop)"),
        Int("latency_ms", 1000, 100, 10000, "ms", "latency added to the dependency's answers"),
        Int("call_timeout_ms", 500, 50, 10000, "ms", "the service's timeout per call"),
        Int("client_timeout_ms", 2000, 100, 30000, "ms", "the clients' timeout"),
        Int("workers", 16, 1, 128, "threads", "the service's worker threads"),
        Int("open_ms", 1000, 100, 60000, "ms", "how long the breaker stays open"),
        Int("baseline_s", 2, 1, 60, "s", "load before the fault"),
        Int("fault_s", 6, 2, 600, "s", "how long the latency is on"),
        Int("after_s", 4, 2, 600, "s", "load after the fault"),
        Int("settle_ms", 2000, 0, 60000, "ms",
            "from the fault's start, the part of the fault p99_settled_ms leaves out"),
        Practice()},
       {kPartToxiproxy},
       {kLockNetwork},
       {Compare("failure", "fault_fired", kEq, 1, kInc),
        Compare("success", "fault_fired", kEq, 1, kInc),
        CompareRatio("failure", "p99_settled_ms", kGe, 4, "success", "p99_settled_ms"),
        Compare("failure", "error_pct_settled", kGt, 10),
        Compare("success", "breaker_opened", kGt, 0),
        Compare("success", "time_to_open_ms", kLe, 5000),
        Compare("success", "p99_settled_pct_of_latency", kLe, 50),
        Compare("success", "closed_at_end", kEq, 1), Compare("success", "recovered", kEq, 1),
        Compare("success", "service_alive_at_end", kEq, 1, kInc)},
       90});
  // EXPERIMENTS.md's order, whichever way the entries above were written.
  static const std::vector<std::string> kOrder = {
      "E-000", "E-001", "E-002", "E-003",  "E-004",  "E-005", "E-006", "E-007", "E-008",
      "E-009", "E-010", "E-011", "E-012",  "E-013",  "E-014", "E-015", "E-018", "E-019",
      "E-022", "E-023", "E-024", "E-039A", "E-039B", "E-044", "E-045", "E-046", "E-047",
      "E-048", "E-049", "E-050", "N03",    "N04",    "N06",   "N19",   "N21"};
  auto rank = [&](const ExperimentSpec& e) {
    return std::find(kOrder.begin(), kOrder.end(), e.id) - kOrder.begin();
  };
  std::stable_sort(c.begin(), c.end(), [&](const ExperimentSpec& a, const ExperimentSpec& b) {
    return rank(a) < rank(b);
  });
  return c;
}

}  // namespace

const std::vector<ExperimentSpec>& Catalog() {
  static const std::vector<ExperimentSpec> catalog = Build();
  return catalog;
}

const ExperimentSpec* FindExperiment(std::string_view id) {
  for (const auto& e : Catalog()) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

}  // namespace lab::domain
