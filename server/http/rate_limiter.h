// A token bucket per client: `rate` requests per second sustained, `burst` at once. Answers
// "no, retry after N s" in O(log n) without waiting, so overload never slows the server down.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace lab::server {

class RateLimiter {
 public:
  RateLimiter(double rate_per_second, double burst) : rate_(rate_per_second), burst_(burst) {}

  // 0 when allowed; otherwise the whole seconds to wait (at least 1).
  int Acquire(const std::string& client, std::chrono::steady_clock::time_point now);
  bool enabled() const { return rate_ > 0; }

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  double rate_;
  double burst_;
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;  // guarded by mu_
};

}  // namespace lab::server
