// The service under test's resilience logic (runners/service/): the circuit breaker, the bounded
// executor and its rejection policies, the bulkhead, the connection pool and the deadline
// arithmetic, each driven by a fake clock and latches: no sleeps, no sockets, no stack.
#include <gtest/gtest.h>

#include <future>
#include <latch>
#include <thread>

#include "runners/service/bounded_executor.h"
#include "runners/service/circuit_breaker.h"
#include "runners/service/deadline.h"
#include "runners/service/http_wire.h"
#include "runners/service/resource_pool.h"

namespace lab::runners::service {
namespace {

using namespace std::chrono_literals;

class FakeClock final : public MonotonicClock {
 public:
  time_point Now() const override { return now_.load(); }
  void Advance(std::chrono::milliseconds d) { now_.store(now_.load() + d); }

 private:
  std::atomic<time_point> now_{time_point{} + 1h};
};

BreakerOptions Options() {
  BreakerOptions o;
  o.window = 10;
  o.min_calls = 5;
  o.failure_rate_pct = 50;
  o.slow_call = 200ms;
  o.slow_rate_pct = 50;
  o.open_wait = 1000ms;
  o.probes = 2;
  return o;
}

void Calls(CircuitBreaker& b, int n, std::chrono::milliseconds took, bool failed) {
  for (int i = 0; i < n; ++i) {
    auto p = b.TryAcquire();
    ASSERT_TRUE(p.allowed);
    b.Record(p, took, failed);
  }
}

// Below min_calls nothing is judged; at min_calls a 60% failure rate opens the breaker, which
// then refuses calls and counts them.
TEST(CircuitBreaker, OpensOnFailureRateOnceMinCallsRecorded) {
  FakeClock clock;
  std::vector<BreakerTransition> seen;
  CircuitBreaker b(Options(), clock, [&](const BreakerTransition& t) { seen.push_back(t); });
  Calls(b, 2, 10ms, false);
  Calls(b, 2, 10ms, true);
  EXPECT_EQ(b.State(), BreakerState::kClosed);  // 4 calls < min 5
  Calls(b, 1, 10ms, true);                      // 3 of 5 failed = 60%
  EXPECT_EQ(b.State(), BreakerState::kOpen);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].from, BreakerState::kClosed);
  EXPECT_EQ(seen[0].to, BreakerState::kOpen);
  EXPECT_NE(seen[0].reason.find("failure rate 60%"), std::string::npos) << seen[0].reason;
  EXPECT_FALSE(b.TryAcquire().allowed);
  EXPECT_EQ(b.short_circuited(), 1);
}

// Successful but slow calls open it too (slow-call rate), and fast ones keep it closed.
TEST(CircuitBreaker, OpensOnSlowCallRate) {
  FakeClock clock;
  CircuitBreaker b(Options(), clock);
  Calls(b, 10, 199ms, false);
  EXPECT_EQ(b.State(), BreakerState::kClosed);
  Calls(b, 5, 200ms, false);  // window of 10: 5 slow = 50%
  EXPECT_EQ(b.State(), BreakerState::kOpen);
}

// The window slides: old failures leave it, so a 40% rate after them keeps it closed.
TEST(CircuitBreaker, WindowForgetsOldCalls) {
  FakeClock clock;
  CircuitBreaker b(Options(), clock);
  Calls(b, 4, 10ms, true);
  Calls(b, 1, 10ms, false);  // 4 of 5 would open at min_calls... 80% -> open
  EXPECT_EQ(b.State(), BreakerState::kOpen);
  CircuitBreaker c(Options(), clock);
  Calls(c, 6, 10ms, false);
  Calls(c, 4, 10ms, true);  // 4 of 10 = 40%
  EXPECT_EQ(c.State(), BreakerState::kClosed);
}

// OPEN waits open_wait, then HALF_OPEN lets exactly `probes` trial calls through; good trials
// close it, with an empty window.
TEST(CircuitBreaker, HalfOpenTrialsCloseIt) {
  FakeClock clock;
  CircuitBreaker b(Options(), clock);
  Calls(b, 5, 10ms, true);
  ASSERT_EQ(b.State(), BreakerState::kOpen);
  clock.Advance(999ms);
  EXPECT_FALSE(b.TryAcquire().allowed);
  clock.Advance(1ms);
  auto p1 = b.TryAcquire();
  auto p2 = b.TryAcquire();
  EXPECT_EQ(b.State(), BreakerState::kHalfOpen);
  EXPECT_TRUE(p1.allowed && p1.probe);
  EXPECT_TRUE(p2.allowed && p2.probe);
  EXPECT_FALSE(b.TryAcquire().allowed);  // only 2 trials
  b.Record(p1, 5ms, false);
  EXPECT_EQ(b.State(), BreakerState::kHalfOpen);
  b.Record(p2, 5ms, false);
  EXPECT_EQ(b.State(), BreakerState::kClosed);
  Calls(b, 4, 10ms, true);  // a fresh window: 4 < min 5
  EXPECT_EQ(b.State(), BreakerState::kClosed);
  EXPECT_EQ(b.transitions(), 3);
}

// Bad trials open it again, for another open_wait.
TEST(CircuitBreaker, BadTrialsReopen) {
  FakeClock clock;
  CircuitBreaker b(Options(), clock);
  Calls(b, 5, 300ms, false);
  ASSERT_EQ(b.State(), BreakerState::kOpen);
  clock.Advance(1000ms);
  auto p1 = b.TryAcquire();
  auto p2 = b.TryAcquire();
  b.Record(p1, 250ms, false);
  b.Record(p2, 5ms, false);  // 1 of 2 slow = 50%
  EXPECT_EQ(b.State(), BreakerState::kOpen);
  clock.Advance(999ms);
  EXPECT_FALSE(b.TryAcquire().allowed);
}

// A call let through while CLOSED that ends after the breaker opened is not a trial call, and a
// cancelled trial gives its slot back.
TEST(CircuitBreaker, StaleResultsAndCancelledTrials) {
  FakeClock clock;
  CircuitBreaker b(Options(), clock);
  auto old = b.TryAcquire();
  Calls(b, 5, 10ms, true);
  ASSERT_EQ(b.State(), BreakerState::kOpen);
  clock.Advance(1000ms);
  auto p1 = b.TryAcquire();
  b.Record(old, 5ms, false);  // ignored
  EXPECT_EQ(b.State(), BreakerState::kHalfOpen);
  b.Cancel(p1);
  auto p2 = b.TryAcquire();
  auto p3 = b.TryAcquire();
  EXPECT_TRUE(p2.allowed && p3.allowed);
  b.Record(p2, 5ms, false);
  b.Record(p3, 5ms, false);
  EXPECT_EQ(b.State(), BreakerState::kClosed);
}

// workers + queue tasks are accepted; the next is refused under abort.
TEST(BoundedExecutor, AbortRefusesBeyondWorkersPlusQueue) {
  FakeClock clock;
  BoundedExecutor ex(2, 1, RejectionPolicy::kAbort, clock);
  std::latch started(2);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(ex.Submit([&] {
      started.count_down();
      gate.wait();
    }),
              BoundedExecutor::Submitted::kQueued);
  }
  started.wait();  // both workers busy
  EXPECT_EQ(ex.Submit([&] { gate.wait(); }), BoundedExecutor::Submitted::kQueued);
  EXPECT_EQ(ex.Submit([] {}), BoundedExecutor::Submitted::kRejected);
  EXPECT_EQ(ex.stats().busy, 2);
  EXPECT_EQ(ex.stats().queued, 1);
  EXPECT_EQ(ex.stats().rejected, 1);
  release.set_value();
  ex.Shutdown();
  EXPECT_EQ(ex.stats().completed, 3);
}

// Caller-runs runs the task on the submitting thread and counts the time it took there.
TEST(BoundedExecutor, CallerRunsBlocksTheCaller) {
  FakeClock clock;
  BoundedExecutor ex(1, 0, RejectionPolicy::kCallerRuns, clock);
  std::latch started(1);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  ASSERT_EQ(ex.Submit([&] {
    started.count_down();
    gate.wait();
  }),
            BoundedExecutor::Submitted::kQueued);
  started.wait();
  const auto caller = std::this_thread::get_id();
  std::thread::id ran_on;
  EXPECT_EQ(ex.Submit([&] {
    ran_on = std::this_thread::get_id();
    clock.Advance(750ms);
  }),
            BoundedExecutor::Submitted::kRanOnCaller);
  EXPECT_EQ(ran_on, caller);
  EXPECT_EQ(ex.stats().caller_runs, 1);
  EXPECT_DOUBLE_EQ(ex.stats().caller_run_ms, 750.0);
  release.set_value();
  ex.Shutdown();  // joins the worker before the promise it waits on is destroyed
}

// A bulkhead admits `limit` at once and refuses the next until one leaves; 0 = no limit.
TEST(Bulkhead, AdmitsUpToTheLimit) {
  Bulkhead b(2);
  EXPECT_TRUE(b.TryEnter());
  EXPECT_TRUE(b.TryEnter());
  EXPECT_FALSE(b.TryEnter());
  b.Leave();
  EXPECT_TRUE(b.TryEnter());
  EXPECT_EQ(b.rejected(), 1);
  Bulkhead open(0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(open.TryEnter());
}

struct Conn {
  int id;
};

// The pool opens at most `max`, reuses returned connections, times out a waiter when none comes
// back (counted, with the time waited from the fake clock) and hands a returned one to a waiter.
TEST(ResourcePool, BoundsWaitsAndTimeouts) {
  FakeClock clock;
  int opened = 0;
  ResourcePool<Conn> pool(
      2,
      [&]() -> domain::Result<std::unique_ptr<Conn>> {
        return std::make_unique<Conn>(Conn{++opened});
      },
      clock);
  auto a = pool.Acquire(0ms);
  auto b = pool.Acquire(0ms);
  ASSERT_TRUE(a && b);
  auto c = pool.Acquire(0ms);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, domain::ErrorCode::kTimeout);
  EXPECT_EQ(pool.stats().timeouts, 1);
  EXPECT_EQ(pool.stats().waits, 1);
  EXPECT_EQ(opened, 2);

  std::latch waiting(1);
  auto waiter = std::async(std::launch::async, [&] {
    waiting.count_down();
    return pool.Acquire(60s);  // bounded: released below
  });
  waiting.wait();
  clock.Advance(40ms);
  { auto gone = std::move(*a); }  // returned to the pool
  auto got = waiter.get();
  ASSERT_TRUE(got);
  EXPECT_EQ((*got)->id, 1);  // reused, not a third connection
  EXPECT_EQ(opened, 2);
  EXPECT_EQ(pool.stats().max_in_use, 2);
}

// A discarded connection frees its slot; the next acquire opens a new one.
TEST(ResourcePool, DiscardOpensANewOne) {
  FakeClock clock;
  int opened = 0;
  ResourcePool<Conn> pool(
      1,
      [&]() -> domain::Result<std::unique_ptr<Conn>> {
        return std::make_unique<Conn>(Conn{++opened});
      },
      clock);
  {
    auto a = pool.Acquire(0ms);
    ASSERT_TRUE(a);
    a->Discard();
  }
  auto b = pool.Acquire(0ms);
  ASSERT_TRUE(b);
  EXPECT_EQ((*b)->id, 2);
}

// Deadlines: parsed strictly; propagated, they cap each attempt and stop retries once past;
// ignored, every attempt gets the full timeout.
TEST(Deadline, CapsAttemptsWhenPropagated) {
  EXPECT_EQ(ParseDeadlineMs(" 1700000000123 "), 1700000000123);
  EXPECT_FALSE(ParseDeadlineMs("17e3"));
  EXPECT_FALSE(ParseDeadlineMs(""));
  EXPECT_FALSE(ParseDeadlineMs("-5"));

  const std::int64_t now = 1'000'000;
  auto p = PlanAttempt(0, 2, now, now + 300, true, 1000ms);
  EXPECT_TRUE(p.start);
  EXPECT_EQ(p.timeout, 300ms);
  p = PlanAttempt(1, 2, now + 300, now + 300, true, 1000ms);
  EXPECT_FALSE(p.start);
  EXPECT_TRUE(p.deadline_passed);
  p = PlanAttempt(1, 2, now + 300, now + 300, false, 1000ms);  // ignored: zombie work
  EXPECT_TRUE(p.start);
  EXPECT_EQ(p.timeout, 1000ms);
  p = PlanAttempt(3, 2, now, std::nullopt, true, 1000ms);  // retries used up
  EXPECT_FALSE(p.start);
  EXPECT_FALSE(p.deadline_passed);

  EXPECT_EQ(RetryBackoff(1, 50ms, now, std::nullopt, true), 50ms);
  EXPECT_EQ(RetryBackoff(3, 50ms, now, std::nullopt, true), 200ms);
  EXPECT_EQ(RetryBackoff(3, 50ms, now, now + 120, true), 120ms);
  EXPECT_EQ(RetryBackoff(3, 50ms, now, now + 120, false), 200ms);
}

// The request head parser: method, path, query, lower-cased headers; malformed heads refused.
TEST(HttpWire, ParsesARequestHead) {
  auto r = ParseRequestHead("POST /value?id=7&x=1 HTTP/1.1\r\nHost: a\r\nX-Deadline-Ms: 42");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, "POST");
  EXPECT_EQ(r->path, "/value");
  EXPECT_EQ(QueryParam(r->query, "id"), "7");
  EXPECT_EQ(QueryParam(r->query, "y"), "");
  EXPECT_EQ(r->Header("x-deadline-ms"), "42");
  EXPECT_FALSE(ParseRequestHead("GARBAGE"));
  EXPECT_FALSE(ParseRequestHead("GET / SPDY/3\r\n"));
}

}  // namespace
}  // namespace lab::runners::service
