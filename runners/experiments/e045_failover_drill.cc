// E-045: a failover drill shows the unavailability window and what asynchronous replication
// loses, and WAIT tells the writer which writes are not yet safe.
// The drill, on the master M that owns slot 0 and its replica R, with real processes:
//   1. the writer writes kWarm keys (replicated);
//   2. R is paused (SIGSTOP) and the replication link cut (CLIENT KILL TYPE replica on M: what
//      R's kernel buffer already holds still reaches it, nothing after), then `writes` more keys
//      are acknowledged by M alone;
//   3. M is killed (SIGKILL) and R resumed; the cluster promotes R. The writer keeps writing
//      and times the window from its first failed write to the first acknowledged one;
//   4. every write is read back from the new master; then M is restarted (it rejoins as R's
//      replica) and takes its role back (CLUSTER FAILOVER), so the cluster is as it was.
//   failure: a write counts as durable once M acknowledged it.
//   success: only once `WAIT 1 kWaitMs` answers that a replica has it. practice=off: no WAIT.
// lost_durable counts writes the client counted as durable that the new master does not have.
#include <future>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/redis/cluster_admin.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
constexpr int kWarm = 20;
constexpr int kWaitMs = 10;
constexpr auto kWindowLimit = 40s;  // the cluster promotes within node-timeout (3 s) + election
constexpr auto kWindowPace = 20ms;

// The writer's account of one key.
struct Write {
  std::string key;
  std::string value;
  bool acked = false;
  bool durable = false;
};

class FailoverDrill final : public ExperimentBase {
 public:
  explicit FailoverDrill(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-045"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const bool wait = mode == "success" && domain::GetString(ctx.params, "practice") != "off";
    const int writes = static_cast<int>(domain::GetInt(ctx.params, "writes"));
    const std::string prefix = RedisPrefix(ctx, mode);

    auto baseline = RecordClusterTopology(ctx, mode, result);
    if (!baseline) return Inconclusive(std::move(result), baseline.error().message);
    auto pair = PickPair();
    if (!pair) return Inconclusive(std::move(result), pair.error().message);
    Created(ctx, mode, result, kArtifactClusterKeys, prefix);
    const std::string tag = TagOwnedBy(prefix, *pair);
    auto writer = OpenCluster(500ms);
    if (!writer) return Inconclusive(std::move(result), writer.error().message);
    Step(ctx, mode + ": master " + pair->master + ", replica " + pair->replica + "; writes " +
                  (wait ? "durable after WAIT 1 " + std::to_string(kWaitMs) + " ms"
                        : "durable once acknowledged"));

    Drill d;
    WriteMany(**writer, tag, "w", kWarm, wait, d.writes);
    if (auto s = CutReplica(ctx, mode, result, *pair, d); !s)
      return Inconclusive(std::move(result), s.error().message);
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    WriteMany(**writer, tag, "c", writes, wait, d.writes);
    Progress(ctx, 30);
    if (auto s = FailOver(ctx, mode, result, *pair, **writer, tag, wait, d); !s)
      return Inconclusive(std::move(result), s.error().message);
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    auto lost = ReadBack(d.writes);
    if (!lost) return Inconclusive(std::move(result), "read back: " + lost.error().message);
    d.restored = Restore(ctx, mode, *pair, *baseline);
    Report(ctx, mode, result, d, *lost, *pair, wait);
    Progress(ctx, 100);
    return result;
  }

 private:
  struct Pair {
    std::string master;  // "127.0.0.1:17001"
    std::string replica;
    int master_n = 0;  // infra/stack.sh cluster N
    int replica_n = 0;
    std::vector<std::pair<int, int>> ranges;  // the master's slots
    int slot = 0;                             // the drill's slot (one of them)
  };
  struct Drill {
    std::vector<Write> writes;
    std::int64_t links_cut = 0;
    bool master_killed = false;
    bool promoted = false;
    double window_ms = -1;
    std::int64_t window_failed = 0;
    std::string window_error;
    bool restored = false;
  };
  struct Loss {
    std::int64_t lost_acked = 0;
    std::int64_t lost_durable = 0;
    std::int64_t read = 0;
  };

  static int NodeNumber(const std::string& addr) {
    const int n = redis::SplitHostPort(addr).second - 17000;
    return n >= 1 && n <= 6 ? n : 0;
  }

  domain::Result<Pair> PickPair() const {
    const auto view = redis::ReadClusterView(config_.redis_cluster_seeds, 2000ms);
    for (const auto& m : view.nodes) {
      if (!m.master || m.slots.empty() || m.slots.front().first != 0) continue;
      for (const auto& r : view.nodes) {
        if (r.master || r.master_id != m.id) continue;
        Pair p{m.addr, r.addr, NodeNumber(m.addr), NodeNumber(r.addr), m.slots, 0};
        if (p.master_n == 0 || p.replica_n == 0) {
          return domain::MakeError(domain::ErrorCode::kInvalidArgument,
                                   "the drill kills nodes through infra/stack.sh, which runs "
                                   "the cluster on ports 17001-17006; found " +
                                       m.addr + " and " + r.addr);
        }
        return p;
      }
    }
    return domain::MakeError(domain::ErrorCode::kUnavailable,
                             "no master owning slot 0 with a replica");
  }

  // The run's keys share a {hash tag} whose slot the master owns.
  static std::string TagOwnedBy(const std::string& prefix, Pair& pair) {
    for (int i = 0; i < 100000; ++i) {
      const std::string tag = "{" + prefix + std::to_string(i) + "}";
      const int slot = redis::KeySlot(tag);
      for (const auto& [first, last] : pair.ranges) {
        if (slot < first || slot > last) continue;
        pair.slot = slot;
        return prefix + tag;
      }
    }
    return prefix;
  }

  static void WriteOne(redis::ClusterClient& c, Write& w, bool wait) {
    auto r = c.Command(w.key, {"SET", w.key, w.value});
    w.acked = r && !r->is_error();
    if (!w.acked) {
      (void)c.RefreshSlots();
      return;
    }
    if (!wait) {
      w.durable = true;
      return;
    }
    auto replicas = c.Command(w.key, {"WAIT", "1", std::to_string(kWaitMs)});
    w.durable = replicas && replicas->type == REDIS_REPLY_INTEGER && replicas->integer >= 1;
  }

  static void WriteMany(redis::ClusterClient& c, const std::string& tag, const std::string& kind,
                        int count, bool wait, std::vector<Write>& out) {
    for (int i = 0; i < count; ++i) {
      Write w{tag + ":" + kind + std::to_string(i), kind + std::to_string(i)};
      WriteOne(c, w, wait);
      out.push_back(std::move(w));
    }
  }

  domain::Status CutReplica(const domain::RunContext& ctx, const std::string& mode,
                            domain::ModeResult& result, const Pair& pair, Drill& d) const {
    if (auto s = ClusterFault(ctx, mode, result, "pause", pair.replica_n); !s) return s;
    redis::NodePool pool(2000ms);
    auto killed = pool.Run(pair.master, {"CLIENT", "KILL", "TYPE", "replica"});
    if (!killed) return killed.error();
    d.links_cut = killed->integer;
    Step(ctx, mode + ": replication link cut on " + pair.master + " (" +
                  std::to_string(d.links_cut) + " replica connection(s) closed)");
    return {};
  }

  // Kills the master, resumes the replica and writes until the cluster answers again.
  domain::Status FailOver(const domain::RunContext& ctx, const std::string& mode,
                          domain::ModeResult& result, const Pair& pair, redis::ClusterClient& c,
                          const std::string& tag, bool wait, Drill& d) const {
    if (auto s = ClusterFault(ctx, mode, result, "kill", pair.master_n); !s) return s;
    d.master_killed = true;
    // The resume waits until the replica sees cluster_state ok, i.e. until it is promoted.
    auto resumed = std::async(std::launch::async, [&] {
      return ClusterFault(ctx, mode, result, "resume", pair.replica_n);
    });
    const auto start = SteadyClock::now();
    std::optional<SteadyClock::time_point> first_failure;
    for (int i = 0; SteadyClock::now() - start < kWindowLimit && !ctx.stop.stop_requested(); ++i) {
      Write w{tag + ":u" + std::to_string(i), "u" + std::to_string(i)};
      WriteOne(c, w, wait);
      const bool ok = w.acked;
      d.writes.push_back(std::move(w));
      if (!ok) {
        ++d.window_failed;
        if (!first_failure) first_failure = SteadyClock::now();
      } else if (first_failure) {
        d.window_ms = MsSince(*first_failure);
        break;
      }
      SleepFor(kWindowPace, ctx.stop);
    }
    auto s = resumed.get();
    if (!s) return s;
    redis::NodePool pool(2000ms);
    auto role = pool.Run(pair.replica, {"ROLE"});
    d.promoted = role && !role->elements.empty() && role->elements[0].str == "master";
    Step(ctx, mode + ": " + pair.replica + (d.promoted ? " promoted" : " NOT promoted") +
                  "; writes failed for " + std::to_string(static_cast<int>(d.window_ms)) + " ms (" +
                  std::to_string(d.window_failed) + " failed writes)");
    return {};
  }

  domain::Result<Loss> ReadBack(const std::vector<Write>& writes) const {
    auto c = OpenCluster();
    if (!c) return c.error();
    Loss loss;
    for (const auto& w : writes) {
      if (!w.acked) continue;
      auto r = (*c)->Command(w.key, {"GET", w.key});
      if (!r) return r.error();
      if (r->is_error())
        return domain::MakeError(domain::ErrorCode::kInternal, "GET " + w.key + ": " + r->str);
      ++loss.read;
      if (r->is_nil() || r->str != w.value) {
        ++loss.lost_acked;
        if (w.durable) ++loss.lost_durable;
      }
    }
    return loss;
  }

  // The old master back as a process, then in its role.
  bool Restore(const domain::RunContext& ctx, const std::string& mode, const Pair& pair,
               const std::string& baseline) const {
    if (auto s = StackFault(ctx, {"cluster", "start", std::to_string(pair.master_n)}, 60s); !s) {
      Step(ctx, mode + ": restart of " + pair.master + " failed: " + s.error().message);
      return false;
    }
    auto s = redis::RestoreTopology(config_.redis_cluster_seeds, baseline, 60s,
                                    [&](const std::string& m) { Step(ctx, mode + ": " + m); });
    if (!s) Step(ctx, mode + ": " + s.error().message);
    return s.ok();
  }

  void Report(const domain::RunContext& ctx, const std::string& mode, domain::ModeResult& result,
              const Drill& d, const Loss& loss, const Pair& pair, bool wait) const {
    std::int64_t acked = 0, durable = 0;
    for (const auto& w : d.writes) {
      acked += w.acked ? 1 : 0;
      durable += w.durable ? 1 : 0;
    }
    auto& m = result.metrics;
    m["writes_attempted"] = static_cast<double>(d.writes.size());
    m["acked"] = static_cast<double>(acked);
    m["acked_durable"] = static_cast<double>(durable);
    m["not_durable"] = static_cast<double>(acked - durable);
    m["read_back"] = static_cast<double>(loss.read);
    m["lost_acked"] = static_cast<double>(loss.lost_acked);
    m["lost_durable"] = static_cast<double>(loss.lost_durable);
    m["replica_links_cut"] = static_cast<double>(d.links_cut);
    m["master_killed"] = d.master_killed ? 1 : 0;
    m["promoted"] = d.promoted ? 1 : 0;
    m["unavailability_ms"] = d.window_ms;
    m["failed_writes_in_window"] = static_cast<double>(d.window_failed);
    m["roles_restored"] = d.restored ? 1 : 0;
    Json details = {
        {"master", pair.master},
        {"replica", pair.replica},
        {"slot", pair.slot},
        {"durability", wait ? "WAIT 1 " + std::to_string(kWaitMs) + " ms" : "acknowledged"},
        {"provenance",
         {{"writes_attempted", "self_reported"},
          {"acked", "self_reported"},
          {"acked_durable", "self_reported"},
          {"not_durable", "server_counter"},  // WAIT's answer: replicas that have the write
          {"read_back", "read_back"},
          {"lost_acked", "read_back"},
          {"lost_durable", "read_back"},
          {"replica_links_cut", "server_counter"},  // CLIENT KILL's answer
          {"master_killed", "server_counter"},      // infra/stack.sh waited for the pid to end
          {"promoted", "server_counter"},           // ROLE on the replica
          {"unavailability_ms", "self_reported"},
          {"failed_writes_in_window", "self_reported"},
          {"roles_restored", "read_back"}}}};
    result.details_json = details.dump();
    Step(ctx,
         mode + ": " + std::to_string(acked) + " writes acknowledged, " + std::to_string(durable) +
             " counted durable; read back from the new master: " + std::to_string(loss.lost_acked) +
             " acknowledged and " + std::to_string(loss.lost_durable) + " durable writes lost");
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeFailoverDrill(const StackConfig& config) {
  return std::make_unique<FailoverDrill>(config);
}

}  // namespace lab::runners
