// One io_context per HTTP thread, each run by exactly that thread. A connection lives on one
// context for its whole life, so its handlers never need a strand and a completion never wakes
// the other thread (a shared context with two threads spent ~9% of a GET in context switches).
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <memory>
#include <vector>

namespace lab::server {

class IoContextPool {
 public:
  explicit IoContextPool(int threads);
  IoContextPool(const IoContextPool&) = delete;
  IoContextPool& operator=(const IoContextPool&) = delete;

  // The context the listener, signals and timers not tied to a connection use.
  boost::asio::io_context& main() { return *contexts_.front(); }
  // Round robin over the contexts: where the next connection lives.
  boost::asio::io_context& next();
  // Runs every context, one on the calling thread and the others on their own; returns when
  // all have stopped.
  void Run();
  // Safe from any thread.
  void Stop();

 private:
  using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<WorkGuard> guards_;  // keep an idle context running until Stop
  std::atomic<std::size_t> next_{0};
};

}  // namespace lab::server
