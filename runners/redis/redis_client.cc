#include "runners/redis/redis_client.h"

#include <charconv>
#include <thread>

namespace lab::runners::redis {
namespace {

using domain::ErrorCode;
using domain::MakeError;
using ReplyHandle = CHandle<redisReply, freeReplyObject>;

Reply Copy(const redisReply* r) {
  Reply out;
  out.type = r->type;
  out.integer = r->integer;
  if (r->str != nullptr) out.str.assign(r->str, r->len);
  for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Copy(r->element[i]));
  return out;
}

timeval ToTimeval(Ms ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

}  // namespace

std::pair<std::string, int> SplitHostPort(const std::string& host_port) {
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos) return {host_port, 6379};
  int port = 0;
  const char* begin = host_port.data() + colon + 1;
  std::from_chars(begin, host_port.data() + host_port.size(), port);
  return {host_port.substr(0, colon), port};
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& host, int port,
                                                     Ms timeout) {
  std::unique_ptr<Connection> conn(new Connection());
  conn->host_ = host;
  conn->port_ = port;
  conn->timeout_ = timeout;
  if (auto s = conn->Reconnect(); !s) return s.error();
  return conn;
}

Status Connection::Reconnect() {
  ctx_.reset(redisConnectWithTimeout(host_.c_str(), port_, ToTimeval(timeout_)));
  if (!ctx_) return MakeError(ErrorCode::kResourceExhausted, "redis: cannot allocate a context");
  if (ctx_->err != 0) {
    std::string msg = "redis connect " + host_ + ":" + std::to_string(port_) + ": " + ctx_->errstr;
    ctx_.reset();
    return MakeError(ErrorCode::kUnavailable, msg);
  }
  redisSetTimeout(ctx_.get(), ToTimeval(timeout_));
  redisEnableKeepAlive(ctx_.get());
  return {};
}

Result<Reply> Connection::Command(const std::vector<std::string>& argv) {
  auto batch = Pipeline({argv});
  if (!batch) return batch.error();
  return std::move(batch->front());
}

Result<std::vector<Reply>> Connection::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  if (!ctx_ || ctx_->err != 0) {
    // hiredis 0.14 leaves a context unusable after an I/O error or timeout.
    if (auto s = Reconnect(); !s) return s.error();
  }
  for (const auto& argv : commands) {
    std::vector<const char*> args;
    std::vector<size_t> lens;
    for (const auto& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(ctx_.get(), static_cast<int>(args.size()), args.data(), lens.data());
  }
  std::vector<Reply> out;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) {
      std::string msg = std::string("redis ") + host_ + ":" + std::to_string(port_) + ": " +
                        (ctx_->errstr[0] != '\0' ? ctx_->errstr : "no reply");
      ctx_.reset();  // dead after an I/O error; next call reconnects
      return MakeError(ErrorCode::kUnavailable, msg);
    }
    ReplyHandle reply(static_cast<redisReply*>(raw));
    out.push_back(Copy(reply.get()));
  }
  return out;
}

std::string InfoValue(const std::string& info, const std::string& field) {
  const std::string key = field + ":";
  for (auto at = info.find(key); at != std::string::npos; at = info.find(key, at + 1)) {
    if (at != 0 && info[at - 1] != '\n') continue;  // a longer field ending in this name
    const auto from = at + key.size();
    return info.substr(from, info.find_first_of("\r\n", from) - from);
  }
  return "";
}

std::int64_t InfoNumber(const std::string& info, const std::string& field, std::int64_t absent) {
  const std::string value = InfoValue(info, field);
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  return value.empty() || ec != std::errc() ? absent : n;
}

std::int64_t ErrorStat(const std::string& info, const std::string& prefix) {
  const std::string value = InfoValue(info, "errorstat_" + prefix);  // "count=N"
  std::int64_t n = 0;
  if (value.rfind("count=", 0) != 0) return 0;
  std::from_chars(value.data() + 6, value.data() + value.size(), n);
  return n;
}

std::int64_t CountClientsNamed(Connection& conn, const std::string& name) {
  auto list = conn.Command({"CLIENT", "LIST"});
  if (!list || list->is_error()) return -1;
  const std::string needle = " name=" + name + " ";
  std::int64_t n = 0;
  for (auto at = list->str.find(needle); at != std::string::npos;
       at = list->str.find(needle, at + 1))
    ++n;
  return n;
}

int KeySlot(const std::string& key) {
  std::string_view k = key;
  auto open = k.find('{');
  if (open != std::string_view::npos) {
    auto close = k.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1)
      k = k.substr(open + 1, close - open - 1);
  }
  std::uint16_t crc = 0;
  for (char ch : k) {
    crc ^= static_cast<std::uint16_t>(static_cast<std::uint8_t>(ch) << 8);
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<std::uint16_t>(crc << 1);
    }
  }
  return crc & 16383;
}

Result<std::unique_ptr<ClusterClient>> ClusterClient::Open(const std::vector<std::string>& seeds,
                                                           Ms timeout) {
  std::unique_ptr<ClusterClient> client(new ClusterClient());
  client->seeds_ = seeds;
  client->timeout_ = timeout;
  if (auto s = client->RefreshSlots(); !s) return s.error();
  return client;
}

Result<Connection*> ClusterClient::Node(const std::string& host_port) {
  auto it = nodes_.find(host_port);
  if (it != nodes_.end()) return it->second.get();
  auto [host, port] = SplitHostPort(host_port);
  auto conn = Connection::Open(host, port, timeout_);
  if (!conn) return conn.error();
  auto* raw = conn->get();
  nodes_[host_port] = std::move(*conn);
  return raw;
}

Status ClusterClient::RefreshSlots() {
  std::string last_error = "no seeds";
  std::vector<std::string> candidates = seeds_;
  for (const auto& [name, conn] : nodes_) candidates.push_back(name);
  for (const auto& seed : candidates) {
    auto node = Node(seed);
    if (!node) {
      last_error = node.error().message;
      continue;
    }
    auto reply = (*node)->Command({"CLUSTER", "SLOTS"});
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
      last_error = reply ? "CLUSTER SLOTS: " + reply->str : reply.error().message;
      nodes_.erase(seed);
      continue;
    }
    for (const auto& range : reply->elements) {
      if (range.elements.size() < 3) continue;
      const auto& master = range.elements[2];
      if (master.elements.size() < 2) continue;
      std::string owner = master.elements[0].str + ":" + std::to_string(master.elements[1].integer);
      for (long long s = range.elements[0].integer; s <= range.elements[1].integer && s < 16384;
           ++s) {
        slot_owner_[static_cast<size_t>(s)] = owner;
      }
    }
    return {};
  }
  return MakeError(ErrorCode::kUnavailable,
                   "redis cluster: no seed answered CLUSTER SLOTS: " + last_error);
}

Result<Reply> ClusterClient::CommandOn(const std::string& node,
                                       const std::vector<std::string>& argv) {
  auto conn = Node(node);
  if (!conn) return conn.error();
  return (*conn)->Command(argv);
}

Result<Reply> ClusterClient::Command(const std::string& key, const std::vector<std::string>& argv) {
  std::string target = slot_owner_[static_cast<size_t>(KeySlot(key))];
  bool asking = false;
  for (int attempt = 0; attempt < 6; ++attempt) {
    if (target.empty()) {
      if (auto s = RefreshSlots(); !s) return s.error();
      target = slot_owner_[static_cast<size_t>(KeySlot(key))];
      if (target.empty())
        return MakeError(ErrorCode::kUnavailable, "redis cluster: slot not covered");
    }
    auto conn = Node(target);
    if (!conn) {
      nodes_.erase(target);
      (void)RefreshSlots();
      target = slot_owner_[static_cast<size_t>(KeySlot(key))];
      continue;
    }
    Result<Reply> reply = asking ? [&]() -> Result<Reply> {
      auto both = (*conn)->Pipeline({{"ASKING"}, argv});
      if (!both) return both.error();
      return std::move(both->back());
    }()
        : (*conn)->Command(argv);
    asking = false;
    if (!reply) return reply.error();
    if (!reply->is_error()) return reply;
    const std::string& err = reply->str;
    if (err.rfind("MOVED ", 0) == 0 || err.rfind("ASK ", 0) == 0) {
      bool is_ask = err[1] == 'S';
      auto space = err.rfind(' ');
      target = err.substr(space + 1);
      if (is_ask) {
        ++asked_;
        asking = true;
      } else {
        ++moved_;
        int slot = -1;
        std::from_chars(err.data() + 6, err.data() + space, slot);
        if (slot >= 0 && slot < 16384) slot_owner_[static_cast<size_t>(slot)] = target;
      }
      continue;
    }
    if (err.rfind("TRYAGAIN", 0) == 0 || err.rfind("CLUSTERDOWN", 0) == 0) {
      std::this_thread::sleep_for(Ms(20 << attempt));
      continue;
    }
    return reply;  // CROSSSLOT and other errors are the caller's to handle
  }
  return MakeError(ErrorCode::kUnavailable, "redis cluster: too many redirections for " + key);
}

}  // namespace lab::runners::redis
