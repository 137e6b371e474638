// kafka_tool: the few Kafka operations the stack tests need that kcat lacks — creating and
// deleting topics (the brokers run with auto.create.topics.enable=false) — and a small acks=all
// producer benchmark. Talks to the brokers with Debian's librdkafka 2.0.2, as the lab does.
//
//   kafka_tool [-b BOOTSTRAP] create TOPIC PARTITIONS RF [name=value ...]
//   kafka_tool [-b BOOTSTRAP] delete TOPIC
//   kafka_tool [-b BOOTSTRAP] describe TOPIC         one line per partition: leader, replicas, isr
//   kafka_tool [-b BOOTSTRAP] bench TOPIC COUNT SIZE  produce COUNT messages of SIZE bytes,
//   acks=all
//
// BOOTSTRAP defaults to $LAB_KAFKA_BOOTSTRAP, then to the stack's 127.0.0.1:19092..19094.
// Exit status: 0 success, 1 failure, 2 usage.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kTimeoutMs = 30000;

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
  void operator()(rd_kafka_event_t* ev) const { rd_kafka_event_destroy(ev); }
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
  void operator()(rd_kafka_DeleteTopic_t* t) const { rd_kafka_DeleteTopic_destroy(t); }
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
  void operator()(const rd_kafka_metadata_t* m) const { rd_kafka_metadata_destroy(m); }
};
template <typename T>
using Owned = std::unique_ptr<T, KafkaDeleter>;

int Usage() {
  std::fprintf(stderr,
               "usage: kafka_tool [-b BOOTSTRAP] create TOPIC PARTITIONS RF [name=value ...]\n"
               "       kafka_tool [-b BOOTSTRAP] delete TOPIC\n"
               "       kafka_tool [-b BOOTSTRAP] describe TOPIC\n"
               "       kafka_tool [-b BOOTSTRAP] bench TOPIC COUNT SIZE\n");
  return 2;
}

std::atomic<long> g_delivered{0};
std::atomic<long> g_failed{0};

void OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* msg, void* /*opaque*/) {
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (g_failed.fetch_add(1) < 5) {
      std::fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(msg->err));
    }
  } else {
    g_delivered.fetch_add(1);
  }
}

// A client handle; producer settings are the ones the experiments use for acks=all.
Owned<rd_kafka_t> MakeClient(const std::string& bootstrap, bool bench) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* k, const char* v) {
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "config %s=%s: %s\n", k, v, err);
      std::exit(1);
    }
  };
  set("bootstrap.servers", bootstrap.c_str());
  set("socket.nagle.disable", "true");
  set("acks", "all");
  set("enable.idempotence", "true");
  set("message.timeout.ms", "30000");
  if (bench) {
    set("linger.ms", "5");
    set("batch.num.messages", "10000");
    set("compression.type", "none");
  }
  rd_kafka_conf_set_dr_msg_cb(conf, OnDelivery);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) {  // conf is still ours on failure
    rd_kafka_conf_destroy(conf);
    std::fprintf(stderr, "rd_kafka_new: %s\n", err);
    std::exit(1);
  }
  return Owned<rd_kafka_t>(rk);
}

// Waits for the admin result event on the queue (bounded).
Owned<rd_kafka_event_t> WaitResult(rd_kafka_queue_t* queue) {
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, kTimeoutMs + 5000);
  if (ev == nullptr) {
    std::fprintf(stderr, "no answer from the cluster within %d ms\n", kTimeoutMs + 5000);
    std::exit(1);
  }
  if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::fprintf(stderr, "request failed: %s\n", rd_kafka_event_error_string(ev));
    rd_kafka_event_destroy(ev);
    std::exit(1);
  }
  return Owned<rd_kafka_event_t>(ev);
}

Owned<rd_kafka_AdminOptions_t> AdminOptions(rd_kafka_t* rk, rd_kafka_admin_op_t op) {
  char err[512];
  Owned<rd_kafka_AdminOptions_t> opts(rd_kafka_AdminOptions_new(rk, op));
  rd_kafka_AdminOptions_set_request_timeout(opts.get(), kTimeoutMs, err, sizeof err);
  rd_kafka_AdminOptions_set_operation_timeout(opts.get(), kTimeoutMs, err, sizeof err);
  return opts;
}

int TopicResult(const rd_kafka_topic_result_t* const* results, size_t n) {
  int rc = 0;
  for (size_t i = 0; i < n; ++i) {
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* msg = rd_kafka_topic_result_error_string(results[i]);
      std::fprintf(stderr, "%s: %s (%s)\n", rd_kafka_topic_result_name(results[i]),
                   rd_kafka_err2name(e), msg != nullptr ? msg : "");
      rc = 1;
    } else {
      std::printf("%s: ok\n", rd_kafka_topic_result_name(results[i]));
    }
  }
  return rc;
}

int Create(rd_kafka_t* rk, const std::string& topic, int partitions, int rf,
           const std::vector<std::string>& configs) {
  char err[512];
  Owned<rd_kafka_NewTopic_t> nt(
      rd_kafka_NewTopic_new(topic.c_str(), partitions, rf, err, sizeof err));
  if (!nt) {
    std::fprintf(stderr, "%s\n", err);
    return 1;
  }
  for (const std::string& kv : configs) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos) return Usage();
    rd_kafka_NewTopic_set_config(nt.get(), kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str());
  }
  Owned<rd_kafka_queue_t> queue(rd_kafka_queue_new(rk));
  auto opts = AdminOptions(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_NewTopic_t* list[] = {nt.get()};
  rd_kafka_CreateTopics(rk, list, 1, opts.get(), queue.get());
  auto ev = WaitResult(queue.get());
  size_t n = 0;
  const auto* results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &n);
  return TopicResult(results, n);
}

int Delete(rd_kafka_t* rk, const std::string& topic) {
  Owned<rd_kafka_DeleteTopic_t> dt(rd_kafka_DeleteTopic_new(topic.c_str()));
  Owned<rd_kafka_queue_t> queue(rd_kafka_queue_new(rk));
  auto opts = AdminOptions(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
  rd_kafka_DeleteTopic_t* list[] = {dt.get()};
  rd_kafka_DeleteTopics(rk, list, 1, opts.get(), queue.get());
  auto ev = WaitResult(queue.get());
  size_t n = 0;
  const auto* results =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev.get()), &n);
  return TopicResult(results, n);
}

std::string JoinIds(const int32_t* ids, int n) {
  std::vector<int32_t> v(ids, ids + n);
  std::sort(v.begin(), v.end());
  std::string s;
  for (int32_t id : v) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

// Metadata for one topic; a topic created a moment ago may take a few seconds to reach every
// broker's metadata cache, so UNKNOWN_TOPIC_OR_PART is retried for up to 10 s.
Owned<const rd_kafka_metadata_t> TopicMetadata(rd_kafka_t* rk, const std::string& topic) {
  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> rkt(
      rd_kafka_topic_new(rk, topic.c_str(), nullptr), &rd_kafka_topic_destroy);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    const rd_kafka_metadata_t* md = nullptr;
    const rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt.get(), &md, kTimeoutMs);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::fprintf(stderr, "metadata: %s\n", rd_kafka_err2str(e));
      return nullptr;
    }
    Owned<const rd_kafka_metadata_t> owned(md);
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) return owned;
    const bool unknown =
        md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    if (!unknown || std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "%s: %s\n", topic.c_str(),
                   md->topic_cnt == 1 ? rd_kafka_err2name(md->topics[0].err) : "not found");
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

int Describe(rd_kafka_t* rk, const std::string& topic) {
  auto md = TopicMetadata(rk, topic);
  if (!md) return 1;
  const rd_kafka_metadata_topic& t = md->topics[0];
  std::vector<const rd_kafka_metadata_partition*> parts;
  for (int i = 0; i < t.partition_cnt; ++i) parts.push_back(&t.partitions[i]);
  std::sort(parts.begin(), parts.end(), [](auto* a, auto* b) { return a->id < b->id; });
  for (const auto* p : parts) {
    std::printf("partition %d leader %d replicas %s isr %s\n", p->id, p->leader,
                JoinIds(p->replicas, p->replica_cnt).c_str(), JoinIds(p->isrs, p->isr_cnt).c_str());
  }
  return 0;
}

int Bench(rd_kafka_t* rk, const std::string& topic, long count, size_t size) {
  std::string payload(size, 'x');
  // rd_kafka_produce rather than rd_kafka_producev: the latter's macros are old-style casts.
  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> rkt(
      rd_kafka_topic_new(rk, topic.c_str(), nullptr), &rd_kafka_topic_destroy);
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < count; ++i) {
    for (;;) {
      if (rd_kafka_produce(rkt.get(), RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, payload.data(),
                           payload.size(), nullptr, 0, nullptr) == 0) {
        break;
      }
      const rd_kafka_resp_err_t e = rd_kafka_last_error();
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        std::fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
        return 1;
      }
      rd_kafka_poll(rk, 10);
    }
    rd_kafka_poll(rk, 0);
  }
  if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::fprintf(stderr, "flush did not complete within 120 s\n");
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const long ok = g_delivered.load();
  std::printf(
      "acks=all idempotent: %ld messages of %zu B delivered in %.2f s: %.0f msg/s, %.2f MB/s"
      " (%ld failed)\n",
      ok, size, secs, ok / secs, ok * static_cast<double>(size) / secs / 1e6, g_failed.load());
  return ok == count ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string bootstrap;
  if (args.size() >= 2 && args[0] == "-b") {
    bootstrap = args[1];
    args.erase(args.begin(), args.begin() + 2);
  }
  if (bootstrap.empty()) {
    const char* env = std::getenv("LAB_KAFKA_BOOTSTRAP");
    bootstrap =
        env != nullptr && *env != '\0' ? env : "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094";
  }
  if (args.size() < 2) return Usage();
  const std::string& cmd = args[0];
  const std::string& topic = args[1];
  auto rk = MakeClient(bootstrap, cmd == "bench");
  if (cmd == "create" && args.size() >= 4) {
    return Create(rk.get(), topic, std::atoi(args[2].c_str()), std::atoi(args[3].c_str()),
                  std::vector<std::string>(args.begin() + 4, args.end()));
  }
  if (cmd == "delete" && args.size() == 2) return Delete(rk.get(), topic);
  if (cmd == "describe" && args.size() == 2) return Describe(rk.get(), topic);
  if (cmd == "bench" && args.size() == 4) {
    return Bench(rk.get(), topic, std::atol(args[2].c_str()),
                 static_cast<size_t>(std::atol(args[3].c_str())));
  }
  return Usage();
}
