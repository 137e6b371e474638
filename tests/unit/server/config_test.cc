// LoadConfig: the config file under the command line, bounds on both, unknown keys refused, and
// the tokens file's comments and blank lines.
#include "server/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace lab::server {
namespace {

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    std::string pattern = (std::filesystem::temp_directory_path() / "lab-config-XXXXXX").string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    int fd = mkstemp(buf.data());
    path_ = buf.data();
    close(fd);
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

domain::Result<ServerConfig> Load(std::vector<std::string> args) {
  args.insert(args.begin(), "reliability-lab");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return LoadConfig(static_cast<int>(argv.size()), argv.data());
}

// The file sets what the command line leaves alone; a flag wins over the file, in either order.
TEST(Config, CommandLineOverridesTheFile) {
  TempFile file(R"({"workers": 5, "queue_capacity": 77, "rate_limit": 9,
                    "stack": {"kafka_bootstrap": "127.0.0.1:29999"}})");
  auto from_file = Load({"--config", file.path()});
  ASSERT_TRUE(from_file.ok()) << from_file.error().message;
  EXPECT_EQ(from_file->workers, 5);
  EXPECT_EQ(from_file->queue_capacity, 77u);
  EXPECT_EQ(from_file->rate_limit, 9);

  auto flag_after = Load({"--config", file.path(), "--workers", "3"});
  ASSERT_TRUE(flag_after.ok()) << flag_after.error().message;
  EXPECT_EQ(flag_after->workers, 3);
  EXPECT_EQ(flag_after->queue_capacity, 77u);

  auto flag_before = Load({"--workers", "3", "--config", file.path()});
  ASSERT_TRUE(flag_before.ok()) << flag_before.error().message;
  EXPECT_EQ(flag_before->workers, 3);
}

// A file value outside its flag's bounds, of the wrong type, or under an unknown key is refused
// with the file and the key named.
TEST(Config, FileValuesAreValidated) {
  struct Case {
    const char* json;
    const char* expected;
  };
  for (const Case& c :
       {Case{R"({"workers": 0})", "workers 0 is outside [1, 64]"},
        Case{R"({"queue_capacity": 0})", "queue_capacity 0 is outside"},
        Case{R"({"workers": "two"})", "workers must be an integer"},
        Case{R"({"worker": 2})", "unknown key 'worker'"}, Case{R"([1, 2])", "is not a JSON object"},
        Case{R"({"workers": )", "is not a JSON object"}}) {
    TempFile file(c.json);
    auto r = Load({"--config", file.path()});
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.error().message.find(c.expected), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(file.path()), std::string::npos) << r.error().message;
  }
  auto missing = Load({"--config", "/nonexistent/lab.json"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/lab.json"), std::string::npos);
}

// Command-line values out of bounds are refused too (the file's bounds are the same).
TEST(Config, FlagsAreBounded) {
  EXPECT_FALSE(Load({"--workers", "0"}).ok());
  EXPECT_FALSE(Load({"--workers", "65"}).ok());
  EXPECT_TRUE(Load({"--workers", "64"}).ok());
  EXPECT_FALSE(Load({"--queue-capacity", "x"}).ok());
  EXPECT_FALSE(Load({"--no-such-flag", "1"}).ok());
  EXPECT_FALSE(Load({"--workers"}).ok());
}

// Tokens files: one per line or comma-separated; comments, blank lines and spaces dropped.
TEST(Config, TokensFileSkipsCommentsAndBlankLines) {
  EXPECT_EQ(TokensFileToSpec("# who may do what\n\nabc:viewer\n  def:operator  \r\n#x:admin\n"),
            "abc:viewer,def:operator");
  EXPECT_EQ(TokensFileToSpec("abc:viewer,def:admin"), "abc:viewer,def:admin");
  EXPECT_EQ(TokensFileToSpec(""), "");
  TempFile file("# ops\nsecret1:admin\n");
  auto r = Load({"--tokens-file", file.path()});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tokens, "secret1:admin");
}

// --allow-host takes comma-separated names and repeats; a malformed list is refused.
TEST(Config, AllowHost) {
  auto c = Load({"--allow-host", "lab.internal,ci.example", "--allow-host", "other"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->allowed_hosts, (std::vector<std::string>{"lab.internal", "ci.example", "other"}));
  for (const char* bad : {"", "a,,b", "http://x", "a b"}) {
    auto r = Load({"--allow-host", bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("--allow-host"), std::string::npos);
  }
}

}  // namespace
}  // namespace lab::server
