#include "server/http/io_context_pool.h"

#include <algorithm>
#include <thread>

namespace lab::server {

IoContextPool::IoContextPool(int threads) {
  const int n = std::max(1, threads);
  for (int i = 0; i < n; ++i) {
    // Concurrency hint 1: each context is only ever run by one thread.
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.push_back(boost::asio::make_work_guard(*contexts_.back()));
  }
}

boost::asio::io_context& IoContextPool::next() {
  return *contexts_[next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

void IoContextPool::Run() {
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < contexts_.size(); ++i) {
    threads.emplace_back([ctx = contexts_[i].get()] { ctx->run(); });
  }
  contexts_.front()->run();
  for (auto& t : threads) t.join();
}

void IoContextPool::Stop() {
  for (auto& ctx : contexts_) ctx->stop();
}

}  // namespace lab::server
