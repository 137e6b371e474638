// E-023's arithmetic on hand-made requests and id sets (no stack, no clock): what one outage
// window shows the clients, and the reconciliation of acknowledged orders against the rows and
// the events read back.
#include <gtest/gtest.h>

#include "runners/experiments/e023_partial_outages.h"

namespace lab::runners {
namespace {

ShopRequest R(std::int64_t sent_ms, double ms, long status, bool write, bool stale = false) {
  ShopRequest r;
  r.sent_ms = sent_ms;
  r.ms = ms;
  r.status = status;
  r.write = write;
  r.stale = stale;
  return r;
}

// Only requests sent inside [from, to) count; errors are every non-2xx answer (a 503 refusal
// included), read errors only the reads'; stale reads are 2xx reads marked stale; a refused write
// is a 503, a request without an answer is indeterminate.
TEST(PartialOutages, SummarizesOneWindow) {
  const std::vector<ShopRequest> requests = {
      R(999, 5000, 0, false),         // before the window
      R(1000, 10, 200, false),        // a fresh read
      R(1100, 12, 200, false, true),  // a stale read
      R(1200, 2000, 0, false),        // a read that got no answer
      R(1300, 3, 503, true),          // a write refused at once
      R(1400, 20, 200, true),         // a write accepted
      R(2000, 9000, 500, true),       // after the window
  };
  const WindowStats w = SummarizeWindow(requests, 1000, 2000);
  EXPECT_EQ(w.requests, 5);
  EXPECT_EQ(w.reads, 3);
  EXPECT_EQ(w.writes, 2);
  EXPECT_DOUBLE_EQ(w.error_pct, 40.0);
  EXPECT_NEAR(w.read_error_pct, 100.0 / 3, 1e-9);
  EXPECT_EQ(w.stale_reads, 1);
  EXPECT_EQ(w.writes_ok, 1);
  EXPECT_EQ(w.writes_refused, 1);
  EXPECT_EQ(w.no_answer, 1);
  EXPECT_DOUBLE_EQ(w.write_refused_p99_ms, 3);
  EXPECT_GE(w.p99_ms, 1000);  // the unanswered read dominates the tail
  EXPECT_LE(w.p99_ms, 2000);
}

// An empty window has no numbers (the experiment reports it instead of a zero p99).
TEST(PartialOutages, EmptyWindowIsEmpty) {
  const WindowStats w = SummarizeWindow({R(5, 1, 200, false)}, 10, 20);
  EXPECT_EQ(w.requests, 0);
  EXPECT_EQ(w.p99_ms, 0);
}

// lost = acknowledged orders without a row + rows whose event never reached the topic; an
// order refused (not acknowledged) that was committed anyway and published is not lost, and an
// event without a row is counted apart.
TEST(PartialOutages, ReconcilesAcknowledgedRowsAndEvents) {
  const Reconciliation r = Reconcile({1, 2, 3, 4}, {1, 2, 4, 5, 6}, {1, 2, 5, 7});
  EXPECT_EQ(r.acked, 4);
  EXPECT_EQ(r.committed, 5);
  EXPECT_EQ(r.published, 4);
  EXPECT_EQ(r.acked_missing, 1);            // 3
  EXPECT_EQ(r.committed_without_event, 2);  // 4 and 6
  EXPECT_EQ(r.events_without_order, 1);     // 7
  EXPECT_EQ(r.lost, 3);
  const Reconciliation clean = Reconcile({1, 2}, {1, 2, 3}, {1, 2, 3});
  EXPECT_EQ(clean.lost, 0);
}

// Only this run's event ids map to order ids.
TEST(PartialOutages, ParsesOnlyThisRunsEventIds) {
  EXPECT_EQ(OrderIdOfEvent("ns1_success-42", "ns1_success"), 42);
  EXPECT_EQ(OrderIdOfEvent("ns1_failure-42", "ns1_success"), -1);
  EXPECT_EQ(OrderIdOfEvent("ns1_success-", "ns1_success"), -1);
  EXPECT_EQ(OrderIdOfEvent("ns1_success-4x", "ns1_success"), -1);
  EXPECT_EQ(OrderIdOfEvent("ns1_success-42-u", "ns1_success"), -1);
}

}  // namespace
}  // namespace lab::runners
