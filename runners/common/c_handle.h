// CHandle: a unique_ptr for C library handles whose deleter is chosen at compile time, so every
// handle (rd_kafka_t, MYSQL, redisContext, CURL, avro values…) is released exactly once.
#pragma once

#include <memory>

namespace lab::runners {

template <auto Fn>
struct CDeleter {
  template <typename T>
  void operator()(T* p) const noexcept {
    if (p != nullptr) Fn(p);
  }
};

template <typename T, auto Fn>
using CHandle = std::unique_ptr<T, CDeleter<Fn>>;

}  // namespace lab::runners
