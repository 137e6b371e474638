// A fixed pool of worker threads, separate from the HTTP threads, taking runs from the queue.
#pragma once

#include <atomic>
#include <thread>
#include <vector>

#include "server/metrics/lab_metrics.h"
#include "server/runs/run_executor.h"
#include "server/runs/run_queue.h"

namespace lab::server {

class WorkerPool {
 public:
  WorkerPool(RunQueue& queue, RunExecutor& executor, LabMetrics& metrics, int workers);
  ~WorkerPool() { Stop(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Start();
  // Stops taking runs and joins; runs in progress finish first (cancel them before to hurry).
  void Stop();
  int busy() const { return busy_.load(); }

 private:
  void Loop(std::stop_token stop);

  RunQueue& queue_;
  RunExecutor& executor_;
  LabMetrics& metrics_;
  int size_;
  std::atomic<int> busy_{0};
  std::vector<std::jthread> threads_;
};

}  // namespace lab::server
