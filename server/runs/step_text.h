// The text of one step-log line as stored and shown: prefixed with the mode it belongs to (once,
// even when the runner already said it), and without terminal control sequences (the stack
// script's bold markers, a library's colours), which a browser would show as garbage.
#pragma once

#include <string>
#include <string_view>

namespace lab::server {

std::string StepText(std::string_view mode, std::string_view message);

// `text` without ANSI escape sequences (ESC [ … final byte, and other ESC-introduced ones) and
// without other control characters except tab.
std::string WithoutControlSequences(std::string_view text);

}  // namespace lab::server
