// relay_drain: the outbox relay's drain rate, side by side in one run with the raw librdkafka
// produce rate of the same records (the physical ceiling for this client on this stack).
//   relay_drain [--events N=100000] [--partitions P=6] [--batch B=5000] [--repeat R=3]
//               [--mark-workers W=1]   (the relay's own options, passed through)
//               [--lab-role PATH]      (another build's relay, e.g. the previous commit's)
//               [--mysql-db DB]        (default: the stack's; a scratch `lab_*` database works)
//               [--migrations DIR]     (default: migrations/mysql; e.g. a copy with only 001,
//                                       for a relay built before 002)
// Per repetition, on a fresh run_ns and fresh topics:
//   1. N outbox_event rows are bulk-inserted (multi-row INSERT; not timed).
//   2. The real relay (`lab-role outbox-relay`, idempotent, acks=all) is started and timed from
//      its spawn until no row of the run_ns is pending (polled every 10 ms for one pending row:
//      a COUNT(*) of the pending rows scans them all and kept a core of MySQL busy).
//   3. The same N records (same keys, payloads and event_id headers, read back from the table)
//      are produced by a raw producer with the relay's own settings, timed until flush returns.
//   4. Read-back: a fresh group-less consumer reads each topic to its end; both must hold N
//      distinct event ids, and N rows must be marked published. A rep that does not reconcile
//      is reported as FAILED and its rate is not used.
// Nothing is asserted about time: the program prints rates, the ratio and the median/spread.
#include <sys/types.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runners/common/process.h"
#include "runners/common/util.h"
#include "runners/experiments/experiment_base.h"
#include "runners/kafka/kafka_client.h"
#include "runners/mysql/mysql_client.h"
#include "runners/stack_config.h"

namespace {

using namespace lab::runners;
using namespace std::chrono_literals;

struct Options {
  std::int64_t events = 100000;
  int partitions = 6;
  std::int64_t batch = 5000;
  int repeat = 3;
  int mark_workers = 1;
  std::string lab_role = LAB_ROLE_BINARY;
  std::string mysql_db;  // empty: the stack's
  std::string migrations = std::string(LAB_SOURCE_DIR) + "/migrations/mysql";
};

// "Pending" in the schema the database has: published_at_us NULL before migration 002, 0 after.
std::string PendingPredicate(mysql::Connection& db) {
  auto nullable = db.Query(
      "SELECT IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND "
      "TABLE_NAME = 'outbox_event' AND COLUMN_NAME = 'published_at_us'");
  const bool is_null =
      nullable && !nullable->rows.empty() && nullable->rows[0][0] && *nullable->rows[0][0] == "YES";
  return is_null ? "published_at_us IS NULL" : "published_at_us = 0";
}

// The stack's endpoints from infra/stack.env (the stack's own statement of them).
StackConfig LoadConfig() {
  StackConfig c;
  std::ifstream env(std::string(LAB_SOURCE_DIR) + "/infra/stack.env");
  std::map<std::string, std::string> kv;
  std::string line;
  while (std::getline(env, line)) {
    auto eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  if (kv.count("LAB_KAFKA_BOOTSTRAP")) c.kafka_bootstrap = kv["LAB_KAFKA_BOOTSTRAP"];
  if (kv.count("LAB_MYSQL_HOST")) c.mysql_host = kv["LAB_MYSQL_HOST"];
  if (kv.count("LAB_MYSQL_PORT")) c.mysql_port = std::stoi(kv["LAB_MYSQL_PORT"]);
  if (kv.count("LAB_MYSQL_USER")) c.mysql_user = kv["LAB_MYSQL_USER"];
  if (kv.count("LAB_MYSQL_PASSWORD")) c.mysql_password = kv["LAB_MYSQL_PASSWORD"];
  if (kv.count("LAB_MYSQL_DATABASE")) c.mysql_database = kv["LAB_MYSQL_DATABASE"];
  return c;
}

mysql::MysqlConfig Mysql(const StackConfig& c) {
  mysql::MysqlConfig m = MysqlSettingsFor(c);
  m.read_timeout = 60s;
  return m;
}

// The payload the command-service writes (same shape and size).
std::string Payload(const std::string& event_id, std::int64_t id, std::int64_t now) {
  return "{\"amount\":" + std::to_string(100 + id % 900) +
         ",\"committed_at_us\":" + std::to_string(now) + ",\"event_id\":\"" + event_id +
         "\",\"order_id\":" + std::to_string(id) +
         ",\"poison\":false,\"product_id\":1,\"version\":1}";
}

bool Fill(mysql::Connection& db, const std::string& ns, std::int64_t events) {
  const std::int64_t now = NowMicros();
  constexpr std::int64_t kRowsPerInsert = 2000;
  for (std::int64_t first = 1; first <= events; first += kRowsPerInsert) {
    std::string sql =
        "INSERT INTO outbox_event (run_ns, event_id, aggregate_id, event_type, payload, "
        "created_at_us) VALUES ";
    for (std::int64_t id = first; id < std::min(first + kRowsPerInsert, events + 1); ++id) {
      const std::string event_id = ns + "-" + std::to_string(id);
      if (id != first) sql += ",";
      // Every value is built here from digits and [a-z0-9_-]: nothing to escape.
      sql += "('" + ns + "','" + event_id + "'," + std::to_string(id) + ",'OrderPlaced','" +
             Payload(event_id, id, now) + "'," + std::to_string(now) + ")";
    }
    if (auto s = db.Execute(sql); !s) {
      std::fprintf(stderr, "fill: %s\n", s.error().message.c_str());
      return false;
    }
  }
  return true;
}

void DeleteRows(mysql::Connection& db, const std::string& ns) {
  // In chunks: one 100k-row DELETE is a long transaction other helpers' runs would wait behind.
  for (int i = 0; i < 1000; ++i) {
    auto n = db.Exec("DELETE FROM outbox_event WHERE run_ns = ? LIMIT 10000", {ns});
    if (!n || *n == 0) return;
  }
}

bool CreateTopic(kafka::Admin& admin, const std::string& topic, int partitions) {
  if (auto s = admin.CreateTopic(topic, partitions, 3, {{"min.insync.replicas", "2"}}, 15s); !s) {
    std::fprintf(stderr, "create %s: %s\n", topic.c_str(), s.error().message.c_str());
    return false;
  }
  for (int i = 0; i < 100; ++i) {
    auto md = admin.Metadata(topic, 2s);
    if (md && static_cast<int>(md->partitions.size()) == partitions &&
        std::all_of(md->partitions.begin(), md->partitions.end(),
                    [](const kafka::PartitionInfo& p) { return p.leader >= 0; })) {
      return true;
    }
    std::this_thread::sleep_for(100ms);
  }
  std::fprintf(stderr, "create %s: partitions have no leader after 10 s\n", topic.c_str());
  return false;
}

// Distinct event_id headers in a read-back (and the total record count).
std::pair<std::size_t, std::size_t> ReadBackCounts(const StackConfig& c, const std::string& topic,
                                                   int partitions) {
  auto read = kafka::ReadTopic(c.kafka_bootstrap, topic, partitions, "read_committed", 60s);
  if (!read.complete) {
    std::fprintf(stderr, "read-back %s: %s\n", topic.c_str(), read.error.c_str());
    return {0, 0};
  }
  std::set<std::string> ids;
  for (const auto& m : read.messages) {
    for (const auto& [k, v] : m.headers) {
      if (k == "event_id") ids.insert(v);
    }
  }
  return {ids.size(), read.messages.size()};
}

struct Rep {
  bool ok = false;
  double relay_eps = 0;
  double raw_eps = 0;
};

Rep RunOnce(const StackConfig& c, const Options& o, int rep, mysql::Connection& db,
            kafka::Admin& admin) {
  Rep out;
  const std::string ns =
      "bench_relay_" + std::to_string(NowMicros() / 1000 % 100000000) + "_" + std::to_string(rep);
  const std::string relay_topic = "lab." + ns + ".relay.orders";
  const std::string raw_topic = "lab." + ns + ".raw.orders";
  struct Cleanup {
    mysql::Connection& db;
    kafka::Admin& admin;
    std::string ns;
    std::vector<std::string> topics;
    ~Cleanup() {
      DeleteRows(db, ns);
      (void)admin.DeleteTopics(topics, 15s);
    }
  } cleanup{db, admin, ns, {relay_topic, raw_topic}};
  if (!CreateTopic(admin, relay_topic, o.partitions) ||
      !CreateTopic(admin, raw_topic, o.partitions) || !Fill(db, ns, o.events)) {
    return out;
  }
  auto rows = db.Query(
      "SELECT id, event_id, aggregate_id, payload FROM outbox_event WHERE run_ns = ? ORDER BY id",
      {ns});
  if (!rows || static_cast<std::int64_t>(rows->rows.size()) != o.events) {
    std::fprintf(stderr, "fill: expected %lld rows\n", static_cast<long long>(o.events));
    return out;
  }

  // 1. The relay, a real process, from spawn to nothing pending.
  const std::string log = "/tmp/relay_drain_" + ns + ".log";
  auto start = SteadyClock::now();
  auto relay = ChildProcess::Spawn({o.lab_role,       "outbox-relay",
                                    "--bootstrap",    c.kafka_bootstrap,
                                    "--mysql-host",   c.mysql_host,
                                    "--mysql-port",   std::to_string(c.mysql_port),
                                    "--mysql-user",   c.mysql_user,
                                    "--mysql-db",     c.mysql_database,
                                    "--ns",           ns,
                                    "--topic",        relay_topic,
                                    "--batch",        std::to_string(o.batch),
                                    "--mark-workers", std::to_string(o.mark_workers),
                                    "--idle-exit-ms", "300"},
                                   log, {{"LAB_MYSQL_PASSWORD", c.mysql_password}});
  if (!relay) {
    std::fprintf(stderr, "spawn relay: %s\n", relay.error().message.c_str());
    return out;
  }
  double relay_ms = -1;
  const std::string pending_sql = PendingPredicate(db);
  while (MsSince(start) < 300000) {
    auto pending =
        db.Query("SELECT COUNT(*) FROM (SELECT 1 FROM outbox_event WHERE run_ns = ? AND " +
                     pending_sql + " LIMIT 1) AS t",
                 {ns});
    if (pending && pending->Scalar() == 0) {
      relay_ms = MsSince(start);
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  std::stop_source never;
  auto status = relay->Wait(30s, never.get_token());
  std::string relay_log = relay->ReadLog();
  if (relay_ms < 0 || !status || !status->exited || status->code != 0) {
    std::fprintf(stderr, "relay did not drain cleanly; its log:\n%s\n", relay_log.c_str());
    return out;
  }
  std::remove(log.c_str());

  // 2. The raw producer: the same records, the relay's producer settings.
  auto producer = kafka::Producer::Create(c.kafka_bootstrap, {{"enable.idempotence", "true"},
                                                              {"acks", "all"},
                                                              {"linger.ms", "5"},
                                                              {"batch.num.messages", "10000"},
                                                              {"message.timeout.ms", "10000"}});
  if (!producer) {
    std::fprintf(stderr, "producer: %s\n", producer.error().message.c_str());
    return out;
  }
  auto raw_start = SteadyClock::now();
  for (const auto& r : rows->rows) {
    if (auto p = (*producer)->Produce(raw_topic, -1, *r[2], *r[3], {{"event_id", *r[1]}},
                                      std::stoll(*r[0]));
        !p) {
      std::fprintf(stderr, "raw produce: %s\n", p.error().message.c_str());
    }
  }
  auto flushed = (*producer)->Flush(60s);
  const double raw_ms = MsSince(raw_start);
  std::int64_t raw_ok = 0;
  for (const auto& r : (*producer)->TakeReports())
    raw_ok += r.err == RD_KAFKA_RESP_ERR_NO_ERROR ? 1 : 0;
  if (!flushed) std::fprintf(stderr, "raw flush: %s\n", flushed.error().message.c_str());

  // 3. Reconcile from the systems of record.
  auto marked = db.Query(
      "SELECT COUNT(*) FROM outbox_event WHERE run_ns = ? AND NOT (" + pending_sql + ")", {ns});
  const std::int64_t marked_rows = marked ? marked->Scalar() : -1;
  auto [relay_distinct, relay_records] = ReadBackCounts(c, relay_topic, o.partitions);
  auto [raw_distinct, raw_records] = ReadBackCounts(c, raw_topic, o.partitions);
  const auto n = static_cast<std::size_t>(o.events);
  out.ok =
      marked_rows == o.events && relay_distinct == n && raw_distinct == n && raw_ok == o.events;
  out.relay_eps = static_cast<double>(o.events) / (relay_ms / 1000.0);
  out.raw_eps = static_cast<double>(o.events) / (raw_ms / 1000.0);
  std::printf(
      "rep %d: relay %8.0f ev/s (%7.0f ms)  raw %8.0f ev/s (%7.0f ms)  ratio %.2f  | marked=%lld "
      "relay topic: %zu records %zu distinct; raw topic: %zu records %zu distinct, acked=%lld "
      "%s\n",
      rep, out.relay_eps, relay_ms, out.raw_eps, raw_ms, out.relay_eps / out.raw_eps,
      static_cast<long long>(marked_rows), relay_records, relay_distinct, raw_records, raw_distinct,
      static_cast<long long>(raw_ok), out.ok ? "RECONCILED" : "FAILED");
  // The relay's own summary (its last key=value lines) and how many delivery errors it logged.
  std::string summary;
  int delivery_errors = 0;
  int errors = 0;
  std::string first_error;
  std::istringstream lines(relay_log);
  for (std::string l; std::getline(lines, l);) {
    if (l.rfind("delivery_error=", 0) == 0) {
      ++delivery_errors;
    } else if (l.rfind("error=", 0) == 0) {
      if (errors++ == 0) first_error = " (first: " + l.substr(0, 160) + ")";
    } else if (l.rfind("produced=", 0) == 0 || l.rfind("published=", 0) == 0 ||
               l.rfind("delivery_failures=", 0) == 0 || l.rfind("client_library", 0) == 0 ||
               l.rfind("batches=", 0) == 0 || l.find("_ms=") != std::string::npos) {
      summary += l + " ";
    }
  }
  std::printf("       relay said: %sdelivery_error lines=%d error lines=%d%s\n", summary.c_str(),
              delivery_errors, errors, first_error.c_str());
  std::fflush(stdout);
  return out;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    std::string v = argv[i + 1];
    if (k == "--events")
      o.events = std::stoll(v);
    else if (k == "--partitions")
      o.partitions = std::stoi(v);
    else if (k == "--batch")
      o.batch = std::stoll(v);
    else if (k == "--repeat")
      o.repeat = std::stoi(v);
    else if (k == "--mark-workers")
      o.mark_workers = std::stoi(v);
    else if (k == "--lab-role")
      o.lab_role = v;
    else if (k == "--mysql-db")
      o.mysql_db = v;
    else if (k == "--migrations")
      o.migrations = v;
    else {
      std::fprintf(stderr,
                   "usage: relay_drain [--events N] [--partitions P] [--batch B] [--repeat R] "
                   "[--mark-workers W] [--lab-role PATH] [--mysql-db DB] [--migrations DIR]\n");
      return 2;
    }
  }
  StackConfig c = LoadConfig();
  if (!o.mysql_db.empty()) c.mysql_database = o.mysql_db;
  auto db = mysql::Connection::Open(Mysql(c));
  if (!db) {
    std::fprintf(stderr, "mysql: %s\n", db.error().message.c_str());
    return 1;
  }
  if (auto m = mysql::ApplyMigrations(**db, o.migrations); !m) {
    std::fprintf(stderr, "migrations: %s\n", m.error().message.c_str());
    return 1;
  }
  auto admin = kafka::Admin::Create(c.kafka_bootstrap);
  if (!admin) {
    std::fprintf(stderr, "kafka admin: %s\n", admin.error().message.c_str());
    return 1;
  }
  std::printf(
      "relay_drain: %lld events, %d partitions (RF 3, min ISR 2), relay batch %lld, mark workers "
      "%d, acks=all + idempotence for both; relay %s, database %s, pending = %s\n",
      static_cast<long long>(o.events), o.partitions, static_cast<long long>(o.batch),
      o.mark_workers, o.lab_role.c_str(), c.mysql_database.c_str(), PendingPredicate(**db).c_str());
  std::vector<double> relay;
  std::vector<double> raw;
  std::vector<double> ratio;
  int failed = 0;
  for (int rep = 1; rep <= o.repeat; ++rep) {
    Rep r = RunOnce(c, o, rep, **db, **admin);
    if (!r.ok) {
      ++failed;
      continue;
    }
    relay.push_back(r.relay_eps);
    raw.push_back(r.raw_eps);
    ratio.push_back(r.relay_eps / r.raw_eps);
  }
  auto line = [](const char* name, const std::vector<double>& v, int decimals) {
    if (v.empty()) return;
    std::printf("%-14s median %.*f  min %.*f  max %.*f\n", name, decimals, Median(v), decimals,
                *std::min_element(v.begin(), v.end()), decimals,
                *std::max_element(v.begin(), v.end()));
  };
  line("relay ev/s", relay, 0);
  line("raw ev/s", raw, 0);
  line("relay/raw", ratio, 2);
  std::printf("reconciled reps: %zu of %d\n", relay.size(), o.repeat);
  return failed == 0 ? 0 : 1;
}
