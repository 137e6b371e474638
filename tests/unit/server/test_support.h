// Test doubles shared by the server's unit tests: a settable clock and the migrations path.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "domain/ports.h"

namespace lab::server::test_support {

inline std::string MigrationsDir() { return std::string(LAB_SOURCE_DIR) + "/migrations/sqlite"; }

class FakeClock : public domain::Clock {
 public:
  // 2026-11-21T10:00:00.000Z
  FakeClock() : now_(std::chrono::system_clock::time_point(std::chrono::seconds(1795255200))) {}
  std::chrono::system_clock::time_point Now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  void Advance(std::chrono::milliseconds d) {
    std::lock_guard lock(mu_);
    now_ += d;
  }

 private:
  mutable std::mutex mu_;
  std::chrono::system_clock::time_point now_;  // guarded by mu_
};

}  // namespace lab::server::test_support
