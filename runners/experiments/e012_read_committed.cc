// E-012: read_committed skips aborted transactions; the offsets they and the transaction markers
// occupy show as gaps, and the consumer still reaches the end of the log.
//
// Both modes: one topic (`partitions` partitions, RF 3). A transactional producer runs
// `transactions` transactions of `records_per_txn` records each (spread over the partitions);
// every `abort_every`-th is aborted after its records were flushed to the brokers (so they are
// in the log), the others commit. Halfway, a zombie: the producer writes a transaction and
// flushes it, then a second producer with the same transactional.id calls init_transactions —
// the coordinator bumps the epoch and aborts the open transaction — and the first producer's
// commit is refused (fenced); the second producer runs the remaining transactions. Each
// transaction's outcome, as the producer API answered it, goes to kafka_txn.
// A consumer (manual assignment from the beginning) runs on its own thread from the start,
// beside the producer, and applies every record it receives as a side effect: a txn_effect row
// (event id, transaction number, partition, offset), one MariaDB transaction per polled batch.
//   failure: the consumer reads read_uncommitted.   success: read_committed.
//   practice=off: the success mode's consumer reads read_uncommitted.
// When the producer is done, the runner waits until the last stable offset equals the high
// watermark on every partition (the coordinator writes the markers after EndTxn returns), and
// then until the consumer's fetch position reached that end (end-of-partition events at that
// offset): catch_up_ms; reached_end = 0 means it stalled.
// Evidence: phantoms / applied / applied_committed are SQL counts over txn_effect joined with
// kafka_txn. The log is read again with fresh consumers of both isolation levels: the
// read_uncommitted read-back has every data record (committed_in_log, aborted_in_log; markers =
// high watermark − data records), the read_committed read-back is a second, independent reader
// of the claim. gaps = offsets below the end the consumer never received, each classified
// against the read_uncommitted read-back: a marker, a record of an aborted transaction, or a
// committed record (a loss: must be 0).
#include <algorithm>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using MessageHandle = CHandle<rd_kafka_message_t, rd_kafka_message_destroy>;
using ListHandle = CHandle<rd_kafka_topic_partition_list_t, rd_kafka_topic_partition_list_destroy>;

constexpr const char* kCommitted = "committed";
constexpr const char* kAborted = "aborted";
constexpr const char* kFenced = "fenced";

using PartitionOffsets = std::map<std::int32_t, std::int64_t>;

std::string HeaderOf(const kafka::Message& m, const std::string& name) {
  for (const auto& [k, v] : m.headers) {
    if (k == name) return v;
  }
  return "";
}

int TxnOf(const kafka::Message& m) {
  try {
    return std::stoi(HeaderOf(m, "txn"));
  } catch (const std::exception&) {
    return -1;
  }
}

struct Txn {
  int no = 0;
  std::string outcome;
  std::int64_t records = 0;
};

// What the consuming service saw and did, shared between its thread and the runner.
struct ConsumerState {
  std::mutex mu;
  std::map<std::int32_t, std::vector<std::int64_t>> offsets;  // delivered, per partition
  PartitionOffsets eof_at;    // the furthest end-of-partition offset its fetches reached
  PartitionOffsets position;  // rd_kafka_position when it stopped
  std::int64_t delivered = 0;
  std::int64_t transient_errors = 0;
  std::optional<PartitionOffsets> targets;  // the end of the log, once the producer is done
  std::optional<SteadyClock::time_point> targets_set_at;
  std::optional<double> catch_up_ms;  // targets set -> fetch position at the targets
  double consumed_for_ms = 0;         // start -> end reached (or stopped)
  std::string error;
  bool done = false;
};

// One record in the consumer's hands.
struct Received {
  kafka::Message message;
  int txn = -1;
};

class ReadCommitted final : public ExperimentBase {
 public:
  explicit ReadCommitted(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-012"; }

  std::string ConfigurationJson() const override {
    return Json({{"topic", {{"replication_factor", 3}, {"min.insync.replicas", 2}}},
                 {"producer",
                  {{"transactional.id",
                    "lab-<ns>-<mode>-txn (one per mode, shared by the "
                    "zombie and its successor)"},
                   {"enable.idempotence", "implied by transactional.id"},
                   {"acks", "all"},
                   {"transaction.timeout.ms", 60000},
                   {"linger.ms", 5}}},
                 {"consumer",
                  {{"isolation.level",
                    "failure: read_uncommitted; success: read_committed (practice=off: "
                    "read_uncommitted)"},
                   {"assignment", "manual, every partition from the beginning"},
                   {"enable.partition.eof", true},
                   {"fetch.wait.max.ms", 20},
                   {"side_effect",
                    "a txn_effect row per record, one MariaDB transaction per "
                    "polled batch"}}}})
        .dump();
  }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const int partitions = static_cast<int>(domain::GetInt(ctx.params, "partitions"));
    const bool practice = domain::GetString(ctx.params, "practice") != "off";
    const std::string isolation =
        mode == "success" && practice ? "read_committed" : "read_uncommitted";
    const std::string ns = RunNs(ctx, mode);
    const std::string topic = Topic(ctx, mode, "ledger");
    const std::string transactional_id = "lab-" + SafeName(ctx.ns) + "-" + mode + "-txn";
    Json details = {{"run_ns", ns},
                    {"topic", topic},
                    {"isolation", isolation},
                    {"practice", practice ? "on" : "off"},
                    {"transactional_id", transactional_id}};
    Json provenance = Json::object();
    auto finish = [&](const std::string& why) {
      result.details_json = details.dump();
      return Inconclusive(std::move(result), why);
    };

    auto conn = PreparePipeline(ctx, mode, result, {{topic, partitions}}, "");
    if (!conn) return finish(conn.error().message);

    // The consuming service runs from the start, beside the producer.
    ConsumerState state;
    std::jthread consumer(
        [&](std::stop_token own) { Consume(ctx, ns, topic, partitions, isolation, state, own); });
    auto stop_consumer = [&] {
      consumer.request_stop();
      if (consumer.joinable()) consumer.join();
    };
    Step(ctx, mode + ": consumer (" + isolation + ") started on " + topic);

    // The producer's transactions, the zombie among them.
    std::vector<Txn> txns;
    std::string zombie_answer;
    double fence_ms = -1;
    if (auto s = Produce(ctx, mode, result, ns, topic, transactional_id, txns, zombie_answer,
                         fence_ms, **conn);
        !s) {
      stop_consumer();
      details["transactions"] = Summary(txns);
      return finish(s.error().message);
    }
    const auto produced_at = SteadyClock::now();
    details["transactions"] = Summary(txns);
    details["zombie_commit_answer"] = zombie_answer;
    details["fence_init_ms"] = fence_ms;
    Progress(ctx, 50);

    // The end of the log: no transaction open (LSO = HWM) on any partition.
    PartitionOffsets hwm;
    PartitionOffsets lso;
    auto uncommitted_marks = kafka::Consumer::Create(config_.kafka_bootstrap, "",
                                                     {{"isolation.level", "read_uncommitted"}});
    auto committed_marks = kafka::Consumer::Create(config_.kafka_bootstrap, "",
                                                   {{"isolation.level", "read_committed"}});
    if (!uncommitted_marks || !committed_marks) {
      stop_consumer();
      return finish("kafka: watermark client: " + (!uncommitted_marks
                                                       ? uncommitted_marks.error().message
                                                       : committed_marks.error().message));
    }
    const bool stable = WaitUntil(
        [&] {
          auto h = Marks((*uncommitted_marks)->handle(), topic, partitions);
          auto l = Marks((*committed_marks)->handle(), topic, partitions);
          if (!h || !l) return false;
          hwm = *h;
          lso = *l;
          return hwm == lso;
        },
        15s, ctx.stop, 50ms);
    const double lso_wait_ms = MsSince(produced_at);
    details["high_watermark"] = hwm;
    details["last_stable_offset"] = lso;
    if (!stable) {
      stop_consumer();
      return finish(
          "the last stable offset did not reach the high watermark within 15 s "
          "(a transaction still open?)");
    }
    {
      std::lock_guard lock(state.mu);
      state.targets = hwm;
      state.targets_set_at = SteadyClock::now();
    }
    std::int64_t total_records = 0;
    for (const auto& t : txns) total_records += t.records;
    WaitUntil(
        [&] {
          std::lock_guard lock(state.mu);
          return state.done;
        },
        ReadBackWait(total_records), ctx.stop, 20ms);
    stop_consumer();
    if (ctx.stop.stop_requested()) return finish("cancelled");
    if (!state.error.empty()) return finish("consumer: " + state.error);
    Progress(ctx, 70);

    // Read-backs with fresh consumers of both isolation levels.
    auto all = kafka::ReadTopic(config_.kafka_bootstrap, topic, partitions, "read_uncommitted",
                                ReadBackWait(total_records));
    if (!all.complete) return finish("read-back (read_uncommitted): " + all.error);
    auto visible = kafka::ReadTopic(config_.kafka_bootstrap, topic, partitions, "read_committed",
                                    ReadBackWait(total_records));
    if (!visible.complete) return finish("read-back (read_committed): " + visible.error);
    std::map<int, std::string> outcome_of;
    for (const auto& t : txns) outcome_of[t.no] = t.outcome;
    auto committed_txn = [&](int no) {
      auto it = outcome_of.find(no);
      return it != outcome_of.end() && it->second == kCommitted;
    };
    std::int64_t committed_in_log = 0;
    std::int64_t aborted_in_log = 0;
    std::int64_t fenced_in_log = 0;
    std::map<std::int32_t, std::map<std::int64_t, int>> data_at;  // partition -> offset -> txn
    for (const auto& m : all.messages) {
      const int no = TxnOf(m);
      data_at[m.partition][m.offset] = no;
      if (committed_txn(no)) {
        ++committed_in_log;
      } else {
        ++aborted_in_log;
        if (outcome_of.count(no) && outcome_of[no] == kFenced) ++fenced_in_log;
      }
    }
    std::int64_t aborted_visible = 0;
    for (const auto& m : visible.messages) aborted_visible += committed_txn(TxnOf(m)) ? 0 : 1;

    // The consumer's offsets against the end: every offset it never received, classified.
    std::int64_t log_offsets = 0;
    std::int64_t gaps = 0;
    std::int64_t gap_markers = 0;
    std::int64_t gap_aborted = 0;
    std::int64_t gap_committed = 0;
    Json gap_sample = Json::array();
    bool reached_end = true;
    Json per_partition = Json::object();
    for (int p = 0; p < partitions; ++p) {
      const std::int64_t end = hwm[p];
      log_offsets += end;
      const auto& got = state.offsets[p];
      std::set<std::int64_t> delivered(got.begin(), got.end());
      const auto& data = data_at[p];
      std::int64_t run_from = -1;
      Json run = Json::object();
      auto close_run = [&](std::int64_t to) {
        if (run_from >= 0 && gap_sample.size() < 12) {
          run["partition"] = p;
          run["from"] = run_from;
          run["to"] = to;
          gap_sample.push_back(run);
        }
        run_from = -1;
        run = Json::object();
      };
      for (std::int64_t off = 0; off < end; ++off) {
        if (delivered.count(off)) {
          close_run(off - 1);
          continue;
        }
        ++gaps;
        if (run_from < 0) run_from = off;
        auto d = data.find(off);
        const char* kind = "marker";
        if (d == data.end()) {
          ++gap_markers;
        } else if (committed_txn(d->second)) {
          ++gap_committed;
          kind = "committed_record";
        } else {
          ++gap_aborted;
          kind = "aborted_record";
        }
        run[kind] = run.value(kind, 0) + 1;
      }
      close_run(end - 1);
      const std::int64_t eof = state.eof_at.count(p) ? state.eof_at[p] : -1;
      if (eof < end) reached_end = false;
      per_partition[std::to_string(p)] = {
          {"high_watermark", end},
          {"last_stable_offset", lso[p]},
          {"delivered", static_cast<std::int64_t>(delivered.size())},
          {"end_of_partition_at", eof},
          {"position", state.position.count(p) ? state.position[p] : -1}};
    }
    details["partitions"] = per_partition;
    details["gap_sample"] = gap_sample;
    Progress(ctx, 90);

    // The side effects, counted in MariaDB.
    const std::int64_t applied =
        Count(result, **conn, "SELECT COUNT(*) FROM txn_effect WHERE run_ns = ?", {ns});
    const std::int64_t applied_distinct = Count(
        result, **conn, "SELECT COUNT(DISTINCT event_id) FROM txn_effect WHERE run_ns = ?", {ns});
    const std::int64_t phantoms = Count(result, **conn,
                                        "SELECT COUNT(*) FROM txn_effect e JOIN kafka_txn t "
                                        "ON t.run_ns = e.run_ns AND t.txn_no = e.txn_no "
                                        "WHERE e.run_ns = ? AND t.outcome <> 'committed'",
                                        {ns});
    const std::int64_t applied_committed =
        Count(result, **conn,
              "SELECT COUNT(DISTINCT e.event_id) FROM txn_effect e JOIN kafka_txn t "
              "ON t.run_ns = e.run_ns AND t.txn_no = e.txn_no "
              "WHERE e.run_ns = ? AND t.outcome = 'committed'",
              {ns});
    const std::int64_t unmatched = Count(result, **conn,
                                         "SELECT COUNT(*) FROM txn_effect e LEFT JOIN kafka_txn t "
                                         "ON t.run_ns = e.run_ns AND t.txn_no = e.txn_no "
                                         "WHERE e.run_ns = ? AND t.txn_no IS NULL",
                                         {ns});
    const std::int64_t committed =
        Count(result, **conn,
              "SELECT COALESCE(SUM(records), 0) FROM kafka_txn WHERE run_ns = ? AND outcome = ?",
              {ns, std::string(kCommitted)});
    const std::int64_t aborted =
        Count(result, **conn,
              "SELECT COALESCE(SUM(records), 0) FROM kafka_txn WHERE run_ns = ? AND outcome <> ?",
              {ns, std::string(kCommitted)});
    for (auto n :
         {applied, applied_distinct, phantoms, applied_committed, unmatched, committed, aborted}) {
      if (n < 0) return finish("mysql: a count over txn_effect/kafka_txn failed");
    }
    details["side_effects_without_transaction"] = unmatched;

    std::int64_t fenced = 0;
    std::int64_t committed_txns = 0;
    std::int64_t aborted_txns = 0;
    for (const auto& t : txns) {
      if (t.outcome == kFenced) fenced = 1;
      (t.outcome == kCommitted ? committed_txns : aborted_txns) += 1;
    }
    auto put = [&](const std::string& name, double v, const char* source) {
      result.metrics[name] = v;
      provenance[name] = source;
    };
    const double n_all = static_cast<double>(all.messages.size());
    put("transactions", static_cast<double>(txns.size()), "self_reported");
    put("committed_transactions", static_cast<double>(committed_txns), "self_reported");
    put("aborted_transactions", static_cast<double>(aborted_txns), "self_reported");
    put("committed", static_cast<double>(committed), "self_reported");
    put("aborted", static_cast<double>(aborted), "self_reported");
    put("fenced", static_cast<double>(fenced), "self_reported");
    put("committed_in_log", static_cast<double>(committed_in_log), "read_back");
    put("aborted_in_log", static_cast<double>(aborted_in_log), "read_back");
    put("fenced_in_log", static_cast<double>(fenced_in_log), "read_back");
    put("visible_read_committed", static_cast<double>(visible.messages.size()), "read_back");
    put("aborted_visible_read_committed", static_cast<double>(aborted_visible), "read_back");
    put("high_watermark", static_cast<double>(log_offsets), "server_counter");
    put("markers", static_cast<double>(log_offsets) - n_all, "read_back");
    put("applied", static_cast<double>(applied), "read_back");
    put("applied_committed", static_cast<double>(applied_committed), "read_back");
    put("phantoms", static_cast<double>(phantoms), "read_back");
    put("duplicates", static_cast<double>(applied - applied_distinct), "read_back");
    put("missing", static_cast<double>(committed_in_log - applied_committed), "read_back");
    put("delivered", static_cast<double>(state.delivered), "self_reported");
    put("gaps", static_cast<double>(gaps), "self_reported");
    put("gap_markers", static_cast<double>(gap_markers), "read_back");
    put("gap_aborted_records", static_cast<double>(gap_aborted), "read_back");
    put("gap_committed_records", static_cast<double>(gap_committed), "read_back");
    put("reached_end", reached_end ? 1 : 0, "self_reported");
    put("catch_up_ms", state.catch_up_ms.value_or(-1), "self_reported");
    put("consumed_for_ms", state.consumed_for_ms, "self_reported");
    put("lso_wait_ms", lso_wait_ms, "server_counter");
    details["provenance"] = provenance;
    details["consumer_transient_errors"] = state.transient_errors;
    details["note"] =
        "gaps are offsets below the high watermark the consumer never received; markers "
        "(one per transaction and partition it wrote to) are never delivered at either "
        "isolation level, records of aborted transactions only under read_uncommitted";
    result.details_json = details.dump();
    Step(ctx, mode + " (" + isolation + "): committed=" + std::to_string(committed) +
                  " aborted=" + std::to_string(aborted) + " (in log " +
                  std::to_string(aborted_in_log) + ") applied=" + std::to_string(applied) +
                  " phantoms=" + std::to_string(phantoms) + " gaps=" + std::to_string(gaps) +
                  " (markers " + std::to_string(gap_markers) + ", aborted records " +
                  std::to_string(gap_aborted) + ") reached_end=" + (reached_end ? "1" : "0") +
                  " catch_up_ms=" + std::to_string(state.catch_up_ms.value_or(-1)));
    Progress(ctx, 100);
    return result;
  }

 private:
  // The producer side: `transactions` transactions, every abort_every-th aborted, and the zombie
  // halfway. Each outcome goes to kafka_txn as soon as the API answered.
  domain::Status Produce(const domain::RunContext& ctx, const std::string& mode,
                         domain::ModeResult& result, const std::string& ns,
                         const std::string& topic, const std::string& transactional_id,
                         std::vector<Txn>& txns, std::string& zombie_answer, double& fence_ms,
                         mysql::Connection& conn) const {
    const int transactions = static_cast<int>(domain::GetInt(ctx.params, "transactions"));
    const std::int64_t per_txn = domain::GetInt(ctx.params, "records_per_txn");
    const int abort_every = static_cast<int>(domain::GetInt(ctx.params, "abort_every"));
    const int partitions = static_cast<int>(domain::GetInt(ctx.params, "partitions"));
    auto fail = [&](const std::string& what, const domain::Error& e) -> domain::Error {
      if (e.code == domain::ErrorCode::kTimeout) {
        if (auto lib =
                kafka::ClassifyClientLibraryFailure(RD_KAFKA_RESP_ERR__TIMED_OUT, false, what))
          result.client_library_failures.push_back(*lib);
      }
      return domain::MakeError(e.code, "kafka: " + what + ": " + e.message);
    };
    if (!AllBrokersKnow(topic, partitions, ctx.stop))
      Step(ctx, mode + ": not every broker knew " + topic + " within 10 s; producing anyway");
    auto active = kafka::Producer::Create(config_.kafka_bootstrap, {}, transactional_id);
    if (!active) return fail("producer", active.error());
    if (auto s = (*active)->InitTransactions(30s); !s) return fail("init_transactions", s.error());
    std::int64_t seq = 0;
    auto write = [&](kafka::Producer& p, int no) -> domain::Status {
      for (std::int64_t i = 0; i < per_txn; ++i) {
        const std::string event_id = ns + "-t" + std::to_string(no) + "-" + std::to_string(i);
        auto s =
            p.Produce(topic, static_cast<std::int32_t>(seq++ % partitions), event_id,
                      "ledger entry " + std::to_string(i) + " of transaction " + std::to_string(no),
                      {{"event_id", event_id}, {"txn", std::to_string(no)}});
        if (!s) return s;
      }
      return {};
    };
    auto record = [&](int no, const char* outcome) -> domain::Status {
      txns.push_back({no, outcome, per_txn});
      auto s = conn.Exec(
          "INSERT INTO kafka_txn (run_ns, txn_no, outcome, records, ended_at_us) "
          "VALUES (?,?,?,?,?)",
          {ns, std::int64_t{no}, std::string(outcome), per_txn, NowMicros()});
      if (!s) return domain::MakeError(s.error().code, "mysql: kafka_txn: " + s.error().message);
      return {};
    };
    int no = 0;
    for (int t = 0; t < transactions; ++t) {
      if (ctx.stop.stop_requested())
        return domain::MakeError(domain::ErrorCode::kTimeout, "cancelled");
      if (t == transactions / 2) {
        // The zombie: its transaction is in the log when its successor takes the id over.
        const int zombie = no++;
        if (auto s = (*active)->BeginTransaction(); !s) return fail("zombie begin", s.error());
        if (auto s = write(**active, zombie); !s) return fail("zombie produce", s.error());
        if (auto s = (*active)->Flush(15s); !s) return fail("zombie flush", s.error());
        auto successor = kafka::Producer::Create(config_.kafka_bootstrap, {}, transactional_id);
        if (!successor) return fail("successor producer", successor.error());
        const auto fence_start = SteadyClock::now();
        if (auto s = (*successor)->InitTransactions(30s); !s)
          return fail("successor init_transactions", s.error());
        fence_ms = MsSince(fence_start);
        auto commit = (*active)->CommitTransaction(10s);
        const auto fatal = (*active)->FatalError();
        zombie_answer = commit ? std::string("commit succeeded: not fenced")
                               : commit.error().message + (fatal ? " | fatal: " + *fatal : "");
        const bool fenced =
            !commit && (zombie_answer.find("FENCED") != std::string::npos ||
                        zombie_answer.find("INVALID_PRODUCER_EPOCH") != std::string::npos);
        Step(ctx, mode + ": zombie transaction " + std::to_string(zombie) +
                      ": successor initialised in " + std::to_string(static_cast<int>(fence_ms)) +
                      " ms; zombie's commit: " + zombie_answer);
        if (auto s = record(zombie, commit ? kCommitted : (fenced ? kFenced : kAborted)); !s)
          return s;
        (*active)->SetFlushOnDestroy(0ms);  // a fenced producer has nothing left to deliver
        active = std::move(successor);
      }
      const int n = no++;
      const bool abort = t % abort_every == abort_every - 1;
      if (auto s = (*active)->BeginTransaction(); !s) return fail("begin_transaction", s.error());
      if (auto s = write(**active, n); !s) return fail("produce", s.error());
      if (abort) {
        // Delivered first, so the aborted records are really in the log (abort_transaction
        // would otherwise purge what is still queued).
        if (auto s = (*active)->Flush(15s); !s) return fail("flush before abort", s.error());
        if (auto s = (*active)->AbortTransaction(15s); !s)
          return fail("abort_transaction", s.error());
      } else if (auto s = (*active)->CommitTransaction(15s); !s) {
        return fail("commit_transaction", s.error());
      }
      if (auto s = record(n, abort ? kAborted : kCommitted); !s) return s;
      Progress(ctx, 50.0 * (t + 1) / transactions);
    }
    return {};
  }

  // The consuming service: applies every record it receives until it has reached the end of
  // the log (once the runner knows it) or is stopped.
  void Consume(const domain::RunContext& ctx, const std::string& ns, const std::string& topic,
               int partitions, const std::string& isolation, ConsumerState& state,
               std::stop_token own) const {
    const auto start = SteadyClock::now();
    auto fail = [&](const std::string& why) {
      std::lock_guard lock(state.mu);
      state.error = why;
      state.done = true;
    };
    auto conn = mysql::Connection::Open(MysqlSettings());
    if (!conn) return fail("mysql: " + conn.error().message);
    auto consumer = kafka::Consumer::Create(config_.kafka_bootstrap, "",
                                            {{"isolation.level", isolation},
                                             {"enable.partition.eof", "true"},
                                             {"fetch.wait.max.ms", "20"}});
    if (!consumer) return fail("kafka: " + consumer.error().message);
    std::vector<kafka::TopicPartitionOffset> assignment;
    for (int p = 0; p < partitions; ++p)
      assignment.push_back({topic, p, RD_KAFKA_OFFSET_BEGINNING});
    if (auto s = (*consumer)->Assign(assignment); !s) return fail("kafka: " + s.error().message);
    rd_kafka_t* rk = (*consumer)->handle();
    while (!own.stop_requested() && !ctx.stop.stop_requested()) {
      // One poll batch: up to 500 records within 100 ms.
      std::vector<Received> batch;
      PartitionOffsets eofs;
      std::int64_t transient = 0;
      const auto until = SteadyClock::now() + 100ms;
      while (batch.size() < 500) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - SteadyClock::now());
        if (left.count() <= 0) break;
        MessageHandle msg(
            rd_kafka_consumer_poll(rk, batch.empty() ? static_cast<int>(left.count()) : 0));
        if (!msg) {
          if (!batch.empty()) break;
          continue;
        }
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          eofs[msg->partition] = std::max(eofs[msg->partition], msg->offset);
          continue;
        }
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          if (msg->err == RD_KAFKA_RESP_ERR__FATAL ||
              msg->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            return fail(std::string("kafka: consume: ") + rd_kafka_err2name(msg->err));
          }
          ++transient;
          continue;
        }
        batch.push_back({ToMessage(msg.get()), -1});
        batch.back().txn = TxnOf(batch.back().message);
      }
      // The side effects of the batch, in one MariaDB transaction.
      if (!batch.empty()) {
        auto applied = mysql::InTransaction(**conn, [&](mysql::Connection& c) -> domain::Status {
          for (const auto& r : batch) {
            auto s = c.Exec(
                "INSERT INTO txn_effect (run_ns, event_id, txn_no, kafka_partition, "
                "kafka_offset, applied_at_us) VALUES (?,?,?,?,?,?)",
                {ns, HeaderOf(r.message, "event_id"), std::int64_t{r.txn},
                 std::int64_t{r.message.partition}, r.message.offset, NowMicros()});
            if (!s) return s.error();
          }
          return {};
        });
        if (!applied) return fail("mysql: apply: " + applied.error().message);
      }
      std::lock_guard lock(state.mu);
      state.transient_errors += transient;
      for (const auto& r : batch) state.offsets[r.message.partition].push_back(r.message.offset);
      state.delivered += static_cast<std::int64_t>(batch.size());
      for (const auto& [p, off] : eofs) state.eof_at[p] = std::max(state.eof_at[p], off);
      if (state.targets) {
        bool reached = true;
        for (const auto& [p, end] : *state.targets) {
          auto it = state.eof_at.find(p);
          if (it == state.eof_at.end() || it->second < end) reached = false;
        }
        if (reached) {
          state.catch_up_ms =
              std::chrono::duration<double, std::milli>(SteadyClock::now() - *state.targets_set_at)
                  .count();
          break;
        }
      }
    }
    ListHandle list(rd_kafka_topic_partition_list_new(partitions));
    for (int p = 0; p < partitions; ++p)
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
    const bool have_position = rd_kafka_position(rk, list.get()) == RD_KAFKA_RESP_ERR_NO_ERROR;
    std::lock_guard lock(state.mu);
    if (have_position) {
      for (int i = 0; i < list->cnt; ++i)
        state.position[list->elems[i].partition] = list->elems[i].offset;
    }
    state.consumed_for_ms = MsSince(start);
    state.done = true;
  }

  static kafka::Message ToMessage(const rd_kafka_message_t* msg) {
    kafka::Message m;
    m.topic = rd_kafka_topic_name(msg->rkt);
    m.partition = msg->partition;
    m.offset = msg->offset;
    if (msg->key != nullptr) m.key.assign(static_cast<const char*>(msg->key), msg->key_len);
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(msg, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        headers != nullptr) {
      const char* name = nullptr;
      const void* value = nullptr;
      size_t size = 0;
      for (size_t i = 0;
           rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        m.headers.emplace_back(name, value == nullptr
                                         ? std::string()
                                         : std::string(static_cast<const char*>(value), size));
      }
    }
    return m;
  }

  // The end offset of each partition as the consumer handle `rk` sees it: the high watermark
  // (read_uncommitted) or the last stable offset (read_committed): ListOffsets carries the
  // handle's isolation level.
  static std::optional<PartitionOffsets> Marks(rd_kafka_t* rk, const std::string& topic,
                                               int partitions) {
    PartitionOffsets out;
    for (int p = 0; p < partitions; ++p) {
      std::int64_t low = 0;
      std::int64_t high = 0;
      if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high, 5000) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        return std::nullopt;
      }
      out[p] = high;
    }
    return out;
  }

  // "C C A C … F": each transaction's outcome in order.
  static std::string Summary(const std::vector<Txn>& txns) {
    std::string out;
    for (const auto& t : txns) {
      out += out.empty() ? "" : " ";
      out += t.outcome == kCommitted ? "C" : t.outcome == kFenced ? "F" : "A";
    }
    return out + " (C committed, A aborted, F fenced)";
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakeReadCommitted(const StackConfig& config) {
  return std::make_unique<ReadCommitted>(config);
}

}  // namespace lab::runners
