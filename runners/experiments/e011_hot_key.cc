// E-011: a hot key overloads the one master that owns its slot; splitting it into copies spread
// over every master, plus a short local cache in each client, spreads the load and lowers p99.
// Each mode, on its own key prefix:
//   set-up:  kTailKeys small tail keys, placed by slot so that every master holds the same share
//            of the tail's Zipf weight (greedy balancing: the tail is background load spread
//            evenly by design, so the hot key is the only skew), and the hot value of
//            `value_bytes`: failure: one key "hot" (whichever master owns its slot); success:
//            `copies` keys "hot:<n>" chosen by KeySlot and the cluster's slot map so that copy c
//            lives on master c % masters. practice=off: the success mode uses the single key and
//            no cache, as the failure mode does.
//   load:    `clients` threads, each with its own ClusterClient, read for `seconds` without
//            pause (one read in flight per client): hot_pct% of reads are the hot value, the
//            rest a Zipf(kZipfExponent) pick of the tail. Success: a hot read picks a random copy
//            and the value is kept in the client for `cache_ms` (a cache hit takes no Redis
//            round trip; its latency counts as 0 in the client percentiles).
//   evidence: each master's INFO commandstats GET calls and INFO cpu before and after the load
//            (server_counter); ops_server, their sum, is cross-checked with the clients' own count
//            of GETs sent (reads_sent: the difference is other traffic, small); load_ratio is the
//            busiest master's GETs over the least busy one's; p50/p99 from the client clocks.
// Why the hot value is large by default (64 KiB): on 2 cores shared by the clients, six nodes and
// Kafka, a 64-byte GET costs the client about what it costs the server, so the machine saturates
// before the hot master does and p99 barely differs between modes; a hot value that is costly
// to serve (a config blob, a rendered page: the usual hot key) makes the hot master's work the
// difference, as it is in production. value_bytes=64 shows the small-value case.
// The run is inconclusive when the cluster is not healthy, its topology changes or a master
// restarts during the load (counters would not be deltas), a client fails I/O, or a read misses.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/redis/cluster_admin.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr int kTailKeys = 1000;
constexpr double kZipfExponent = 0.99;  // YCSB's default skew for the tail
constexpr std::size_t kTailValueBytes = 64;
constexpr auto kTimeout = 2000ms;
constexpr int kWriteBatch = 500;

// A master of the cluster: its address and port (the metrics' names).
struct Master {
  std::string addr;
  std::string port;
};

// One master's counters at one moment.
struct NodeStats {
  std::int64_t get_calls = 0;
  std::int64_t get_usec = 0;
  double cpu_s = 0;
  std::string run_id;
};

// "calls=12,usec=34,…" -> the number after `name=`, 0 when absent.
std::int64_t StatField(const std::string& value, const std::string& name) {
  const std::string key = name + "=";
  for (std::size_t pos = 0; pos < value.size();) {
    const std::size_t end = std::min(value.find(',', pos), value.size());
    if (value.compare(pos, key.size(), key) == 0) {
      return std::strtoll(value.c_str() + pos + key.size(), nullptr, 10);
    }
    pos = end + 1;
  }
  return 0;
}

double InfoDouble(const std::string& info, const std::string& field) {
  return std::strtod(redis::InfoValue(info, field).c_str(), nullptr);
}

domain::Result<NodeStats> ReadStats(redis::NodePool& pool, const std::string& addr) {
  NodeStats s;
  auto commands = pool.Run(addr, {"INFO", "commandstats"});
  if (!commands) return commands.error();
  const std::string get = redis::InfoValue(commands->str, "cmdstat_get");  // absent: no GET yet
  s.get_calls = StatField(get, "calls");
  s.get_usec = StatField(get, "usec");
  auto cpu = pool.Run(addr, {"INFO", "cpu"});
  if (!cpu) return cpu.error();
  if (redis::InfoValue(cpu->str, "used_cpu_sys").empty()) {
    return domain::MakeError(domain::ErrorCode::kInternal, addr + ": INFO cpu has no used_cpu_sys");
  }
  s.cpu_s = InfoDouble(cpu->str, "used_cpu_sys") + InfoDouble(cpu->str, "used_cpu_user");
  auto server = pool.Run(addr, {"INFO", "server"});
  if (!server) return server.error();
  s.run_id = redis::InfoValue(server->str, "run_id");
  return s;
}

// The masters (with slots) of a healthy cluster, sorted by address, and its topology text.
struct ClusterMasters {
  std::vector<Master> masters;
  std::string topology;
};

domain::Result<ClusterMasters> HealthyMasters(const std::vector<std::string>& seeds) {
  const auto view = redis::ReadSettledClusterView(seeds, kTimeout, std::chrono::seconds(20));
  if (view.nodes.empty() || !view.problems.empty()) {
    return domain::MakeError(domain::ErrorCode::kUnavailable,
                             "redis cluster not healthy: " +
                                 (view.problems.empty() ? "no node answered" : view.problems));
  }
  ClusterMasters out{{}, view.topology};
  for (const auto& n : view.nodes) {
    if (!n.master || n.slots.empty()) continue;
    out.masters.push_back({n.addr, std::to_string(redis::SplitHostPort(n.addr).second)});
  }
  std::sort(out.masters.begin(), out.masters.end(),
            [](const Master& a, const Master& b) { return a.addr < b.addr; });
  if (out.masters.size() < 2) {
    return domain::MakeError(domain::ErrorCode::kUnavailable,
                             "redis cluster has fewer than 2 masters with slots");
  }
  return out;
}

// Key names `stem`<n>, n = 0, 1, …, chosen by slot so that the i-th key returned lives on
// masters[targets[i]] according to `client`'s slot map. Bounded: a candidate lands on a given
// master with probability ~1/masters, so 64 tries per key is ample.
domain::Result<std::vector<std::string>> KeysOn(const redis::ClusterClient& client,
                                                const std::string& stem,
                                                const std::vector<int>& targets,
                                                const std::vector<Master>& masters) {
  std::vector<std::vector<std::string>> spare(masters.size());
  std::vector<std::string> keys;
  const std::int64_t bound = static_cast<std::int64_t>(targets.size()) * 64 + 1000;
  for (std::int64_t n = 0; n < bound && keys.size() < targets.size(); ++n) {
    std::string key = stem + std::to_string(n);
    const std::string& owner = client.SlotOwner(redis::KeySlot(key));
    for (std::size_t m = 0; m < masters.size(); ++m) {
      if (masters[m].addr == owner) spare[m].push_back(std::move(key));
    }
    // Take from the spares in `targets` order while the wanted master has one.
    while (keys.size() < targets.size()) {
      auto& want = spare[static_cast<std::size_t>(targets[keys.size()])];
      if (want.empty()) break;
      keys.push_back(std::move(want.back()));
      want.pop_back();
    }
  }
  if (keys.size() < targets.size()) {
    return domain::MakeError(domain::ErrorCode::kInternal,
                             "could not place " + std::to_string(targets.size()) + " keys of " +
                                 stem + " on the masters wanted (slot map incomplete?)");
  }
  return keys;
}

// Copy c on master c % masters.
std::vector<int> RoundRobin(int count, std::size_t masters) {
  std::vector<int> targets;
  for (int c = 0; c < count; ++c) targets.push_back(c % static_cast<int>(masters));
  return targets;
}

// Each tail rank, in order of its Zipf weight, on the master with the least weight so far
// (greedy balancing): every master gets about the same share of the tail's reads.
std::vector<int> BalancedByWeight(const std::vector<double>& weights, std::size_t masters) {
  std::vector<double> load(masters, 0.0);
  std::vector<int> targets;
  for (double w : weights) {
    const auto m = std::min_element(load.begin(), load.end()) - load.begin();
    load[static_cast<std::size_t>(m)] += w;
    targets.push_back(static_cast<int>(m));
  }
  return targets;
}

// The index in `masters` of the master owning `key`, or -1.
int MasterOf(const redis::ClusterClient& client, const std::vector<Master>& masters,
             const std::string& key) {
  const std::string& owner = client.SlotOwner(redis::KeySlot(key));
  for (std::size_t m = 0; m < masters.size(); ++m) {
    if (masters[m].addr == owner) return static_cast<int>(m);
  }
  return -1;
}

// What one load client observed.
struct ClientLoad {
  std::vector<std::vector<double>> latency_ms;  // per master: reads answered by Redis
  std::vector<std::vector<double>> tail_ms;     // per master: the tail's share of latency_ms
  std::vector<std::int64_t> sent;               // per master: GETs sent
  std::int64_t cache_hits = 0;
  std::int64_t misses = 0;  // nil replies (the key was not there) or a hot value of another size
  std::int64_t moved = 0;
  std::string error;
};

// The keys a mode reads, with the master each lives on, and the tail's Zipf CDF.
struct Workload {
  std::vector<std::string> tail;
  std::vector<int> tail_master;
  std::vector<double> tail_cdf;
  std::vector<std::string> hot;
  std::vector<int> hot_master;
  std::string hot_value;
  double hot_share = 0.5;
  std::chrono::milliseconds cache_ttl{0};  // 0: no cache
};

void RunClient(const StackConfig& config, const Workload& w, std::size_t masters, int id,
               SteadyClock::time_point start, SteadyClock::time_point end,
               const std::stop_token& stop, ClientLoad& out) {
  out.latency_ms.assign(masters, {});
  out.tail_ms.assign(masters, {});
  out.sent.assign(masters, 0);
  auto client = redis::ClusterClient::Open(config.redis_cluster_seeds, kTimeout);
  if (!client) {
    out.error = client.error().message;
    return;
  }
  std::mt19937_64 rng(std::random_device{}() ^ (static_cast<std::uint64_t>(id) << 32));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::string cached;                      // the local copy of the hot value
  SteadyClock::time_point cached_until{};  // valid until then
  std::this_thread::sleep_until(start);
  while (!stop.stop_requested()) {
    const auto t0 = SteadyClock::now();
    if (t0 >= end) break;
    const std::string* key = nullptr;
    int master = -1;
    const bool hot = unit(rng) < w.hot_share;
    if (hot) {
      if (w.cache_ttl.count() > 0 && t0 < cached_until && !cached.empty()) {
        ++out.cache_hits;
        continue;
      }
      const std::size_t pick = w.hot.size() == 1 ? 0 : rng() % w.hot.size();
      key = &w.hot[pick];
      master = w.hot_master[pick];
    } else {
      const auto it = std::upper_bound(w.tail_cdf.begin(), w.tail_cdf.end(), unit(rng));
      const std::size_t rank = std::min<std::size_t>(it - w.tail_cdf.begin(), w.tail.size() - 1);
      key = &w.tail[rank];
      master = w.tail_master[rank];
    }
    auto reply = (*client)->Command(*key, {"GET", *key});
    if (!reply) {
      out.error = reply.error().message;
      break;
    }
    const double ms = MsSince(t0);
    out.sent[static_cast<std::size_t>(master)] += 1;
    if (reply->is_error()) {
      out.error = "GET " + *key + ": " + reply->str;
      break;
    }
    if (reply->is_nil() || (hot && reply->str.size() != w.hot_value.size())) ++out.misses;
    out.latency_ms[static_cast<std::size_t>(master)].push_back(ms);
    if (!hot) out.tail_ms[static_cast<std::size_t>(master)].push_back(ms);
    if (hot && w.cache_ttl.count() > 0) {
      cached = std::move(reply->str);
      cached_until = SteadyClock::now() + w.cache_ttl;
    }
  }
  out.moved = (*client)->moved();
}

// The q-quantile (nearest rank, as Percentile) of `sorted` Redis latencies plus `zeros` cache
// hits of latency 0.
double QuantileWithHits(const std::vector<double>& sorted, std::int64_t zeros, double q) {
  const std::size_t n = sorted.size() + static_cast<std::size_t>(zeros);
  if (n == 0) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(n)));
  rank = std::clamp<std::size_t>(rank, 1, n);
  if (rank <= static_cast<std::size_t>(zeros)) return 0;
  return sorted[rank - static_cast<std::size_t>(zeros) - 1];
}

class HotKey final : public ExperimentBase {
 public:
  explicit HotKey(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-011"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::string prefix = RedisPrefix(ctx, mode);
    Created(ctx, mode, result, kArtifactClusterKeys, prefix);
    const bool split = mode == "success" && domain::GetString(ctx.params, "practice") != "off";
    const int clients = static_cast<int>(domain::GetInt(ctx.params, "clients"));
    const std::chrono::milliseconds duration(domain::GetInt(ctx.params, "seconds") * 1000);
    const int copies = split ? static_cast<int>(domain::GetInt(ctx.params, "copies")) : 1;

    auto cluster_before = HealthyMasters(config_.redis_cluster_seeds);
    if (!cluster_before) return Inconclusive(std::move(result), cluster_before.error().message);
    const std::vector<Master>& masters = cluster_before->masters;
    auto cluster = OpenCluster(kTimeout);
    if (!cluster)
      return Inconclusive(std::move(result), "redis cluster: " + cluster.error().message);

    Workload w;
    w.hot_share = static_cast<double>(domain::GetInt(ctx.params, "hot_pct")) / 100.0;
    w.cache_ttl = split ? std::chrono::milliseconds(domain::GetInt(ctx.params, "cache_ms")) : 0ms;
    w.hot_value =
        std::string(static_cast<std::size_t>(domain::GetInt(ctx.params, "value_bytes")), 'h');
    if (auto s = Prepare(ctx, mode, **cluster, masters, prefix, split, copies, w); !s) {
      return Inconclusive(std::move(result), "redis cluster: " + s.error().message);
    }
    Progress(ctx, 20);

    redis::NodePool pool(kTimeout);
    std::vector<NodeStats> before;
    for (const auto& m : masters) {
      auto s = ReadStats(pool, m.addr);
      if (!s) return Inconclusive(std::move(result), "redis cluster: " + s.error().message);
      before.push_back(*s);
    }
    Step(ctx, mode + ": " + std::to_string(clients) + " clients read for " +
                  std::to_string(duration.count()) + " ms, " +
                  std::to_string(static_cast<int>(w.hot_share * 100)) + "% hot over " +
                  std::to_string(w.hot.size()) + " key(s) of " +
                  std::to_string(w.hot_value.size()) + " bytes, cache " +
                  std::to_string(w.cache_ttl.count()) + " ms");
    std::vector<ClientLoad> loads(static_cast<std::size_t>(clients));
    const auto start = SteadyClock::now() + 200ms;  // every client opened and waiting
    const auto end = start + duration;
    {
      std::vector<std::jthread> threads;
      for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
          auto& out = loads[static_cast<std::size_t>(c)];
          try {
            RunClient(config_, w, masters.size(), c, start, end, ctx.stop, out);
          } catch (const std::exception& e) {  // nothing escapes a thread
            out.error = e.what();
          }
        });
      }
    }
    const double load_ms = std::chrono::duration<double, std::milli>(end - start).count();
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    std::vector<NodeStats> after;
    for (const auto& m : masters) {
      auto s = ReadStats(pool, m.addr);
      if (!s) return Inconclusive(std::move(result), "redis cluster: " + s.error().message);
      after.push_back(*s);
    }
    Progress(ctx, 90);
    auto cluster_after = HealthyMasters(config_.redis_cluster_seeds);
    if (!cluster_after || cluster_after->topology != cluster_before->topology) {
      return Inconclusive(std::move(result),
                          "the cluster's topology changed during the load (another run?)");
    }
    return Evaluate(ctx, mode, std::move(result), masters, w, loads, before, after, load_ms);
  }

 private:
  // Chooses and writes the tail and hot keys of `w`, reading the hot keys back.
  domain::Status Prepare(const domain::RunContext& ctx, const std::string& mode,
                         redis::ClusterClient& cluster, const std::vector<Master>& masters,
                         const std::string& prefix, bool split, int copies, Workload& w) const {
    std::vector<double> weights;
    double sum = 0;
    for (int r = 0; r < kTailKeys; ++r) {
      weights.push_back(1.0 / std::pow(r + 1, kZipfExponent));
      sum += weights.back();
      w.tail_cdf.push_back(sum);
    }
    for (auto& c : w.tail_cdf) c /= sum;
    auto tail = KeysOn(cluster, prefix + "t:", BalancedByWeight(weights, masters.size()), masters);
    if (!tail) return tail.error();
    w.tail = std::move(*tail);
    if (split) {
      auto hot = KeysOn(cluster, prefix + "hot:", RoundRobin(copies, masters.size()), masters);
      if (!hot) return hot.error();
      w.hot = std::move(*hot);
    } else {
      w.hot = {prefix + "hot"};
    }
    for (const auto& k : w.tail) w.tail_master.push_back(MasterOf(cluster, masters, k));
    for (const auto& k : w.hot) w.hot_master.push_back(MasterOf(cluster, masters, k));
    if (std::count(w.tail_master.begin(), w.tail_master.end(), -1) > 0 ||
        std::count(w.hot_master.begin(), w.hot_master.end(), -1) > 0) {
      return domain::MakeError(domain::ErrorCode::kInternal, "a key's slot has no known master");
    }

    // Writes, pipelined per master.
    std::vector<std::vector<std::vector<std::string>>> writes(masters.size());
    const std::string tail_value(kTailValueBytes, 't');
    for (std::size_t i = 0; i < w.tail.size(); ++i) {
      writes[static_cast<std::size_t>(w.tail_master[i])].push_back({"SET", w.tail[i], tail_value});
    }
    for (std::size_t i = 0; i < w.hot.size(); ++i) {
      writes[static_cast<std::size_t>(w.hot_master[i])].push_back({"SET", w.hot[i], w.hot_value});
    }
    redis::NodePool pool(kTimeout);
    for (std::size_t m = 0; m < masters.size(); ++m) {
      auto conn = pool.Get(masters[m].addr);
      if (!conn) return conn.error();
      for (std::size_t i = 0; i < writes[m].size(); i += kWriteBatch) {
        const auto last = std::min(writes[m].size(), i + kWriteBatch);
        std::vector<std::vector<std::string>> batch(writes[m].begin() + static_cast<long>(i),
                                                    writes[m].begin() + static_cast<long>(last));
        auto replies = (*conn)->Pipeline(batch);
        if (!replies) return replies.error();
        for (const auto& r : *replies) {
          if (r.is_error()) {
            return domain::MakeError(domain::ErrorCode::kInternal,
                                     masters[m].addr + ": SET: " + r.str);
          }
        }
      }
    }
    // Read back every hot copy where the clients will read it.
    for (std::size_t i = 0; i < w.hot.size(); ++i) {
      auto r = cluster.Command(w.hot[i], {"GET", w.hot[i]});
      if (!r) return r.error();
      if (r->is_error() || r->str != w.hot_value) {
        return domain::MakeError(domain::ErrorCode::kInternal,
                                 "hot key " + w.hot[i] + " not read back as written");
      }
    }
    std::set<int> hot_on(w.hot_master.begin(), w.hot_master.end());
    Step(ctx, mode + ": " + std::to_string(w.tail.size()) + " tail keys and " +
                  std::to_string(w.hot.size()) + " hot key(s) written; the hot value lives on " +
                  std::to_string(hot_on.size()) + " of " + std::to_string(masters.size()) +
                  " masters");
    return {};
  }

  domain::ModeResult Evaluate(const domain::RunContext& ctx, const std::string& mode,
                              domain::ModeResult result, const std::vector<Master>& masters,
                              const Workload& w, const std::vector<ClientLoad>& loads,
                              const std::vector<NodeStats>& before,
                              const std::vector<NodeStats>& after, double load_ms) const {
    std::int64_t cache_hits = 0;
    std::int64_t misses = 0;
    std::int64_t moved = 0;
    std::vector<std::int64_t> sent(masters.size(), 0);
    std::vector<std::vector<double>> per_master(masters.size());
    std::vector<std::vector<double>> tail_per_master(masters.size());
    std::vector<double> all;
    for (const auto& l : loads) {
      if (!l.error.empty()) return Inconclusive(std::move(result), "load client: " + l.error);
      cache_hits += l.cache_hits;
      misses += l.misses;
      moved += l.moved;
      for (std::size_t m = 0; m < masters.size(); ++m) {
        sent[m] += l.sent[m];
        per_master[m].insert(per_master[m].end(), l.latency_ms[m].begin(), l.latency_ms[m].end());
        tail_per_master[m].insert(tail_per_master[m].end(), l.tail_ms[m].begin(),
                                  l.tail_ms[m].end());
        all.insert(all.end(), l.latency_ms[m].begin(), l.latency_ms[m].end());
      }
    }
    if (misses > 0) {
      return Inconclusive(
          std::move(result),
          std::to_string(misses) + " reads found no value or not the one written (keys changed?)");
    }
    if (all.empty()) return Inconclusive(std::move(result), "the load sent no read to Redis");
    std::sort(all.begin(), all.end());

    auto& m = result.metrics;
    Json provenance = {{"ops_server", "server_counter"},
                       {"load_ratio", "server_counter"},
                       {"reads_sent", "self_reported"},
                       {"reads", "self_reported"},
                       {"cache_hits", "self_reported"},
                       {"p50_ms", "self_reported"},
                       {"p99_ms", "self_reported"},
                       {"p99_redis_ms", "self_reported"},
                       {"hot_keys", "read_back"},
                       {"hot_masters", "set by design (slot map)"},
                       {"load_ms", "set by design (seconds)"}};
    Json per_node = Json::array();
    std::int64_t ops_server = 0;
    std::int64_t ops_max = 0;
    std::int64_t ops_min = -1;
    for (std::size_t i = 0; i < masters.size(); ++i) {
      if (before[i].run_id != after[i].run_id || after[i].get_calls < before[i].get_calls) {
        return Inconclusive(std::move(result),
                            masters[i].addr + " restarted during the load: no counter delta");
      }
      const std::int64_t ops = after[i].get_calls - before[i].get_calls;
      const double cpu_ms = (after[i].cpu_s - before[i].cpu_s) * 1000.0;
      ops_server += ops;
      ops_max = std::max(ops_max, ops);
      ops_min = ops_min < 0 ? ops : std::min(ops_min, ops);
      const std::string& port = masters[i].port;
      m["ops_" + port] = static_cast<double>(ops);
      m["cpu_" + port + "_ms"] = cpu_ms;
      provenance["ops_" + port] = "server_counter";
      provenance["cpu_" + port + "_ms"] = "server_counter";
      std::sort(per_master[i].begin(), per_master[i].end());
      std::sort(tail_per_master[i].begin(), tail_per_master[i].end());
      per_node.push_back(
          {{"master", masters[i].addr},
           {"get_calls", ops},
           {"get_usec", after[i].get_usec - before[i].get_usec},
           {"cpu_ms", cpu_ms},
           {"sent_by_clients", sent[i]},
           {"hot_keys", std::count(w.hot_master.begin(), w.hot_master.end(), static_cast<int>(i))},
           {"client_p50_ms", QuantileWithHits(per_master[i], 0, 0.50)},
           {"client_p99_ms", QuantileWithHits(per_master[i], 0, 0.99)},
           {"tail_reads", tail_per_master[i].size()},
           {"tail_p99_ms", QuantileWithHits(tail_per_master[i], 0, 0.99)}});
    }
    std::int64_t reads_sent = 0;
    for (auto s : sent) reads_sent += s;
    if (ops_server < reads_sent) {
      return Inconclusive(std::move(result), "the masters counted " + std::to_string(ops_server) +
                                                 " GETs, fewer than the " +
                                                 std::to_string(reads_sent) +
                                                 " the clients sent: counters not comparable");
    }
    const std::set<int> hot_on(w.hot_master.begin(), w.hot_master.end());
    // A master that served no GET (hot_pct=100 without copies) counts as 1: the ratio is then a
    // lower bound.
    const double ratio =
        static_cast<double>(ops_max) / static_cast<double>(std::max<std::int64_t>(ops_min, 1));
    m["ops_server"] = static_cast<double>(ops_server);
    m["load_ratio"] = ratio;
    m["reads_sent"] = static_cast<double>(reads_sent);
    m["reads"] = static_cast<double>(reads_sent + cache_hits);
    m["cache_hits"] = static_cast<double>(cache_hits);
    m["p50_ms"] = QuantileWithHits(all, cache_hits, 0.50);
    m["p99_ms"] = QuantileWithHits(all, cache_hits, 0.99);
    m["p99_redis_ms"] = QuantileWithHits(all, 0, 0.99);
    m["hot_keys"] = static_cast<double>(w.hot.size());
    m["hot_masters"] = static_cast<double>(hot_on.size());
    m["load_ms"] = load_ms;
    result.details_json =
        Json({{"masters", per_node},
              {"hot_keys", Json(std::vector<std::string>(
                               w.hot.begin(), w.hot.begin() + std::min<long>(16, w.hot.size())))},
              {"tail_keys", w.tail.size()},
              {"zipf_exponent", kZipfExponent},
              {"value_bytes", {{"hot", w.hot_value.size()}, {"tail", kTailValueBytes}}},
              {"cache_ms", w.cache_ttl.count()},
              {"other_gets", ops_server - reads_sent},
              {"moved_redirects", moved},
              {"provenance", provenance},
              {"note",
               "ops_<port> = INFO commandstats cmdstat_get calls after - before the load on each "
               "master; other_gets = ops_server - reads_sent (traffic not from this load); "
               "p99_ms counts cache hits as 0 ms, p99_redis_ms only reads answered by Redis"}})
            .dump();
    Step(ctx, mode + ": load_ratio " + std::to_string(ratio) + ", ops_server " +
                  std::to_string(ops_server) + " (clients sent " + std::to_string(reads_sent) +
                  "), p99 " + std::to_string(m["p99_ms"]) + " ms, cache hits " +
                  std::to_string(cache_hits));
    Progress(ctx, 100);
    return result;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeHotKey(const StackConfig& config) {
  return std::make_unique<HotKey>(config);
}

}  // namespace lab::runners
