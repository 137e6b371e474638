#include "runners/redis/cluster_admin.h"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <thread>

namespace lab::runners::redis {
namespace {

using domain::ErrorCode;
using domain::MakeError;
using Clock = std::chrono::steady_clock;

int ToInt(std::string_view s) {
  int n = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  return ec == std::errc() && end == s.data() + s.size() ? n : -1;
}

// "[93->-id]" (migrating) or "[93-<-id]" (importing) -> 93; a range "0-5460" -> {0, 5460}.
void ParseSlotField(const std::string& field, ClusterNode& node) {
  if (field.empty()) return;
  if (field.front() == '[') {
    const auto dash = field.find('-');
    const int slot = ToInt(std::string_view(field).substr(1, dash - 1));
    if (slot < 0 || dash == std::string::npos || dash + 3 > field.size()) return;
    ClusterNode::OpenSlot open{slot, field[dash + 1] == '>',
                               field.substr(dash + 3, field.size() - dash - 4)};
    node.open_slots.push_back(std::move(open));
    return;
  }
  const auto dash = field.find('-');
  const int first = ToInt(std::string_view(field).substr(0, dash));
  const int last =
      dash == std::string::npos ? first : ToInt(std::string_view(field).substr(dash + 1));
  if (first >= 0 && last >= first) node.slots.emplace_back(first, last);
}

bool HasFlag(const std::string& flags, const std::string& flag) {
  std::stringstream in(flags);
  std::string f;
  while (std::getline(in, f, ','))
    if (f == flag) return true;
  return false;
}

std::string RangesText(const std::vector<std::pair<int, int>>& slots) {
  std::string out;
  for (const auto& [first, last] : slots) {
    if (!out.empty()) out += ",";
    out +=
        first == last ? std::to_string(first) : std::to_string(first) + "-" + std::to_string(last);
  }
  return out.empty() ? "-" : out;
}

// A baseline's intent: the owner of each slot and each node's role.
struct Intent {
  std::vector<std::string> owner = std::vector<std::string>(16384);
  std::map<std::string, std::string> replica_of;  // replica addr -> master addr
  std::vector<std::string> masters;
};

Intent ParseTopologyText(const std::string& text) {
  Intent intent;
  std::size_t from = 0;
  while (from < text.size()) {
    auto end = text.find("; ", from);
    if (end == std::string::npos) end = text.size();
    std::istringstream line(text.substr(from, end - from));
    std::string addr, role, rest;
    line >> addr >> role >> rest;
    if (role == "master") {
      intent.masters.push_back(addr);
      std::stringstream ranges(rest);
      std::string range;
      while (std::getline(ranges, range, ',')) {
        ClusterNode n;
        ParseSlotField(range, n);
        for (const auto& [a, b] : n.slots)
          for (int s = a; s <= b && s < 16384; ++s) intent.owner[static_cast<size_t>(s)] = addr;
      }
    } else if (role == "replica-of") {
      intent.replica_of[addr] = rest;
    }
    from = end + 2;
  }
  return intent;
}

const ClusterNode* ByAddr(const std::vector<ClusterNode>& nodes, const std::string& addr) {
  for (const auto& n : nodes)
    if (n.addr == addr) return &n;
  return nullptr;
}

const ClusterNode* ById(const std::vector<ClusterNode>& nodes, const std::string& id) {
  for (const auto& n : nodes)
    if (n.id == id) return &n;
  return nullptr;
}

}  // namespace

bool ClusterNode::Failing() const {
  return HasFlag(flags, "fail") || HasFlag(flags, "fail?") || HasFlag(flags, "handshake") ||
         HasFlag(flags, "noaddr");
}

std::vector<ClusterNode> ParseClusterNodes(const std::string& text) {
  std::vector<ClusterNode> nodes;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    if (f.size() < 8) continue;
    ClusterNode n;
    n.id = f[0];
    n.addr = f[1].substr(0, f[1].find_first_of("@,"));
    n.flags = f[2];
    n.myself = HasFlag(n.flags, "myself");
    n.master = HasFlag(n.flags, "master");
    n.master_id = f[3] == "-" ? "" : f[3];
    n.connected = f[7] == "connected";
    for (size_t i = 8; i < f.size(); ++i) ParseSlotField(f[i], n);
    nodes.push_back(std::move(n));
  }
  return nodes;
}

Result<std::vector<ClusterNode>> ReadClusterNodes(Connection& conn) {
  auto reply = conn.Command({"CLUSTER", "NODES"});
  if (!reply) return reply.error();
  if (reply->is_error())
    return MakeError(ErrorCode::kUnavailable, "CLUSTER NODES on " + conn.host() + ":" +
                                                  std::to_string(conn.port()) + ": " + reply->str);
  return ParseClusterNodes(reply->str);
}

std::string TopologyText(const std::vector<ClusterNode>& nodes) {
  std::vector<std::string> lines;
  for (const auto& n : nodes) {
    if (n.master) {
      lines.push_back(n.addr + " master " + RangesText(n.slots));
    } else {
      const ClusterNode* m = ById(nodes, n.master_id);
      lines.push_back(n.addr + " replica-of " + (m != nullptr ? m->addr : "?"));
    }
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : "; ") + l;
  return out;
}

std::string TopologyProblems(const std::vector<ClusterNode>& nodes) {
  std::string out;
  auto add = [&](const std::string& p) { out += (out.empty() ? "" : "; ") + p; };
  for (const auto& n : nodes) {
    if (n.Failing()) add(n.addr + " flagged " + n.flags);
    if (!n.myself && !n.connected) add(n.addr + " not connected");
    if (!n.open_slots.empty())
      add(n.addr + " has " + std::to_string(n.open_slots.size()) +
          " slot(s) migrating or importing");
  }
  return out;
}

ClusterView ReadClusterView(const std::vector<std::string>& seeds, Ms timeout) {
  ClusterView view;
  auto add = [&](const std::string& p) {
    view.problems += (view.problems.empty() ? "" : "; ") + p;
  };
  for (const auto& seed : seeds) {
    auto [host, port] = SplitHostPort(seed);
    auto conn = Connection::Open(host, port, timeout);
    if (!conn) {
      add(seed + " unreachable");
      continue;
    }
    auto replies =
        (*conn)->Pipeline({{"CLUSTER", "NODES"}, {"CLUSTER", "INFO"}, {"INFO", "replication"}});
    if (!replies || (*replies)[0].is_error()) {
      add(seed + " did not answer CLUSTER NODES");
      continue;
    }
    auto nodes = ParseClusterNodes((*replies)[0].str);
    const std::string state = InfoValue((*replies)[1].str, "cluster_state");
    if (state != "ok") add(seed + " cluster_state=" + state);
    const std::string& replication = (*replies)[2].str;
    if (InfoValue(replication, "role") == "slave") {
      const std::string link = InfoValue(replication, "master_link_status");
      if (link != "up") add(seed + " replica not in sync with its master (link " + link + ")");
    }
    if (std::string p = TopologyProblems(nodes); !p.empty()) add(seed + " sees: " + p);
    const std::string text = TopologyText(nodes);
    if (view.nodes.empty()) {
      view.nodes = std::move(nodes);
      view.topology = text;
    } else if (text != view.topology) {
      add(seed + " disagrees: " + text);
    }
  }
  return view;
}

std::vector<std::string> ServingMasters(const std::vector<ClusterNode>& nodes) {
  std::vector<std::string> masters;
  for (const auto& node : nodes) {
    if (node.master && !node.slots.empty()) masters.push_back(node.addr);
  }
  std::sort(masters.begin(), masters.end());
  return masters;
}

ClusterView ReadSettledClusterView(const std::vector<std::string>& seeds, Ms timeout, Ms settle) {
  const auto until = Clock::now() + settle;
  for (;;) {
    ClusterView view = ReadClusterView(seeds, timeout);
    if ((!view.nodes.empty() && view.problems.empty()) || Clock::now() >= until) return view;
    std::this_thread::sleep_for(Ms(250));
  }
}

Result<Connection*> NodePool::Get(const std::string& addr) {
  auto it = conns_.find(addr);
  if (it != conns_.end()) return it->second.get();
  auto [host, port] = SplitHostPort(addr);
  auto conn = Connection::Open(host, port, timeout_);
  if (!conn) return conn.error();
  return (conns_[addr] = std::move(*conn)).get();
}

Result<Reply> NodePool::Run(const std::string& addr, const std::vector<std::string>& argv) {
  auto conn = Get(addr);
  if (!conn) return conn.error();
  auto reply = (*conn)->Command(argv);
  if (!reply) return reply.error();
  if (reply->is_error()) {
    std::string cmd;
    for (size_t i = 0; i < argv.size() && i < 4; ++i) cmd += (i ? " " : "") + argv[i];
    return MakeError(ErrorCode::kInternal, addr + ": " + cmd + ": " + reply->str);
  }
  return reply;
}

SlotMigration::SlotMigration(NodePool& pool, std::vector<ClusterNode> nodes, int slot,
                             std::string from, std::string to)
    : pool_(pool),
      nodes_(std::move(nodes)),
      slot_(slot),
      from_(std::move(from)),
      to_(std::move(to)) {}

std::string SlotMigration::IdOf(const std::string& addr) const {
  const ClusterNode* n = ByAddr(nodes_, addr);
  return n == nullptr ? "" : n->id;
}

Status SlotMigration::Begin() {
  const std::string s = std::to_string(slot_);
  if (IdOf(from_).empty() || IdOf(to_).empty())
    return MakeError(ErrorCode::kInvalidArgument,
                     "slot " + s + ": unknown node " + from_ + " or " + to_);
  if (auto r = pool_.Run(to_, {"CLUSTER", "SETSLOT", s, "IMPORTING", IdOf(from_)}); !r)
    return r.error();
  if (auto r = pool_.Run(from_, {"CLUSTER", "SETSLOT", s, "MIGRATING", IdOf(to_)}); !r)
    return r.error();
  return {};
}

Result<int> SlotMigration::MoveKeys(int batch) {
  auto keys =
      pool_.Run(from_, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot_), std::to_string(batch)});
  if (!keys) return keys.error();
  if (keys->elements.empty()) return 0;
  auto [host, port] = SplitHostPort(to_);
  std::vector<std::string> argv = {"MIGRATE", host,  std::to_string(port), "", "0", "5000",
                                   "REPLACE", "KEYS"};
  for (const auto& k : keys->elements) argv.push_back(k.str);
  if (auto r = pool_.Run(from_, argv); !r) return r.error();
  return static_cast<int>(keys->elements.size());
}

Status SlotMigration::Finish() {
  const std::string s = std::to_string(slot_);
  const std::string to_id = IdOf(to_);
  if (auto r = pool_.Run(to_, {"CLUSTER", "SETSLOT", s, "NODE", to_id}); !r) return r.error();
  if (auto r = pool_.Run(from_, {"CLUSTER", "SETSLOT", s, "NODE", to_id}); !r) return r.error();
  for (const auto& n : nodes_) {
    if (!n.master || n.addr == to_ || n.addr == from_ || n.Failing()) continue;
    if (auto r = pool_.Run(n.addr, {"CLUSTER", "SETSLOT", s, "NODE", to_id}); !r) return r.error();
  }
  return {};
}

namespace {

// One pass of the restore; returns what it did ("" when nothing).
Result<std::string> RestoreStep(NodePool& pool, const std::vector<std::string>& seeds,
                                const Intent& intent, const std::vector<ClusterNode>& nodes) {
  // Open slots: each node reports its own on its `myself` line. A half-done migration is
  // finished in its own direction (the slot-owner pass below then moves it back with every key):
  // making both sides STABLE would strand the keys already moved on a node that does not own
  // their slot, where no command can reach or delete them.
  std::vector<std::pair<std::string, ClusterNode::OpenSlot>> importing;
  for (const auto& seed : seeds) {
    auto conn = pool.Get(seed);
    if (!conn) continue;
    auto own = ReadClusterNodes(**conn);
    if (!own) continue;
    for (const auto& n : *own) {
      if (!n.myself) continue;
      for (const auto& open : n.open_slots) {
        const ClusterNode* peer = ById(nodes, open.peer_id);
        if (!open.migrating || peer == nullptr || peer->Failing()) {
          importing.emplace_back(seed, open);
          continue;
        }
        SlotMigration m(pool, nodes, open.slot, seed, peer->addr);
        if (auto s = m.Begin(); !s) return s.error();
        for (int i = 0; i < 100000; ++i) {  // bounded: 10M keys per slot
          auto k = m.MoveKeys(100);
          if (!k) return k.error();
          if (*k == 0) break;
        }
        if (auto s = m.Finish(); !s) return s.error();
        return "finished the half-done migration of slot " + std::to_string(open.slot) + " " +
               seed + " -> " + peer->addr + " (open slot closed)";
      }
    }
  }
  // What no live node is migrating away (its source was made stable, or is gone): stable.
  for (const auto& [addr, open] : importing) {
    if (auto r = pool.Run(addr, {"CLUSTER", "SETSLOT", std::to_string(open.slot), "STABLE"}); !r)
      return r.error();
    return addr + ": slot " + std::to_string(open.slot) + " made stable (open slot closed)";
  }
  // Roles: a node that should be a master but is a healthy replica takes over from its master.
  for (const auto& addr : intent.masters) {
    const ClusterNode* n = ByAddr(nodes, addr);
    if (n == nullptr || n->master || n->Failing()) continue;
    const ClusterNode* m = ById(nodes, n->master_id);
    const bool master_up = m != nullptr && !m->Failing();
    std::vector<std::string> argv = {"CLUSTER", "FAILOVER"};
    if (!master_up) argv.push_back("TAKEOVER");  // its master is gone: no handshake possible
    if (auto r = pool.Run(addr, argv); !r) return r.error();
    // A failover takes a few hundred ms; asking again meanwhile would start another one.
    for (int i = 0; i < 50; ++i) {
      std::this_thread::sleep_for(Ms(100));
      auto role = pool.Run(addr, {"ROLE"});
      if (role && !role->elements.empty() && role->elements[0].str == "master") break;
    }
    return addr + ": CLUSTER FAILOVER" + (master_up ? "" : " TAKEOVER") + " (to be a master again)";
  }
  // Slots: every slot whose owner differs goes back, contiguous runs of one owner at a time.
  for (int slot = 0; slot < 16384; ++slot) {
    const std::string& want = intent.owner[static_cast<size_t>(slot)];
    std::string have;
    for (const auto& n : nodes)
      for (const auto& [a, b] : n.slots)
        if (slot >= a && slot <= b) have = n.addr;
    const ClusterNode* target = ByAddr(nodes, want);
    if (want.empty() || have.empty() || have == want || target == nullptr || !target->master)
      continue;
    int moved_slots = 0;
    for (int s = slot; s < 16384 && intent.owner[static_cast<size_t>(s)] == want; ++s) {
      std::string owner;
      for (const auto& n : nodes)
        for (const auto& [a, b] : n.slots)
          if (s >= a && s <= b) owner = n.addr;
      if (owner != have) break;
      SlotMigration m(pool, nodes, s, have, want);
      if (auto st = m.Begin(); !st) return st.error();
      for (int i = 0; i < 100000; ++i) {  // bounded: 10M keys per slot
        auto k = m.MoveKeys(100);
        if (!k) return k.error();
        if (*k == 0) break;
      }
      if (auto st = m.Finish(); !st) return st.error();
      ++moved_slots;
    }
    return std::to_string(moved_slots) + " slot(s) from " + std::to_string(slot) + " moved back " +
           have + " -> " + want;
  }
  // Replicas following the wrong master.
  for (const auto& [addr, master_addr] : intent.replica_of) {
    const ClusterNode* n = ByAddr(nodes, addr);
    const ClusterNode* m = ByAddr(nodes, master_addr);
    if (n == nullptr || m == nullptr || !m->master || n->Failing()) continue;
    if (!n->master && n->master_id == m->id) continue;
    if (n->master && !n->slots.empty()) continue;  // roles first, then this
    if (auto r = pool.Run(addr, {"CLUSTER", "REPLICATE", m->id}); !r) return r.error();
    return addr + ": CLUSTER REPLICATE " + master_addr;
  }
  return std::string();
}

}  // namespace

Status RestoreTopology(const std::vector<std::string>& seeds, const std::string& baseline,
                       Ms deadline, const std::function<void(const std::string&)>& log) {
  const Intent intent = ParseTopologyText(baseline);
  const auto until = Clock::now() + deadline;
  NodePool pool(Ms(2000));
  std::string last;
  while (Clock::now() < until) {
    ClusterView view = ReadClusterView(seeds, Ms(1000));
    if (view.topology == baseline && view.problems.empty()) return {};
    last = view.problems.empty() ? "topology is " + view.topology : view.problems;
    if (!view.nodes.empty()) {
      auto did = RestoreStep(pool, seeds, intent, view.nodes);
      if (!did) {
        last = did.error().message;
        log("restore: " + last);
      } else if (!did->empty()) {
        log("restore: " + *did);
      }
    }
    std::this_thread::sleep_for(Ms(300));
  }
  return MakeError(ErrorCode::kUnavailable, "redis cluster not restored within " +
                                                std::to_string(deadline.count()) + " ms: " + last);
}

}  // namespace lab::runners::redis
