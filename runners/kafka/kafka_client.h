// RAII wrappers over librdkafka 2.0.2's C API: a producer (plain, idempotent, transactional),
// a consumer (group with a rebalance callback, or manual assignment; read_committed by default),
// an admin client (topics, configs, metadata, watermarks, group offsets), and a fresh read-back
// of a topic. Every call takes a timeout; errors carry librdkafka's own message.
//
// Known 2.0.2 behaviour handled here (STACK-NOTES §6): the idempotent producer can raise a fatal
// OUT_OF_ORDER_SEQUENCE_NUMBER after a timeout or disconnect (fixed upstream in 2.3.0) — the
// producer must be re-created; NOT_ENOUGH_REPLICAS is retried internally and surfaces only as
// a message timeout. ClassifyClientLibraryFailure() names these so evidence keeps them apart
// from the phenomenon under test.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "domain/result.h"
#include "runners/common/c_handle.h"

namespace lab::runners::kafka {

using domain::Result;
using domain::Status;
using Ms = std::chrono::milliseconds;
using ConfigMap = std::vector<std::pair<std::string, std::string>>;
using Headers = std::vector<std::pair<std::string, std::string>>;

using KafkaHandle = CHandle<rd_kafka_t, rd_kafka_destroy>;

// Settings every client of this project gets (socket.nagle.disable=true, bounded timeouts).
ConfigMap BaseConfig(const std::string& bootstrap);

// A client-library failure (not the phenomenon under test), or nullopt.
std::optional<std::string> ClassifyClientLibraryFailure(rd_kafka_resp_err_t err, bool fatal,
                                                        const std::string& context);

struct DeliveryReport {
  std::string key;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  rd_kafka_msg_status_t status = RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
  std::int64_t seq = 0;  // the caller's sequence number given to Produce()
};

class Producer {
 public:
  // `transactional_id` non-empty -> transactional (implies idempotence).
  static Result<std::unique_ptr<Producer>> Create(const std::string& bootstrap, ConfigMap extra,
                                                  const std::string& transactional_id = "");
  ~Producer();  // flushes (bounded) before destroying
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Enqueues one record (partition -1: by key). Retries briefly on a full local queue.
  Status Produce(const std::string& topic, std::int32_t partition, const std::string& key,
                 const std::string& value, const Headers& headers = {}, std::int64_t seq = 0);
  void Poll(Ms timeout);
  // Waits for all outstanding deliveries; timeout -> kTimeout with the count still queued.
  Status Flush(Ms timeout);
  std::vector<DeliveryReport> TakeReports();
  int OutQueueLength() const;

  Status InitTransactions(Ms timeout);
  Status BeginTransaction();
  Status CommitTransaction(Ms timeout);
  Status AbortTransaction(Ms timeout);

  // Fatal error raised by the client (idempotence/transactions): the producer must be re-created.
  std::optional<std::string> FatalError() const;
  rd_kafka_t* handle() const { return rk_.get(); }
  void SetFlushOnDestroy(Ms timeout) { flush_on_destroy_ = timeout; }

 private:
  Producer() = default;
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
  KafkaHandle rk_;
  std::vector<DeliveryReport> reports_;
  Ms flush_on_destroy_{Ms(5000)};
};

struct Message {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::string value;
  Headers headers;
  std::int64_t timestamp_ms = 0;
};

struct TopicPartitionOffset {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = RD_KAFKA_OFFSET_BEGINNING;
};

class Consumer {
 public:
  // `group_id` empty -> a throwaway group that never commits (for manual assignment read-backs).
  static Result<std::unique_ptr<Consumer>> Create(const std::string& bootstrap,
                                                  const std::string& group_id, ConfigMap extra);
  ~Consumer();  // closes (leaves the group) before destroying
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  Status Subscribe(const std::vector<std::string>& topics);
  Status Assign(const std::vector<TopicPartitionOffset>& partitions);
  // Up to `max` messages within `timeout`; end-of-partition events are counted in eof_count().
  // A consumer-level error (not per-message) is returned as an error.
  Result<std::vector<Message>> Poll(std::size_t max, Ms timeout);
  // Synchronously commits offset+1 of each message's partition position given.
  Status Commit(const std::vector<TopicPartitionOffset>& next_offsets);
  Status CommitCurrent();  // the consumer's current positions
  // The group's committed offsets for `topic`'s partitions 0..partitions-1 (-1001 = none), asked
  // of the group coordinator; a consumer that never subscribed does not join the group for it.
  Result<std::map<std::int32_t, std::int64_t>> Committed(const std::string& topic, int partitions,
                                                         Ms timeout);
  std::vector<TopicPartitionOffset> Assignment() const;
  int rebalances() const { return rebalances_; }
  int assigned_count() const { return assigned_; }
  // Partitions taken away by rebalances so far (every one, eager; only the moved ones,
  // cooperative).
  int revoked_partitions() const { return revoked_; }
  // Times librdkafka reported that this member left the group because the application did not
  // poll within max.poll.interval.ms (it rejoins on the next poll).
  int max_poll_exceeded() const { return max_poll_exceeded_; }
  // librdkafka 2.0.2 can form a group without a just-created topic's partitions (the leader's
  // metadata was older than the topic) and does not rebalance again by itself: every member
  // waits with an empty assignment. When this member's last assignment was empty for `after`
  // while its topics do have partitions, it subscribes again (which rejoins the group). Returns
  // what it saw and did, for the evidence; nullopt when it did nothing. Only for groups with at
  // least as many partitions as members (where an empty assignment is never the answer).
  std::optional<std::string> RejoinIfStalled(Ms after);
  // Partitions whose end was reached (enable.partition.eof=true).
  int eof_count() const { return static_cast<int>(eof_.size()); }
  void ResetEof() { eof_.clear(); }
  Status Close();
  rd_kafka_t* handle() const { return rk_.get(); }

 private:
  Consumer() = default;
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque);
  KafkaHandle rk_;
  bool closed_ = false;
  int rebalances_ = 0;
  int assigned_ = 0;
  int revoked_ = 0;
  int max_poll_exceeded_ = 0;
  std::vector<std::string> subscription_;
  // Set while the last rebalance assigned nothing (a pending join is not that).
  std::optional<std::chrono::steady_clock::time_point> empty_assignment_since_;
  std::set<std::pair<std::string, std::int32_t>> eof_;
};

struct PartitionInfo {
  std::int32_t id = 0;
  std::int32_t leader = -1;
  std::vector<std::int32_t> replicas;
  std::vector<std::int32_t> isr;
  std::string error;  // empty when the partition is healthy
};

struct ClusterInfo {
  std::vector<std::pair<std::int32_t, std::string>> brokers;  // id, host:port
  std::int32_t controller_id = -1;        // librdkafka 2.0.2 does not expose it; stays -1
  std::vector<PartitionInfo> partitions;  // of the topic asked for
};

// All brokers, and the partitions of `topic` when given, as this client handle (producer,
// consumer or admin) learns them: its own metadata, not another client's.
Result<ClusterInfo> Metadata(rd_kafka_t* rk, const std::string& topic, Ms timeout);

struct Watermarks {
  std::int64_t low = 0;
  std::int64_t high = 0;
};

class Admin {
 public:
  static Result<std::unique_ptr<Admin>> Create(const std::string& bootstrap, ConfigMap extra = {});
  Status CreateTopic(const std::string& name, int partitions, int replication,
                     const std::map<std::string, std::string>& configs, Ms timeout);
  // A topic whose partition p is placed on the brokers assignment[p], the first of them being
  // the preferred leader (to know which broker is which before a fault).
  Status CreateTopicWithAssignment(const std::string& name,
                                   const std::vector<std::vector<std::int32_t>>& assignment,
                                   const std::map<std::string, std::string>& configs, Ms timeout);
  Status DeleteTopics(const std::vector<std::string>& names, Ms timeout);
  Status DeleteGroup(const std::string& group, Ms timeout);
  Status AlterTopicConfig(const std::string& topic,
                          const std::map<std::string, std::string>& configs, Ms timeout);
  // Describes a broker's ("broker", "1") or a topic's ("topic", name) configuration.
  Result<std::map<std::string, std::string>> DescribeConfigs(rd_kafka_ResourceType_t type,
                                                             const std::string& name, Ms timeout);
  // All brokers, and the partitions of `topic` when given.
  Result<ClusterInfo> Metadata(const std::string& topic, Ms timeout);
  // Every partition of the cluster whose ISR is smaller than its replica set or which has no
  // leader, as "topic-partition" (empty: the cluster is fully replicated).
  Result<std::vector<std::string>> UnderReplicatedPartitions(Ms timeout);
  // High watermark as seen with this client's isolation level: read_committed -> the last
  // stable offset, read_uncommitted -> the high watermark (ListOffsets carries the level).
  Result<Watermarks> QueryWatermarks(const std::string& topic, std::int32_t partition, Ms timeout);
  // Committed offsets of `group` for `topic`'s partitions (-1001 = none).
  Result<std::map<std::int32_t, std::int64_t>> GroupOffsets(const std::string& group,
                                                            const std::string& topic,
                                                            int partitions, Ms timeout);
  rd_kafka_t* handle() const { return rk_.get(); }

 private:
  Admin() = default;
  Status CreateTopics(CHandle<rd_kafka_NewTopic_t, rd_kafka_NewTopic_destroy> topic,
                      const std::string& name, Ms timeout);
  KafkaHandle rk_;
  std::string bootstrap_;
};

struct ReadBack {
  std::vector<Message> messages;
  bool complete = false;  // reached the end of every partition before the timeout
  std::string error;
};

// Reads `topic` from the beginning to its current end with a fresh, group-less consumer
// (manual assignment, no commits). isolation: "read_committed" or "read_uncommitted".
ReadBack ReadTopic(const std::string& bootstrap, const std::string& topic, int partitions,
                   const std::string& isolation, Ms timeout);

}  // namespace lab::runners::kafka
