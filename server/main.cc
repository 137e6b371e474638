// The composition root: reads the configuration, opens the store, recovers after a crash,
// wires runners, queue, workers and the HTTP server, and shuts down in a written order:
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

#include "domain/catalog.h"
#include "domain/run_locks.h"
#include "runners/isolated_runner.h"
#include "runners/runner_factory.h"
#include "server/config.h"
#include "server/http/api.h"
#include "server/http/http_server.h"
#include "server/openapi.h"
#include "server/runs/cleanup_retrier.h"
#include "server/runs/readiness_monitor.h"
#include "server/runs/run_executor.h"
#include "server/runs/worker_pool.h"
#include "server/store/run_store.h"

namespace {

class SystemClock : public lab::domain::Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
};

int Run(int argc, char** argv) {
  using namespace lab::server;
  auto loaded = LoadConfig(argc, argv);
  if (!loaded.ok()) {
    if (loaded.error().code == lab::domain::ErrorCode::kNotFound) {
      std::cout << loaded.error().message;
      return 0;
    }
    std::cerr << "reliability-lab: " << loaded.error().message << "\n";
    return 2;
  }
  ServerConfig config = std::move(loaded).value();

  auto tokens = TokenTable::Parse(config.tokens);
  if (!tokens.ok()) {
    std::cerr << "reliability-lab: LAB_TOKENS: " << tokens.error().message << "\n";
    return 2;
  }
  const bool loopback = IsLoopbackAddress(config.listen_host);
  if (tokens->empty() && !loopback) {
    std::cerr << "reliability-lab: refusing to listen on " << config.listen_host
              << " without tokens: set LAB_TOKENS=\"token:role,...\" or --tokens-file\n";
    return 2;
  }

  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    std::cerr << "reliability-lab: cannot create data dir " << config.data_dir << ": "
              << ec.message() << "\n";
    return 1;
  }
  SystemClock clock;
  auto opened =
      RunStore::Open(config.data_dir + "/lab.db", config.migrations_dir + "/sqlite", clock);
  if (!opened.ok()) {
    std::cerr << "reliability-lab: store: " << opened.error().message << "\n";
    return 1;
  }
  RunStore& store = **opened;
  auto recovery = store.Recover();
  if (!recovery.ok()) {
    std::cerr << "reliability-lab: recovery: " << recovery.error().message << "\n";
    return 1;
  }
  for (const auto& id : recovery->interrupted) {
    std::clog << "event=run.interrupted run=" << id << " reason=\"server restarted\"\n";
  }
  // Runs whose cleanup never ran to its end (the interrupted ones above, older runs) are queued
  // for the cleanup retrier before anything else starts.
  auto swept = SweepRunsNeverCleaned(store);
  if (!swept.ok()) {
    std::cerr << "reliability-lab: cleanup sweep: " << swept.error().message << "\n";
    return 1;
  }

  auto runner_list =
      lab::runners::IsolateRunners(lab::runners::MakeRunners(config.stack), config.stack);
  std::map<std::string, lab::domain::ExperimentRunner*> runners;
  std::set<std::string> available;
  for (const auto& r : runner_list) {
    runners[std::string(r->ExperimentId())] = r.get();
    available.insert(std::string(r->ExperimentId()));
  }
  auto probe = lab::runners::MakeStackProbe(config.stack);

  LabMetrics metrics;
  StackHealth health;
  // A waiting run's step log says what it waits for (a lock another run holds).
  RunQueue queue(config.queue_capacity, [&store](const std::string& id, const std::string& why) {
    (void)store.AppendStep(id, "queued: " + why);
  });
  for (const auto& run : recovery->queued) {
    const auto* spec = lab::domain::FindExperiment(run.experiment);
    const auto locks = spec ? lab::domain::LocksFor(*spec) : lab::domain::RunLocks{};
    queue.PushRecovered(QueuedRun{run.id, run.experiment, locks.exclusive, locks.shared});
  }
  ExecutorOptions executor_options;
  CleanupRetrier* retrier_for_executor = nullptr;  // set below, before any worker starts
  executor_options.on_cleanup_pending = [&retrier_for_executor](const std::string&) {
    if (retrier_for_executor != nullptr) retrier_for_executor->Wake();
  };
  RunExecutor executor(store, runners, probe.get(), metrics, health, executor_options);
  WorkerPool pool(queue, executor, metrics, config.workers);
  RateLimiter limiter(config.rate_limit, config.rate_burst);

  ApiOptions api_options;
  api_options.web_root = config.web_root;
  api_options.openapi_json = std::string(kOpenApiJson);
  api_options.allow_anonymous = tokens->empty();
  api_options.listen_host = config.listen_host;
  api_options.allowed_hosts = config.allowed_hosts;
  api_options.max_event_streams = config.max_event_streams;
  lab::server::ReadinessMonitor readiness(
      *probe, health,
      {lab::domain::kPartKafka, lab::domain::kPartRegistry, lab::domain::kPartMysql,
       lab::domain::kPartRedis, lab::domain::kPartRedisCluster},
      std::chrono::milliseconds(1000), std::chrono::milliseconds(2000),
      [&](const std::string& part) {
        std::clog << "event=stack.recovered part=\"" << part << "\"\n";
        metrics.SetStackDirty(health.dirty());
        (void)store.AppendAudit(
            "stack.recovered", part.substr(0, part.find(' ')), "",
            nlohmann::json{{"was", part}, {"checked_by", "readiness probe"}}.dump(
                -1, ' ', false, nlohmann::json::error_handler_t::replace),
            lab::server::Actor{"system", ""});
      });
  readiness.Start();
  // Retries cleanups that could not finish when the readiness monitor finds their parts healthy.
  CleanupRetrier retrier(
      store, clock,
      RunnerCleanupAttempt(store, runners, probe.get(), std::chrono::milliseconds(3000)),
      [&readiness]() -> std::optional<std::vector<lab::domain::PartHealth>> {
        auto snap = readiness.Latest();
        if (!snap) return std::nullopt;
        return snap->parts;
      });
  retrier_for_executor = &retrier;
  Api api(store, queue, executor, metrics, &readiness, health, std::move(tokens).value(), limiter,
          available, api_options, &retrier);
  api.LoadHalt();

  IoContextPool contexts(config.http_threads);
  HttpServerOptions http_options;
  http_options.body_limit = config.body_limit;
  http_options.read_timeout = std::chrono::seconds(config.read_timeout_seconds);
  http_options.idle_timeout = std::chrono::seconds(config.idle_timeout_seconds);
  HttpServer server(contexts, api, http_options);
  boost::system::error_code addr_ec;
  auto address = boost::asio::ip::make_address(
      config.listen_host == "localhost" ? "127.0.0.1" : config.listen_host, addr_ec);
  if (addr_ec) {
    std::cerr << "reliability-lab: --listen host '" << config.listen_host
              << "' is not an IP address\n";
    return 2;
  }
  if (auto s = server.Listen({address, config.listen_port}); !s.ok()) {
    std::cerr << "reliability-lab: " << s.error().message << "\n";
    return 1;
  }
  if (!config.port_file.empty()) {
    std::ofstream(config.port_file) << server.port() << "\n";
  }
  server.Start();
  pool.Start();
  retrier.Start();
  metrics.SetQueueDepth(static_cast<double>(queue.Depth()));
  std::clog << "event=server.started listen=" << config.listen_host << ":" << server.port()
            << " workers=" << config.workers << " runners=" << available.size()
            << " recovered_queued=" << recovery->queued.size()
            << " interrupted=" << recovery->interrupted.size() << " cleanups_swept=" << *swept
            << " cleanups_pending=" << retrier.counts().pending
            << " auth=" << (api_options.allow_anonymous ? "local-only" : "tokens") << "\n";

  boost::asio::signal_set signals(contexts.main(), SIGINT, SIGTERM);
  std::atomic<bool> stopping{false};
  std::thread shutdown_thread;
  signals.async_wait([&](const boost::system::error_code&, int signal_number) {
    stopping = true;
    std::clog << "event=server.stopping signal=" << signal_number << "\n";
    server.StopAccepting();
    api.SetDraining();
    queue.SetPaused(
        true);  // no queued run starts during the shutdown: it stays queued for the next start
    shutdown_thread = std::thread([&] {
      int cancelled = executor.CancelAll(lab::server::Actor{"system", ""});
      std::clog << "event=server.cancelling runs=" << cancelled << "\n";
      auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(config.shutdown_timeout_seconds);
      while (pool.busy() > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (pool.busy() > 0) {
        // A runner ignored its stop token: its run stays 'running' in the store and becomes
        // 'interrupted' on the next start. Nothing accepted is lost.
        std::clog << "event=server.forced_exit busy_workers=" << pool.busy() << "\n";
        std::clog.flush();
        std::_Exit(0);
      }
      pool.Stop();
      retrier.Stop();  // an attempt in progress finishes (bounded by its clients' timeouts)
      contexts.Stop();
    });
  });

  contexts.Run();
  if (shutdown_thread.joinable()) shutdown_thread.join();
  std::clog << "event=server.stopped\n";
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
