#include "server/runs/step_text.h"

namespace lab::server {

std::string WithoutControlSequences(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == 0x1b) {
      // CSI: ESC [ parameters/intermediates (0x20-0x3f) then one final byte (0x40-0x7e).
      if (i + 1 < text.size() && text[i + 1] == '[') {
        i += 2;
        while (i < text.size() && static_cast<unsigned char>(text[i]) >= 0x20 &&
               static_cast<unsigned char>(text[i]) <= 0x3f)
          ++i;
        continue;  // i is on the final byte (dropped) or past the end
      }
      ++i;  // a two-byte escape: drop ESC and the byte after it
      continue;
    }
    if (c < 0x20 && c != '\t') continue;
    if (c == 0x7f) continue;
    out += static_cast<char>(c);
  }
  return out;
}

std::string StepText(std::string_view mode, std::string_view message) {
  std::string text = WithoutControlSequences(message);
  if (mode.empty()) return text;
  const std::string prefix = std::string(mode) + ": ";
  if (text.rfind(prefix, 0) == 0) return text;
  return prefix + text;
}

}  // namespace lab::server
