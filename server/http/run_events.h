// A run's step log, progress and state as server-sent events (GET /runs/{id}/events): each poll
// returns what is new since the last one; the stream ends with an `end` event holding the run.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "server/http/http_types.h"
#include "server/store/run_store.h"

namespace lab::server {

// `open` counts the stream from its admission until the stream is destroyed (the caller has
// already added it; the stream takes it away).
std::shared_ptr<EventStream> MakeRunEventStream(RunStore& store, std::string id,
                                                std::int64_t after_seq,
                                                std::shared_ptr<std::atomic<int>> open);

}  // namespace lab::server
