#include "runners/kafka/kafka_client.h"

#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "runners/common/util.h"

namespace lab::runners::kafka {
namespace {

using domain::ErrorCode;
using domain::MakeError;

using ConfHandle = CHandle<rd_kafka_conf_t, rd_kafka_conf_destroy>;
using ListHandle = CHandle<rd_kafka_topic_partition_list_t, rd_kafka_topic_partition_list_destroy>;
using QueueHandle = CHandle<rd_kafka_queue_t, rd_kafka_queue_destroy>;
using EventHandle = CHandle<rd_kafka_event_t, rd_kafka_event_destroy>;
using OptionsHandle = CHandle<rd_kafka_AdminOptions_t, rd_kafka_AdminOptions_destroy>;
using ErrorHandle = CHandle<rd_kafka_error_t, rd_kafka_error_destroy>;
using TopicHandle = CHandle<rd_kafka_topic_t, rd_kafka_topic_destroy>;

domain::Error KafkaError(const std::string& what, rd_kafka_resp_err_t err) {
  auto code = err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT ||
                      err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT
                  ? ErrorCode::kTimeout
                  : ErrorCode::kUnavailable;
  return MakeError(code, what + ": " + rd_kafka_err2name(err) + " (" + rd_kafka_err2str(err) + ")");
}

domain::Error TxnError(const std::string& what, ErrorHandle error) {
  std::string text = what + ": " + rd_kafka_error_name(error.get()) + " (" +
                     rd_kafka_error_string(error.get()) + ")";
  if (rd_kafka_error_is_fatal(error.get())) text += " [fatal]";
  if (rd_kafka_error_txn_requires_abort(error.get())) text += " [requires abort]";
  return MakeError(ErrorCode::kUnavailable, text);
}

Result<ConfHandle> MakeConf(const ConfigMap& settings) {
  ConfHandle conf(rd_kafka_conf_new());
  char errstr[512];
  for (const auto& [key, value] : settings) {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "kafka config " + key + "=" + value + ": " + errstr);
    }
  }
  return conf;
}

// A client handle from `conf`. rd_kafka_new takes the configuration only when it succeeds;
// on failure `conf` still owns it and frees it.
Result<KafkaHandle> NewClient(rd_kafka_type_t type, ConfHandle& conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
  if (rk == nullptr)
    return MakeError(ErrorCode::kInvalidArgument, std::string("rd_kafka_new: ") + errstr);
  (void)conf.release();
  return KafkaHandle(rk);
}

ConfigMap Merge(ConfigMap base, const ConfigMap& extra) {
  for (const auto& kv : extra) {
    bool replaced = false;
    for (auto& existing : base) {
      if (existing.first == kv.first) {
        existing.second = kv.second;
        replaced = true;
      }
    }
    if (!replaced) base.push_back(kv);
  }
  return base;
}

// librdkafka logs go nowhere by default here; the interesting ones become errors we return.
void QuietLog(const rd_kafka_t*, int, const char*, const char*) {}

std::string RandomSuffix() {
  static std::atomic<std::uint64_t> counter{0};
  std::random_device rd;
  return std::to_string(rd()) + "_" + std::to_string(counter.fetch_add(1));
}

// Runs one admin request and waits for its result event on a private queue.
Result<EventHandle> AwaitAdmin(rd_kafka_queue_t* queue, Ms timeout, const std::string& what) {
  EventHandle event(rd_kafka_queue_poll(queue, static_cast<int>(timeout.count()) + 1000));
  if (!event)
    return MakeError(ErrorCode::kTimeout,
                     what + ": no answer within " + std::to_string(timeout.count()) + " ms");
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return MakeError(ErrorCode::kUnavailable,
                     what + ": " + rd_kafka_event_error_string(event.get()));
  }
  return event;
}

OptionsHandle AdminOptions(rd_kafka_t* rk, rd_kafka_admin_op_t op, Ms timeout) {
  OptionsHandle options(rd_kafka_AdminOptions_new(rk, op));
  char errstr[256];
  rd_kafka_AdminOptions_set_request_timeout(options.get(), static_cast<int>(timeout.count()),
                                            errstr, sizeof errstr);
  if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS) {
    rd_kafka_AdminOptions_set_operation_timeout(options.get(), static_cast<int>(timeout.count()),
                                                errstr, sizeof errstr);
  }
  return options;
}

}  // namespace

ConfigMap BaseConfig(const std::string& bootstrap) {
  return {{"bootstrap.servers", bootstrap},
          {"socket.nagle.disable", "true"},  // on by default before 2.10.0: adds latency
          {"socket.timeout.ms", "10000"},
          {"socket.connection.setup.timeout.ms", "5000"},
          {"reconnect.backoff.ms", "50"},
          {"reconnect.backoff.max.ms", "1000"},
          {"topic.metadata.refresh.interval.ms", "10000"},
          {"log.connection.close", "false"}};
}

std::optional<std::string> ClassifyClientLibraryFailure(rd_kafka_resp_err_t err, bool fatal,
                                                        const std::string& context) {
  if (err == RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER ||
      (fatal && err == RD_KAFKA_RESP_ERR__FATAL)) {
    return context +
           ": librdkafka 2.0.2 raised a fatal idempotence error (OUT_OF_ORDER_SEQUENCE_NUMBER, "
           "sequence desynchronisation after a timeout/disconnect; fixed upstream in 2.3.0 "
           "#4438); the producer was re-created";
  }
  if (fatal) {
    return context + ": librdkafka fatal error " + rd_kafka_err2name(err) +
           "; the producer was re-created";
  }
  if (err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) {
    return context +
           ": message timed out — librdkafka 2.0.2 retries NOT_ENOUGH_REPLICAS and other "
           "retriable broker errors internally and reports only a timeout";
  }
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE) {
    return context + ": " + rd_kafka_err2name(err) +
           " — coordinator lookup can stall while a broker is down in librdkafka < 2.10 (#4970)";
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- Producer

Result<std::unique_ptr<Producer>> Producer::Create(const std::string& bootstrap, ConfigMap extra,
                                                   const std::string& transactional_id) {
  ConfigMap settings = Merge(BaseConfig(bootstrap), {{"acks", "all"},
                                                     {"linger.ms", "5"},
                                                     {"message.timeout.ms", "15000"},
                                                     {"request.timeout.ms", "5000"}});
  if (!transactional_id.empty()) {
    settings.emplace_back("transactional.id", transactional_id);
    settings.emplace_back("transaction.timeout.ms", "60000");
  }
  settings = Merge(std::move(settings), extra);
  auto conf = MakeConf(settings);
  if (!conf) return conf.error();
  std::unique_ptr<Producer> producer(new Producer());
  rd_kafka_conf_set_opaque(conf->get(), producer.get());
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &Producer::OnDelivery);
  rd_kafka_conf_set_log_cb(conf->get(), &QuietLog);
  auto rk = NewClient(RD_KAFKA_PRODUCER, *conf);
  if (!rk) return rk.error();
  producer->rk_ = std::move(*rk);
  return producer;
}

Producer::~Producer() {
  if (rk_ && flush_on_destroy_.count() > 0)
    rd_kafka_flush(rk_.get(), static_cast<int>(flush_on_destroy_.count()));
}

void Producer::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  auto* self = static_cast<Producer*>(opaque);
  DeliveryReport report;
  if (msg->key != nullptr) report.key.assign(static_cast<const char*>(msg->key), msg->key_len);
  report.err = msg->err;
  report.partition = msg->partition;
  report.offset = msg->offset;
  report.status = rd_kafka_message_status(msg);
  report.seq = static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(msg->_private));
  self->reports_.push_back(std::move(report));
}

Status Producer::Produce(const std::string& topic, std::int32_t partition, const std::string& key,
                         const std::string& value, const Headers& headers, std::int64_t seq) {
  std::vector<rd_kafka_vu_t> vus;
  auto add = [&vus](rd_kafka_vtype_t type) -> rd_kafka_vu_t& {
    vus.emplace_back();
    vus.back().vtype = type;
    return vus.back();
  };
  add(RD_KAFKA_VTYPE_TOPIC).u.cstr = topic.c_str();
  add(RD_KAFKA_VTYPE_PARTITION).u.i32 = partition < 0 ? RD_KAFKA_PARTITION_UA : partition;
  add(RD_KAFKA_VTYPE_MSGFLAGS).u.i = RD_KAFKA_MSG_F_COPY;
  auto& k = add(RD_KAFKA_VTYPE_KEY);
  k.u.mem.ptr = const_cast<char*>(key.data());
  k.u.mem.size = key.size();
  auto& v = add(RD_KAFKA_VTYPE_VALUE);
  v.u.mem.ptr = const_cast<char*>(value.data());
  v.u.mem.size = value.size();
  add(RD_KAFKA_VTYPE_OPAQUE).u.ptr = reinterpret_cast<void*>(static_cast<std::intptr_t>(seq));
  for (const auto& [name, val] : headers) {
    auto& h = add(RD_KAFKA_VTYPE_HEADER);
    h.u.header.name = name.c_str();
    h.u.header.val = val.data();
    h.u.header.size = static_cast<ssize_t>(val.size());
  }
  for (int attempt = 0; attempt < 200; ++attempt) {
    ErrorHandle error(rd_kafka_produceva(rk_.get(), vus.data(), vus.size()));
    if (!error) return {};
    if (rd_kafka_error_code(error.get()) != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      return MakeError(ErrorCode::kUnavailable, std::string("produce to ") + topic + ": " +
                                                    rd_kafka_error_name(error.get()) + " (" +
                                                    rd_kafka_error_string(error.get()) + ")");
    }
    rd_kafka_poll(rk_.get(), 50);  // local queue full: serve deliveries, then retry
  }
  return MakeError(ErrorCode::kResourceExhausted,
                   "produce to " + topic + ": local queue stayed full");
}

void Producer::Poll(Ms timeout) { rd_kafka_poll(rk_.get(), static_cast<int>(timeout.count())); }

Status Producer::Flush(Ms timeout) {
  auto err = rd_kafka_flush(rk_.get(), static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return MakeError(ErrorCode::kTimeout, "flush: " + std::to_string(rd_kafka_outq_len(rk_.get())) +
                                              " messages still queued: " + rd_kafka_err2str(err));
  }
  return {};
}

std::vector<DeliveryReport> Producer::TakeReports() {
  std::vector<DeliveryReport> out;
  out.swap(reports_);
  return out;
}

int Producer::OutQueueLength() const { return rd_kafka_outq_len(rk_.get()); }

Status Producer::InitTransactions(Ms timeout) {
  ErrorHandle error(rd_kafka_init_transactions(rk_.get(), static_cast<int>(timeout.count())));
  if (error) return TxnError("init_transactions", std::move(error));
  return {};
}

Status Producer::BeginTransaction() {
  ErrorHandle error(rd_kafka_begin_transaction(rk_.get()));
  if (error) return TxnError("begin_transaction", std::move(error));
  return {};
}

Status Producer::CommitTransaction(Ms timeout) {
  ErrorHandle error(rd_kafka_commit_transaction(rk_.get(), static_cast<int>(timeout.count())));
  if (error) return TxnError("commit_transaction", std::move(error));
  return {};
}

Status Producer::AbortTransaction(Ms timeout) {
  ErrorHandle error(rd_kafka_abort_transaction(rk_.get(), static_cast<int>(timeout.count())));
  if (error) return TxnError("abort_transaction", std::move(error));
  return {};
}

std::optional<std::string> Producer::FatalError() const {
  char errstr[512];
  auto err = rd_kafka_fatal_error(rk_.get(), errstr, sizeof errstr);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return std::nullopt;
  return std::string(rd_kafka_err2name(err)) + ": " + errstr;
}

// ---------------------------------------------------------------- Consumer

Result<std::unique_ptr<Consumer>> Consumer::Create(const std::string& bootstrap,
                                                   const std::string& group_id, ConfigMap extra) {
  ConfigMap settings =
      Merge(BaseConfig(bootstrap),
            {{"group.id", group_id.empty() ? "lab-readback-" + RandomSuffix() : group_id},
             {"enable.auto.commit", "false"},
             {"enable.auto.offset.store", "false"},
             {"auto.offset.reset", "earliest"},
             {"isolation.level", "read_committed"},
             {"session.timeout.ms", "6000"},
             {"heartbeat.interval.ms", "500"},
             {"max.poll.interval.ms", "30000"},
             {"fetch.wait.max.ms", "50"}});
  settings = Merge(std::move(settings), extra);
  auto conf = MakeConf(settings);
  if (!conf) return conf.error();
  std::unique_ptr<Consumer> consumer(new Consumer());
  rd_kafka_conf_set_opaque(conf->get(), consumer.get());
  rd_kafka_conf_set_rebalance_cb(conf->get(), &Consumer::OnRebalance);
  rd_kafka_conf_set_log_cb(conf->get(), &QuietLog);
  auto rk = NewClient(RD_KAFKA_CONSUMER, *conf);
  if (!rk) return rk.error();
  consumer->rk_ = std::move(*rk);
  rd_kafka_poll_set_consumer(consumer->rk_.get());
  return consumer;
}

Consumer::~Consumer() { (void)Close(); }

void Consumer::OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* self = static_cast<Consumer*>(opaque);
  ++self->rebalances_;
  self->empty_assignment_since_.reset();
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && partitions->cnt == 0)
    self->empty_assignment_since_ = SteadyClock::now();
  bool cooperative = std::string(rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE";
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    self->assigned_ = partitions->cnt;
    if (cooperative) {
      ErrorHandle e(rd_kafka_incremental_assign(rk, partitions));
    } else {
      rd_kafka_assign(rk, partitions);
    }
  } else {
    self->assigned_ = 0;
    self->revoked_ += partitions->cnt;
    if (cooperative) {
      ErrorHandle e(rd_kafka_incremental_unassign(rk, partitions));
    } else {
      rd_kafka_assign(rk, nullptr);
    }
  }
}

Status Consumer::Subscribe(const std::vector<std::string>& topics) {
  ListHandle list(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const auto& t : topics)
    rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  auto err = rd_kafka_subscribe(rk_.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("subscribe", err);
  subscription_ = topics;
  empty_assignment_since_.reset();
  return {};
}

std::optional<std::string> Consumer::RejoinIfStalled(Ms after) {
  if (!empty_assignment_since_ || SteadyClock::now() - *empty_assignment_since_ < after)
    return std::nullopt;
  empty_assignment_since_ = SteadyClock::now();  // at most one attempt per `after`
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk_.get(), 0, nullptr, &md, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return std::nullopt;
  int partitions = 0;
  for (int t = 0; t < md->topic_cnt; ++t) {
    const std::string name = md->topics[t].topic;
    if (std::find(subscription_.begin(), subscription_.end(), name) != subscription_.end())
      partitions += md->topics[t].partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  if (partitions == 0) return std::nullopt;  // nothing to assign yet: not a stall
  auto s = Subscribe(subscription_);
  return "librdkafka 2.0.2: assigned no partition for " + std::to_string(after.count()) +
         " ms while its topics have " + std::to_string(partitions) +
         " (the group formed without them, no rebalance followed); subscribed again" +
         (s ? std::string() : ": " + s.error().message);
}

Status Consumer::Assign(const std::vector<TopicPartitionOffset>& partitions) {
  ListHandle list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto& p : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), p.topic.c_str(), p.partition)->offset = p.offset;
  }
  auto err = rd_kafka_assign(rk_.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("assign", err);
  assigned_ = static_cast<int>(partitions.size());
  return {};
}

Result<std::vector<Message>> Consumer::Poll(std::size_t max, Ms timeout) {
  std::vector<Message> out;
  auto deadline = SteadyClock::now() + timeout;
  while (out.size() < max) {
    auto left = std::chrono::duration_cast<Ms>(deadline - SteadyClock::now());
    if (left.count() < 0) break;
    int wait = out.empty() ? static_cast<int>(left.count()) : 0;
    CHandle<rd_kafka_message_t, rd_kafka_message_destroy> msg(
        rd_kafka_consumer_poll(rk_.get(), wait));
    if (!msg) {
      if (!out.empty() || left.count() == 0) break;
      continue;
    }
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      eof_.insert({rd_kafka_topic_name(msg->rkt), msg->partition});
      if (!out.empty()) break;
      continue;
    }
    if (msg->err == RD_KAFKA_RESP_ERR__MAX_POLL_EXCEEDED) ++max_poll_exceeded_;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // Transient consumer errors (broker down, transport) are not data; report fatal ones.
      if (msg->err == RD_KAFKA_RESP_ERR__FATAL ||
          msg->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
          msg->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        return KafkaError("consume", msg->err);
      }
      continue;
    }
    Message m;
    m.topic = rd_kafka_topic_name(msg->rkt);
    m.partition = msg->partition;
    m.offset = msg->offset;
    if (msg->key != nullptr) m.key.assign(static_cast<const char*>(msg->key), msg->key_len);
    if (msg->payload != nullptr) m.value.assign(static_cast<const char*>(msg->payload), msg->len);
    rd_kafka_timestamp_type_t tstype;
    m.timestamp_ms = rd_kafka_message_timestamp(msg.get(), &tstype);
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(msg.get(), &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        hdrs != nullptr) {
      const char* name = nullptr;
      const void* val = nullptr;
      size_t size = 0;
      for (size_t i = 0;
           rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        m.headers.emplace_back(name, val == nullptr
                                         ? std::string()
                                         : std::string(static_cast<const char*>(val), size));
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

Status Consumer::Commit(const std::vector<TopicPartitionOffset>& next_offsets) {
  if (next_offsets.empty()) return {};
  ListHandle list(rd_kafka_topic_partition_list_new(static_cast<int>(next_offsets.size())));
  for (const auto& p : next_offsets) {
    rd_kafka_topic_partition_list_add(list.get(), p.topic.c_str(), p.partition)->offset = p.offset;
  }
  auto err = rd_kafka_commit(rk_.get(), list.get(), 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("commit", err);
  return {};
}

Status Consumer::CommitCurrent() {
  auto err = rd_kafka_commit(rk_.get(), nullptr, 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    return KafkaError("commit", err);
  }
  return {};
}

std::vector<TopicPartitionOffset> Consumer::Assignment() const {
  rd_kafka_topic_partition_list_t* raw = nullptr;
  std::vector<TopicPartitionOffset> out;
  if (rd_kafka_assignment(rk_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  ListHandle list(raw);
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition, list->elems[i].offset});
  }
  return out;
}

Result<std::map<std::int32_t, std::int64_t>> Consumer::Committed(const std::string& topic,
                                                                 int partitions, Ms timeout) {
  ListHandle list(rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  auto err = rd_kafka_committed(rk_.get(), list.get(), static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("committed offsets of " + topic, err);
  std::map<std::int32_t, std::int64_t> out;
  for (int i = 0; i < list->cnt; ++i) out[list->elems[i].partition] = list->elems[i].offset;
  return out;
}

Status Consumer::Close() {
  if (closed_ || !rk_) return {};
  closed_ = true;
  auto err = rd_kafka_consumer_close(rk_.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("consumer close", err);
  return {};
}

// ---------------------------------------------------------------- Admin

Result<std::unique_ptr<Admin>> Admin::Create(const std::string& bootstrap, ConfigMap extra) {
  auto conf = MakeConf(Merge(BaseConfig(bootstrap), extra));
  if (!conf) return conf.error();
  rd_kafka_conf_set_log_cb(conf->get(), &QuietLog);
  auto rk = NewClient(RD_KAFKA_PRODUCER, *conf);
  if (!rk) return rk.error();
  std::unique_ptr<Admin> admin(new Admin());
  admin->rk_ = std::move(*rk);
  admin->bootstrap_ = bootstrap;
  return admin;
}

Status Admin::CreateTopic(const std::string& name, int partitions, int replication,
                          const std::map<std::string, std::string>& configs, Ms timeout) {
  char errstr[512];
  CHandle<rd_kafka_NewTopic_t, rd_kafka_NewTopic_destroy> topic(
      rd_kafka_NewTopic_new(name.c_str(), partitions, replication, errstr, sizeof errstr));
  if (!topic) return MakeError(ErrorCode::kInvalidArgument, "new topic " + name + ": " + errstr);
  for (const auto& [k, v] : configs)
    rd_kafka_NewTopic_set_config(topic.get(), k.c_str(), v.c_str());
  return CreateTopics(std::move(topic), name, timeout);
}

Status Admin::CreateTopicWithAssignment(const std::string& name,
                                        const std::vector<std::vector<std::int32_t>>& assignment,
                                        const std::map<std::string, std::string>& configs,
                                        Ms timeout) {
  char errstr[512];
  // Replication factor -1: the replica assignment decides it.
  CHandle<rd_kafka_NewTopic_t, rd_kafka_NewTopic_destroy> topic(rd_kafka_NewTopic_new(
      name.c_str(), static_cast<int>(assignment.size()), -1, errstr, sizeof errstr));
  if (!topic) return MakeError(ErrorCode::kInvalidArgument, "new topic " + name + ": " + errstr);
  for (std::size_t p = 0; p < assignment.size(); ++p) {
    auto brokers = assignment[p];  // the C API takes a non-const array
    if (rd_kafka_NewTopic_set_replica_assignment(topic.get(), static_cast<std::int32_t>(p),
                                                 brokers.data(), brokers.size(), errstr,
                                                 sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "replica assignment of " + name + ": " + errstr);
    }
  }
  for (const auto& [k, v] : configs)
    rd_kafka_NewTopic_set_config(topic.get(), k.c_str(), v.c_str());
  return CreateTopics(std::move(topic), name, timeout);
}

Status Admin::CreateTopics(CHandle<rd_kafka_NewTopic_t, rd_kafka_NewTopic_destroy> topic,
                           const std::string& name, Ms timeout) {
  QueueHandle queue(rd_kafka_queue_new(rk_.get()));
  auto options = AdminOptions(rk_.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout);
  rd_kafka_NewTopic_t* topics[] = {topic.get()};
  rd_kafka_CreateTopics(rk_.get(), topics, 1, options.get(), queue.get());
  auto event = AwaitAdmin(queue.get(), timeout, "create topic " + name);
  if (!event) return event.error();
  size_t count = 0;
  const auto* results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event->get()), &count);
  for (size_t i = 0; i < count; ++i) {
    auto err = rd_kafka_topic_result_error(results[i]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* msg = rd_kafka_topic_result_error_string(results[i]);
      return MakeError(
          err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS ? ErrorCode::kConflict
                                                        : ErrorCode::kUnavailable,
          "create topic " + name + ": " + rd_kafka_err2name(err) + " " + (msg ? msg : ""));
    }
  }
  return {};
}

Status Admin::DeleteTopics(const std::vector<std::string>& names, Ms timeout) {
  if (names.empty()) return {};
  std::vector<rd_kafka_DeleteTopic_t*> raw;
  for (const auto& n : names) raw.push_back(rd_kafka_DeleteTopic_new(n.c_str()));
  QueueHandle queue(rd_kafka_queue_new(rk_.get()));
  auto options = AdminOptions(rk_.get(), RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout);
  rd_kafka_DeleteTopics(rk_.get(), raw.data(), raw.size(), options.get(), queue.get());
  rd_kafka_DeleteTopic_destroy_array(raw.data(), raw.size());
  auto event = AwaitAdmin(queue.get(), timeout, "delete topics");
  if (!event) return event.error();
  size_t count = 0;
  const auto* results =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(event->get()), &count);
  std::string failures;
  for (size_t i = 0; i < count; ++i) {
    auto err = rd_kafka_topic_result_error(results[i]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
      failures += std::string(rd_kafka_topic_result_name(results[i])) + ": " +
                  rd_kafka_err2name(err) + "; ";
    }
  }
  if (!failures.empty()) return MakeError(ErrorCode::kUnavailable, "delete topics: " + failures);
  return {};
}

Status Admin::DeleteGroup(const std::string& group, Ms timeout) {
  rd_kafka_DeleteGroup_t* raw[] = {rd_kafka_DeleteGroup_new(group.c_str())};
  QueueHandle queue(rd_kafka_queue_new(rk_.get()));
  auto options = AdminOptions(rk_.get(), RD_KAFKA_ADMIN_OP_DELETEGROUPS, timeout);
  rd_kafka_DeleteGroups(rk_.get(), raw, 1, options.get(), queue.get());
  rd_kafka_DeleteGroup_destroy_array(raw, 1);
  auto event = AwaitAdmin(queue.get(), timeout, "delete group " + group);
  if (!event) return event.error();
  size_t count = 0;
  const auto* results =
      rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(event->get()), &count);
  for (size_t i = 0; i < count; ++i) {
    const rd_kafka_error_t* error = rd_kafka_group_result_error(results[i]);
    if (error != nullptr && rd_kafka_error_code(error) != RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) {
      return MakeError(ErrorCode::kUnavailable,
                       "delete group " + group + ": " + rd_kafka_error_string(error));
    }
  }
  return {};
}

Status Admin::AlterTopicConfig(const std::string& topic,
                               const std::map<std::string, std::string>& configs, Ms timeout) {
  // AlterConfigs (not incremental: 2.0.2 lacks it) replaces the topic's dynamic config as a
  // whole, so the current dynamic entries are read first and merged.
  auto current = DescribeConfigs(RD_KAFKA_RESOURCE_TOPIC, topic, timeout);
  if (!current) return current.error();
  CHandle<rd_kafka_ConfigResource_t, rd_kafka_ConfigResource_destroy> resource(
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()));
  std::map<std::string, std::string> merged;
  for (const auto& [k, v] : *current) {
    if (k.rfind("dynamic:", 0) == 0) merged[k.substr(8)] = v;
  }
  for (const auto& [k, v] : configs) merged[k] = v;
  for (const auto& [k, v] : merged)
    rd_kafka_ConfigResource_set_config(resource.get(), k.c_str(), v.c_str());
  QueueHandle queue(rd_kafka_queue_new(rk_.get()));
  auto options = AdminOptions(rk_.get(), RD_KAFKA_ADMIN_OP_ALTERCONFIGS, timeout);
  rd_kafka_ConfigResource_t* raw[] = {resource.get()};
  rd_kafka_AlterConfigs(rk_.get(), raw, 1, options.get(), queue.get());
  auto event = AwaitAdmin(queue.get(), timeout, "alter configs of " + topic);
  if (!event) return event.error();
  size_t count = 0;
  const auto* results = rd_kafka_AlterConfigs_result_resources(
      rd_kafka_event_AlterConfigs_result(event->get()), &count);
  for (size_t i = 0; i < count; ++i) {
    auto err = rd_kafka_ConfigResource_error(results[i]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* msg = rd_kafka_ConfigResource_error_string(results[i]);
      return MakeError(ErrorCode::kUnavailable,
                       "alter configs of " + topic + ": " + (msg ? msg : rd_kafka_err2str(err)));
    }
  }
  return {};
}

Result<std::map<std::string, std::string>> Admin::DescribeConfigs(rd_kafka_ResourceType_t type,
                                                                  const std::string& name,
                                                                  Ms timeout) {
  CHandle<rd_kafka_ConfigResource_t, rd_kafka_ConfigResource_destroy> resource(
      rd_kafka_ConfigResource_new(type, name.c_str()));
  QueueHandle queue(rd_kafka_queue_new(rk_.get()));
  auto options = AdminOptions(rk_.get(), RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout);
  rd_kafka_ConfigResource_t* raw[] = {resource.get()};
  rd_kafka_DescribeConfigs(rk_.get(), raw, 1, options.get(), queue.get());
  auto event = AwaitAdmin(queue.get(), timeout, "describe configs of " + name);
  if (!event) return event.error();
  size_t count = 0;
  const auto* results = rd_kafka_DescribeConfigs_result_resources(
      rd_kafka_event_DescribeConfigs_result(event->get()), &count);
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < count; ++i) {
    auto err = rd_kafka_ConfigResource_error(results[i]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return MakeError(ErrorCode::kUnavailable,
                       "describe configs of " + name + ": " + rd_kafka_err2str(err));
    }
    size_t n = 0;
    const auto* entries = rd_kafka_ConfigResource_configs(results[i], &n);
    for (size_t j = 0; j < n; ++j) {
      const char* value = rd_kafka_ConfigEntry_value(entries[j]);
      std::string key = rd_kafka_ConfigEntry_name(entries[j]);
      out[key] = value ? value : "";
      if (rd_kafka_ConfigEntry_source(entries[j]) == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG) {
        out["dynamic:" + key] = value ? value : "";
      }
    }
  }
  return out;
}

Result<ClusterInfo> Admin::Metadata(const std::string& topic, Ms timeout) {
  return kafka::Metadata(rk_.get(), topic, timeout);
}

Result<ClusterInfo> Metadata(rd_kafka_t* rk, const std::string& topic, Ms timeout) {
  TopicHandle rkt;
  if (!topic.empty()) rkt.reset(rd_kafka_topic_new(rk, topic.c_str(), nullptr));
  const rd_kafka_metadata_t* raw = nullptr;
  auto err = rd_kafka_metadata(rk, 0, rkt.get(), &raw, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("metadata", err);
  CHandle<const rd_kafka_metadata_t, rd_kafka_metadata_destroy> md(raw);
  ClusterInfo info;
  for (int i = 0; i < md->broker_cnt; ++i) {
    info.brokers.emplace_back(md->brokers[i].id, std::string(md->brokers[i].host) + ":" +
                                                     std::to_string(md->brokers[i].port));
  }
  for (int t = 0; t < md->topic_cnt; ++t) {
    const auto& mt = md->topics[t];
    if (topic.empty() || topic != mt.topic) continue;
    if (mt.err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("metadata of " + topic, mt.err);
    for (int p = 0; p < mt.partition_cnt; ++p) {
      const auto& mp = mt.partitions[p];
      PartitionInfo pi;
      pi.id = mp.id;
      pi.leader = mp.leader;
      pi.replicas.assign(mp.replicas, mp.replicas + mp.replica_cnt);
      pi.isr.assign(mp.isrs, mp.isrs + mp.isr_cnt);
      if (mp.err != RD_KAFKA_RESP_ERR_NO_ERROR) pi.error = rd_kafka_err2name(mp.err);
      info.partitions.push_back(std::move(pi));
    }
  }
  return info;
}

Result<std::vector<std::string>> Admin::UnderReplicatedPartitions(Ms timeout) {
  const rd_kafka_metadata_t* raw = nullptr;
  auto err = rd_kafka_metadata(rk_.get(), 1, nullptr, &raw, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("metadata of all topics", err);
  CHandle<const rd_kafka_metadata_t, rd_kafka_metadata_destroy> md(raw);
  std::vector<std::string> out;
  for (int t = 0; t < md->topic_cnt; ++t) {
    const auto& mt = md->topics[t];
    for (int p = 0; p < mt.partition_cnt; ++p) {
      const auto& mp = mt.partitions[p];
      if (mp.leader < 0 || mp.isr_cnt < mp.replica_cnt) {
        out.push_back(std::string(mt.topic) + "-" + std::to_string(mp.id));
      }
    }
  }
  return out;
}

Result<Watermarks> Admin::QueryWatermarks(const std::string& topic, std::int32_t partition,
                                          Ms timeout) {
  Watermarks w;
  auto err = rd_kafka_query_watermark_offsets(rk_.get(), topic.c_str(), partition, &w.low, &w.high,
                                              static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("watermarks of " + topic, err);
  return w;
}

Result<std::map<std::int32_t, std::int64_t>> Admin::GroupOffsets(const std::string& group,
                                                                 const std::string& topic,
                                                                 int partitions, Ms timeout) {
  // rd_kafka_committed() needs a consumer handle of the group; it does not join the group.
  auto consumer = Consumer::Create(bootstrap_, group, {});
  if (!consumer) return consumer.error();
  return (*consumer)->Committed(topic, partitions, timeout);
}

// ---------------------------------------------------------------- ReadTopic

ReadBack ReadTopic(const std::string& bootstrap, const std::string& topic, int partitions,
                   const std::string& isolation, Ms timeout) {
  ReadBack result;
  auto consumer = Consumer::Create(bootstrap, "",
                                   {{"enable.partition.eof", "true"},
                                    {"isolation.level", isolation},
                                    {"fetch.wait.max.ms", "20"}});
  if (!consumer) {
    result.error = consumer.error().message;
    return result;
  }
  std::vector<TopicPartitionOffset> assignment;
  for (int p = 0; p < partitions; ++p) assignment.push_back({topic, p, RD_KAFKA_OFFSET_BEGINNING});
  if (auto s = (*consumer)->Assign(assignment); !s) {
    result.error = s.error().message;
    return result;
  }
  auto deadline = SteadyClock::now() + timeout;
  while ((*consumer)->eof_count() < partitions) {
    auto left = std::chrono::duration_cast<Ms>(deadline - SteadyClock::now());
    if (left.count() <= 0) {
      result.error = "read-back of " + topic + " did not reach the end of every partition in " +
                     std::to_string(timeout.count()) + " ms";
      return result;
    }
    auto batch = (*consumer)->Poll(1000, std::min(left, Ms(500)));
    if (!batch) {
      result.error = batch.error().message;
      return result;
    }
    for (auto& m : *batch) result.messages.push_back(std::move(m));
  }
  result.complete = true;
  return result;
}

}  // namespace lab::runners::kafka
