// E-010: Redis Cluster runs a multi-key operation only when every key of it hashes to one slot.
// Each round runs five multi-key operations over `keys` fresh keys through a slot-routing client
// (redis::ClusterClient: routes by the slot of the first key, follows MOVED/ASK):
//   MSET; MGET; MULTI + one SET per key + EXEC, pinned to the node the client believes owns the
//   first key (a transaction lives on one connection); EVAL of a script that SETs every key in
//   KEYS; a multi-key DEL.
// After the writes and again after the DEL, a second client (correct map) reads every key back one
// by one (GET, then EXISTS) and compares with what the operations that succeeded wrote: a key
// holding a value of an operation that answered an error is a partial write.
//   failure: plain keys (each in its own slot, spread over the masters): the cluster answers
//            CROSSSLOT (MSET, MGET, DEL, EVAL, EXEC over two slots of one node) or MOVED (a SET
//            queued on a node that does not own its key; EXEC then answers EXECABORT).
//   success: the keys of a round share a {hash tag}; then a client whose slot map is made stale
//            (every slot the phase uses pointed at another master) runs the same rounds and has to
//            follow MOVED. practice=off: plain keys in both phases.
// INFO errorstats on every master, read before and after, are the server's own count of
// CROSSSLOT, MOVED and every other error reply; they must equal what the clients received.
#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/redis/cluster_admin.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using ErrorCounts = std::map<std::string, std::int64_t>;
constexpr auto kTimeout = 2000ms;

// SETs every declared key to ARGV[1] .. its 0-based index.
constexpr const char* kLuaSetAll =
    "for i, k in ipairs(KEYS) do redis.call('SET', k, ARGV[1] .. (i - 1)) end return #KEYS";

// The kind of an error reply as INFO errorstats names it: its first word.
std::string ErrorKind(const std::string& error) { return error.substr(0, error.find(' ')); }

// Redirects are routing, not failures: the other kinds are the errors an application sees.
std::int64_t NonRedirects(const ErrorCounts& counts) {
  std::int64_t n = 0;
  for (const auto& [kind, count] : counts) n += kind == "MOVED" || kind == "ASK" ? 0 : count;
  return n;
}

std::int64_t CountOf(const ErrorCounts& counts, const std::string& kind) {
  auto it = counts.find(kind);
  return it == counts.end() ? 0 : it->second;
}

// errorstat_<kind> counts summed over `masters` (INFO errorstats).
domain::Result<ErrorCounts> ReadErrorStats(redis::NodePool& pool,
                                           const std::vector<std::string>& masters) {
  ErrorCounts sum;
  for (const auto& master : masters) {
    auto info = pool.Run(master, {"INFO", "errorstats"});
    if (!info) return info.error();
    std::istringstream lines(info->str);
    std::string line;
    while (std::getline(lines, line)) {
      const auto colon = line.find(':');
      if (line.rfind("errorstat_", 0) != 0 || colon == std::string::npos) continue;
      const std::string kind = line.substr(10, colon - 10);
      sum[kind] += redis::ErrorStat(info->str, kind);
    }
  }
  return sum;
}

ErrorCounts Delta(const ErrorCounts& before, const ErrorCounts& after) {
  ErrorCounts delta;
  for (const auto& [kind, count] : after) {
    const std::int64_t d = count - CountOf(before, kind);
    if (d != 0) delta[kind] = d;
  }
  return delta;
}

Json ToJson(const ErrorCounts& counts) {
  Json j = Json::object();
  for (const auto& [kind, count] : counts) j[kind] = count;
  return j;
}

// Keys matching `pattern`, counted by SCAN on every master (a read-back of what is stored).
domain::Result<std::int64_t> CountKeys(redis::NodePool& pool,
                                       const std::vector<std::string>& masters,
                                       const std::string& pattern) {
  std::int64_t n = 0;
  for (const auto& master : masters) {
    std::string cursor = "0";
    for (int i = 0; i < 100000; ++i) {  // bounded: 100M keys at COUNT 1000
      auto reply = pool.Run(master, {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
      if (!reply) return reply.error();
      if (reply->elements.size() != 2)
        return domain::MakeError(domain::ErrorCode::kInternal, "SCAN on " + master + ": no cursor");
      cursor = reply->elements[0].str;
      n += static_cast<std::int64_t>(reply->elements[1].elements.size());
      if (cursor == "0") break;
    }
  }
  return n;
}

// What the rounds of one phase observed.
struct Tally {
  std::int64_t ops = 0;
  std::int64_t ops_failed = 0;
  ErrorCounts replies;  // error replies the code received, by kind (redirects it saw included)
  std::int64_t reads = 0;
  std::int64_t values_mismatched = 0;
  std::int64_t partial_writes = 0;
  std::int64_t mget_mismatched = 0;
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> by_op;  // ok, failed
  std::map<std::string, std::string> first_error;                      // by operation
  Json first_transaction = Json::array();  // the answers to the first transaction's commands
};

// The keys of round `round`: plain (one slot each) or sharing the hash tag {r<round>}.
std::vector<std::string> KeysOf(const std::string& stem, int round, int count, bool tagged) {
  std::vector<std::string> keys;
  for (int i = 0; i < count; ++i) {
    const std::string r = std::to_string(round);
    keys.push_back(tagged ? stem + "{r" + r + "}:k" + std::to_string(i)
                          : stem + "r" + r + ":k" + std::to_string(i));
  }
  return keys;
}

// The five operations of a round on `client`, read back through `reader`.
class Rounds {
 public:
  Rounds(redis::ClusterClient& client, redis::ClusterClient& reader, Tally& tally)
      : client_(client), reader_(reader), t_(tally) {}

  domain::Status Run(const std::vector<std::string>& keys, int round) {
    expected_.clear();
    failed_values_.clear();
    for (const auto& k : keys) expected_[k] = std::nullopt;
    const std::string r = "r" + std::to_string(round) + "-";
    const std::string& first = keys.front();
    const auto n = static_cast<std::int64_t>(keys.size());

    std::vector<std::string> mset = {"MSET"};
    for (std::size_t i = 0; i < keys.size(); ++i) {
      mset.push_back(keys[i]);
      mset.push_back(r + "mset-" + std::to_string(i));
    }
    auto set = client_.Command(first, mset);
    if (!set) return set.error();
    Note(*set);
    Wrote(keys, r + "mset-", Finish("MSET", *set, !set->is_error()));

    std::vector<std::string> mget = {"MGET"};
    mget.insert(mget.end(), keys.begin(), keys.end());
    auto got = client_.Command(first, mget);
    if (!got) return got.error();
    const bool got_ok = !got->is_error() && static_cast<std::int64_t>(got->elements.size()) == n;
    Note(*got);
    Finish("MGET", *got, got_ok);
    for (std::size_t i = 0; got_ok && i < keys.size(); ++i) {
      const auto& e = got->elements[i];
      if ((e.is_nil() ? std::nullopt : std::optional<std::string>(e.str)) != expected_[keys[i]])
        ++t_.mget_mismatched;
    }

    auto tx = Transaction(keys, r + "tx-");
    if (!tx) return tx.error();
    Wrote(keys, r + "tx-", *tx);

    std::vector<std::string> eval = {"EVAL", kLuaSetAll, std::to_string(n)};
    eval.insert(eval.end(), keys.begin(), keys.end());
    eval.push_back(r + "lua-");
    auto lua = client_.Command(first, eval);
    if (!lua) return lua.error();
    Note(*lua);
    Wrote(keys, r + "lua-", Finish("EVAL", *lua, !lua->is_error() && lua->integer == n));

    if (auto s = ReadBack(keys, false); !s) return s;

    std::vector<std::string> del = {"DEL"};
    del.insert(del.end(), keys.begin(), keys.end());
    auto gone = client_.Command(first, del);
    if (!gone) return gone.error();
    Note(*gone);
    if (Finish("DEL", *gone, !gone->is_error())) {
      for (const auto& k : keys) expected_[k] = std::nullopt;
    }
    return ReadBack(keys, true);
  }

 private:
  // Counts the operation whose last answer was `reply`; returns `ok`.
  bool Finish(const std::string& op, const redis::Reply& reply, bool ok) {
    ++t_.ops;
    auto& [okays, failed] = t_.by_op[op];
    if (ok) {
      ++okays;
      return true;
    }
    ++failed;
    ++t_.ops_failed;
    if (!t_.first_error.count(op))
      t_.first_error[op] = reply.is_error() ? reply.str : "unexpected reply";
    return false;
  }

  // Counts an error reply by kind (each reply once).
  void Note(const redis::Reply& reply) {
    if (reply.is_error()) ++t_.replies[ErrorKind(reply.str)];
  }

  // What a write operation means for each key: its values when it succeeded, else values that
  // must never be read back.
  void Wrote(const std::vector<std::string>& keys, const std::string& stem, bool ok) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const std::string value = stem + std::to_string(i);
      if (ok) {
        expected_[keys[i]] = value;
      } else {
        failed_values_.insert(value);
      }
    }
  }

  // MULTI, one SET per key, EXEC on the node the client believes owns the first key's slot (the
  // MSET before it has corrected a stale map for that slot, as a cluster client's first command on
  // a slot does). A transaction is never redirected command by command: that would run the SETs
  // outside it.
  domain::Result<bool> Transaction(const std::vector<std::string>& keys, const std::string& stem) {
    const std::string node = client_.SlotOwner(redis::KeySlot(keys.front()));
    if (node.empty())
      return domain::MakeError(domain::ErrorCode::kUnavailable, "no owner for " + keys.front());
    const bool record = t_.first_transaction.empty();
    std::optional<redis::Reply> last;
    auto run = [&](const std::vector<std::string>& argv) -> domain::Status {
      auto reply = client_.CommandOn(node, argv);
      if (!reply) return reply.error();
      Note(*reply);
      if (record) {
        std::string answer = reply->str;
        if (reply->type == REDIS_REPLY_ARRAY)
          answer = "array of " + std::to_string(reply->elements.size());
        t_.first_transaction.push_back(
            {{"sent", argv[0] + (argv.size() > 1 ? " " + argv[1] : "") + " @" + node},
             {"answer", answer}});
      }
      last = std::move(*reply);
      return {};
    };
    if (auto s = run({"MULTI"}); !s) return s.error();
    if (last->is_error()) return Finish("MULTI/EXEC", *last, false);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (auto s = run({"SET", keys[i], stem + std::to_string(i)}); !s) return s.error();
    }
    if (auto s = run({"EXEC"}); !s) return s.error();
    const bool ok = !last->is_error() && last->type == REDIS_REPLY_ARRAY &&
                    last->elements.size() == keys.size();
    return Finish("MULTI/EXEC", *last, ok);
  }

  // Every key read back one by one: GET (after the writes) or EXISTS (after the DEL).
  domain::Status ReadBack(const std::vector<std::string>& keys, bool after_del) {
    for (const auto& k : keys) {
      auto reply = reader_.Command(k, {after_del ? "EXISTS" : "GET", k});
      if (!reply) return reply.error();
      if (reply->is_error())
        return domain::MakeError(domain::ErrorCode::kInternal,
                                 "read back of " + k + ": " + reply->str);
      ++t_.reads;
      const auto& want = expected_[k];
      if (after_del) {
        if ((reply->integer == 1) != want.has_value()) ++t_.values_mismatched;
        continue;
      }
      const std::optional<std::string> got =
          reply->is_nil() ? std::nullopt : std::optional<std::string>(reply->str);
      if (got != want) ++t_.values_mismatched;
      if (got && (!want || failed_values_.count(*got))) ++t_.partial_writes;
    }
    return {};
  }

  redis::ClusterClient& client_;
  redis::ClusterClient& reader_;
  Tally& t_;
  std::map<std::string, std::optional<std::string>> expected_;
  std::set<std::string> failed_values_;
};

Json TallyJson(const Tally& t) {
  Json ops = Json::object();
  for (const auto& [op, counts] : t.by_op) {
    ops[op] = {{"ok", counts.first}, {"failed", counts.second}};
    if (auto it = t.first_error.find(op); it != t.first_error.end())
      ops[op]["first_error"] = it->second;
  }
  return {{"ops", t.ops},
          {"ops_failed", t.ops_failed},
          {"error_replies_by_kind", ToJson(t.replies)},
          {"reads", t.reads},
          {"values_mismatched", t.values_mismatched},
          {"partial_writes", t.partial_writes},
          {"mget_mismatched", t.mget_mismatched},
          {"by_operation", ops},
          {"first_transaction", t.first_transaction}};
}

class ClusterMultiKey final : public ExperimentBase {
 public:
  explicit ClusterMultiKey(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-010"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::string prefix = RedisPrefix(ctx, mode);
    const bool practice = domain::GetString(ctx.params, "practice") != "off";
    const bool tagged = mode == "success" && practice;
    const int keys = static_cast<int>(domain::GetInt(ctx.params, "keys"));
    const int rounds = static_cast<int>(domain::GetInt(ctx.params, "rounds"));
    const auto started = SteadyClock::now();

    const auto view = redis::ReadSettledClusterView(config_.redis_cluster_seeds, kTimeout,
                                                    std::chrono::seconds(20));
    const std::vector<std::string> masters = redis::ServingMasters(view.nodes);
    if (!view.problems.empty() || masters.size() < 2)
      return Inconclusive(std::move(result),
                          "redis cluster not healthy: " +
                              (view.problems.empty() ? "fewer than 2 masters" : view.problems));
    Created(ctx, mode, result, kArtifactClusterKeys, prefix);
    auto client = OpenCluster(kTimeout);
    if (!client) return Inconclusive(std::move(result), "redis cluster: " + client.error().message);
    auto reader = OpenCluster(kTimeout);
    if (!reader) return Inconclusive(std::move(result), "redis cluster: " + reader.error().message);
    redis::NodePool pool(kTimeout);
    auto before = ReadErrorStats(pool, masters);
    if (!before)
      return Inconclusive(std::move(result), "INFO errorstats: " + before.error().message);

    Step(ctx, mode + ": " + std::to_string(rounds) +
                  " rounds of MSET, MGET, MULTI/EXEC, EVAL, DEL over " + std::to_string(keys) +
                  (tagged ? " hash-tagged keys" : " plain keys") + " each");
    Tally fresh;
    if (auto s = RunRounds(ctx, **client, **reader, prefix, keys, rounds, tagged, fresh, 0,
                           mode == "failure" ? 100 : 50);
        !s)
      return Inconclusive(std::move(result), s.error().message);
    const std::int64_t fresh_moved = (*client)->moved();

    // The stale map: a new client, every slot of the phase pointed at a master that does not own
    // it.
    Tally stale;
    std::int64_t stale_slots = 0;
    std::int64_t stale_moved = 0;
    std::optional<ErrorCounts> middle;
    if (mode == "success") {
      auto m = ReadErrorStats(pool, masters);
      if (!m) return Inconclusive(std::move(result), "INFO errorstats: " + m.error().message);
      middle = *m;
      auto wrong = OpenCluster(kTimeout);
      if (!wrong) return Inconclusive(std::move(result), "redis cluster: " + wrong.error().message);
      std::set<int> slots;
      for (int r = 0; r < rounds; ++r) {
        for (const auto& k : KeysOf(prefix + "stale:", r, keys, tagged))
          slots.insert(redis::KeySlot(k));
      }
      for (int slot : slots) {
        const std::string owner = (*wrong)->SlotOwner(slot);
        auto it = std::find(masters.begin(), masters.end(), owner);
        const std::size_t next =
            it == masters.end() ? 0 : (it - masters.begin() + 1) % masters.size();
        (*wrong)->OverrideSlotOwner(slot, masters[next]);
      }
      stale_slots = static_cast<std::int64_t>(slots.size());
      Step(ctx, mode + ": a client whose map points " + std::to_string(stale_slots) +
                    " slots at the wrong master runs the same rounds");
      if (auto s = RunRounds(ctx, **wrong, **reader, prefix + "stale:", keys, rounds, tagged, stale,
                             50, 50);
          !s)
        return Inconclusive(std::move(result), s.error().message);
      stale_moved = (*wrong)->moved();
    }
    auto after = ReadErrorStats(pool, masters);
    if (!after) return Inconclusive(std::move(result), "INFO errorstats: " + after.error().message);
    auto left = CountKeys(pool, masters, prefix + "*");
    if (!left) return Inconclusive(std::move(result), "SCAN read-back: " + left.error().message);

    // Totals of the mode: both phases, and the redirects the clients followed themselves.
    Tally all = fresh;
    for (const auto& [kind, count] : stale.replies) all.replies[kind] += count;
    all.replies["MOVED"] += fresh_moved + stale_moved + (*reader)->moved();
    all.replies["ASK"] += (*client)->asked() + (*reader)->asked();
    const ErrorCounts server = Delta(*before, *after);
    const auto sum = [&](auto field) { return fresh.*field + stale.*field; };

    auto& m = result.metrics;
    m["ops"] = static_cast<double>(sum(&Tally::ops));
    m["ops_failed"] = static_cast<double>(sum(&Tally::ops_failed));
    m["crossslot_errors"] = static_cast<double>(CountOf(all.replies, "CROSSSLOT"));
    m["crossslot_server"] = static_cast<double>(CountOf(server, "CROSSSLOT"));
    m["error_replies"] = static_cast<double>(NonRedirects(all.replies));
    m["errors_server"] = static_cast<double>(NonRedirects(server));
    m["moved_client"] = static_cast<double>(CountOf(all.replies, "MOVED"));
    m["moved_server"] = static_cast<double>(CountOf(server, "MOVED"));
    m["values_mismatched"] = static_cast<double>(sum(&Tally::values_mismatched));
    m["partial_writes"] = static_cast<double>(sum(&Tally::partial_writes));
    m["mget_mismatched"] = static_cast<double>(sum(&Tally::mget_mismatched));
    m["reads"] = static_cast<double>(sum(&Tally::reads));
    m["keys_left"] = static_cast<double>(*left);
    if (mode == "success") {
      m["stale_slots"] = static_cast<double>(stale_slots);
      m["stale_ops_failed"] = static_cast<double>(stale.ops_failed);
      m["moved_stale_client"] = static_cast<double>(stale_moved + CountOf(stale.replies, "MOVED"));
      m["moved_stale_server"] = static_cast<double>(CountOf(Delta(*middle, *after), "MOVED"));
    }

    Json details = {
        {"keys", tagged ? "hash-tagged: " + prefix + "{r<round>}:k<i>"
                        : "plain: " + prefix + "r<round>:k<i>"},
        {"key_prefix", prefix},
        {"keys_per_operation", keys},
        {"rounds", rounds},
        {"masters", masters},
        {"example_slots", ExampleSlots(**reader, KeysOf(prefix, 0, keys, tagged))},
        {"lua_script", kLuaSetAll},
        {"server_errorstats_delta", ToJson(server)},
        {"client_error_replies", ToJson(all.replies)},
        {"phase_fresh_map", TallyJson(fresh)},
        {"elapsed_ms", MsSince(started)},
        {"provenance",
         {{"ops", "by_design"},
          {"ops_failed", "self_reported"},
          {"crossslot_errors", "self_reported"},
          {"crossslot_server", "server_counter"},
          {"error_replies", "self_reported"},
          {"errors_server", "server_counter"},
          {"moved_client", "self_reported"},
          {"moved_server", "server_counter"},
          {"values_mismatched", "read_back"},
          {"partial_writes", "read_back"},
          {"mget_mismatched", "self_reported"},
          {"reads", "read_back"},
          {"keys_left", "read_back"},
          {"stale_slots", "by_design"},
          {"stale_ops_failed", "self_reported"},
          {"moved_stale_client", "self_reported"},
          {"moved_stale_server", "server_counter"}}},
        {"formulas",
         {{"ops", "rounds x 5 per phase"},
          {"moved_client",
           "MOVED answers the clients received: followed inside ClusterClient, or seen in a "
           "transaction"},
          {"errors_server", "sum of errorstat_* deltas on the masters except MOVED and ASK"}}}};
    if (mode == "success") {
      details["phase_stale_map"] = TallyJson(stale);
      details["phase_stale_map"]["slots_pointed_wrong"] = stale_slots;
    }
    result.details_json = details.dump();
    Step(ctx, mode + ": ops=" + std::to_string(sum(&Tally::ops)) +
                  " failed=" + std::to_string(sum(&Tally::ops_failed)) +
                  " CROSSSLOT client/server=" + std::to_string(CountOf(all.replies, "CROSSSLOT")) +
                  "/" + std::to_string(CountOf(server, "CROSSSLOT")) +
                  " MOVED client/server=" + std::to_string(CountOf(all.replies, "MOVED")) + "/" +
                  std::to_string(CountOf(server, "MOVED")) +
                  " mismatched=" + std::to_string(sum(&Tally::values_mismatched)) +
                  " keys_left=" + std::to_string(*left));
    Progress(ctx, 100);
    return result;
  }

 private:
  domain::Status RunRounds(const domain::RunContext& ctx, redis::ClusterClient& client,
                           redis::ClusterClient& reader, const std::string& stem, int keys,
                           int rounds, bool tagged, Tally& tally, double progress_from,
                           double progress_span) const {
    Rounds run(client, reader, tally);
    for (int r = 0; r < rounds; ++r) {
      if (ctx.stop.stop_requested())
        return domain::MakeError(domain::ErrorCode::kTimeout, "cancelled");
      if (auto s = run.Run(KeysOf(stem, r, keys, tagged), r); !s)
        return domain::MakeError(s.error().code, "redis cluster: " + s.error().message);
      Progress(ctx, progress_from + progress_span * (r + 1) / rounds);
    }
    return {};
  }

  // The slot and owner of each key of the first round (shows how plain keys spread).
  static Json ExampleSlots(const redis::ClusterClient& client,
                           const std::vector<std::string>& keys) {
    Json out = Json::array();
    for (const auto& k : keys) {
      const int slot = redis::KeySlot(k);
      out.push_back({{"key", k}, {"slot", slot}, {"owner", client.SlotOwner(slot)}});
    }
    return out;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeClusterMultiKey(const StackConfig& config) {
  return std::make_unique<ClusterMultiKey>(config);
}

}  // namespace lab::runners
