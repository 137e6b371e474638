// RAII wrappers over hiredis 0.14 (Debian): a standalone connection with connect and command
// timeouts that reconnects after an I/O error (in 0.14 a timed-out context stays dead), and a
// minimal Redis Cluster client (slot map from CLUSTER SLOTS, MOVED/ASK/TRYAGAIN handling).
// A connection belongs to one thread at a time.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "domain/result.h"
#include "runners/common/c_handle.h"

namespace lab::runners::redis {

using domain::Result;
using domain::Status;
using Ms = std::chrono::milliseconds;

// A reply copied out of hiredis's tree, so it outlives the reply object.
struct Reply {
  int type = REDIS_REPLY_NIL;
  long long integer = 0;
  std::string str;  // string, status and error replies
  std::vector<Reply> elements;
  bool is_nil() const { return type == REDIS_REPLY_NIL; }
  bool is_error() const { return type == REDIS_REPLY_ERROR; }
};

using ContextHandle = CHandle<redisContext, redisFree>;

class Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const std::string& host, int port, Ms timeout);
  // Server errors (e.g. MOVED) come back as a Reply of type error; only I/O fails the Result.
  Result<Reply> Command(const std::vector<std::string>& argv);
  // Pipelined: sends all, then reads all replies.
  Result<std::vector<Reply>> Pipeline(const std::vector<std::vector<std::string>>& commands);
  const std::string& host() const { return host_; }
  int port() const { return port_; }

 private:
  Connection() = default;
  Status Reconnect();
  ContextHandle ctx_;
  std::string host_;
  int port_ = 0;
  Ms timeout_{1000};
};

// "host:port" split at its last colon (port 6379 when there is none); throws nothing: a port that
// is not a number reads as 0.
std::pair<std::string, int> SplitHostPort(const std::string& host_port);

// CRC16-XMODEM of the key (or its {hash tag}) modulo 16384.
int KeySlot(const std::string& key);

// The value of `field` in an INFO reply (its "field:value" line), or "" when there is none.
std::string InfoValue(const std::string& info, const std::string& field);
// InfoValue as a number, or `absent` when the field is missing or not a number.
std::int64_t InfoNumber(const std::string& info, const std::string& field, std::int64_t absent);
// The count of error replies starting with `prefix` (MOVED, ASK, CROSSSLOT…) in an INFO
// errorstats reply (`errorstat_<prefix>:count=N`), 0 when the server has answered none.
std::int64_t ErrorStat(const std::string& info, const std::string& prefix);
// Connections in CLIENT LIST named `name` (CLIENT SETNAME), or -1 when the list cannot be read.
std::int64_t CountClientsNamed(Connection& conn, const std::string& name);

class ClusterClient {
 public:
  static Result<std::unique_ptr<ClusterClient>> Open(const std::vector<std::string>& seeds,
                                                     Ms timeout);
  // Routes by the slot of `key`; follows MOVED (refreshing the map) and ASK (ASKING first), and
  // backs off on TRYAGAIN/CLUSTERDOWN; at most 5 redirections.
  Result<Reply> Command(const std::string& key, const std::vector<std::string>& argv);
  Result<Reply> CommandOn(const std::string& node, const std::vector<std::string>& argv);
  Status RefreshSlots();
  // The node the client believes owns `slot` ("" when unknown).
  const std::string& SlotOwner(int slot) const { return slot_owner_.at(static_cast<size_t>(slot)); }
  // Makes the client believe `node` owns `slot`: a deliberately stale map, which the next
  // command on that slot corrects through MOVED.
  void OverrideSlotOwner(int slot, const std::string& node) {
    slot_owner_.at(static_cast<size_t>(slot)) = node;
  }
  int moved() const { return moved_; }
  int asked() const { return asked_; }

 private:
  ClusterClient() = default;
  Result<Connection*> Node(const std::string& host_port);
  std::vector<std::string> seeds_;
  Ms timeout_{1000};
  std::vector<std::string> slot_owner_ = std::vector<std::string>(16384);
  std::map<std::string, std::unique_ptr<Connection>> nodes_;
  int moved_ = 0;
  int asked_ = 0;
};

}  // namespace lab::runners::redis
