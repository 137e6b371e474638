// RunQueue: the bounded reservation, exclusive resource locks (runs needing the same resource
// never popped together; unrelated runs overtake), Remove and pause. Concurrency is
// synchronised with latches and futures with bounded waits — no sleeps — and is TSan-clean.
#include "server/runs/run_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <latch>
#include <mutex>
#include <thread>

namespace lab::server {
namespace {

using namespace std::chrono_literals;

QueuedRun Queued(std::string id, std::vector<std::string> exclusive = {},
                 std::vector<std::string> shared = {}) {
  return QueuedRun{std::move(id), "E-000", std::move(exclusive), std::move(shared)};
}

// Pops without blocking: a token that is already stopped makes PopRunnable check once.
std::optional<QueuedRun> TryPop(RunQueue& q) {
  std::stop_source stopped;
  stopped.request_stop();
  return q.PopRunnable(stopped.get_token());
}

// The capacity bounds waiting + reserved places; cancelling a reservation frees its place.
TEST(RunQueue, ReservationIsBounded) {
  RunQueue q(2);
  EXPECT_TRUE(q.TryReserve());
  EXPECT_TRUE(q.TryReserve());
  EXPECT_FALSE(q.TryReserve());
  q.CancelReservation();
  EXPECT_TRUE(q.TryReserve());
  q.PushReserved(Queued("a"));
  EXPECT_EQ(q.Depth(), 1u);
  EXPECT_FALSE(q.TryReserve()) << "a pushed run still takes its place";
  q.PushReserved(Queued("b"));
  EXPECT_EQ(q.Depth(), 2u);
  EXPECT_FALSE(q.TryReserve());
  ASSERT_TRUE(TryPop(q).has_value());
  EXPECT_TRUE(q.TryReserve()) << "a popped run frees its place";
  // Recovery may exceed the bound; admission then refuses until the queue drains.
  q.PushRecovered(Queued("c"));
  q.PushRecovered(Queued("d"));
  EXPECT_EQ(q.Depth(), 3u);
  EXPECT_FALSE(q.TryReserve());
}

// Concurrent reservations never exceed the capacity.
TEST(RunQueue, ConcurrentReservationsRespectTheBound) {
  RunQueue q(50);
  std::atomic<int> granted{0};
  std::latch go(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      go.arrive_and_wait();
      for (int i = 0; i < 100; ++i) {
        if (q.TryReserve()) ++granted;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 50);
}

// FIFO for unrelated runs; a run whose resource is held waits and an unrelated one overtakes it.
TEST(RunQueue, ExclusiveResourcesAndOvertaking) {
  RunQueue q(10);
  q.PushRecovered(Queued("a", {"kafka-brokers"}));
  q.PushRecovered(Queued("b", {"kafka-brokers"}));
  q.PushRecovered(Queued("c", {"mysql-server"}));
  q.PushRecovered(Queued("d"));
  auto a = TryPop(q);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->id, "a");
  EXPECT_EQ(q.HeldResources(), std::set<std::string>{"kafka-brokers"});
  auto next = TryPop(q);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->id, "c") << "b needs kafka-brokers, held by a: c must overtake";
  auto last = TryPop(q);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->id, "d");
  EXPECT_FALSE(TryPop(q)) << "b was popped while a holds its resource";
  q.Release(*next);
  EXPECT_FALSE(TryPop(q)) << "releasing c must not free kafka-brokers";
  q.Release(*a);
  auto b = TryPop(q);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->id, "b");
  EXPECT_EQ(q.HeldResources(), std::set<std::string>{"kafka-brokers"});
}

// A worker blocked on a held resource wakes when it is released (bounded wait, no sleeps).
TEST(RunQueue, BlockedWorkerWakesOnRelease) {
  RunQueue q(10);
  q.PushRecovered(Queued("a", {"redis-server"}));
  q.PushRecovered(Queued("b", {"redis-server"}));
  auto a = TryPop(q);
  ASSERT_TRUE(a);
  std::stop_source stop;
  auto waiter = std::async(std::launch::async, [&] { return q.PopRunnable(stop.get_token()); });
  EXPECT_EQ(waiter.wait_for(50ms), std::future_status::timeout)
      << "b popped while a holds the lock";
  q.Release(*a);
  ASSERT_EQ(waiter.wait_for(5s), std::future_status::ready);
  auto b = waiter.get();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->id, "b");
}

// A stop request wakes a worker waiting on an empty queue.
TEST(RunQueue, StopWakesWaitingWorker) {
  RunQueue q(10);
  std::stop_source stop;
  auto waiter = std::async(std::launch::async, [&] { return q.PopRunnable(stop.get_token()); });
  stop.request_stop();
  ASSERT_EQ(waiter.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(waiter.get().has_value());
}

// Many workers, many runs on one resource: never two holders at once; all runs are executed.
TEST(RunQueue, ConcurrentWorkersNeverOverlapOnAResource) {
  RunQueue q(1000);
  constexpr int kRuns = 200;
  for (int i = 0; i < kRuns; ++i) {
    q.PushRecovered(i % 2 ? Queued("x" + std::to_string(i), {"kafka-brokers"})
                          : Queued("u" + std::to_string(i)));
  }
  std::atomic<int> holders{0};
  std::atomic<int> max_holders{0};
  std::atomic<int> done{0};
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::stop_source stop;
  std::vector<std::jthread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      for (;;) {
        auto run = q.PopRunnable(stop.get_token());
        if (!run) return;
        bool exclusive = !run->exclusive.empty();
        if (exclusive) {
          int now = ++holders;
          int seen = max_holders.load();
          while (now > seen && !max_holders.compare_exchange_weak(seen, now)) {
          }
          std::this_thread::yield();
          --holders;
        }
        q.Release(*run);
        {
          std::lock_guard lock(done_mu);
          ++done;
        }
        done_cv.notify_all();
      }
    });
  }
  {  // Bounded wait for every run to be executed.
    std::unique_lock lock(done_mu);
    EXPECT_TRUE(done_cv.wait_for(lock, 10s, [&] { return done.load() == kRuns; }));
  }
  stop.request_stop();
  workers.clear();
  EXPECT_EQ(done.load(), kRuns);
  EXPECT_EQ(max_holders.load(), 1);
  EXPECT_EQ(q.Depth(), 0u);
  EXPECT_TRUE(q.HeldResources().empty());
}

// Remove takes a waiting run out (cancel) and is false for one that is not waiting.
TEST(RunQueue, Remove) {
  RunQueue q(3);
  q.PushRecovered(Queued("a"));
  q.PushRecovered(Queued("b"));
  EXPECT_TRUE(q.Remove("b"));
  EXPECT_FALSE(q.Remove("b"));
  EXPECT_FALSE(q.Remove("zzz"));
  EXPECT_EQ(q.Depth(), 1u);
  auto a = TryPop(q);
  ASSERT_TRUE(a);
  EXPECT_FALSE(q.Remove("a")) << "a popped run is not waiting any more";
  EXPECT_FALSE(TryPop(q));
  EXPECT_TRUE(q.TryReserve());
}

// A paused queue hands out nothing; unpausing wakes a waiting worker.
TEST(RunQueue, PauseHoldsRunsUntilResumed) {
  RunQueue q(3);
  q.SetPaused(true);
  q.PushRecovered(Queued("a"));
  EXPECT_FALSE(TryPop(q));
  EXPECT_EQ(q.Depth(), 1u);
  std::stop_source stop;
  auto waiter = std::async(std::launch::async, [&] { return q.PopRunnable(stop.get_token()); });
  EXPECT_EQ(waiter.wait_for(50ms), std::future_status::timeout)
      << "a paused queue handed out a run";
  q.SetPaused(false);
  ASSERT_EQ(waiter.wait_for(5s), std::future_status::ready);
  auto a = waiter.get();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->id, "a");
}

// Runs that only use a part share its lock; a run that faults it waits until every sharer is
// done, and while it holds the lock no sharer starts.
TEST(RunQueue, SharedHoldersOverlapAnExclusiveHolderDoesNot) {
  RunQueue q(10);
  q.PushRecovered(Queued("use1", {}, {"kafka-brokers"}));
  q.PushRecovered(Queued("use2", {}, {"kafka-brokers"}));
  auto use1 = TryPop(q);
  auto use2 = TryPop(q);
  ASSERT_TRUE(use1 && use2) << "two runs that only use Kafka must run side by side";
  q.PushRecovered(Queued("fault", {"kafka-brokers"}));
  EXPECT_FALSE(TryPop(q)) << "a broker-killing run started while two runs use Kafka";
  q.Release(*use1);
  EXPECT_FALSE(TryPop(q)) << "a broker-killing run started while one run uses Kafka";
  q.Release(*use2);
  auto fault = TryPop(q);
  ASSERT_TRUE(fault);
  EXPECT_EQ(fault->id, "fault");
  q.PushRecovered(Queued("use3", {}, {"kafka-brokers"}));
  EXPECT_FALSE(TryPop(q)) << "a run using Kafka started while its brokers are being killed";
  q.Release(*fault);
  auto use3 = TryPop(q);
  ASSERT_TRUE(use3);
  EXPECT_EQ(use3->id, "use3");
}

// A run waiting for an exclusive lock is not overtaken by later runs that want the same lock
// shared (it would starve under a steady stream of them); runs on other parts still overtake.
TEST(RunQueue, ExclusiveWaiterIsNotStarvedBySharers) {
  RunQueue q(10);
  q.PushRecovered(Queued("running", {}, {"kafka-brokers"}));
  auto running = TryPop(q);
  ASSERT_TRUE(running);
  q.PushRecovered(Queued("fault", {"kafka-brokers"}));
  q.PushRecovered(Queued("later-user", {}, {"kafka-brokers"}));
  q.PushRecovered(Queued("mysql-user", {}, {"mysql-server"}));
  auto next = TryPop(q);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->id, "mysql-user") << "an unrelated run must overtake";
  EXPECT_FALSE(TryPop(q)) << "a later Kafka user overtook the run waiting to fault Kafka";
  q.Release(*running);
  auto fault = TryPop(q);
  ASSERT_TRUE(fault);
  EXPECT_EQ(fault->id, "fault");
  EXPECT_FALSE(TryPop(q));
  q.Release(*fault);
  auto later = TryPop(q);
  ASSERT_TRUE(later);
  EXPECT_EQ(later->id, "later-user");
}

// A waiting run is told what it waits for, once per change of reason, and nothing once it runs.
TEST(RunQueue, WaitingRunIsToldWhatItWaitsFor) {
  std::vector<std::pair<std::string, std::string>> told;
  RunQueue q(10,
             [&](const std::string& id, const std::string& why) { told.emplace_back(id, why); });
  q.PushRecovered(Queued("fault", {"kafka-brokers"}));
  auto fault = TryPop(q);
  ASSERT_TRUE(fault);
  EXPECT_TRUE(told.empty()) << "a run that could start was told to wait";
  q.PushRecovered(Queued("user", {}, {"kafka-brokers"}));
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].first, "user");
  EXPECT_EQ(told[0].second, "waits for kafka-brokers, held exclusively by run fault");
  EXPECT_EQ(q.WaitReason("user"), told[0].second);
  q.PushRecovered(Queued("other", {}, {"mysql-server"}));
  EXPECT_EQ(told.size(), 1u) << "the same reason was told twice, or a free run was told to wait";
  q.Release(*fault);
  EXPECT_EQ(q.WaitReason("user"), "");
  EXPECT_EQ(told.size(), 1u);
}

}  // namespace
}  // namespace lab::server
