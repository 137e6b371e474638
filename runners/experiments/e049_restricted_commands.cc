// E-049: code that uses commands a managed Redis forbids fails there; a gate that watches the
// workload before deployment names those commands.
// A restricted ACL user stands for the managed service: everything (+@all, ~*, &*) minus the
// commands such services refuse (kForbidden: KEYS, FLUSHALL, FLUSHDB, CONFIG, DEBUG, MIGRATE,
// RESTORE, …). The application's workload is a fixed sequence of commands over the run's own key
// prefix:
//   failure: the original workload: caches a user, counts visits, copies a profile with
//            DUMP + RESTORE, lists its keys with KEYS, moves archived keys with MIGRATE (to a key
//            that never exists: the server answers NOKEY without connecting anywhere), DELs what
//            KEYS listed.
//   success: the workload rewritten after the gate's report: COPY instead of DUMP + RESTORE,
//            SCAN MATCH instead of KEYS, no MIGRATE, UNLINK of its own keys. practice=off runs
//            the original workload here.
// Only harmless commands run on the unrestricted Redis (no FLUSHDB/FLUSHALL: the Redis is shared
// with other runs). The gate: a MONITOR connection on the unrestricted Redis (default user)
// watches the workload's connection (its address from CLIENT INFO), up to a sentinel ECHO sent
// last; the command names it saw, intersected with kForbidden, are gate_forbidden (the server's
// own view: server_counter). MONITOR does not show commands flagged admin (CONFIG, DEBUG, …), so
// the workload's forbidden commands are ones it shows; the blind spot is listed in the details.
// Then the same workload runs as the restricted user: failed_restricted = distinct commands the
// server refused with NOPERM (server_counter), cross-checked with ACL LOG for that user;
// failed_unrestricted = commands that answered an error on the unrestricted run. gate_matches = 1
// when the gate's set equals the NOPERM set.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <set>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/redis/redis_client.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

// Commands managed Redis services refuse; each becomes a "-<command>" ACL rule.
const std::vector<std::string> kForbidden = {
    "keys",    "flushall", "flushdb", "swapdb", "migrate",  "restore", "config",       "debug",
    "monitor", "shutdown", "save",    "bgsave", "lastsave", "sync",    "bgrewriteaof", "replicaof",
    "slaveof", "psync",    "cluster", "acl",    "module",   "failover"};
// Forbidden commands MONITOR never shows (flagged admin): a MONITOR gate is blind to them.
const std::vector<std::string> kMonitorBlind = {
    "config", "debug",        "monitor",   "shutdown", "save",    "bgsave", "lastsave", "sync",
    "psync",  "bgrewriteaof", "replicaof", "slaveof",  "cluster", "acl",    "module",   "failover"};

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool Forbidden(const std::string& command) {
  return std::find(kForbidden.begin(), kForbidden.end(), command) != kForbidden.end();
}

// One command of the workload and the server's answer to it.
struct Sent {
  std::string command;  // lower-case name
  std::string answer;   // "ok" or the error text
  bool error = false;
  bool noperm = false;
};

// The application's workload on connection `c` over keys `p`*. I/O failures end it (error);
// the server's error answers are recorded and the workload goes on, as an application's
// best-effort code would.
domain::Result<std::vector<Sent>> RunWorkload(redis::Connection& c, const std::string& p,
                                              bool rewritten) {
  std::vector<Sent> log;
  auto run = [&](const std::vector<std::string>& argv) -> domain::Result<redis::Reply> {
    auto r = c.Command(argv);
    if (!r) return r.error();
    Sent s{Lower(argv[0]), r->is_error() ? r->str : "ok", r->is_error(), false};
    s.noperm = s.error && s.answer.rfind("NOPERM", 0) == 0;
    log.push_back(std::move(s));
    return r;
  };
  const std::vector<std::vector<std::string>> common = {
      {"SET", p + "user:1", "alice", "EX", "300"},
      {"GET", p + "user:1"},
      {"INCR", p + "visits"},
      {"EXPIRE", p + "visits", "300"},
      {"HSET", p + "profile:1", "name", "alice", "plan", "pro"},
      {"HGETALL", p + "profile:1"}};
  for (const auto& argv : common) {
    if (auto r = run(argv); !r) return r.error();
  }
  std::vector<std::vector<std::string>> more;  // commands whose replies nobody reads
  std::vector<std::string> own_keys;
  if (!rewritten) {
    auto dump = run({"DUMP", p + "profile:1"});
    if (!dump) return dump.error();
    if (dump->type == REDIS_REPLY_STRING) {
      auto restore = run({"RESTORE", p + "profile:1:copy", "300000", dump->str});
      if (!restore) return restore.error();
    }
    auto keys = run({"KEYS", p + "*"});
    if (!keys) return keys.error();
    for (const auto& k : keys->elements) own_keys.push_back(k.str);
    // The key never exists, so the server answers NOKEY without opening a connection.
    more.push_back({"MIGRATE", "127.0.0.1", "1", p + "archive:1", "0", "1000"});
  } else {
    more.push_back({"COPY", p + "profile:1", p + "profile:1:copy"});
    more.push_back({"PEXPIRE", p + "profile:1:copy", "300000"});
  }
  for (const auto& argv : more) {
    if (auto r = run(argv); !r) return r.error();
  }
  if (rewritten) {
    std::string cursor = "0";
    for (int i = 0; i < 10000; ++i) {  // bounded: 10M keys at COUNT 1000
      auto scan = run({"SCAN", cursor, "MATCH", p + "*", "COUNT", "1000"});
      if (!scan) return scan.error();
      if (scan->elements.size() != 2) break;
      cursor = scan->elements[0].str;
      for (const auto& k : scan->elements[1].elements) own_keys.push_back(k.str);
      if (cursor == "0") break;
    }
  }
  if (!own_keys.empty()) {
    std::vector<std::string> del = {rewritten ? "UNLINK" : "DEL"};
    del.insert(del.end(), own_keys.begin(), own_keys.end());
    if (auto r = run(del); !r) return r.error();
  }
  return log;
}

// A MONITOR line: `<time> [<db> <addr>] "CMD" "arg" ...` -> (addr, lower-case command).
std::optional<std::pair<std::string, std::string>> ParseMonitorLine(const std::string& line) {
  auto open = line.find('[');
  auto close = line.find(']', open == std::string::npos ? 0 : open);
  if (open == std::string::npos || close == std::string::npos) return std::nullopt;
  auto space = line.find(' ', open);
  if (space == std::string::npos || space > close) return std::nullopt;
  std::string addr = line.substr(space + 1, close - space - 1);
  auto q1 = line.find('"', close);
  if (q1 == std::string::npos) return std::nullopt;
  auto q2 = line.find('"', q1 + 1);
  if (q2 == std::string::npos) return std::nullopt;
  return std::make_pair(addr, Lower(line.substr(q1 + 1, q2 - q1 - 1)));
}

using ReplyHandle = CHandle<redisReply, freeReplyObject>;

class RestrictedCommands final : public ExperimentBase {
 public:
  explicit RestrictedCommands(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-049"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::string prefix = RedisPrefix(ctx, mode);
    const bool practice = domain::GetString(ctx.params, "practice") != "off";
    const bool rewritten = mode == "success" && practice;
    Created(ctx, mode, result, kArtifactRedis, prefix);

    // The gate: the workload on the unrestricted Redis, watched by MONITOR.
    auto gate = WatchWorkload(ctx, prefix + "gate:", rewritten);
    if (!gate) return Inconclusive(std::move(result), "gate: " + gate.error().message);
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    Progress(ctx, 50);

    // The managed service: the same workload as the restricted user.
    const std::string user = "lab_" + SafeName(ctx.ns) + "_" + mode;
    const std::string password = "pw-" + SafeName(ctx.ns) + "-" + mode;
    std::vector<std::string> rules = {"on", ">" + password, "~*", "&*", "+@all"};
    for (const auto& c : kForbidden) rules.push_back("-" + c);
    if (auto s = CreateRedisAclUser(ctx, mode, result, user, rules); !s)
      return Inconclusive(std::move(result), s.error().message);
    auto restricted = RunAsUser(user, password, prefix + "restricted:", rewritten);
    auto acl_log = DeniedInAclLog(user);
    DeleteUser(ctx, user);  // cleanup deletes it too, whatever happens here
    if (!restricted)
      return Inconclusive(std::move(result), "restricted: " + restricted.error().message);
    if (!acl_log) return Inconclusive(std::move(result), "ACL LOG: " + acl_log.error().message);

    Report(ctx, mode, result, *gate, *restricted, *acl_log, user, rewritten);
    Progress(ctx, 100);
    return result;
  }

 private:
  struct GateView {
    std::vector<Sent> sent;         // the unrestricted run, as the workload saw it
    std::vector<std::string> seen;  // command names MONITOR showed for the workload's connection
    std::string addr;
    std::int64_t monitor_lines = 0;  // all lines read, other clients' included
  };

  domain::Result<GateView> WatchWorkload(const domain::RunContext& ctx, const std::string& keys,
                                         bool rewritten) const {
    GateView view;
    auto work = OpenRedis();
    if (!work) return work.error();
    auto info = (*work)->Command({"CLIENT", "INFO"});
    if (!info) return info.error();
    auto at = info->str.find(" addr=");
    if (at == std::string::npos)
      return domain::MakeError(domain::ErrorCode::kInternal,
                               "CLIENT INFO without addr: " + info->str);
    view.addr = info->str.substr(at + 6, info->str.find(' ', at + 6) - at - 6);

    // hiredis 0.14: a raw context; a read timeout kills it, so reading stops at the sentinel.
    timeval tv{3, 0};
    redis::ContextHandle mon(
        redisConnectWithTimeout(config_.redis_host.c_str(), config_.redis_port, tv));
    if (!mon || mon->err != 0)
      return domain::MakeError(
          domain::ErrorCode::kUnavailable,
          std::string("MONITOR connection: ") + (mon ? mon->errstr : "no context"));
    redisSetTimeout(mon.get(), tv);
    ReplyHandle ok(static_cast<redisReply*>(redisCommand(mon.get(), "MONITOR")));
    if (!ok || ok->type != REDIS_REPLY_STATUS)
      return domain::MakeError(domain::ErrorCode::kUnavailable, "MONITOR was not accepted");

    auto sent = RunWorkload(**work, keys, rewritten);
    if (!sent) return sent.error();
    view.sent = std::move(*sent);
    const std::string sentinel = "lab-gate-end-" + SafeName(ctx.ns);
    if (auto e = (*work)->Command({"ECHO", sentinel}); !e) return e.error();

    const auto deadline = SteadyClock::now() + 10s;
    for (int i = 0; i < 2000000 && SteadyClock::now() < deadline; ++i) {
      void* raw = nullptr;
      if (redisGetReply(mon.get(), &raw) != REDIS_OK || raw == nullptr)
        return domain::MakeError(
            domain::ErrorCode::kTimeout,
            std::string("MONITOR stream ended before the sentinel: ") + mon->errstr);
      ReplyHandle line(static_cast<redisReply*>(raw));
      ++view.monitor_lines;
      if (line->type != REDIS_REPLY_STATUS || line->str == nullptr) continue;
      auto parsed = ParseMonitorLine(std::string(line->str, line->len));
      if (!parsed || parsed->first != view.addr) continue;
      if (parsed->second == "echo" &&
          std::string(line->str, line->len).find(sentinel) != std::string::npos)
        return view;
      view.seen.push_back(parsed->second);
    }
    return domain::MakeError(domain::ErrorCode::kTimeout,
                             "the sentinel did not appear in MONITOR within 10 s");
  }

  domain::Result<std::vector<Sent>> RunAsUser(const std::string& user, const std::string& password,
                                              const std::string& keys, bool rewritten) const {
    auto conn = OpenRedis();
    if (!conn) return conn.error();
    auto auth = (*conn)->Command({"AUTH", user, password});
    if (!auth) return auth.error();
    if (auth->is_error())
      return domain::MakeError(domain::ErrorCode::kInternal, "AUTH " + user + ": " + auth->str);
    return RunWorkload(**conn, keys, rewritten);
  }

  // The commands ACL LOG says `user` was refused (the server's own record of the denials).
  domain::Result<std::set<std::string>> DeniedInAclLog(const std::string& user) const {
    auto conn = OpenRedis();
    if (!conn) return conn.error();
    auto log = (*conn)->Command({"ACL", "LOG", "128"});
    if (!log) return log.error();
    if (log->is_error()) return domain::MakeError(domain::ErrorCode::kInternal, log->str);
    std::set<std::string> denied;
    for (const auto& entry : log->elements) {
      std::map<std::string, std::string> fields;
      for (std::size_t i = 0; i + 1 < entry.elements.size(); i += 2)
        fields[entry.elements[i].str] = entry.elements[i + 1].str;
      if (fields["username"] == user && fields["reason"] == "command")
        denied.insert(Lower(fields["object"]));
    }
    return denied;
  }

  void DeleteUser(const domain::RunContext& ctx, const std::string& user) const {
    auto conn = OpenRedis();
    auto del = conn ? (*conn)->Command({"ACL", "DELUSER", user})
                    : domain::Result<redis::Reply>(conn.error());
    if (!del || del->is_error())
      Step(ctx, "ACL DELUSER " + user +
                    " failed (cleanup retries): " + (del ? del->str : del.error().message));
  }

  static void Report(const domain::RunContext& ctx, const std::string& mode,
                     domain::ModeResult& result, const GateView& gate,
                     const std::vector<Sent>& restricted, const std::set<std::string>& acl_log,
                     const std::string& user, bool rewritten) {
    std::set<std::string> gate_set;
    for (const auto& c : gate.seen)
      if (Forbidden(c)) gate_set.insert(c);
    std::set<std::string> noperm;
    for (const auto& s : restricted)
      if (s.noperm) noperm.insert(s.command);
    std::int64_t failed_unrestricted = 0;
    for (const auto& s : gate.sent) failed_unrestricted += s.error ? 1 : 0;
    std::int64_t failed_restricted_commands = 0;
    for (const auto& s : restricted) failed_restricted_commands += s.error ? 1 : 0;

    result.metrics["gate_forbidden"] = static_cast<double>(gate_set.size());
    result.metrics["failed_restricted"] = static_cast<double>(noperm.size());
    result.metrics["gate_matches"] = gate_set == noperm ? 1 : 0;
    result.metrics["failed_unrestricted"] = static_cast<double>(failed_unrestricted);
    result.metrics["acl_log_denied"] = static_cast<double>(acl_log.size());
    result.metrics["restricted_errors"] = static_cast<double>(failed_restricted_commands);
    result.metrics["gate_commands_seen"] = static_cast<double>(gate.seen.size());
    result.metrics["workload_commands"] = static_cast<double>(gate.sent.size());

    auto runs = [](const std::vector<Sent>& v) {
      Json out = Json::array();
      for (const auto& s : v) out.push_back({{"command", s.command}, {"answer", s.answer}});
      return out;
    };
    Json details = {
        {"workload", rewritten ? "rewritten" : "original"},
        {"restricted_user", user},
        {"forbidden_rules", kForbidden},
        {"gate_client_addr", gate.addr},
        {"gate_seen", gate.seen},
        {"gate_forbidden_set", gate_set},
        {"noperm_set", noperm},
        {"acl_log_denied_set", acl_log},
        {"acl_log_matches_noperm", acl_log == noperm},
        {"monitor_lines_read", gate.monitor_lines},
        {"monitor_blind_to",
         {{"commands", kMonitorBlind},
          {"why",
           "MONITOR does not show commands flagged admin, nor commands refused before they "
           "run; a gate built on MONITOR cannot report them"}}},
        {"unrestricted_run", runs(gate.sent)},
        {"restricted_run", runs(restricted)},
        {"provenance",
         {{"gate_forbidden", "server_counter"},
          {"gate_commands_seen", "server_counter"},
          {"failed_restricted", "server_counter"},
          {"gate_matches", "server_counter"},
          {"failed_unrestricted", "server_counter"},
          {"acl_log_denied", "server_counter"},
          {"restricted_errors", "server_counter"},
          {"workload_commands", "by_design"}}}};
    result.details_json = details.dump();
    std::string gate_list;
    for (const auto& c : gate_set) gate_list += (gate_list.empty() ? "" : ",") + c;
    std::string noperm_list;
    for (const auto& c : noperm) noperm_list += (noperm_list.empty() ? "" : ",") + c;
    Step(ctx, mode + ": gate saw forbidden [" + gate_list +
                  "]; restricted user refused (NOPERM) [" + noperm_list +
                  "]; unrestricted errors=" + std::to_string(failed_unrestricted));
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeRestrictedCommands(const StackConfig& config) {
  return std::make_unique<RestrictedCommands>(config);
}

}  // namespace lab::runners
