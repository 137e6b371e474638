#include "server/runs/stack_health.h"

namespace lab::server {

std::vector<std::string> StackHealth::Clear(const std::vector<domain::PartHealth>& checked) {
  std::vector<std::string> cleared;
  for (const auto& p : checked) {
    if (!p.ok) continue;
    auto it = dirty_.find(p.part);
    if (it == dirty_.end()) continue;
    cleared.push_back(p.part + " (was: " + it->second + ")");
    dirty_.erase(it);
  }
  return cleared;
}

std::vector<std::string> StackHealth::Record(const std::vector<domain::PartHealth>& checked,
                                             const std::string& context) {
  std::lock_guard lock(mu_);
  for (const auto& p : checked) {
    if (!p.ok) dirty_[p.part] = context + ": " + p.detail;
  }
  return Clear(checked);
}

std::vector<std::string> StackHealth::ClearHealthy(const std::vector<domain::PartHealth>& checked) {
  std::lock_guard lock(mu_);
  return Clear(checked);
}

bool StackHealth::dirty() const {
  std::lock_guard lock(mu_);
  return !dirty_.empty();
}

std::string StackHealth::why() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [part, reason] : dirty_) out += (out.empty() ? "" : "; ") + part + ": " + reason;
  return out;
}

}  // namespace lab::server
