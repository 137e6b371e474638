// E-050: code written for one Redis node breaks when its target becomes a cluster (or a
// serverless, cluster-mode service). One application workload runs against the standalone Redis
// and against the Redis Cluster, reached as naively ported code reaches it: commands with a key go
// through a slot-routing client (redis::ClusterClient: routes by the first key, follows MOVED), a
// transaction stays on the connection of its first key's node, and commands without a key go to
// one node connection (the first seed). The operations:
//   multi-key DEL of three cart keys; MULTI/EXEC moving stock to sold; KEYS to list the items the
//   app wrote; a SCAN loop to list them; a Lua script that writes a key it did not declare in
//   KEYS; SELECT 1 for a separate session database; pub/sub (SUBSCRIBE on one node, PUBLISH on
//   another).
//   failure: the code as written for one node.
//   success: the cluster-safe rewrite: hash tags for the keys used together, SCAN on every
//            master, every key declared, no SELECT (a key prefix instead); pub/sub unchanged.
//            practice=off runs the original code here.
// Each operation is judged by reading its effect back (EXISTS/GET after a DEL, a transaction or a
// script; a listing against the items stored, counted by SCAN on every master; messages
// received), not by the answer alone. FLUSHDB is not part of the workload: the stack is shared.
// INFO errorstats on the masters (and on the standalone Redis), read before and after, are the
// server's own count of the error replies the workload received.
#include <hiredis/hiredis.h>

#include <algorithm>
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
using redis::Reply;
using ErrorCounts = std::map<std::string, std::int64_t>;
using ReplyHandle = CHandle<redisReply, freeReplyObject>;
constexpr auto kTimeout = 2000ms;
constexpr int kItems = 20;      // keys the listings must find
constexpr int kMessages = 3;    // pub/sub messages published
constexpr int kScanCount = 10;  // the app's SCAN page size

std::int64_t CountOf(const ErrorCounts& counts, const std::string& kind) {
  auto it = counts.find(kind);
  return it == counts.end() ? 0 : it->second;
}

std::int64_t Total(const ErrorCounts& counts) {
  std::int64_t n = 0;
  for (const auto& [kind, count] : counts) n += count;
  return n;
}

Json ToJson(const ErrorCounts& counts) {
  Json j = Json::object();
  for (const auto& [kind, count] : counts) j[kind] = count;
  return j;
}

// errorstat_<kind> counts of one INFO errorstats reply, added to `sum`.
void AddErrorStats(const std::string& info, ErrorCounts& sum) {
  std::istringstream lines(info);
  std::string line;
  while (std::getline(lines, line)) {
    const auto colon = line.find(':');
    if (line.rfind("errorstat_", 0) != 0 || colon == std::string::npos) continue;
    const std::string kind = line.substr(10, colon - 10);
    sum[kind] += redis::ErrorStat(info, kind);
  }
}

ErrorCounts Delta(const ErrorCounts& before, const ErrorCounts& after) {
  ErrorCounts delta;
  for (const auto& [kind, count] : after) {
    const std::int64_t d = count - CountOf(before, kind);
    if (d != 0) delta[kind] = d;
  }
  return delta;
}

// Where the workload runs: the standalone Redis (every call goes to its one connection) or the
// cluster as the ported code reaches it. Every error reply is counted by kind.
class Target {
 public:
  static Target Standalone(redis::Connection& conn) {
    Target t;
    t.name_ = "standalone";
    t.standalone_ = &conn;
    t.node_ = conn.host() + ":" + std::to_string(conn.port());
    t.masters_ = {t.node_};
    t.subscriber_node_ = t.node_;
    return t;
  }
  static Target Cluster(redis::ClusterClient& client, std::vector<std::string> masters,
                        std::string node) {
    Target t;
    t.name_ = "cluster";
    t.cluster_ = &client;
    t.masters_ = std::move(masters);
    t.node_ = std::move(node);
    // The subscriber listens on another master than the one the publisher talks to.
    t.subscriber_node_ = t.node_;
    for (const auto& m : t.masters_) {
      if (m != t.node_) {
        t.subscriber_node_ = m;
        break;
      }
    }
    return t;
  }

  const std::string& name() const { return name_; }
  bool is_cluster() const { return cluster_ != nullptr; }
  const std::vector<std::string>& masters() const { return masters_; }
  // The node of commands without a key, and the one pub/sub's subscriber connects to.
  const std::string& node() const { return node_; }
  const std::string& subscriber_node() const { return subscriber_node_; }
  // The node that owns `key` (as the client's map says).
  std::string OwnerOf(const std::string& key) const {
    return cluster_ != nullptr ? cluster_->SlotOwner(redis::KeySlot(key)) : node_;
  }

  // A command with a key: the cluster client routes it by `key`'s slot.
  domain::Result<Reply> Keyed(const std::string& key, const std::vector<std::string>& argv) {
    return Note(cluster_ != nullptr ? cluster_->Command(key, argv) : standalone_->Command(argv));
  }
  // A command on `addr` (a master, or the one node), never redirected.
  domain::Result<Reply> On(const std::string& addr, const std::vector<std::string>& argv) {
    return Note(cluster_ != nullptr ? cluster_->CommandOn(addr, argv) : standalone_->Command(argv));
  }
  // Error replies received, redirects the cluster client followed by itself included.
  ErrorCounts Errors() const {
    ErrorCounts all = errors_;
    if (cluster_ != nullptr) {
      if (cluster_->moved() > 0) all["MOVED"] += cluster_->moved();
      if (cluster_->asked() > 0) all["ASK"] += cluster_->asked();
    }
    return all;
  }
  // Counts an error reply received on a connection of the operation's own.
  void NoteError(const std::string& error) { ++errors_[error.substr(0, error.find(' '))]; }

 private:
  domain::Result<Reply> Note(domain::Result<Reply> reply) {
    if (reply && reply->is_error()) NoteError(reply->str);
    return reply;
  }

  std::string name_;
  redis::Connection* standalone_ = nullptr;
  redis::ClusterClient* cluster_ = nullptr;
  std::vector<std::string> masters_;
  std::string node_;
  std::string subscriber_node_;
  ErrorCounts errors_;
};

// One operation of the workload on one target: judged by reading its effect back.
struct Outcome {
  std::string operation;
  std::string code;  // what the code sent
  bool ok = false;
  std::string answer;  // what the server answered and what was read back
};

// A reply as one line for the table.
std::string Show(const Reply& r) {
  switch (r.type) {
    case REDIS_REPLY_INTEGER:
      return std::to_string(r.integer);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_ARRAY: {
      std::string out = "[";
      for (std::size_t i = 0; i < r.elements.size() && i < 8; ++i)
        out += (i ? "," : "") + Show(r.elements[i]);
      return out + (r.elements.size() > 8 ? ",…]" : "]");
    }
    default:
      return r.str;
  }
}

// The application's workload over keys `p`*. I/O failures end it (the run is inconclusive);
// the server's error answers are the evidence.
class Workload {
 public:
  Workload(Target& target, std::string p, bool rewritten, std::chrono::milliseconds timeout)
      : t_(target), p_(std::move(p)), rewritten_(rewritten), timeout_(timeout) {}

  domain::Result<std::vector<Outcome>> Run() {
    std::vector<Outcome> out;
    for (auto op : {&Workload::MultiKeyDel, &Workload::Transaction, &Workload::KeysListing,
                    &Workload::ScanListing, &Workload::LuaUndeclared, &Workload::SelectDb,
                    &Workload::PubSub}) {
      auto o = (this->*op)();
      if (!o) return o.error();
      out.push_back(std::move(*o));
    }
    return out;
  }

  std::int64_t items_stored() const { return items_stored_; }
  std::int64_t keys_listed() const { return keys_listed_; }
  std::int64_t scan_listed() const { return scan_listed_; }
  std::int64_t received() const { return received_; }
  Json facts() const { return facts_; }

 private:
  // SET `key` `value` (an application write that must work on either target).
  domain::Status Put(const std::string& key, const std::string& value) {
    auto r = t_.Keyed(key, {"SET", key, value, "EX", "300"});
    if (!r) return r.error();
    if (r->is_error())
      return domain::MakeError(domain::ErrorCode::kInternal, "SET " + key + ": " + r->str);
    return {};
  }
  // GET `key` read back through the key's own route.
  domain::Result<std::optional<std::string>> Get(const std::string& key) {
    auto r = t_.Keyed(key, {"GET", key});
    if (!r) return r.error();
    if (r->is_error())
      return domain::MakeError(domain::ErrorCode::kInternal, "GET " + key + ": " + r->str);
    return r->is_nil() ? std::nullopt : std::optional<std::string>(r->str);
  }

  domain::Result<Outcome> MultiKeyDel() {
    Outcome o{"multi-key DEL", "", false, ""};
    const std::string stem = rewritten_ ? p_ + "{cart}:" : p_ + "cart:";
    std::vector<std::string> keys = {stem + "1", stem + "2", stem + "3"};
    for (const auto& k : keys) {
      if (auto s = Put(k, "item"); !s) return s.error();
    }
    std::vector<std::string> del = {"DEL"};
    del.insert(del.end(), keys.begin(), keys.end());
    o.code = "DEL " + stem + "1 " + stem + "2 " + stem + "3";
    auto r = t_.Keyed(keys[0], del);
    if (!r) return r.error();
    int left = 0;
    for (const auto& k : keys) {
      auto v = Get(k);
      if (!v) return v.error();
      left += v->has_value() ? 1 : 0;
    }
    o.ok = !r->is_error() && r->integer == 3 && left == 0;
    o.answer = Show(*r) + "; " + std::to_string(left) + " of 3 keys left (read back)";
    return o;
  }

  domain::Result<Outcome> Transaction() {
    Outcome o{"MULTI/EXEC over several keys", "", false, ""};
    const std::string stock = rewritten_ ? p_ + "{order:1}:stock" : p_ + "stock:1";
    const std::string sold = rewritten_ ? p_ + "{order:1}:sold" : p_ + "sold:1";
    if (auto s = Put(stock, "10"); !s) return s.error();
    if (auto s = Put(sold, "0"); !s) return s.error();
    o.code = "MULTI; DECR " + stock + "; INCR " + sold + "; EXEC (on the connection of " + stock +
             "'s node)";
    const std::string node = t_.OwnerOf(stock);
    std::vector<std::string> answers;
    Reply exec;
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {"MULTI"}, {"DECR", stock}, {"INCR", sold}, {"EXEC"}}) {
      auto r = t_.On(node, argv);
      if (!r) return r.error();
      answers.push_back(argv[0] + " -> " + Show(*r));
      exec = *r;
      if (argv[0] == "MULTI" && r->is_error()) break;  // never send the writes outside MULTI
    }
    auto s = Get(stock);
    if (!s) return s.error();
    auto d = Get(sold);
    if (!d) return d.error();
    o.ok = !exec.is_error() && exec.type == REDIS_REPLY_ARRAY && exec.elements.size() == 2 &&
           *s == std::optional<std::string>("9") && *d == std::optional<std::string>("1");
    for (const auto& a : answers) o.answer += a + "; ";
    o.answer += "read back stock=" + s->value_or("(nil)") + " sold=" + d->value_or("(nil)");
    return o;
  }

  // The app's items, written once; items_stored_ is what the masters hold (SCAN on each).
  domain::Status WriteItems() {
    if (items_written_) return {};
    for (int i = 0; i < kItems; ++i) {
      if (auto s = Put(p_ + "item:" + std::to_string(i), "v"); !s) return s;
    }
    items_written_ = true;
    auto stored = ScanAll(1000, t_.masters());
    if (!stored) return stored.error();
    items_stored_ = static_cast<std::int64_t>(stored->size());
    std::int64_t exist = 0;
    for (int i = 0; i < kItems; ++i) {
      auto v = Get(p_ + "item:" + std::to_string(i));
      if (!v) return v.error();
      exist += v->has_value() ? 1 : 0;
    }
    facts_["items_written"] = kItems;
    facts_["items_stored_scan_every_master"] = items_stored_;
    facts_["items_read_back_by_get"] = exist;
    if (items_stored_ != kItems || exist != kItems)
      return domain::MakeError(domain::ErrorCode::kInternal,
                               "items read back: " + std::to_string(items_stored_) + " by SCAN, " +
                                   std::to_string(exist) + " by GET, of " + std::to_string(kItems) +
                                   " written");
    return {};
  }

  // SCAN MATCH item:* on each of `nodes`, distinct keys found.
  domain::Result<std::set<std::string>> ScanAll(int count, const std::vector<std::string>& nodes) {
    std::set<std::string> found;
    for (const auto& node : nodes) {
      std::string cursor = "0";
      for (int i = 0; i < 100000; ++i) {  // bounded: 1M keys at COUNT 10
        auto r =
            t_.On(node, {"SCAN", cursor, "MATCH", p_ + "item:*", "COUNT", std::to_string(count)});
        if (!r) return r.error();
        if (r->is_error() || r->elements.size() != 2)
          return domain::MakeError(domain::ErrorCode::kInternal, "SCAN on " + node + ": " + r->str);
        cursor = r->elements[0].str;
        for (const auto& k : r->elements[1].elements) found.insert(k.str);
        if (cursor == "0") break;
      }
    }
    return found;
  }

  domain::Result<Outcome> KeysListing() {
    Outcome o{"list the app's keys (KEYS)", "", false, ""};
    if (auto s = WriteItems(); !s) return s.error();
    if (rewritten_) {
      o.code = "SCAN 0 MATCH " + p_ + "item:* COUNT 1000 … on every master (replaces KEYS)";
      auto found = ScanAll(1000, t_.masters());
      if (!found) return found.error();
      keys_listed_ = static_cast<std::int64_t>(found->size());
      o.answer = std::to_string(keys_listed_) + " keys over " +
                 std::to_string(t_.masters().size()) + " node(s)";
    } else {
      o.code = "KEYS " + p_ + "item:* (on " + t_.node() + ")";
      auto r = t_.On(t_.node(), {"KEYS", p_ + "item:*"});
      if (!r) return r.error();
      keys_listed_ = r->is_error() ? -1 : static_cast<std::int64_t>(r->elements.size());
      o.answer = r->is_error() ? r->str : std::to_string(keys_listed_) + " keys";
    }
    o.ok = keys_listed_ == items_stored_;
    o.answer += " listed; " + std::to_string(items_stored_) + " stored (SCAN on every master)";
    return o;
  }

  domain::Result<Outcome> ScanListing() {
    Outcome o{"list the app's keys (SCAN loop)", "", false, ""};
    if (auto s = WriteItems(); !s) return s.error();
    const std::vector<std::string> nodes =
        rewritten_ ? t_.masters() : std::vector<std::string>{t_.node()};
    o.code = "SCAN cursor MATCH " + p_ + "item:* COUNT " + std::to_string(kScanCount) +
             " until cursor 0, " + (rewritten_ ? "on every master" : "on " + t_.node());
    auto found = ScanAll(kScanCount, nodes);
    if (!found) return found.error();
    scan_listed_ = static_cast<std::int64_t>(found->size());
    o.ok = scan_listed_ == items_stored_;
    o.answer = std::to_string(scan_listed_) + " keys listed; " + std::to_string(items_stored_) +
               " stored (SCAN on every master)";
    return o;
  }

  domain::Result<Outcome> LuaUndeclared() {
    Outcome o{"Lua script touching an undeclared key", "", false, ""};
    const std::string user = rewritten_ ? p_ + "{user:1}" : p_ + "user:1";
    const std::string audit = user + ":audit";
    std::vector<std::string> argv;
    if (rewritten_) {
      argv = {"EVAL",
              "redis.call('SET', KEYS[1], ARGV[1]) redis.call('SET', KEYS[2], ARGV[1]) return 1",
              "2",
              user,
              audit,
              "seen"};
      o.code = "EVAL <SET KEYS[1]; SET KEYS[2]> 2 " + user + " " + audit;
    } else {
      argv = {"EVAL",
              "redis.call('SET', KEYS[1], ARGV[1]) redis.call('SET', ARGV[2], ARGV[1]) return 1",
              "1",
              user,
              "seen",
              audit};
      o.code = "EVAL <SET KEYS[1]; SET ARGV[2]> 1 " + user + " (ARGV[2] = " + audit + ")";
    }
    auto r = t_.Keyed(user, argv);
    if (!r) return r.error();
    auto a = Get(user);
    if (!a) return a.error();
    auto b = Get(audit);
    if (!b) return b.error();
    const std::optional<std::string> seen("seen");
    o.ok = !r->is_error() && r->integer == 1 && *a == seen && *b == seen;
    o.answer = Show(*r) + "; read back " + user + "=" + a->value_or("(nil)") + " " + audit + "=" +
               b->value_or("(nil)");
    if (r->is_error() && a->has_value() && !b->has_value())
      o.answer += " (the script stopped half-way: its first SET stays, scripts do not roll back)";
    if (t_.is_cluster()) {
      const bool same_slot = redis::KeySlot(user) == redis::KeySlot(audit);
      const bool same_node = t_.OwnerOf(user) == t_.OwnerOf(audit);
      o.answer += same_slot ? " (one slot)"
                  : same_node
                      ? " (two slots of one node: Redis 7.0 lets a script reach a local key)"
                      : " (the undeclared key lives on another node)";
    }
    return o;
  }

  domain::Result<Outcome> SelectDb() {
    Outcome o{"SELECT 1 (sessions in their own database)", "", false, ""};
    const std::string key = p_ + "session:1";
    if (rewritten_) {
      o.code = "SET " + key + " (db 0, a key prefix instead of a database), GET, DEL";
      if (auto s = Put(key, "alice"); !s) return s.error();
      auto v = Get(key);
      if (!v) return v.error();
      auto del = t_.Keyed(key, {"DEL", key});
      if (!del) return del.error();
      o.ok = *v == std::optional<std::string>("alice") && !del->is_error() && del->integer == 1;
      o.answer = "GET " + v->value_or("(nil)") + "; DEL " + Show(*del);
      return o;
    }
    // The app's session connection: its own, so the database it selects stays with it.
    o.code =
        "SELECT 1; SET " + key + " EX 60; GET; DEL; (on its own connection to " + t_.node() + ")";
    auto [host, port] = redis::SplitHostPort(t_.node());
    auto conn = redis::Connection::Open(host, port, timeout_);
    if (!conn) return conn.error();
    std::vector<std::string> answers;
    bool ok = true;
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {"SELECT", "1"}, {"SET", key, "alice", "EX", "60"}, {"GET", key}, {"DEL", key}}) {
      auto r = (*conn)->Command(argv);
      if (!r) return r.error();
      if (r->is_error()) t_.NoteError(r->str);
      answers.push_back(argv[0] + " -> " + Show(*r));
      if (r->is_error()) {
        ok = false;
        break;  // the session store is unusable: the app stops here
      }
      if (argv[0] == "GET" && r->str != "alice") ok = false;
      if (argv[0] == "DEL" && r->integer != 1) ok = false;
    }
    o.ok = ok;
    for (const auto& a : answers) o.answer += (o.answer.empty() ? "" : "; ") + a;
    return o;
  }

  domain::Result<Outcome> PubSub() {
    Outcome o{"pub/sub (SUBSCRIBE on one node, PUBLISH on another)", "", false, ""};
    const std::string channel = p_ + "events";
    o.code = "SUBSCRIBE " + channel + " on " + t_.subscriber_node() + "; " +
             std::to_string(kMessages) + " x PUBLISH on " + t_.node();
    auto [host, port] = redis::SplitHostPort(t_.subscriber_node());
    timeval tv{2, 0};
    redis::ContextHandle sub(redisConnectWithTimeout(host.c_str(), port, tv));
    if (!sub || sub->err != 0)
      return domain::MakeError(domain::ErrorCode::kUnavailable,
                               std::string("subscriber: ") + (sub ? sub->errstr : "no context"));
    timeval wait{1, 0};  // a message not there within 1 s is not coming
    redisSetTimeout(sub.get(), wait);
    ReplyHandle ok(static_cast<redisReply*>(
        redisCommand(sub.get(), "SUBSCRIBE %b", channel.data(), channel.size())));
    if (!ok || ok->type != REDIS_REPLY_ARRAY)
      return domain::MakeError(domain::ErrorCode::kUnavailable, "subscriber: SUBSCRIBE failed");
    std::int64_t receivers = 0;
    for (int i = 0; i < kMessages; ++i) {
      auto r = t_.On(t_.node(), {"PUBLISH", channel, "m" + std::to_string(i)});
      if (!r) return r.error();
      if (r->is_error()) {
        o.answer = "PUBLISH -> " + r->str;
        return o;
      }
      receivers += r->integer;
    }
    received_ = 0;
    for (int i = 0; i < kMessages; ++i) {
      void* raw = nullptr;
      if (redisGetReply(sub.get(), &raw) != REDIS_OK || raw == nullptr) break;
      ReplyHandle msg(static_cast<redisReply*>(raw));
      if (msg->type == REDIS_REPLY_ARRAY && msg->elements == 3) ++received_;
    }
    o.ok = received_ == kMessages;
    o.answer = std::to_string(received_) + " of " + std::to_string(kMessages) +
               " messages received; the PUBLISH answers sum to " + std::to_string(receivers) +
               " (each counts the subscribers of its own node only)";
    return o;
  }

  Target& t_;
  std::string p_;
  bool rewritten_;
  std::chrono::milliseconds timeout_;
  bool items_written_ = false;
  std::int64_t items_stored_ = -1;
  std::int64_t keys_listed_ = -1;
  std::int64_t scan_listed_ = -1;
  std::int64_t received_ = 0;
  Json facts_ = Json::object();
};

// What one target's run left: its operations, and the error replies on both sides.
struct TargetRun {
  std::vector<Outcome> outcomes;
  ErrorCounts client;
  ErrorCounts server;
  std::int64_t items_stored = -1;
  std::int64_t keys_listed = -1;
  std::int64_t scan_listed = -1;
  std::int64_t received = 0;
  Json facts;
  std::int64_t failed() const {
    return std::count_if(outcomes.begin(), outcomes.end(), [](const Outcome& o) { return !o.ok; });
  }
};

class ClusterModeBreaks final : public ExperimentBase {
 public:
  explicit ClusterModeBreaks(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-050"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::string prefix = RedisPrefix(ctx, mode);
    const bool practice = domain::GetString(ctx.params, "practice") != "off";
    const bool rewritten = mode == "success" && practice;
    const auto started = SteadyClock::now();

    const auto view = redis::ReadSettledClusterView(config_.redis_cluster_seeds, kTimeout,
                                                    std::chrono::seconds(20));
    const std::vector<std::string> masters = redis::ServingMasters(view.nodes);
    if (!view.problems.empty() || masters.size() < 2)
      return Inconclusive(std::move(result),
                          "redis cluster not healthy: " +
                              (view.problems.empty() ? "fewer than 2 masters" : view.problems));
    Created(ctx, mode, result, kArtifactRedis, prefix);
    Created(ctx, mode, result, kArtifactClusterKeys, prefix);

    const std::string workload = rewritten ? "the cluster-safe rewrite" : "the code as written";
    Step(ctx, mode + ": " + workload + " on the standalone Redis");
    auto standalone = RunStandalone(prefix, rewritten);
    if (!standalone)
      return Inconclusive(std::move(result), "standalone: " + standalone.error().message);
    Progress(ctx, 40);
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");

    Step(ctx, mode + ": " + workload +
                  " on the Redis Cluster (keyed commands routed by slot, "
                  "others on " +
                  masters.front() + ")");
    auto cluster = RunCluster(prefix, rewritten, masters);
    if (!cluster) return Inconclusive(std::move(result), "cluster: " + cluster.error().message);
    Progress(ctx, 100);

    auto& m = result.metrics;
    m["operations"] = static_cast<double>(cluster->outcomes.size());
    m["failed_standalone"] = static_cast<double>(standalone->failed());
    m["failed_cluster"] = static_cast<double>(cluster->failed());
    m["errors_standalone"] = static_cast<double>(Total(standalone->client));
    m["errors_server_standalone"] = static_cast<double>(Total(standalone->server));
    m["errors_cluster"] = static_cast<double>(Total(cluster->client));
    m["errors_server_cluster"] = static_cast<double>(Total(cluster->server));
    m["items_written"] = kItems;
    m["items_stored_standalone"] = static_cast<double>(standalone->items_stored);
    m["items_stored_cluster"] = static_cast<double>(cluster->items_stored);
    m["keys_listed_standalone"] = static_cast<double>(standalone->keys_listed);
    m["keys_listed_cluster"] = static_cast<double>(cluster->keys_listed);
    m["scan_listed_standalone"] = static_cast<double>(standalone->scan_listed);
    m["scan_listed_cluster"] = static_cast<double>(cluster->scan_listed);
    m["messages_published"] = kMessages;
    m["received_standalone"] = static_cast<double>(standalone->received);
    m["received_cluster"] = static_cast<double>(cluster->received);

    Json table = Json::array();
    for (std::size_t i = 0; i < cluster->outcomes.size() && i < standalone->outcomes.size(); ++i) {
      const auto& s = standalone->outcomes[i];
      const auto& c = cluster->outcomes[i];
      table.push_back({{"operation", c.operation},
                       {"code_standalone", s.code},
                       {"code_cluster", c.code},
                       {"standalone", {{"ok", s.ok}, {"answer", s.answer}}},
                       {"cluster", {{"ok", c.ok}, {"answer", c.answer}}},
                       {"verdict", s.ok && c.ok ? "works on both"
                                   : s.ok       ? "breaks on the cluster"
                                   : c.ok       ? "breaks on the standalone Redis"
                                                : "breaks on both"}});
    }
    Json details = {
        {"workload", rewritten ? "cluster-safe rewrite" : "original (single-node) code"},
        {"key_prefix", prefix},
        {"cluster_masters", masters},
        {"cluster_node_for_keyless_commands", masters.front()},
        {"operations", table},
        {"errors_standalone_by_kind",
         {{"client", ToJson(standalone->client)}, {"server", ToJson(standalone->server)}}},
        {"errors_cluster_by_kind",
         {{"client", ToJson(cluster->client)}, {"server", ToJson(cluster->server)}}},
        {"listing_facts", {{"standalone", standalone->facts}, {"cluster", cluster->facts}}},
        {"not_run",
         "FLUSHDB/FLUSHALL (they break on a cluster too: each node flushes only itself) are not "
         "run: the stack is shared"},
        {"elapsed_ms", MsSince(started)},
        {"provenance",
         {{"operations", "by_design"},
          {"failed_standalone", "read_back"},
          {"failed_cluster", "read_back"},
          {"errors_standalone", "self_reported"},
          {"errors_server_standalone", "server_counter"},
          {"errors_cluster", "self_reported"},
          {"errors_server_cluster", "server_counter"},
          {"items_written", "by_design"},
          {"items_stored_standalone", "read_back"},
          {"items_stored_cluster", "read_back"},
          {"keys_listed_standalone", "self_reported"},
          {"keys_listed_cluster", "self_reported"},
          {"scan_listed_standalone", "self_reported"},
          {"scan_listed_cluster", "self_reported"},
          {"messages_published", "by_design"},
          {"received_standalone", "self_reported"},
          {"received_cluster", "self_reported"}}},
        {"formulas",
         {{"failed_*",
           "operations that answered an error or whose effect read back wrong (a listing that "
           "misses stored keys, keys left after a DEL, values after a transaction or a script, "
           "messages not received)"},
          {"errors_*",
           "error replies of every kind (MOVED followed by the client included); "
           "server: INFO errorstats deltas on the masters or the standalone Redis"}}}};
    result.details_json = details.dump();

    std::string broke;
    for (const auto& c : cluster->outcomes) {
      if (!c.ok) broke += (broke.empty() ? "" : ", ") + c.operation;
    }
    Step(ctx, mode + ": failed standalone=" + std::to_string(standalone->failed()) +
                  " cluster=" + std::to_string(cluster->failed()) + " of " +
                  std::to_string(cluster->outcomes.size()) +
                  (broke.empty() ? "" : " (cluster: " + broke + ")") +
                  "; errors client/server "
                  "standalone=" +
                  std::to_string(Total(standalone->client)) + "/" +
                  std::to_string(Total(standalone->server)) +
                  " cluster=" + std::to_string(Total(cluster->client)) + "/" +
                  std::to_string(Total(cluster->server)));
    return result;
  }

 private:
  domain::Result<TargetRun> RunStandalone(const std::string& prefix, bool rewritten) const {
    auto conn = OpenRedis(kTimeout);
    if (!conn) return conn.error();
    auto stats = OpenRedis(kTimeout);
    if (!stats) return stats.error();
    auto read = [&]() -> domain::Result<ErrorCounts> {
      auto info = (*stats)->Command({"INFO", "errorstats"});
      if (!info) return info.error();
      ErrorCounts c;
      AddErrorStats(info->str, c);
      return c;
    };
    auto before = read();
    if (!before) return before.error();
    Target target = Target::Standalone(**conn);
    Workload w(target, prefix, rewritten, kTimeout);
    auto outcomes = w.Run();
    if (!outcomes) return outcomes.error();
    auto after = read();
    if (!after) return after.error();
    return Collect(std::move(*outcomes), target, w, Delta(*before, *after));
  }

  domain::Result<TargetRun> RunCluster(const std::string& prefix, bool rewritten,
                                       const std::vector<std::string>& masters) const {
    auto client = OpenCluster(kTimeout);
    if (!client) return client.error();
    redis::NodePool pool(kTimeout);
    auto read = [&]() -> domain::Result<ErrorCounts> {
      ErrorCounts c;
      for (const auto& master : masters) {
        auto info = pool.Run(master, {"INFO", "errorstats"});
        if (!info) return info.error();
        AddErrorStats(info->str, c);
      }
      return c;
    };
    auto before = read();
    if (!before) return before.error();
    Target target = Target::Cluster(**client, masters, masters.front());
    Workload w(target, prefix, rewritten, kTimeout);
    auto outcomes = w.Run();
    if (!outcomes) return outcomes.error();
    auto after = read();
    if (!after) return after.error();
    return Collect(std::move(*outcomes), target, w, Delta(*before, *after));
  }

  static TargetRun Collect(std::vector<Outcome> outcomes, const Target& target, const Workload& w,
                           ErrorCounts server) {
    TargetRun run;
    run.outcomes = std::move(outcomes);
    run.client = target.Errors();
    run.server = std::move(server);
    run.items_stored = w.items_stored();
    run.keys_listed = w.keys_listed();
    run.scan_listed = w.scan_listed();
    run.received = w.received();
    run.facts = w.facts();
    return run;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeClusterModeBreaks(const StackConfig& config) {
  return std::make_unique<ClusterModeBreaks>(config);
}

}  // namespace lab::runners
