// E-048: pub/sub drops a slow subscriber and what it had not read; a stream with a consumer group
// keeps every entry until it is acknowledged, even one a crashed consumer held.
//   failure: client-output-buffer-limit pubsub is lowered for the run (kPubsubLimit, restored by
//            cleanup). A subscriber (its own connection, named so CLIENT LIST can find it)
//            processes each message by SADD of its seq to a set, plus kHandlerDelay of work; a
//            publisher pipelines `messages` PUBLISH of `payload_bytes`. The server drops the
//            subscriber once its pending output passes the limit; every message after that
//            reaches nobody.
//   success: the same messages XADDed to a stream with a consumer group. Consumer c1 (a real
//            `lab-role redis-clients --mode stream-consumer` process) reads its first batch and
//            is SIGKILLed before acknowledging it (failpoint); c2 then reads the rest and claims
//            c1's pending entries (XAUTOCLAIM) once they are idle. practice=off: c2 does not
//            claim — a consumer group whose dead consumers' entries stay pending forever.
// Numbers and where they come from:
//   published: failure - PUBLISH commands the server answered (self_reported), checked against
//              INFO commandstats cmdstat_publish (published_server, server_counter); success -
//              XLEN (read_back), checked against the XADDs sent.
//   received:  SCARD of the processed set (read_back); lost = published - received.
//   unrouted:  PUBLISH answers of 0 receivers (server's answer: delivered to no one).
//   disconnected: 1 when the subscriber's connection ended by the server (EOF it did not ask
//              for) and CLIENT LIST no longer lists it (server_counter).
//   pending_of_killed: XPENDING of c1 after it died (server_counter: the fault left entries
//              pending); reclaimed: c2's XAUTOCLAIM count (self_reported); pending_after:
//              XPENDING of the group at the end (server_counter).
#include <hiredis/hiredis.h>

#include <atomic>
#include <thread>

#include "domain/catalog.h"
#include "runners/common/util.h"
#include "runners/experiments/experiments.h"
#include "runners/redis/redis_client.h"

namespace lab::runners {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using ReplyHandle = CHandle<redisReply, freeReplyObject>;

constexpr const char* kPubsubLimit = "pubsub 64kb 32kb 1";
constexpr auto kHandlerDelay = 100us;  // the subscriber's work per message: slower than PUBLISH
constexpr std::size_t kBatch = 200;    // commands per pipeline
constexpr const char* kGroup = "g";

// "seq:<n>:xxxx…" padded to `bytes`.
std::string Payload(std::int64_t seq, std::int64_t bytes) {
  std::string p = "seq:" + std::to_string(seq) + ":";
  if (static_cast<std::int64_t>(p.size()) < bytes)
    p.append(static_cast<std::size_t>(bytes) - p.size(), 'x');
  return p;
}

std::string SeqOf(const std::string& payload) {
  if (payload.rfind("seq:", 0) != 0) return "";
  return payload.substr(4, payload.find(':', 4) - 4);
}

// The slow subscriber, on its own thread and connection.
class Subscriber {
 public:
  Subscriber(const StackConfig& config, std::string channel, std::string name,
             std::string processed, std::int64_t expected)
      : config_(config),
        channel_(std::move(channel)),
        name_(std::move(name)),
        processed_(std::move(processed)),
        expected_(expected) {}
  ~Subscriber() { Join(); }

  // Connects, names itself and subscribes; the thread then reads until the server drops it,
  // every expected message arrived, or nothing arrived for 3 s.
  domain::Status Start() {
    timeval tv{2, 0};
    ctx_.reset(redisConnectWithTimeout(config_.redis_host.c_str(), config_.redis_port, tv));
    if (!ctx_ || ctx_->err != 0) {
      return domain::MakeError(domain::ErrorCode::kUnavailable,
                               std::string("subscriber: ") + (ctx_ ? ctx_->errstr : "no context"));
    }
    timeval idle{3, 0};
    redisSetTimeout(ctx_.get(), idle);
    ReplyHandle named(
        static_cast<redisReply*>(redisCommand(ctx_.get(), "CLIENT SETNAME %s", name_.c_str())));
    ReplyHandle sub(static_cast<redisReply*>(
        redisCommand(ctx_.get(), "SUBSCRIBE %b", channel_.data(), channel_.size())));
    if (!named || !sub || sub->type != REDIS_REPLY_ARRAY) {
      return domain::MakeError(domain::ErrorCode::kUnavailable, "subscriber: SUBSCRIBE failed");
    }
    auto store = redis::Connection::Open(config_.redis_host, config_.redis_port, 2000ms);
    if (!store) return store.error();
    store_ = std::move(*store);
    thread_ = std::thread([this] { Read(); });
    return {};
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  std::int64_t received() const { return received_; }
  bool eof() const { return eof_; }
  bool store_errors() const { return store_errors_ > 0; }
  const std::string& end() const { return end_; }

 private:
  void Read() {
    while (received_ < expected_) {
      void* raw = nullptr;
      if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) {
        eof_ = ctx_->err == REDIS_ERR_EOF;
        end_ = eof_ ? "connection closed by the server" : std::string("read: ") + ctx_->errstr;
        return;
      }
      ReplyHandle msg(static_cast<redisReply*>(raw));
      if (msg->type != REDIS_REPLY_ARRAY || msg->elements != 3) continue;
      const std::string seq = SeqOf(std::string(msg->element[2]->str, msg->element[2]->len));
      auto added = store_->Command({"SADD", processed_, seq});
      if (!added || added->is_error()) ++store_errors_;
      ++received_;
      std::this_thread::sleep_for(kHandlerDelay);
    }
    end_ = "every message received";
  }

  const StackConfig& config_;
  std::string channel_;
  std::string name_;
  std::string processed_;
  std::int64_t expected_;
  redis::ContextHandle ctx_;
  std::unique_ptr<redis::Connection> store_;
  std::thread thread_;
  std::atomic<std::int64_t> received_{0};
  std::atomic<bool> eof_{false};
  std::atomic<int> store_errors_{0};
  std::string end_;  // written by the thread, read after Join()
};

class PubsubVsStreams final : public ExperimentBase {
 public:
  explicit PubsubVsStreams(StackConfig config) : ExperimentBase(std::move(config)) {}
  std::string_view ExperimentId() const override { return "E-048"; }

  domain::ModeResult RunMode(const domain::RunContext& ctx, const std::string& mode) override {
    domain::ModeResult result;
    const std::string prefix = RedisPrefix(ctx, mode);
    Created(ctx, mode, result, kArtifactRedis, prefix);
    auto conn = OpenRedis();
    if (!conn) return Inconclusive(std::move(result), "redis: " + conn.error().message);
    const bool practice = domain::GetString(ctx.params, "practice") != "off";
    if (mode == "failure") return PubSub(ctx, mode, std::move(result), **conn, prefix);
    return Stream(ctx, mode, std::move(result), **conn, prefix, practice);
  }

 private:
  struct Sizes {
    std::int64_t messages;
    std::int64_t bytes;
  };
  static Sizes SizesOf(const domain::RunContext& ctx) {
    return {domain::GetInt(ctx.params, "messages"), domain::GetInt(ctx.params, "payload_bytes")};
  }

  domain::ModeResult PubSub(const domain::RunContext& ctx, const std::string& mode,
                            domain::ModeResult result, redis::Connection& conn,
                            const std::string& prefix) const {
    const Sizes size = SizesOf(ctx);
    const std::string channel = prefix + "channel";
    const std::string processed = prefix + "processed";
    const std::string name = "lab-e048-" + SafeName(ctx.ns) + "-sub";
    if (auto s = SetRedisConfig(ctx, mode, result, "client-output-buffer-limit", kPubsubLimit); !s)
      return Inconclusive(std::move(result), s.error().message);
    const std::int64_t publish_calls_before = PublishCalls(conn);

    Subscriber sub(config_, channel, name, processed, size.messages);
    if (auto s = sub.Start(); !s) return Inconclusive(std::move(result), s.error().message);
    auto numsub = conn.Command({"PUBSUB", "NUMSUB", channel});
    const std::int64_t listed_before = redis::CountClientsNamed(conn, name);
    if (!numsub || numsub->elements.size() != 2 || numsub->elements[1].integer != 1 ||
        listed_before != 1) {
      return Inconclusive(std::move(result), "the subscriber is not subscribed on the server");
    }
    Step(ctx, mode + ": subscriber " + name + " on " + channel + "; publishing " +
                  std::to_string(size.messages) + " x " + std::to_string(size.bytes) + " B");

    std::int64_t published = 0;
    std::int64_t delivered = 0;
    std::int64_t unrouted = 0;
    for (std::int64_t seq = 1; seq <= size.messages && !ctx.stop.stop_requested();) {
      std::vector<std::vector<std::string>> batch;
      for (; seq <= size.messages && batch.size() < kBatch; ++seq)
        batch.push_back({"PUBLISH", channel, Payload(seq, size.bytes)});
      auto replies = conn.Pipeline(batch);
      if (!replies) return Inconclusive(std::move(result), "PUBLISH: " + replies.error().message);
      for (const auto& r : *replies) {
        if (r.is_error()) continue;
        ++published;
        delivered += r.integer;
        unrouted += r.integer == 0 ? 1 : 0;
      }
    }
    sub.Join();
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");
    Progress(ctx, 40);

    const std::int64_t published_server = PublishCalls(conn) - publish_calls_before;
    const std::int64_t listed_after = redis::CountClientsNamed(conn, name);
    auto card = conn.Command({"SCARD", processed});
    if (!card || card->is_error() || listed_after < 0 || publish_calls_before < 0)
      return Inconclusive(std::move(result), "the read-back (SCARD, CLIENT LIST, INFO) failed");
    const std::int64_t received = card->integer;
    const bool disconnected = sub.eof() && listed_after == 0;
    auto& m = result.metrics;
    m["published"] = static_cast<double>(published);
    m["published_server"] = static_cast<double>(published_server);
    m["delivered_by_server"] = static_cast<double>(delivered);
    m["unrouted"] = static_cast<double>(unrouted);
    m["received"] = static_cast<double>(received);
    m["received_reported"] = static_cast<double>(sub.received());
    m["lost"] = static_cast<double>(published - received);
    m["disconnected"] = disconnected ? 1 : 0;
    result.details_json =
        Json({{"transport", "pub/sub"},
              {"channel", channel},
              {"client_output_buffer_limit", kPubsubLimit},
              {"handler_delay_us", kHandlerDelay.count()},
              {"subscriber", name},
              {"subscriber_end", sub.end()},
              {"listed_in_client_list", {{"before", listed_before}, {"after", listed_after}}},
              {"provenance",
               {{"published", "self_reported"},
                {"published_server", "server_counter"},
                {"delivered_by_server", "server_counter"},
                {"unrouted", "server_counter"},
                {"received", "read_back"},
                {"received_reported", "self_reported"},
                {"lost", "read_back"},
                {"disconnected", "server_counter"}}}})
            .dump();
    Step(ctx, mode + ": published " + std::to_string(published) + " (server counted " +
                  std::to_string(published_server) + "), received " + std::to_string(received) +
                  ", " + std::to_string(unrouted) + " reached no subscriber; subscriber: " +
                  sub.end() + ", in CLIENT LIST after: " + std::to_string(listed_after));
    if (published_server < published)
      return Inconclusive(std::move(result), "INFO commandstats counted fewer PUBLISH than sent");
    if (sub.store_errors())
      return Inconclusive(std::move(result), "the subscriber could not record what it processed");
    if (!disconnected) {
      return Inconclusive(std::move(result),
                          "the subscriber was not dropped by the output buffer limit (" +
                              sub.end() + "): raise messages x payload_bytes");
    }
    return result;
  }

  static std::int64_t PublishCalls(redis::Connection& conn) {
    auto info = conn.Command({"INFO", "commandstats"});
    if (!info || info->is_error()) return -1;
    // "cmdstat_publish:calls=N,usec=…", absent until the server's first PUBLISH.
    const std::string stats = redis::InfoValue(info->str, "cmdstat_publish");
    if (stats.rfind("calls=", 0) != 0) return 0;
    return std::stoll(stats.substr(6));
  }

  domain::ModeResult Stream(const domain::RunContext& ctx, const std::string& mode,
                            domain::ModeResult result, redis::Connection& conn,
                            const std::string& prefix, bool practice) const {
    const Sizes size = SizesOf(ctx);
    const std::string stream = prefix + "stream";
    const std::string processed = prefix + "processed";
    auto group = conn.Command({"XGROUP", "CREATE", stream, kGroup, "0", "MKSTREAM"});
    if (!group || group->is_error()) return Inconclusive(std::move(result), "XGROUP CREATE failed");
    auto consumer = [&](const std::string& name, std::vector<std::string> extra) {
      std::vector<std::string> args = {
          "--mode", "stream-consumer", "--stream", stream,    "--group", kGroup,      "--consumer",
          name,     "--processed-key", processed,  "--count", "100",     "--seconds", "60"};
      args.insert(args.end(), extra.begin(), extra.end());
      return StartRole(ctx, mode, result, "redis-clients", args, name);
    };
    // c1 dies holding its first batch.
    auto c1 = consumer("c1", {"--failpoint", "after-read-before-ack", "--failpoint-after", "1",
                              "--idle-exit-ms", "5000"});
    if (!c1) return Inconclusive(std::move(result), c1.error().message);
    std::int64_t sent = 0;
    for (std::int64_t seq = 1; seq <= size.messages && !ctx.stop.stop_requested();) {
      std::vector<std::vector<std::string>> batch;
      for (; seq <= size.messages && batch.size() < kBatch; ++seq)
        batch.push_back(
            {"XADD", stream, "*", "seq", std::to_string(seq), "payload", Payload(seq, size.bytes)});
      auto replies = conn.Pipeline(batch);
      if (!replies) return Inconclusive(std::move(result), "XADD: " + replies.error().message);
      for (const auto& r : *replies) sent += r.is_error() ? 0 : 1;
    }
    Step(ctx, mode + ": " + std::to_string(sent) + " entries XADDed to " + stream);
    auto c1_end = WaitRole(ctx, *c1, 30s, result, "c1");
    const bool killed = c1_end.finished && c1_end.KilledByFailpoint();
    const std::int64_t pending_of_killed = PendingOf(conn, stream, "c1");
    Progress(ctx, 70);
    Step(ctx, mode + ": c1 " + c1_end.status.Describe() + ", " + std::to_string(pending_of_killed) +
                  " entries pending for it; c2 " +
                  (practice ? "claims entries idle 500 ms" : "does not claim (practice=off)"));

    auto c2 = consumer("c2", {"--claim-idle-ms", practice ? "500" : "0", "--idle-exit-ms", "1000"});
    if (!c2) return Inconclusive(std::move(result), c2.error().message);
    auto c2_end = WaitRole(ctx, *c2, RoleWait(size.messages), result, "c2");
    if (ctx.stop.stop_requested()) return Inconclusive(std::move(result), "cancelled");

    auto xlen = conn.Command({"XLEN", stream});
    auto card = conn.Command({"SCARD", processed});
    const std::int64_t pending_after = PendingOf(conn, stream, "");
    if (!xlen || !card || xlen->is_error() || card->is_error() || pending_after < 0)
      return Inconclusive(std::move(result), "the read-back (XLEN, SCARD, XPENDING) failed");
    auto& m = result.metrics;
    m["published"] = static_cast<double>(xlen->integer);
    m["sent"] = static_cast<double>(sent);
    m["received"] = static_cast<double>(card->integer);
    m["lost"] = static_cast<double>(xlen->integer - card->integer);
    m["consumer_killed"] = killed ? 1 : 0;
    m["pending_of_killed"] = static_cast<double>(pending_of_killed);
    m["reclaimed"] = std::stod(c2_end.Value("reclaimed", "0"));
    m["pending_after"] = static_cast<double>(pending_after);
    result.details_json =
        Json({{"transport", "stream + consumer group"},
              {"stream", stream},
              {"group", kGroup},
              {"practice", practice ? "c2 claims idle pending entries (XAUTOCLAIM)"
                                    : "no claim: a dead consumer's entries stay pending"},
              {"c1", {{"ended", c1_end.status.Describe()}, {"read", c1_end.Value("read", "?")}}},
              {"c2",
               {{"ended", c2_end.status.Describe()},
                {"read", c2_end.Value("read", "?")},
                {"acked", c2_end.Value("acked", "?")},
                {"reclaimed", c2_end.Value("reclaimed", "?")}}},
              {"provenance",
               {{"published", "read_back"},
                {"sent", "self_reported"},
                {"received", "read_back"},
                {"lost", "read_back"},
                {"consumer_killed", "read_back"},
                {"pending_of_killed", "server_counter"},
                {"reclaimed", "self_reported"},
                {"pending_after", "server_counter"}}}})
            .dump();
    Step(ctx, mode + ": XLEN " + std::to_string(xlen->integer) + ", processed " +
                  std::to_string(card->integer) + ", reclaimed " + c2_end.Value("reclaimed", "0") +
                  ", pending after " + std::to_string(pending_after));
    if (!c2_end.finished || !c2_end.status.exited || c2_end.status.code != 0)
      return Inconclusive(std::move(result), "c2 " + c2_end.status.Describe() + ": " +
                                                 c2_end.Value("error", "no error line"));
    if (sent != xlen->integer)
      return Inconclusive(std::move(result), "XLEN differs from the XADDs the server accepted");
    return result;
  }

  // XPENDING's count for `consumer` (all consumers when empty), -1 when it cannot be read.
  static std::int64_t PendingOf(redis::Connection& conn, const std::string& stream,
                                const std::string& consumer) {
    auto r = conn.Command({"XPENDING", stream, kGroup});
    if (!r || r->is_error() || r->elements.size() < 4) return -1;
    if (consumer.empty()) return r->elements[0].integer;
    for (const auto& c : r->elements[3].elements) {
      if (c.elements.size() == 2 && c.elements[0].str == consumer)
        return std::stoll(c.elements[1].str);
    }
    return 0;
  }
};

}  // namespace

std::unique_ptr<domain::ExperimentRunner> MakePubsubVsStreams(const StackConfig& config) {
  return std::make_unique<PubsubVsStreams>(config);
}

}  // namespace lab::runners
