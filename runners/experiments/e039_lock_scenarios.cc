// The four lock scenarios E-039A and E-039B share (declared in e039_lock_scenarios.h): fresh
// real `lab-role lock-holder` processes contend for one lock per scenario (TTL ttl_ms = T) and
// record each critical section in lock_interval:
//   pause:          holder A enters; the runner SIGSTOPs it (proved by state T in
//                   /proc/<pid>/stat), starts the contenders, which acquire once A's lock
//                   expires and finish; then SIGCONT: A finishes its section, unaware.
//   unsafe_unlock:  A's section is short but its job runs 1.4 T longer under the lock; its lock
//                   expires, B acquires, A's DEL removes B's lock and C acquires while B is
//                   still inside (A is the first holder, B and C two contenders).
//   timeout_retry:  A's work (1.6 T) outlives the TTL; a retrying contender acquires meanwhile.
//   crash_restart:  A is SIGKILLed by the runner inside its section (waitpid shows signal 9);
//                   a contender acquires after the TTL; A is restarted with --resume, reads its
//                   own open interval from MariaDB and resumes the work it believes it holds
//                   the lock for.
// Overlaps are read back from lock_interval after every holder ended: pairs of closed sections of
// different holders that intersect (holders stamp their sections with the host's wall clock,
// which the database shares). Each holder's exit is checked by the runner in Redis (a live lock
// of a holder still inside was gone).
#include "runners/experiments/e039_lock_scenarios.h"

#include <signal.h>

#include <fstream>
#include <functional>
#include <optional>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

// One holder process of a scenario.
struct HolderPlan {
  std::string name;   // the holder's identity (its lock value and lock_interval.holder)
  double work_t = 0;  // durations in units of the TTL
  double after_write_t = 0;
  double tail_t = 0;
  bool resume = false;
};

struct Running {
  std::string label;
  HolderPlan plan;
  std::optional<ChildProcess> proc;
  bool exited = false;
  RoleOutcome outcome;
  std::multimap<std::string, std::string> Live() const {
    return ParseRoleOutput(proc ? proc->ReadLog() : "");
  }
  bool Said(const std::string& key) const { return Live().count(key) > 0; }
};

// State 'T' in /proc/<pid>/stat: the kernel has the process stopped.
char ProcState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

// Sends SIGCONT to a stopped holder on every exit path (its ChildProcess kills it afterwards
// if it is still running), so a run never leaves a frozen process behind.
class ContinueGuard {
 public:
  explicit ContinueGuard(pid_t pid) : pid_(pid) {}
  ~ContinueGuard() { Continue(); }
  ContinueGuard(const ContinueGuard&) = delete;
  ContinueGuard& operator=(const ContinueGuard&) = delete;
  void Continue() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
    pid_ = -1;
  }

 private:
  pid_t pid_;
};

using Starter = std::function<domain::Result<ChildProcess>(const std::vector<std::string>& args,
                                                           const std::string& label)>;
using Waiter = std::function<RoleOutcome(ChildProcess& process, const std::string& label)>;

// Runs one scenario: starts holders, injects the fault, watches the unlocks, reads back.
class ScenarioDriver {
 public:
  ScenarioDriver(const domain::RunContext& ctx, std::string ns, std::string scenario,
                 std::string prefix, LockPractice practice, std::int64_t ttl_ms, int holders,
                 mysql::Connection& db, redis::Connection& rc, Starter start, Waiter wait)
      : ctx_(ctx),
        ns_(std::move(ns)),
        scenario_(std::move(scenario)),
        lock_key_(prefix + scenario_ + ":lock"),
        token_key_(prefix + scenario_ + ":token"),
        practice_(practice),
        ttl_ms_(ttl_ms),
        holders_(holders),
        db_(db),
        rc_(rc),
        start_(std::move(start)),
        wait_(std::move(wait)) {
    out_.scenario = scenario_;
  }

  ScenarioOutcome Run() {
    if (practice_.writes && !CreateResource()) return std::move(out_);
    bool ran = false;
    if (scenario_ == "pause") ran = Pause();
    if (scenario_ == "unsafe_unlock") ran = UnsafeUnlock();
    if (scenario_ == "timeout_retry") ran = TimeoutRetry();
    if (scenario_ == "crash_restart") ran = CrashRestart();
    // Every holder is gone (exited, or killed by its ChildProcess) before the read-back.
    for (auto& r : running_) {
      if (r->proc && !r->exited) r->proc->Kill();
    }
    Summarise();
    if (ran) ReadBack();
    return std::move(out_);
  }

 private:
  std::int64_t T(double units) const {
    return static_cast<std::int64_t>(units * static_cast<double>(ttl_ms_));
  }
  // Contenders wait behind every other holder at most once: a bound that still ends.
  std::int64_t AcquireTimeoutMs() const { return (holders_ + 4) * ttl_ms_ + 5000; }
  std::chrono::milliseconds Bound() const {
    return std::chrono::milliseconds(AcquireTimeoutMs() + 4 * ttl_ms_ * holders_ + 15000);
  }

  bool Fail(const std::string& why) {
    if (out_.inconclusive.empty()) out_.inconclusive = scenario_ + ": " + why;
    return false;
  }

  bool CreateResource() {
    auto s = db_.Exec(
        "INSERT INTO fenced_resource (run_ns, resource, last_token, value) VALUES (?,?,0,'')",
        {ns_, scenario_});
    return s ? true : Fail("mysql: " + s.error().message);
  }

  Running* Start(const HolderPlan& plan, const std::string& label) {
    std::vector<std::string> args = {"--ns",
                                     ns_,
                                     "--scenario",
                                     scenario_,
                                     "--holder-name",
                                     plan.name,
                                     "--lock-key",
                                     lock_key_,
                                     "--token-key",
                                     token_key_,
                                     "--ttl-ms",
                                     std::to_string(ttl_ms_),
                                     "--work-ms",
                                     std::to_string(T(plan.work_t)),
                                     "--after-write-ms",
                                     std::to_string(T(plan.after_write_t)),
                                     "--tail-ms",
                                     std::to_string(T(plan.tail_t)),
                                     "--acquire-timeout-ms",
                                     std::to_string(AcquireTimeoutMs()),
                                     "--fenced",
                                     practice_.fenced ? "1" : "0",
                                     "--safe-unlock",
                                     practice_.safe_unlock ? "1" : "0",
                                     "--resume",
                                     plan.resume ? "1" : "0"};
    if (practice_.writes) {
      args.push_back("--resource");
      args.push_back(scenario_);
    }
    auto child = start_(args, scenario_ + "-" + label);
    if (!child) {
      Fail("start " + label + ": " + child.error().message);
      return nullptr;
    }
    auto r = std::make_unique<Running>();
    r->label = label;
    r->plan = plan;
    r->proc.emplace(std::move(*child));
    running_.push_back(std::move(r));
    return running_.back().get();
  }

  // The contenders B, C, … (at least `minimum`), started together; they retry for the lock.
  std::vector<Running*> StartContenders(const HolderPlan& like, int minimum) {
    std::vector<Running*> started;
    const int n = std::max(minimum, holders_ - 1);
    for (int i = 0; i < n; ++i) {
      HolderPlan plan = like;
      plan.name = std::string(1, static_cast<char>('B' + i));
      Running* r = Start(plan, plan.name);
      if (r == nullptr) return {};
      started.push_back(r);
    }
    return started;
  }

  // Polls the holders' logs until one of `who` printed `key` (bounded, cancellable).
  Running* WaitForLine(const std::vector<Running*>& who, const std::string& key,
                       std::chrono::milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    while (!ctx_.stop.stop_requested() && SteadyClock::now() < deadline) {
      bool alive = false;
      for (Running* r : who) {
        if (r->Said(key)) return r;
        alive = alive || !r->proc->Wait(0ms, ctx_.stop);
      }
      if (!alive) break;
      std::this_thread::sleep_for(5ms);
    }
    return nullptr;
  }

  std::string WhyNot(const std::vector<Running*>& who, const std::string& what) {
    if (ctx_.stop.stop_requested()) return "cancelled";
    std::string why = what;
    for (Running* r : who) {
      const auto live = r->Live();
      auto err = live.find("error");
      if (err != live.end()) why += "; " + r->label + ": " + err->second;
    }
    return why;
  }

  // Waits until every holder of `who` exited; each exit is checked against Redis at once.
  bool Supervise(const std::vector<Running*>& who) {
    const auto deadline = SteadyClock::now() + Bound();
    for (;;) {
      bool all = true;
      for (Running* r : who) {
        if (r->exited) continue;
        if (r->proc->Wait(0ms, ctx_.stop)) {
          CheckLocksAfter(*r);
          r->outcome = wait_(*r->proc, r->label);
          r->exited = true;
        } else {
          all = false;
        }
      }
      if (all) return true;
      if (ctx_.stop.stop_requested()) return Fail("cancelled");
      if (SteadyClock::now() >= deadline) return Fail("holders did not finish in time");
      std::this_thread::sleep_for(5ms);
    }
  }

  // Right after `exited` unlocked: is there a holder still inside (its interval open in
  // MariaDB) whose lock cannot have expired yet but whose value is no longer the lock's? Then
  // an unlock removed a live lock of someone else — independent of the holders' own reports.
  void CheckLocksAfter(const Running& exited) {
    if (!exited.Said("unlock_deleted")) return;
    struct Inside {
      const Running* r;
      std::string owner;
      std::int64_t interval_id;
      std::int64_t expires_us;
    };
    std::vector<Inside> inside;
    for (const auto& r : running_) {
      if (r.get() == &exited || r->exited || r->plan.resume) continue;
      const auto live = r->Live();
      auto owner = live.find("owner");
      auto at = live.find("acquired_at_us");
      auto id = live.find("interval_id");
      if (owner == live.end() || at == live.end() || id == live.end()) continue;
      inside.push_back({r.get(), owner->second, std::stoll(id->second),
                        std::stoll(at->second) + ttl_ms_ * 1000});
    }
    if (inside.empty()) return;
    const std::int64_t now = NowMicros();
    auto key = rc_.Command({"GET", lock_key_});  // first, then the intervals: see below
    if (!key) return;
    const std::string value = key->is_nil() ? "(nil)" : key->str;
    for (const auto& in : inside) {
      if (now + 50'000 >= in.expires_us) continue;  // could have expired by itself
      // Still open after the GET means it was open at the GET too (it had entered before).
      if (CountOpen(in.interval_id) != 1) continue;
      const bool lost = value != in.owner;
      lock_checks_.push_back({{"after_exit_of", exited.plan.name},
                              {"inside", in.r->plan.name},
                              {"lock_value", value},
                              {"owner", in.owner},
                              {"ms_left_of_ttl", (in.expires_us - now) / 1000},
                              {"lost", lost}});
      if (lost) ++out_.foreign_verified;
    }
  }

  std::int64_t CountOpen(std::int64_t interval_id) {
    auto rows = db_.Query("SELECT COUNT(*) FROM lock_interval WHERE id = ? AND ended_us IS NULL",
                          {interval_id});
    return rows ? rows->Scalar() : -1;
  }

  // SIGSTOP, proved by the kernel's process state.
  bool StopAndProve(pid_t pid) {
    if (::kill(pid, SIGSTOP) != 0) return false;
    for (int i = 0; i < 200; ++i) {
      if (ProcState(pid) == 'T') return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  bool Pause() {
    Running* a = Start({"A", 0.6, 0, 0, false}, "A");
    if (a == nullptr) return false;
    if (!WaitForLine({a}, "entered", 10s)) return Fail(WhyNot({a}, "A did not enter"));
    const auto stopped_at = SteadyClock::now();
    out_.paused = StopAndProve(a->proc->pid());
    ContinueGuard guard(a->proc->pid());
    if (!out_.paused) return Fail("A was not seen stopped (state T) after SIGSTOP");
    if (a->Said("work_done")) return Fail("the pause came after A's work was done");
    auto contenders = StartContenders({"", 0.2, 0.2, 0, false}, 1);
    if (contenders.empty() || !Supervise(contenders)) return false;
    out_.pause_ms = MsSince(stopped_at);
    guard.Continue();
    out_.details["pause"] = {{"pid", a->proc->pid()},
                             {"proc_state_after_sigstop", "T"},
                             {"pause_ms", out_.pause_ms},
                             {"ttl_ms", ttl_ms_}};
    if (out_.pause_ms <= static_cast<double>(ttl_ms_))
      return Fail("the pause was not longer than the TTL");
    return Supervise({a});
  }

  bool UnsafeUnlock() {
    Running* a = Start({"A", 0.1, 0, 1.4, false}, "A");
    if (a == nullptr) return false;
    if (!WaitForLine({a}, "entered", 10s)) return Fail(WhyNot({a}, "A did not enter"));
    auto contenders = StartContenders({"", 0.3, 0.5, 0, false}, 2);
    if (contenders.empty()) return false;
    contenders.push_back(a);
    return Supervise(contenders);
  }

  bool TimeoutRetry() {
    Running* a = Start({"A", 1.6, 0, 0, false}, "A");
    if (a == nullptr) return false;
    if (!WaitForLine({a}, "entered", 10s)) return Fail(WhyNot({a}, "A did not enter"));
    auto contenders = StartContenders({"", 0.2, 0.1, 0, false}, 1);
    if (contenders.empty()) return false;
    contenders.push_back(a);
    return Supervise(contenders);
  }

  bool CrashRestart() {
    Running* a = Start({"A", 4, 0, 0, false}, "A");
    if (a == nullptr) return false;
    if (!WaitForLine({a}, "entered", 10s)) return Fail(WhyNot({a}, "A did not enter"));
    ::kill(a->proc->pid(), SIGKILL);
    if (!Supervise({a})) return false;
    out_.killed = a->outcome.finished && a->outcome.KilledByFailpoint();
    out_.details["crash"] = {{"pid", a->proc->pid()},
                             {"wait_status", a->outcome.status.Describe()}};
    if (!out_.killed) return Fail("A did not die by SIGKILL: " + a->outcome.status.Describe());
    auto contenders = StartContenders({"", 0.1, 0.7, 0, false}, 1);
    if (contenders.empty()) return false;
    // A comes back while a contender is inside, as a restarted worker would, and resumes.
    if (WaitForLine(contenders, "work_done", std::chrono::milliseconds(AcquireTimeoutMs())) ==
        nullptr) {
      return Fail(WhyNot(contenders, "no contender acquired after the crash"));
    }
    Running* resumed = Start({"A", 0.1, 0, 0, true}, "A-resumed");
    if (resumed == nullptr) return false;
    contenders.push_back(resumed);
    return Supervise(contenders);
  }

  // Every holder must have done its part (except the one the runner killed).
  void Summarise() {
    Json holders = Json::array();
    for (const auto& r : running_) {
      const auto& v = r->outcome.values;
      Json h = {{"label", r->label},
                {"holder", r->plan.name},
                {"pid", r->proc ? r->proc->pid() : -1},
                {"ended", r->outcome.finished ? r->outcome.status.Describe() : "not finished"}};
      for (const char* key :
           {"token", "acquire_attempts", "write", "unlock_before", "unlock_deleted",
            "unlock_deleted_foreign", "unlock_kept_foreign", "error"}) {
        auto it = v.find(key);
        if (it != v.end()) h[key] = it->second;
      }
      holders.push_back(h);
      out_.foreign_reported += r->outcome.Value("unlock_deleted_foreign", "0") == "1" ? 1 : 0;
      out_.kept_foreign += r->outcome.Value("unlock_kept_foreign", "0") == "1" ? 1 : 0;
      out_.writes_accepted += r->outcome.Value("write") == "accepted" ? 1 : 0;
      out_.writes_refused += r->outcome.Value("write") == "refused" ? 1 : 0;
      const bool meant_to_die = scenario_ == "crash_restart" && r->label == "A";
      if (!meant_to_die && r->exited &&
          (!r->outcome.status.exited || r->outcome.status.code != 0)) {
        Fail(r->label + " " + r->outcome.status.Describe() + ": " + r->outcome.Value("error"));
      }
    }
    out_.details["holders"] = holders;
    out_.details["lock_checks"] = lock_checks_;
    out_.details["lock_key"] = lock_key_;
  }

  // Overlaps and the sections' timeline, from lock_interval after every holder ended.
  void ReadBack() {
    auto pairs = db_.Query(
        "SELECT COUNT(*), COALESCE(SUM(LEAST(a.ended_us, b.ended_us) - "
        "GREATEST(a.started_us, b.started_us)), 0) FROM lock_interval a JOIN lock_interval b "
        "ON b.run_ns = a.run_ns AND b.scenario = a.scenario AND b.id > a.id AND "
        "b.holder <> a.holder WHERE a.run_ns = ? AND a.scenario = ? AND a.ended_us IS NOT NULL "
        "AND b.ended_us IS NOT NULL AND a.started_us < b.ended_us AND b.started_us < a.ended_us",
        {ns_, scenario_});
    if (!pairs || pairs->rows.empty()) {
      Fail("overlaps could not be counted: " + (pairs ? "no row" : pairs.error().message));
      return;
    }
    out_.overlaps = std::stoll(pairs->rows[0][0].value_or("0"));
    out_.overlap_ms = std::stod(pairs->rows[0][1].value_or("0")) / 1000.0;
    auto rows = db_.Query(
        "SELECT holder, token, started_us, ended_us FROM lock_interval WHERE run_ns = ? AND "
        "scenario = ? ORDER BY started_us, id",
        {ns_, scenario_});
    if (!rows) {
      Fail("lock_interval: " + rows.error().message);
      return;
    }
    Timeline(*rows);
  }

  // The sections relative to the first entry, and how many holders were inside over time.
  void Timeline(const mysql::Rows& rows) {
    if (rows.rows.empty()) return;
    const std::int64_t t0 = std::stoll(rows.rows[0][2].value_or("0"));
    auto s = [t0](std::int64_t us) { return static_cast<double>(us - t0) / 1e6; };
    Json sections = Json::array();
    std::vector<std::pair<std::int64_t, int>> edges;
    int unclosed = 0;
    for (const auto& row : rows.rows) {
      const std::int64_t start = std::stoll(row[2].value_or("0"));
      Json j = {{"holder", row[0].value_or("")},
                {"token", std::stoll(row[1].value_or("0"))},
                {"start_s", s(start)}};
      if (row[3]) {
        const std::int64_t end = std::stoll(*row[3]);
        j["end_s"] = s(end);
        edges.push_back({start, 1});
        edges.push_back({end, -1});
      } else {
        j["end_s"] = nullptr;  // a crashed holder never closed it
        ++unclosed;
      }
      sections.push_back(j);
    }
    std::sort(edges.begin(), edges.end());
    Json inside = Json::array();
    int n = 0;
    for (const auto& [us, delta] : edges) {
      inside.push_back({{"t_s", s(us)}, {"holders_inside", n}});
      n += delta;
      inside.push_back({{"t_s", s(us)}, {"holders_inside", n}});
    }
    out_.details["sections"] = sections;
    out_.details["holders_inside"] = inside;
    out_.details["unclosed_sections"] = unclosed;
  }

  const domain::RunContext& ctx_;
  std::string ns_;
  std::string scenario_;
  std::string lock_key_;
  std::string token_key_;
  LockPractice practice_;
  std::int64_t ttl_ms_;
  int holders_;
  mysql::Connection& db_;
  redis::Connection& rc_;
  Starter start_;
  Waiter wait_;
  std::vector<std::unique_ptr<Running>> running_;
  Json lock_checks_ = Json::array();
  ScenarioOutcome out_;
};

}  // namespace

const std::vector<std::string>& LockScenarios::Scenarios() {
  static const std::vector<std::string> names = {"pause", "unsafe_unlock", "timeout_retry",
                                                 "crash_restart"};
  return names;
}

std::string LockScenarios::KeyPrefix(const domain::RunContext& ctx, const std::string& mode) {
  return "lab:" + SafeName(ctx.ns) + ":" + mode +
         (ctx.repetition > 0 ? "_r" + std::to_string(ctx.repetition) : "") + ":";
}

ScenarioOutcome LockScenarios::RunScenario(const domain::RunContext& ctx, const std::string& mode,
                                           domain::ModeResult& result, mysql::Connection& db,
                                           const std::string& scenario,
                                           const LockPractice& practice) const {
  auto rc = OpenRedis();
  if (!rc) {
    ScenarioOutcome out;
    out.scenario = scenario;
    out.inconclusive = scenario + ": redis: " + rc.error().message;
    return out;
  }
  Step(ctx, mode + ": scenario " + scenario);
  auto start = [&](const std::vector<std::string>& args, const std::string& label) {
    return StartRole(ctx, mode, result, "lock-holder", args, label);
  };
  auto wait = [&](ChildProcess& process, const std::string& label) {
    return WaitRole(ctx, process, 0ms, result, label);  // called once it has exited
  };
  ScenarioDriver driver(ctx, RunNs(ctx, mode), scenario, KeyPrefix(ctx, mode), practice,
                        domain::GetInt(ctx.params, "ttl_ms"),
                        static_cast<int>(domain::GetInt(ctx.params, "holders")), db, **rc, start,
                        wait);
  return driver.Run();
}

}  // namespace lab::runners
