#include "runners/common/util.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <thread>

namespace lab::runners {

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
  if (rank == 0) rank = 1;
  return values[std::min(rank, values.size()) - 1];
}

std::string SafeName(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    if (ch >= 'A' && ch <= 'Z') {
      out.push_back(static_cast<char>(ch - 'A' + 'a'));
    } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_') {
      out.push_back(ch);
    } else {
      out.push_back('_');
    }
  }
  if (out.size() > 40) out.erase(0, out.size() - 40);  // keep the unique tail of long ids
  return out;
}

bool SleepFor(std::chrono::milliseconds duration, const std::stop_token& stop) {
  auto deadline = SteadyClock::now() + duration;
  while (SteadyClock::now() < deadline) {
    if (stop.stop_requested()) return false;
    auto left = deadline - SteadyClock::now();
    std::this_thread::sleep_for(
        std::min<SteadyClock::duration>(left, std::chrono::milliseconds(20)));
  }
  return !stop.stop_requested();
}

std::optional<std::string> FindRepoPath(const std::string& relative) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path rel(relative);
  if (rel.is_absolute())
    return fs::exists(rel, ec) ? std::optional<std::string>(relative) : std::nullopt;
  std::vector<fs::path> starts = {fs::current_path(ec)};
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) starts.push_back(exe.parent_path());
  for (auto dir : starts) {
    for (int depth = 0; depth < 6 && !dir.empty(); ++depth) {
      auto candidate = dir / rel;
      if (fs::exists(candidate, ec)) return candidate.string();
      if (dir == dir.parent_path()) break;
      dir = dir.parent_path();
    }
  }
  return std::nullopt;
}

std::int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace lab::runners
