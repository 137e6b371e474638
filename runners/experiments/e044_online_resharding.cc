// E-044: online resharding under load is safe for a cluster-aware client, and breaks a client
// that treats redirections as errors.
// The run takes `slots` slots of one master (the source) and fills them with `keys` keys; client
// threads write (SET, value "<client>:<seq>") and read (GET) their own share of those keys while
// the slots migrate to another master (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE in small
// batches, SETSLOT NODE on every master) and then back. Between batches a slot is split: a key
// already moved answers ASK on the source; once a slot is assigned, the old owner answers MOVED.
//   failure: a naive client: a slot map fixed at start, one connection per master; ASK and MOVED
//            are errors it reports (as code written against a client without cluster support).
//   success: redis::ClusterClient (ASKING on ASK, MOVED updates its map). practice=off: the
//            naive client here too.
// Evidence: the migration's own steps (slots, keys moved: MIGRATE answers) prove the fault;
// ask/moved seen by the client and the masters' errorstat_ASK/MOVED deltas (server counters);
// client errors; latency before vs during; every key read back after both moves and compared
// with the last value the server acknowledged to its writer (a write whose outcome is unknown,
// an I/O failure, allows either value).
#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/redis/cluster_admin.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
constexpr int kBatch = 10;              // keys per MIGRATE: small, so slots stay split a while
constexpr auto kBetweenBatches = 10ms;  // clients run between batches
constexpr auto kBeforeLoad = 1000ms;    // load before the first move (the p99 baseline)

enum Phase { kBefore = 0, kDuring = 1, kAfter = 2 };

// What one client thread saw.
struct ClientTally {
  std::int64_t ops = 0;
  std::int64_t errors = 0;  // error answers (ASK/MOVED for the naive client) and I/O failures
  std::int64_t ask = 0;
  std::int64_t moved = 0;
  std::vector<double> latency[3];  // per Phase, ms
  std::string first_error;
  // key -> the last acknowledged value, and a value whose write's outcome is unknown.
  std::map<std::string, std::string> acked;
  std::map<std::string, std::string> unknown;
};

// A client without cluster support: the slot map of the start, redirections are errors.
class NaiveClient {
 public:
  NaiveClient(std::vector<std::string> owner, std::chrono::milliseconds timeout)
      : owner_(std::move(owner)), pool_(timeout) {}
  redis::Result<redis::Reply> Command(const std::string& key,
                                      const std::vector<std::string>& argv) {
    auto conn = pool_.Get(owner_[static_cast<size_t>(redis::KeySlot(key))]);
    if (!conn) return conn.error();
    return (*conn)->Command(argv);
  }

 private:
  std::vector<std::string> owner_;
  redis::NodePool pool_;
};

class OnlineResharding final : public ExperimentBase {
 public:
  explicit OnlineResharding(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-044"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const bool aware = mode == "success" && domain::GetString(ctx.params, "practice") != "off";
    const int slots = static_cast<int>(domain::GetInt(ctx.params, "slots"));
    const int keys = static_cast<int>(domain::GetInt(ctx.params, "keys"));
    const int clients = static_cast<int>(domain::GetInt(ctx.params, "clients"));
    const std::string prefix = RedisPrefix(ctx, mode);

    auto baseline = RecordClusterTopology(ctx, mode, result);
    if (!baseline) return Inconclusive(std::move(result), baseline.error().message);
    auto plan = PlanMove(slots);
    if (!plan) return Inconclusive(std::move(result), plan.error().message);
    Created(ctx, mode, result, kArtifactClusterKeys, prefix);
    auto names = KeysInSlots(prefix, plan->slots, keys);
    if (auto s = Fill(names); !s)
      return Inconclusive(std::move(result), "fill: " + s.error().message);
    Step(ctx, mode + ": " + std::to_string(names.size()) + " keys in " + std::to_string(slots) +
                  " slots of " + plan->source +
                  "; clients: " + (aware ? "cluster-aware" : "naive (ASK/MOVED are errors)"));
    const auto errors_before = RedirectCounters(plan->nodes);
    if (!errors_before) return Inconclusive(std::move(result), errors_before.error().message);

    // The load runs through both moves; the phase tags each latency.
    std::atomic<int> phase{kBefore};
    std::atomic<bool> done{false};
    std::vector<ClientTally> tallies(static_cast<size_t>(clients));
    std::vector<std::jthread> threads;
    for (int c = 0; c < clients; ++c) {
      std::vector<std::string> mine;
      for (size_t i = static_cast<size_t>(c); i < names.size(); i += static_cast<size_t>(clients))
        mine.push_back(names[i]);
      threads.emplace_back([&, c, mine = std::move(mine)] {
        RunClient(c, mine, aware, plan->owner, phase, done, tallies[static_cast<size_t>(c)]);
      });
    }
    SleepFor(kBeforeLoad, ctx.stop);
    phase = kDuring;
    Moves moves;
    auto moved = MoveSlots(ctx, mode, *plan, plan->source, plan->target, moves.forward);
    if (moved) moved = MoveSlots(ctx, mode, *plan, plan->target, plan->source, moves.back);
    phase = kAfter;
    SleepFor(300ms, ctx.stop);
    done = true;
    threads.clear();
    if (!moved) return Inconclusive(std::move(result), moved.error().message);
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    Progress(ctx, 80);

    const auto errors_after = RedirectCounters(plan->nodes);
    if (!errors_after) return Inconclusive(std::move(result), errors_after.error().message);
    auto lost = CountLost(names, tallies);
    if (!lost) return Inconclusive(std::move(result), "read back: " + lost.error().message);
    const auto view = redis::ReadClusterView(config_.redis_cluster_seeds, 2000ms);
    Report(ctx, mode, result, tallies, moves, *lost, errors_after->first - errors_before->first,
           errors_after->second - errors_before->second,
           view.topology == *baseline && view.problems.empty(), aware);
    Progress(ctx, 100);
    return result;
  }

 private:
  struct Plan {
    std::vector<redis::ClusterNode> nodes;
    std::vector<std::string> owner;  // the slot map at the start
    std::string source;
    std::string target;
    std::vector<int> slots;
  };
  struct MoveTally {
    int slots = 0;
    std::int64_t keys = 0;
  };
  struct Moves {
    MoveTally forward;
    MoveTally back;
  };

  // The first `slots` slots of the master that owns slot 0, to the next master.
  domain::Result<Plan> PlanMove(int slots) const {
    Plan plan;
    const auto view = redis::ReadClusterView(config_.redis_cluster_seeds, 2000ms);
    plan.nodes = view.nodes;
    plan.owner.resize(16384);
    std::vector<std::string> masters;
    for (const auto& n : plan.nodes) {
      if (!n.master || n.slots.empty()) continue;
      masters.push_back(n.addr);
      for (const auto& [a, b] : n.slots)
        for (int s = a; s <= b; ++s) plan.owner[static_cast<size_t>(s)] = n.addr;
    }
    if (masters.size() < 2)
      return domain::MakeError(domain::ErrorCode::kUnavailable, "fewer than 2 masters own slots");
    plan.source = plan.owner[0];
    std::sort(masters.begin(), masters.end());
    auto it = std::find(masters.begin(), masters.end(), plan.source);
    plan.target = (it + 1 == masters.end()) ? masters.front() : *(it + 1);
    for (int s = 0; s < 16384 && static_cast<int>(plan.slots.size()) < slots; ++s)
      if (plan.owner[static_cast<size_t>(s)] == plan.source) plan.slots.push_back(s);
    return plan;
  }

  // `count` key names whose slots are in `slots` (found by trying names in order).
  static std::vector<std::string> KeysInSlots(const std::string& prefix,
                                              const std::vector<int>& slots, int count) {
    std::vector<bool> wanted(16384, false);
    for (int s : slots) wanted[static_cast<size_t>(s)] = true;
    std::vector<std::string> names;
    for (std::int64_t i = 0; static_cast<int>(names.size()) < count && i < 100'000'000; ++i) {
      std::string key = prefix + "k" + std::to_string(i);
      if (wanted[static_cast<size_t>(redis::KeySlot(key))]) names.push_back(std::move(key));
    }
    return names;
  }

  domain::Status Fill(const std::vector<std::string>& names) const {
    auto client = OpenCluster();
    if (!client) return client.error();
    for (const auto& k : names) {
      auto r = (*client)->Command(k, {"SET", k, "init"});
      if (!r) return r.error();
      if (r->is_error())
        return domain::MakeError(domain::ErrorCode::kInternal, "SET " + k + ": " + r->str);
    }
    return {};
  }

  // Summed over the masters: errorstat_ASK and errorstat_MOVED (INFO errorstats).
  domain::Result<std::pair<std::int64_t, std::int64_t>> RedirectCounters(
      const std::vector<redis::ClusterNode>& nodes) const {
    redis::NodePool pool(2000ms);
    std::pair<std::int64_t, std::int64_t> sum{0, 0};
    for (const auto& n : nodes) {
      if (!n.master) continue;
      auto info = pool.Run(n.addr, {"INFO", "errorstats"});
      if (!info) return info.error();
      sum.first += redis::ErrorStat(info->str, "ASK");
      sum.second += redis::ErrorStat(info->str, "MOVED");
    }
    return sum;
  }

  void RunClient(int id, const std::vector<std::string>& mine, bool aware,
                 const std::vector<std::string>& owner, const std::atomic<int>& phase,
                 const std::atomic<bool>& done, ClientTally& t) const {
    std::unique_ptr<redis::ClusterClient> cluster;
    std::unique_ptr<NaiveClient> naive;
    if (aware) {
      auto c = OpenCluster(1000ms);
      if (!c) {
        t.errors = 1;
        t.first_error = c.error().message;
        return;
      }
      cluster = std::move(*c);
    } else {
      naive = std::make_unique<NaiveClient>(owner, 1000ms);
    }
    std::mt19937 rng(static_cast<unsigned>(id) * 7919u + 1u);
    std::int64_t seq = 0;
    while (!done && !mine.empty() && seq < 10'000'000) {
      const std::string& key = mine[rng() % mine.size()];
      const bool write = (seq % 2) == 0;
      const std::string value = std::to_string(id) + ":" + std::to_string(seq++);
      std::vector<std::string> argv = write ? std::vector<std::string>{"SET", key, value}
                                            : std::vector<std::string>{"GET", key};
      const auto start = SteadyClock::now();
      auto r = aware ? cluster->Command(key, argv) : naive->Command(key, argv);
      t.latency[phase.load()].push_back(MsSince(start));
      ++t.ops;
      if (!r) {
        ++t.errors;
        if (t.first_error.empty()) t.first_error = r.error().message;
        if (write) t.unknown[key] = value;
        continue;
      }
      if (r->is_error()) {
        ++t.errors;
        if (r->str.rfind("ASK ", 0) == 0) ++t.ask;
        if (r->str.rfind("MOVED ", 0) == 0) ++t.moved;
        if (t.first_error.empty()) t.first_error = r->str;
        continue;
      }
      if (write) {
        t.acked[key] = value;
        t.unknown.erase(key);
      }
    }
    if (aware) {
      t.ask = cluster->asked();
      t.moved = cluster->moved();
    }
  }

  // Every slot of the plan from `from` to `to`, in batches, with the load running.
  domain::Status MoveSlots(const domain::RunContext& ctx, const std::string& mode, const Plan& plan,
                           const std::string& from, const std::string& to, MoveTally& tally) const {
    redis::NodePool pool(5000ms);
    Step(ctx, mode + ": migrating " + std::to_string(plan.slots.size()) + " slots " + from +
                  " -> " + to);
    for (int slot : plan.slots) {
      if (ctx.stop.stop_requested()) return {};
      redis::SlotMigration m(pool, plan.nodes, slot, from, to);
      if (auto s = m.Begin(); !s) return s;
      for (int i = 0; i < 1'000'000; ++i) {
        // A stop leaves the slot half-migrated; cleanup closes it (redis::RestoreTopology).
        if (ctx.stop.stop_requested()) return {};
        auto moved = m.MoveKeys(kBatch);
        if (!moved) return moved.error();
        if (*moved == 0) break;
        tally.keys += *moved;
        SleepFor(kBetweenBatches, ctx.stop);
      }
      if (auto s = m.Finish(); !s) return s;
      ++tally.slots;
    }
    Step(ctx, mode + ": " + std::to_string(tally.slots) + " slots (" + std::to_string(tally.keys) +
                  " keys) now on " + to);
    return {};
  }

  struct ReadBack {
    std::int64_t read = 0;
    std::int64_t lost = 0;  // missing, or neither the last acknowledged nor an unknown write
    std::string example;
  };

  domain::Result<ReadBack> CountLost(const std::vector<std::string>& names,
                                     const std::vector<ClientTally>& tallies) const {
    auto client = OpenCluster();
    if (!client) return client.error();
    std::map<std::string, std::pair<std::string, std::string>> expect;  // acked, unknown
    for (const auto& t : tallies) {
      for (const auto& [k, v] : t.acked) expect[k].first = v;
      for (const auto& [k, v] : t.unknown) expect[k].second = v;
    }
    ReadBack rb;
    for (const auto& k : names) {
      auto r = (*client)->Command(k, {"GET", k});
      if (!r) return r.error();
      if (r->is_error())
        return domain::MakeError(domain::ErrorCode::kInternal, "GET " + k + ": " + r->str);
      ++rb.read;
      const auto it = expect.find(k);
      const std::string acked =
          it == expect.end() || it->second.first.empty() ? "init" : it->second.first;
      const std::string unknown = it == expect.end() ? "" : it->second.second;
      if (r->is_nil() || (r->str != acked && (unknown.empty() || r->str != unknown))) {
        ++rb.lost;
        if (rb.example.empty())
          rb.example = k + " = " + (r->is_nil() ? "(nil)" : r->str) + ", expected " + acked;
      }
    }
    return rb;
  }

  void Report(const domain::RunContext& ctx, const std::string& mode, domain::ModeResult& result,
              const std::vector<ClientTally>& tallies, const Moves& moves, const ReadBack& rb,
              std::int64_t ask_server, std::int64_t moved_server, bool restored, bool aware) const {
    ClientTally sum;
    std::string first_error;
    for (const auto& t : tallies) {
      sum.ops += t.ops;
      sum.errors += t.errors;
      sum.ask += t.ask;
      sum.moved += t.moved;
      for (int p = 0; p < 3; ++p)
        sum.latency[p].insert(sum.latency[p].end(), t.latency[p].begin(), t.latency[p].end());
      if (first_error.empty()) first_error = t.first_error;
    }
    auto& m = result.metrics;
    m["slots_migrated"] = moves.forward.slots;
    m["keys_migrated"] = static_cast<double>(moves.forward.keys);
    m["slots_moved_back"] = moves.back.slots;
    m["topology_restored"] = restored ? 1 : 0;
    m["ops"] = static_cast<double>(sum.ops);
    m["client_errors"] = static_cast<double>(sum.errors);
    m["ask_client"] = static_cast<double>(sum.ask);
    m["moved_client"] = static_cast<double>(sum.moved);
    m["ask_server"] = static_cast<double>(ask_server);
    m["moved_server"] = static_cast<double>(moved_server);
    m["p99_before_ms"] = Percentile(sum.latency[kBefore], 0.99);
    m["p99_during_ms"] = Percentile(sum.latency[kDuring], 0.99);
    m["keys_read_back"] = static_cast<double>(rb.read);
    m["keys_lost"] = static_cast<double>(rb.lost);
    Json details = {
        {"client", aware ? "cluster-aware (ASKING, MOVED refreshes)" : "naive (fixed slot map)"},
        {"first_client_error", first_error},
        {"lost_example", rb.example},
        {"ops_before", sum.latency[kBefore].size()},
        {"ops_during", sum.latency[kDuring].size()},
        {"p50_before_ms", Percentile(sum.latency[kBefore], 0.5)},
        {"p50_during_ms", Percentile(sum.latency[kDuring], 0.5)},
        {"keys_moved_back", moves.back.keys},
        {"provenance",
         {{"slots_migrated", "server_counter"},  // each one a CLUSTER SETSLOT NODE answered OK
          {"keys_migrated", "server_counter"},   // MIGRATE answers
          {"slots_moved_back", "server_counter"},
          {"topology_restored", "read_back"},
          {"ops", "self_reported"},
          {"client_errors", "self_reported"},
          {"ask_client", "self_reported"},
          {"moved_client", "self_reported"},
          {"ask_server", "server_counter"},
          {"moved_server", "server_counter"},
          {"p99_before_ms", "self_reported"},
          {"p99_during_ms", "self_reported"},
          {"keys_read_back", "read_back"},
          {"keys_lost", "read_back"}}}};
    result.details_json = details.dump();
    Step(ctx, mode + ": " + std::to_string(sum.ops) + " ops, " + std::to_string(sum.errors) +
                  " client errors (" + std::to_string(sum.ask) + " ASK, " +
                  std::to_string(sum.moved) + " MOVED seen); masters answered " +
                  std::to_string(ask_server) + " ASK and " + std::to_string(moved_server) +
                  " MOVED; " + std::to_string(rb.lost) + " of " + std::to_string(rb.read) +
                  " keys lost");
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeOnlineResharding(const StackConfig& config) {
  return std::make_unique<OnlineResharding>(config);
}

}  // namespace lab::runners
