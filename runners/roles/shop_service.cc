// lab-role shop-service: the HTTP service under test of E-023 (partial outages). It reads items
// through a Redis cache in front of MariaDB and takes orders that must reach Kafka; Redis,
// MariaDB and Kafka are taken down in turn under load. One acceptor thread reads each request
// (one per connection) and hands it to a BoundedExecutor (--workers, queue 4 x workers).
//   GET /item?id=N    read-through cache: key <key-prefix>item:N = "<price>|<cached at, epoch ms>"
//                     over the `product` rows of run_ns "<ns>_<mode>"
//   POST /order?id=N  an `orders` row of that run_ns, whose event (event_id "<run_ns>-<N>") must
//                     reach --topic
//   GET /metrics      the service's own counters (JSON); GET /healthz
// --practice naive (the anti-pattern):
//   Redis calls wait up to --redis-timeout-ms (2000) and a Redis error fails the read (500);
//   cache keys expire after --cache-ttl-ms, then the read goes to MariaDB on the worker's
//   thread with the client's long timeouts (connect 3 s, read/write 5 s); a MariaDB error is a
//   500. An order is INSERTed (its own transaction), then its event is produced and the request
//   waits for the delivery (acks=all, message.timeout.ms = request.timeout.ms =
//   --message-timeout-ms): a delivery that fails leaves the committed order without its event
//   (500).
// --practice degrade (the practice):
//   a circuit breaker per dependency (window 10, min 5 calls, 50% failures or slow calls, slow =
//   150 ms Redis / 250 ms MariaDB, open --breaker-open-ms, 2 trial calls); Redis calls bounded
//   by 100 ms and a Redis failure or open breaker reads MariaDB directly (X-Cache: bypass);
//   MariaDB work runs on its own bounded pool (8 threads, 8 queued; connection timeouts 1 s,
//   the client's floor) and a request waits for it at most --db-deadline-ms (300). Cache keys
//   live 60 s and are refreshed once older than --cache-ttl-ms; when MariaDB cannot answer, the
//   older value is served (200, X-Stale: 1), or 503 when there is none. An order is written with
//   its outbox_event row in one transaction (the outbox-relay role publishes it); when that
//   cannot be made durable in time, 503 at once (X-Rejected), never a 200.
// SIGTERM: stop accepting, finish queued work, report the counters (Emit), exit 0.
#include <atomic>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runners/common/util.h"
#include "runners/kafka/kafka_client.h"
#include "runners/mysql/mysql_client.h"
#include "runners/redis/redis_client.h"
#include "runners/roles/role_common.h"
#include "runners/service/bounded_executor.h"
#include "runners/service/circuit_breaker.h"
#include "runners/service/http_wire.h"
#include "runners/service/resource_pool.h"

namespace lab::runners::roles {
namespace {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;
namespace svc = lab::runners::service;
using Headers = std::vector<std::pair<std::string, std::string>>;

struct Settings {
  std::string run_ns;
  std::string key_prefix;
  std::string topic;
  std::string bootstrap;
  bool degrade = false;
  int port = 0;
  int workers = 16;
  Ms cache_ttl{1000};
  Ms redis_timeout{2000};
  Ms db_deadline{300};
  Ms message_timeout{1000};
  Ms breaker_open{1000};
  std::string redis_host;
  int redis_port = 0;
};

struct Reply {
  int status = 200;
  nlohmann::json body;
  Headers headers;
};

// A value read from MariaDB: the price, or why there is none.
struct DbRead {
  bool ok = false;
  bool found = false;
  std::int64_t price = 0;
  std::string error;
};

svc::BreakerOptions Breaker(Ms slow, Ms open) {
  svc::BreakerOptions b;
  b.window = 10;
  b.min_calls = 5;
  b.failure_rate_pct = 50;
  b.slow_call = slow;
  b.slow_rate_pct = 50;
  b.open_wait = open;
  b.probes = 2;
  return b;
}

class ShopService {
 public:
  explicit ShopService(const RoleArgs& args) : s_(Parse(args)), executor_(Executor()) {
    mysql::MysqlConfig db = MysqlFromArgs(args);
    if (s_.degrade) {
      db.connect_timeout = db.read_timeout = db.write_timeout = 1000ms;  // the client's floor
      redis_breaker_ = std::make_unique<svc::CircuitBreaker>(Breaker(150ms, s_.breaker_open),
                                                             clock_, Transition("redis"));
      db_breaker_ = std::make_unique<svc::CircuitBreaker>(Breaker(250ms, s_.breaker_open), clock_,
                                                          Transition("mysql"));
      db_executor_ =
          std::make_unique<svc::BoundedExecutor>(8, 8, svc::RejectionPolicy::kAbort, clock_);
    } else {
      db.connect_timeout = 3000ms;
      db.read_timeout = db.write_timeout = 5000ms;
    }
    db_pool_ = std::make_unique<svc::ResourcePool<mysql::Connection>>(
        static_cast<std::size_t>(s_.workers), [db] { return mysql::Connection::Open(db); }, clock_);
    redis_pool_ = std::make_unique<svc::ResourcePool<redis::Connection>>(
        static_cast<std::size_t>(s_.workers),
        [this] { return redis::Connection::Open(s_.redis_host, s_.redis_port, s_.redis_timeout); },
        clock_);
  }

  int Run() {
    if (!s_.degrade) {
      auto p = kafka::Producer::Create(
          s_.bootstrap, {{"acks", "all"},
                         {"linger.ms", "0"},
                         {"message.timeout.ms", std::to_string(s_.message_timeout.count())},
                         {"request.timeout.ms", std::to_string(s_.message_timeout.count())}});
      if (!p) {
        Emit("error", p.error().message);
        return 1;
      }
      producer_ = std::move(*p);
      producer_->SetFlushOnDestroy(0ms);
      poller_ = std::jthread([this](std::stop_token stop) { PollDeliveries(stop); });
    }
    auto listener = svc::Listener::Open(s_.port, 512);
    if (!listener) {
      Emit("error", listener.error().message);
      return 1;
    }
    Emit("listening", std::int64_t{listener->port()});
    while (!StopRequested()) {
      const int fd = listener->Accept(100ms);
      if (fd < 0) continue;
      auto request = svc::ReadRequest(fd, 2000ms);
      if (!request) {
        svc::CloseSocket(fd);
        continue;
      }
      Route(fd, std::move(*request));
    }
    executor_->Shutdown();
    if (db_executor_) db_executor_->Shutdown();
    if (poller_.joinable()) {
      poller_.request_stop();
      poller_.join();
    }
    const nlohmann::json totals = Metrics();  // named: items() of a temporary would dangle
    for (const auto& [key, value] : totals.items()) {
      if (value.is_number_integer()) Emit(key, value.get<std::int64_t>());
      if (value.is_string()) Emit(key, value.get<std::string>());
    }
    return 0;
  }

 private:
  static Settings Parse(const RoleArgs& args) {
    Settings s;
    s.run_ns = args.Get("ns") + "_" + args.Get("mode", "check");
    s.key_prefix = args.Get("key-prefix", "lab:shop:");
    s.topic = args.Get("topic");
    s.bootstrap = args.Get("bootstrap");
    s.degrade = args.Get("practice", "naive") == "degrade";
    s.port = static_cast<int>(args.Int("port", 0));
    s.workers = static_cast<int>(std::clamp<std::int64_t>(args.Int("workers", 16), 1, 256));
    s.cache_ttl = Ms(args.Int("cache-ttl-ms", 1000));
    s.redis_timeout = Ms(args.Int("redis-timeout-ms", s.degrade ? 100 : 2000));
    s.db_deadline = Ms(args.Int("db-deadline-ms", 300));
    s.message_timeout = Ms(args.Int("message-timeout-ms", 1000));
    s.breaker_open = Ms(args.Int("breaker-open-ms", 1000));
    s.redis_host = args.Get("redis-host", "127.0.0.1");
    s.redis_port = static_cast<int>(args.Int("redis-port", 16379));
    return s;
  }

  std::unique_ptr<svc::BoundedExecutor> Executor() {
    return std::make_unique<svc::BoundedExecutor>(s_.workers, 4 * s_.workers,
                                                  svc::RejectionPolicy::kAbort, clock_);
  }

  svc::CircuitBreaker::Listener Transition(std::string dependency) {
    return [this, dependency](const svc::BreakerTransition& t) {
      std::lock_guard lock(transitions_mu_);
      transitions_.push_back({{"t_ms", svc::EpochMs()},
                              {"dependency", dependency},
                              {"to", svc::ToString(t.to)},
                              {"reason", t.reason}});
    };
  }

  void Route(int fd, svc::WireRequest request) {
    if (request.path == "/healthz" || request.path == "/metrics") {
      svc::WriteResponse(fd, 200, request.path == "/metrics" ? Metrics().dump() : "{}");
      svc::CloseSocket(fd);
      return;
    }
    const bool item = request.path == "/item";
    if (!item && request.path != "/order") {
      svc::WriteResponse(fd, 404, R"({"error":"not found"})");
      svc::CloseSocket(fd);
      return;
    }
    const std::int64_t id = std::atoll(svc::QueryParam(request.query, "id").c_str());
    const auto submitted = executor_->Submit([this, fd, item, id] {
      const Reply r = item ? Item(id) : Order(id);
      svc::WriteResponse(fd, r.status, r.body.dump(), r.headers);
      svc::CloseSocket(fd);
    });
    if (submitted == svc::BoundedExecutor::Submitted::kRejected) {
      ++queue_full_;
      svc::WriteResponse(fd, 503, R"({"error":"queue full"})", {{"X-Rejected", "queue-full"}});
      svc::CloseSocket(fd);
    }
  }

  std::string Key(std::int64_t id) const { return s_.key_prefix + "item:" + std::to_string(id); }

  // One Redis command through the pool (and the breaker with the practice); nullopt: failed or
  // short-circuited.
  std::optional<redis::Reply> RedisCall(const std::vector<std::string>& argv) {
    svc::CircuitBreaker::Permit permit{true, false, 0};
    if (redis_breaker_) {
      permit = redis_breaker_->TryAcquire();
      if (!permit.allowed) return std::nullopt;
    }
    const auto start = clock_.Now();
    std::optional<redis::Reply> out;
    if (auto lease = redis_pool_->Acquire(s_.redis_timeout); lease) {
      auto r = (**lease).Command(argv);
      if (r && !r->is_error()) out = std::move(*r);
    }
    if (!out) ++redis_errors_;
    if (redis_breaker_) redis_breaker_->Record(permit, clock_.Now() - start, !out.has_value());
    return out;
  }

  static DbRead ReadPrice(mysql::Connection& c, std::int64_t run_id, const std::string& run_ns) {
    DbRead out;
    auto rows =
        c.Query("SELECT price FROM product WHERE run_ns = ? AND product_id = ?", {run_ns, run_id});
    if (!rows) {
      out.error = "mysql: " + rows.error().message;
      return out;
    }
    out.ok = true;
    out.found = !rows->rows.empty();
    if (out.found) out.price = std::stoll(rows->rows[0][0].value_or("0"));
    return out;
  }

  // `work` on a pooled MariaDB connection. naive: on this thread, as long as the client's
  // timeouts make it. degrade: through the breaker, on the DB pool, waited for at most
  // db_deadline (a late call goes on in the background and its connection is dropped if broken).
  template <typename T>
  T Db(std::function<T(mysql::Connection&)> work, bool& short_circuited) {
    short_circuited = false;
    auto run = [this, work]() -> T {
      auto lease = db_pool_->Acquire(s_.degrade ? s_.db_deadline : 5000ms);
      if (!lease) {
        T t;
        t.error = "mysql: " + lease.error().message;
        return t;
      }
      T t = work(**lease);
      if (!t.ok && (*lease)->broken()) lease->Discard();
      return t;
    };
    if (!s_.degrade) {
      T t = run();
      if (!t.ok) ++db_errors_;
      return t;
    }
    auto permit = db_breaker_->TryAcquire();
    if (!permit.allowed) {
      short_circuited = true;
      T t;
      t.error = "mysql: breaker open";
      return t;
    }
    const auto start = clock_.Now();
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    T t;
    if (db_executor_->Submit([run, promise] { promise->set_value(run()); }) ==
        svc::BoundedExecutor::Submitted::kRejected) {
      t.error = "mysql: db pool busy";
    } else if (future.wait_for(s_.db_deadline) != std::future_status::ready) {
      ++db_timeouts_;
      t.error = "mysql: no answer within " + std::to_string(s_.db_deadline.count()) + " ms";
    } else {
      t = future.get();
    }
    if (!t.ok) ++db_errors_;
    db_breaker_->Record(permit, clock_.Now() - start, !t.ok);
    return t;
  }

  Reply Item(std::int64_t id) {
    ++reads_;
    const std::int64_t now = svc::EpochMs();
    std::optional<std::int64_t> cached;
    std::int64_t cached_at = 0;
    auto got = RedisCall({"GET", Key(id)});
    if (!got && !s_.degrade) return {500, {{"error", "redis unavailable"}}, {}};
    if (got && !got->is_nil()) {
      const auto bar = got->str.find('|');
      cached = std::atoll(got->str.substr(0, bar).c_str());
      cached_at = bar == std::string::npos ? 0 : std::atoll(got->str.substr(bar + 1).c_str());
      if (!s_.degrade || now - cached_at < s_.cache_ttl.count()) {
        ++cache_hits_;
        return {200, {{"id", id}, {"price", *cached}}, {{"X-Cache", "hit"}}};
      }
    }
    bool short_circuited = false;
    const std::string run_ns = s_.run_ns;
    const DbRead db = Db<DbRead>(
        [id, run_ns](mysql::Connection& c) { return ReadPrice(c, id, run_ns); }, short_circuited);
    if (db.ok) {
      if (!db.found) return {404, {{"error", "no such item"}}, {}};
      const std::string ttl = std::to_string(s_.degrade ? 60000 : s_.cache_ttl.count());
      (void)RedisCall(
          {"SET", Key(id), std::to_string(db.price) + "|" + std::to_string(now), "PX", ttl});
      return {200, {{"id", id}, {"price", db.price}}, {{"X-Cache", got ? "miss" : "bypass"}}};
    }
    if (s_.degrade && cached) {  // MariaDB cannot answer: the last value we had, marked stale
      ++stale_reads_;
      return {
          200, {{"id", id}, {"price", *cached}, {"stale_ms", now - cached_at}}, {{"X-Stale", "1"}}};
    }
    if (s_.degrade) {
      return {503, {{"error", db.error}}, {{"X-Rejected", short_circuited ? "breaker" : "db"}}};
    }
    return {500, {{"error", db.error}}, {}};
  }

  struct DbWrite {
    bool ok = false;
    std::string error;
  };

  Reply Order(std::int64_t id) {
    ++writes_;
    const std::string event_id = s_.run_ns + "-" + std::to_string(id);
    const std::int64_t now_us = NowMicros();
    const nlohmann::json payload = {{"event_id", event_id}, {"order_id", id}, {"amount", id % 900}};
    const std::string run_ns = s_.run_ns;
    const bool outbox = s_.degrade;
    bool short_circuited = false;
    const DbWrite w = Db<DbWrite>(
        [=](mysql::Connection& c) {
          DbWrite out;
          auto s = mysql::InTransaction(
              c,
              [&](mysql::Connection& t) -> domain::Status {
                auto r = t.Exec(
                    "INSERT INTO orders (run_ns, order_id, amount, version, created_at_us) "
                    "VALUES (?,?,?,1,?)",
                    {run_ns, id, id % 900, now_us});
                if (!r) return r.error();
                if (!outbox) return {};
                auto o = t.Exec(
                    "INSERT INTO outbox_event (run_ns, event_id, aggregate_id, event_type, "
                    "payload, created_at_us) VALUES (?,?,?,'OrderPlaced',?,?)",
                    {run_ns, event_id, id, payload.dump(), now_us});
                if (!o) return o.error();
                return {};
              },
              1);
          out.ok = s.ok();
          if (!s) out.error = "mysql: " + s.error().message;
          return out;
        },
        short_circuited);
    if (!w.ok) {
      if (s_.degrade) {
        ++rejected_writes_;
        return {503,
                {{"error", w.error}},
                {{"X-Rejected", short_circuited ? "breaker" : "not-durable"}}};
      }
      return {500, {{"error", w.error}}, {}};
    }
    if (s_.degrade) return {200, {{"order_id", id}, {"outbox", true}}, {}};
    // The anti-pattern: the event after the commit, the request waiting for its delivery.
    auto delivery = std::make_shared<std::promise<bool>>();
    auto delivered_future = delivery->get_future();
    {
      std::lock_guard lock(producer_mu_);
      pending_[id] = delivery;
      if (auto p = producer_->Produce(s_.topic, -1, std::to_string(id), payload.dump(),
                                      {{"event_id", event_id}}, id);
          !p) {
        pending_.erase(id);
        delivery->set_value(false);
      }
    }
    const bool delivered =
        delivered_future.wait_for(s_.message_timeout + 2000ms) == std::future_status::ready &&
        delivered_future.get();
    if (!delivered) {
      ++kafka_errors_;
      return {500, {{"error", "kafka: the event was not delivered"}, {"committed", true}}, {}};
    }
    return {200, {{"order_id", id}}, {}};
  }

  // Serves the delivery reports to the requests waiting for them (the wrapper's report list is
  // touched under producer_mu_ only).
  void PollDeliveries(const std::stop_token& stop) {
    while (!stop.stop_requested()) {
      std::vector<kafka::DeliveryReport> reports;
      {
        std::lock_guard lock(producer_mu_);
        producer_->Poll(0ms);
        reports = producer_->TakeReports();
        for (const auto& r : reports) {
          auto it = pending_.find(r.seq);
          if (it == pending_.end()) continue;
          it->second->set_value(r.err == RD_KAFKA_RESP_ERR_NO_ERROR);
          pending_.erase(it);
        }
      }
      std::this_thread::sleep_for(5ms);
    }
  }

  nlohmann::json Metrics() {
    const auto db = db_pool_->stats();
    nlohmann::json j = {{"practice", s_.degrade ? "degrade" : "naive"},
                        {"reads", reads_.load()},
                        {"writes", writes_.load()},
                        {"cache_hits", cache_hits_.load()},
                        {"stale_reads", stale_reads_.load()},
                        {"rejected_writes", rejected_writes_.load()},
                        {"redis_errors", redis_errors_.load()},
                        {"db_errors", db_errors_.load()},
                        {"db_timeouts", db_timeouts_.load()},
                        {"kafka_errors", kafka_errors_.load()},
                        {"queue_full", queue_full_.load()},
                        {"db_pool_timeouts", db.timeouts},
                        {"busy_workers", executor_->stats().busy}};
    if (s_.degrade) {
      j["redis_breaker"] = svc::ToString(redis_breaker_->State());
      j["mysql_breaker"] = svc::ToString(db_breaker_->State());
      j["redis_short_circuits"] = redis_breaker_->short_circuited();
      j["mysql_short_circuits"] = db_breaker_->short_circuited();
    }
    std::lock_guard lock(transitions_mu_);
    j["breaker_transitions"] = transitions_;
    return j;
  }

  const Settings s_;
  svc::SteadyClock clock_;
  std::unique_ptr<svc::BoundedExecutor> executor_;
  std::unique_ptr<svc::BoundedExecutor> db_executor_;  // degrade only
  std::unique_ptr<svc::CircuitBreaker> redis_breaker_;
  std::unique_ptr<svc::CircuitBreaker> db_breaker_;
  std::unique_ptr<svc::ResourcePool<mysql::Connection>> db_pool_;
  std::unique_ptr<svc::ResourcePool<redis::Connection>> redis_pool_;
  std::mutex producer_mu_;
  std::unique_ptr<kafka::Producer> producer_;  // guarded by producer_mu_ once serving
  std::map<std::int64_t, std::shared_ptr<std::promise<bool>>> pending_;  // guarded by producer_mu_
  std::jthread poller_;                                                  // naive: PollDeliveries
  std::atomic<std::int64_t> reads_{0}, writes_{0}, cache_hits_{0}, stale_reads_{0},
      rejected_writes_{0}, redis_errors_{0}, db_errors_{0}, db_timeouts_{0}, kafka_errors_{0},
      queue_full_{0};
  std::mutex transitions_mu_;
  nlohmann::json transitions_ = nlohmann::json::array();  // guarded by transitions_mu_
};

}  // namespace

int RunShopService(const RoleArgs& args) {
  StopOnSigterm();
  ShopService service(args);
  return service.Run();
}

}  // namespace lab::runners::roles
