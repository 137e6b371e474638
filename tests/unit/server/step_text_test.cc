// StepText: one mode prefix, no terminal escapes (seen in step logs: "success: success: started
// …" and "kafka pause 2 -> \e[1mstack:\e[0m kafka2 paused").
#include "server/runs/step_text.h"

#include <gtest/gtest.h>

namespace lab::server {
namespace {

TEST(StepText, PrefixesTheModeOnce) {
  EXPECT_EQ(StepText("success", "started consumer"), "success: started consumer");
  EXPECT_EQ(StepText("success", "success: started consumer"), "success: started consumer");
  EXPECT_EQ(StepText("failure", "success: x"), "failure: success: x") << "another mode is kept";
  EXPECT_EQ(StepText("", "cleanup: done"), "cleanup: done");
}

TEST(StepText, DropsTerminalEscapesAndControlCharacters) {
  EXPECT_EQ(StepText("failure", "fault: kafka pause 2 -> \x1b[1mstack:\x1b[0m kafka2 paused"),
            "failure: fault: kafka pause 2 -> stack: kafka2 paused");
  EXPECT_EQ(WithoutControlSequences("\x1b[38;5;196mred\x1b[0m\r\n"), "red");
  EXPECT_EQ(WithoutControlSequences("a\tb\x07"), "a\tb");
  EXPECT_EQ(WithoutControlSequences("cut \x1b["), "cut ") << "a truncated sequence";
  EXPECT_EQ(WithoutControlSequences("\x1b"
                                    "cX"),
            "X")
      << "a two-byte escape";
  EXPECT_EQ(WithoutControlSequences("üñí ✓"), "üñí ✓") << "UTF-8 is not a control sequence";
}

}  // namespace
}  // namespace lab::server
