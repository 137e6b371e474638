// Reading and putting back a Redis Cluster's topology: CLUSTER NODES parsed, the topology's
// canonical text (which node is a master of which slots, which is a replica of which master) that
// postflight and cleanup compare, the slot migration sequence (IMPORTING, MIGRATING, MIGRATE,
// NODE) experiments run under load, and the restore that undoes migrations and failovers.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runners/redis/redis_client.h"

namespace lab::runners::redis {

// One line of CLUSTER NODES.
struct ClusterNode {
  std::string id;
  std::string addr;  // "127.0.0.1:17001" (the cluster bus port dropped)
  bool myself = false;
  bool master = false;
  std::string master_id;  // of a replica
  std::string flags;      // as printed: "myself,master", "slave,fail", …
  bool connected = false;
  std::vector<std::pair<int, int>> slots;  // ranges owned
  // A slot this node is migrating to, or importing from, `peer_id` (only on the `myself` line).
  struct OpenSlot {
    int slot = 0;
    bool migrating = false;
    std::string peer_id;
  };
  std::vector<OpenSlot> open_slots;
  // Flags that say the node is not a healthy member: fail, fail?, handshake, noaddr.
  bool Failing() const;
};

std::vector<ClusterNode> ParseClusterNodes(const std::string& text);
Result<std::vector<ClusterNode>> ReadClusterNodes(Connection& conn);

// The topology as one canonical line per node, sorted by address: "127.0.0.1:17001 master
// 0-5460" or "127.0.0.1:17004 replica-of 127.0.0.1:17002", joined by "; ".
std::string TopologyText(const std::vector<ClusterNode>& nodes);
// What makes a cluster view unhealthy besides its topology: members not connected or flagged
// failing, open (migrating/importing) slots. "" when none.
std::string TopologyProblems(const std::vector<ClusterNode>& nodes);

// What every node says, read from each seed: a consistent, healthy cluster has the same
// TopologyText on every node, cluster_state ok everywhere, every replica's link to its master up
// (a replica that has not finished its first sync holds none of the keys: failing over to it
// would lose them) and no problems.
struct ClusterView {
  std::string topology;  // the first answering node's TopologyText
  std::string problems;  // "" when every seed answered ok and agreed
  std::vector<ClusterNode> nodes;
};
ClusterView ReadClusterView(const std::vector<std::string>& seeds, Ms timeout);
// The addresses of the masters that serve slots, sorted.
std::vector<std::string> ServingMasters(const std::vector<ClusterNode>& nodes);
// ReadClusterView again until it has no problems or `settle` has passed (a node restarted by the
// run before, or by a stack test, may still be syncing); the last view either way.
ClusterView ReadSettledClusterView(const std::vector<std::string>& seeds, Ms timeout, Ms settle);

// Connections to cluster nodes by address, opened on first use.
class NodePool {
 public:
  explicit NodePool(Ms timeout) : timeout_(timeout) {}
  Result<Connection*> Get(const std::string& addr);
  // A command on `addr`; a server error reply becomes an error naming the node and command.
  Result<Reply> Run(const std::string& addr, const std::vector<std::string>& argv);

 private:
  Ms timeout_;
  std::map<std::string, std::unique_ptr<Connection>> conns_;
};

// One slot moving from `from` to `to` (addresses), step by step so clients can run between the
// steps: Begin (IMPORTING on the target, MIGRATING on the source), MoveKeys (one MIGRATE batch;
// returns the keys moved, 0 when the slot is empty on the source), Finish (SETSLOT NODE on the
// target, the source and every other master).
class SlotMigration {
 public:
  SlotMigration(NodePool& pool, std::vector<ClusterNode> nodes, int slot, std::string from,
                std::string to);
  Status Begin();
  Result<int> MoveKeys(int batch);
  Status Finish();
  int slot() const { return slot_; }

 private:
  std::string IdOf(const std::string& addr) const;
  NodePool& pool_;
  std::vector<ClusterNode> nodes_;
  int slot_;
  std::string from_;
  std::string to_;
};

// Puts the cluster back to `baseline` (a TopologyText): closes open slots, moves every slot whose
// owner differs back to its owner, fails over to every node that should be a master, then waits
// until every seed agrees on the baseline. Bounded by `deadline_ms`; `log` gets each action.
Status RestoreTopology(const std::vector<std::string>& seeds, const std::string& baseline,
                       Ms deadline, const std::function<void(const std::string&)>& log);

}  // namespace lab::runners::redis
