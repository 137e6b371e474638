// E-023's arithmetic, apart from the stack so it is tested without one: what the clients saw in
// one outage window (latency, errors, stale reads, refused writes) and the reconciliation of the
// orders the clients were told were accepted against the rows in MariaDB and the events in the
// topic, read back after every outage was undone.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace lab::runners {

// One request of the load, as the client saw it.
struct ShopRequest {
  std::int64_t sent_ms = 0;  // epoch ms
  double ms = 0;             // until the answer or the client's timeout
  long status = 0;           // 0: no answer (timed out or failed)
  bool write = false;        // POST /order (else GET /item)
  bool stale = false;        // a read answered with a stale value (the body's stale_ms)
  std::int64_t id = 0;       // item id or order id
};

struct WindowStats {
  std::int64_t requests = 0;
  std::int64_t reads = 0;
  std::int64_t writes = 0;
  double p99_ms = 0;
  double p50_ms = 0;
  double error_pct = 0;       // requests not answered 2xx (writes refused with 503 included)
  double read_error_pct = 0;  // reads not answered 2xx
  std::int64_t stale_reads = 0;
  std::int64_t writes_ok = 0;
  std::int64_t writes_refused = 0;  // answered 503: refused, the client knows it failed
  std::int64_t no_answer = 0;       // timed out or failed at the client: indeterminate
  double write_refused_p99_ms = 0;  // how fast the refusals came
};

// The requests sent in [from_ms, to_ms).
WindowStats SummarizeWindow(const std::vector<ShopRequest>& requests, std::int64_t from_ms,
                            std::int64_t to_ms);

struct Reconciliation {
  std::int64_t acked = 0;                    // orders answered 2xx
  std::int64_t committed = 0;                // order rows in MariaDB
  std::int64_t published = 0;                // distinct order ids among the events in the topic
  std::int64_t acked_missing = 0;            // acknowledged, no row
  std::int64_t committed_without_event = 0;  // a row whose event never reached the topic
  std::int64_t events_without_order = 0;     // an event without a row
  std::int64_t lost = 0;                     // acked_missing + committed_without_event
};

Reconciliation Reconcile(const std::set<std::int64_t>& acked,
                         const std::set<std::int64_t>& committed,
                         const std::set<std::int64_t>& published);

// The order id of an event id "<run_ns>-<id>" of this run, or -1 when it is not one.
std::int64_t OrderIdOfEvent(const std::string& event_id, const std::string& run_ns);

}  // namespace lab::runners
