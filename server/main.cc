// The composition root: reads the configuration, opens the store, builds the lab's parts in
// dependency order (class Lab), recovers after a crash, and shuts down in a written order:
// stop accepting -> refuse new runs -> cancel running runs (cleanup runs) -> join workers ->
// join the cleanup retrier -> stop I/O -> close the store.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <variant>

#include "domain/catalog.h"
#include "runners/isolated_runner.h"
#include "runners/runner_factory.h"
#include "server/config.h"
#include "server/http/api.h"
#include "server/http/http_server.h"
#include "server/metrics/run_telemetry.h"
#include "server/openapi.h"
#include "server/runs/cleanup_retrier.h"
#include "server/runs/readiness_monitor.h"
#include "server/runs/run_executor.h"
#include "server/runs/run_lifecycle.h"
#include "server/runs/run_service.h"
#include "server/runs/worker_pool.h"
#include "server/store/run_store.h"

namespace {

using namespace lab::server;
using lab::domain::ExperimentRunner;

class SystemClock : public lab::domain::Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
};

// A failure before the server serves: the message for stderr and the exit status (2: the
// configuration is wrong, 1: the machine refused, 0: --help).
struct Refusal {
  int status;
  std::string message;
};

std::set<std::string> Ids(const std::map<std::string, ExperimentRunner*>& runners) {
  std::set<std::string> ids;
  for (const auto& [id, _] : runners) ids.insert(id);
  return ids;
}

// Every part of a serving lab, built in dependency order (the members' order) and torn down in
// reverse.
class Lab {
 public:
  Lab(const ServerConfig& config, TokenTable tokens, RunStore& store, const SystemClock& clock)
      : config_(config),
        anonymous_(tokens.empty()),
        store_(store),
        runner_list_(
            lab::runners::IsolateRunners(lab::runners::MakeRunners(config.stack), config.stack)),
        runners_(RunnersById(runner_list_)),
        probe_(lab::runners::MakeStackProbe(config.stack)),
        // A waiting run's step log says what it waits for (a lock another run holds).
        queue_(config.queue_capacity,
               [&store](const std::string& id, const std::string& why) {
                 (void)store.AppendStep(id, "queued: " + why);
               }),
        executor_(store, lifecycle_, telemetry_, runners_, probe_.get(), health_,
                  ExecutorOptionsFor()),
        pool_(queue_, executor_, metrics_, config.workers),
        runs_(store, queue_, executor_, lifecycle_, telemetry_),
        limiter_(config.rate_limit, config.rate_burst),
        readiness_(*probe_, health_,
                   {lab::domain::kPartKafka, lab::domain::kPartRegistry, lab::domain::kPartMysql,
                    lab::domain::kPartRedis, lab::domain::kPartRedisCluster},
                   std::chrono::milliseconds(1000), std::chrono::milliseconds(2000),
                   [this](const std::string& part) { StackRecovered(part); }),
        // Retries cleanups that could not finish when the readiness monitor finds their parts
        // healthy.
        retrier_(
            store, clock,
            RunnerCleanupAttempt(store, runners_, probe_.get(), std::chrono::milliseconds(3000)),
            [this]() -> std::optional<std::vector<lab::domain::PartHealth>> {
              auto snap = readiness_.Latest();
              if (!snap) return std::nullopt;
              return snap->parts;
            }),
        api_(store, runs_, metrics_, &readiness_, health_, std::move(tokens), limiter_,
             Ids(runners_), ApiOptionsFor(), &retrier_),
        contexts_(config.http_threads),
        server_(contexts_, api_, HttpServerOptionsFor()) {}

  // Recovers, listens, starts every thread, serves until SIGINT or SIGTERM, shuts down.
  std::optional<Refusal> Serve();

 private:
  static std::map<std::string, ExperimentRunner*> RunnersById(
      const std::vector<std::unique_ptr<ExperimentRunner>>& list) {
    std::map<std::string, ExperimentRunner*> out;
    for (const auto& r : list) out[std::string(r->ExperimentId())] = r.get();
    return out;
  }
  ExecutorOptions ExecutorOptionsFor() {
    ExecutorOptions options;
    options.on_cleanup_pending = [this](const std::string&) { retrier_.Wake(); };
    return options;
  }
  ApiOptions ApiOptionsFor() const;
  HttpServerOptions HttpServerOptionsFor() const;
  std::optional<Refusal> Recover();
  std::optional<Refusal> Listen();
  void StackRecovered(const std::string& part);
  void ShutDown();

  const ServerConfig& config_;
  const bool anonymous_;  // no tokens: loopback only, every caller an admin
  RunStore& store_;
  std::vector<std::unique_ptr<ExperimentRunner>> runner_list_;
  std::map<std::string, ExperimentRunner*> runners_;
  std::unique_ptr<lab::domain::StackProbe> probe_;
  LabMetrics metrics_;
  RunTelemetry telemetry_{metrics_};
  StackHealth health_;
  RunQueue queue_;
  RunLifecycle lifecycle_{store_, telemetry_};
  RunExecutor executor_;
  WorkerPool pool_;
  RunService runs_;
  RateLimiter limiter_;
  ReadinessMonitor readiness_;
  CleanupRetrier retrier_;
  Api api_;
  IoContextPool contexts_;
  HttpServer server_;
  std::size_t recovered_queued_ = 0;
  std::size_t interrupted_ = 0;
  int swept_ = 0;
  std::thread shutdown_thread_;
};

ApiOptions Lab::ApiOptionsFor() const {
  ApiOptions options;
  options.web_root = config_.web_root;
  options.openapi_json = std::string(kOpenApiJson);
  options.allow_anonymous = anonymous_;
  options.listen_host = config_.listen_host;
  options.allowed_hosts = config_.allowed_hosts;
  options.max_event_streams = config_.max_event_streams;
  return options;
}

HttpServerOptions Lab::HttpServerOptionsFor() const {
  HttpServerOptions options;
  options.body_limit = config_.body_limit;
  options.read_timeout = std::chrono::seconds(config_.read_timeout_seconds);
  options.idle_timeout = std::chrono::seconds(config_.idle_timeout_seconds);
  return options;
}

void Lab::StackRecovered(const std::string& part) {
  std::clog << "event=stack.recovered part=\"" << part << "\"\n";
  metrics_.SetStackDirty(health_.dirty());
  (void)store_.AppendAudit("stack.recovered", part.substr(0, part.find(' ')), "",
                           nlohmann::json{{"was", part}, {"checked_by", "readiness probe"}}.dump(
                               -1, ' ', false, nlohmann::json::error_handler_t::replace),
                           Actor{"system", ""});
}

// Interrupted runs are marked and queued ones queued again; then the runs whose cleanup never
// ran to its end (the interrupted ones, older runs) are queued for the cleanup retrier, before
// anything starts.
std::optional<Refusal> Lab::Recover() {
  auto recovery = runs_.Recover();
  if (!recovery.ok()) return Refusal{1, "recovery: " + recovery.error().message};
  recovered_queued_ = recovery->queued.size();
  interrupted_ = recovery->interrupted.size();
  auto swept = SweepRunsNeverCleaned(store_);
  if (!swept.ok()) return Refusal{1, "cleanup sweep: " + swept.error().message};
  swept_ = *swept;
  return std::nullopt;
}

std::optional<Refusal> Lab::Listen() {
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(
      config_.listen_host == "localhost" ? "127.0.0.1" : config_.listen_host, ec);
  if (ec) return Refusal{2, "--listen host '" + config_.listen_host + "' is not an IP address"};
  if (auto s = server_.Listen({address, config_.listen_port}); !s.ok())
    return Refusal{1, s.error().message};
  if (!config_.port_file.empty()) std::ofstream(config_.port_file) << server_.port() << "\n";
  return std::nullopt;
}

std::optional<Refusal> Lab::Serve() {
  if (auto refused = Recover()) return refused;
  readiness_.Start();
  if (auto refused = Listen()) return refused;
  server_.Start();
  pool_.Start();
  retrier_.Start();
  std::clog << "event=server.started listen=" << config_.listen_host << ":" << server_.port()
            << " workers=" << config_.workers << " runners=" << runners_.size()
            << " recovered_queued=" << recovered_queued_ << " interrupted=" << interrupted_
            << " cleanups_swept=" << swept_ << " cleanups_pending=" << retrier_.counts().pending
            << " auth=" << (anonymous_ ? "local-only" : "tokens") << "\n";

  boost::asio::signal_set signals(contexts_.main(), SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code&, int signal_number) {
    std::clog << "event=server.stopping signal=" << signal_number << "\n";
    server_.StopAccepting();
    shutdown_thread_ = std::thread([this] { ShutDown(); });
  });
  contexts_.Run();
  if (shutdown_thread_.joinable()) shutdown_thread_.join();
  std::clog << "event=server.stopped\n";
  return std::nullopt;
}

// New runs are refused and no queued run starts (it stays queued for the next start); running
// runs are cancelled and their cleanup runs, within the shutdown timeout.
void Lab::ShutDown() {
  int cancelled = runs_.Drain();
  std::clog << "event=server.cancelling runs=" << cancelled << "\n";
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(config_.shutdown_timeout_seconds);
  while (pool_.busy() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (pool_.busy() > 0) {
    // A runner ignored its stop token: its run stays 'running' in the store and becomes
    // 'interrupted' on the next start. Nothing accepted is lost.
    std::clog << "event=server.forced_exit busy_workers=" << pool_.busy() << "\n";
    std::clog.flush();
    std::_Exit(0);
  }
  pool_.Stop();
  retrier_.Stop();  // an attempt in progress finishes (bounded by its clients' timeouts)
  contexts_.Stop();
}

// The configuration and the tokens, checked before anything is opened.
std::variant<std::pair<ServerConfig, TokenTable>, Refusal> ReadConfiguration(int argc,
                                                                             char** argv) {
  auto loaded = LoadConfig(argc, argv);
  if (!loaded.ok()) {
    if (loaded.error().code == lab::domain::ErrorCode::kNotFound)  // --help
      return Refusal{0, loaded.error().message};
    return Refusal{2, loaded.error().message};
  }
  auto tokens = TokenTable::Parse(loaded->tokens);
  if (!tokens.ok()) return Refusal{2, "LAB_TOKENS: " + tokens.error().message};
  if (tokens->empty() && !IsLoopbackAddress(loaded->listen_host)) {
    return Refusal{2, "refusing to listen on " + loaded->listen_host +
                          " without tokens: set LAB_TOKENS=\"token:role,...\" or --tokens-file"};
  }
  return std::pair{std::move(loaded).value(), std::move(tokens).value()};
}

int Report(const Refusal& refusal) {
  if (refusal.status == 0) {
    std::cout << refusal.message;
  } else {
    std::cerr << "reliability-lab: " << refusal.message << "\n";
  }
  return refusal.status;
}

int Run(int argc, char** argv) {
  auto read = ReadConfiguration(argc, argv);
  if (auto* refused = std::get_if<Refusal>(&read)) return Report(*refused);
  auto& [config, tokens] = std::get<0>(read);
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return Report({1, "cannot create data dir " + config.data_dir + ": " + ec.message()});
  SystemClock clock;
  auto opened =
      RunStore::Open(config.data_dir + "/lab.db", config.migrations_dir + "/sqlite", clock);
  if (!opened.ok()) return Report({1, "store: " + opened.error().message});
  Lab lab(config, std::move(tokens), **opened, clock);
  if (auto refused = lab.Serve()) return Report(*refused);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "reliability-lab: fatal: " << e.what() << "\n";
    return 1;
  }
}
