#include "server/runs/worker_pool.h"

namespace lab::server {

WorkerPool::WorkerPool(RunQueue& queue, RunExecutor& executor, LabMetrics& metrics, int workers)
    : queue_(queue), executor_(executor), metrics_(metrics), size_(workers) {}

void WorkerPool::Start() {
  metrics_.SetWorkersTotal(size_);
  for (int i = 0; i < size_; ++i) {
    threads_.emplace_back([this](std::stop_token stop) { Loop(stop); });
  }
}

void WorkerPool::Stop() {
  for (auto& t : threads_) t.request_stop();
  threads_.clear();  // jthread joins
}

void WorkerPool::Loop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    auto run = queue_.PopRunnable(stop, [this](const QueuedRun& r) { executor_.Claim(r.id); });
    if (!run) continue;
    metrics_.SetQueueDepth(static_cast<double>(queue_.Depth()));
    metrics_.SetWorkersBusy(++busy_);
    executor_.Execute(*run);
    queue_.Release(*run);
    metrics_.SetWorkersBusy(--busy_);
  }
}

}  // namespace lab::server
