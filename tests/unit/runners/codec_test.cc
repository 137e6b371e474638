#include <gtest/gtest.h>

#include "runners/redis/redis_client.h"
#include "runners/registry/schema_registry.h"

namespace lab::runners {
namespace {

const char* kV1 = R"({"type":"record","name":"Order","fields":[
  {"name":"id","type":"long"},{"name":"amount","type":"long"},{"name":"currency","type":"string"}]})";
// V2 drops `currency` and adds an optional `note`: old data reads with V2, V2 data does not
// read with V1 (V1 requires currency and has no default).
const char* kV2 = R"({"type":"record","name":"Order","fields":[
  {"name":"id","type":"long"},{"name":"amount","type":"long"},
  {"name":"note","type":["null","string"],"default":null}]})";

// The Confluent wire format is magic 0 + big-endian id + body, and decodes back.
TEST(Wire, RoundTrip) {
  auto frame = registry::WireEncode(0x01020304, "abc");
  ASSERT_EQ(frame.size(), 8u);
  EXPECT_EQ(frame[0], '\0');
  EXPECT_EQ(frame[1], '\x01');
  EXPECT_EQ(frame[4], '\x04');
  auto back = registry::WireDecode(frame);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->first, 0x01020304);
  EXPECT_EQ(back->second, "abc");
  EXPECT_FALSE(registry::WireDecode("\x01xxxxx").ok());
  EXPECT_FALSE(registry::WireDecode("").ok());
}

// Avro encode/decode with avro-c. A dual-read consumer decodes each record with its writer
// schema (looked up by id); a strict V1 reader resolves every record into V1, which fails for V2
// data (V1's `currency` is missing). avro-c's resolver does not apply reader defaults, so
// resolving V1 data into V2 fails too: dual-read must decode with the writer schema.
TEST(Avro, ResolutionDecidesWhoCanRead) {
  auto v1 = registry::ParseSchema(kV1);
  auto v2 = registry::ParseSchema(kV2);
  ASSERT_TRUE(v1.ok()) << v1.error().message;
  ASSERT_TRUE(v2.ok()) << v2.error().message;
  auto old_bytes = registry::EncodeAvro(*v1, {{"id", 7}, {"amount", 100}, {"currency", "EUR"}});
  ASSERT_TRUE(old_bytes.ok()) << old_bytes.error().message;
  auto new_bytes = registry::EncodeAvro(*v2, {{"id", 8}, {"amount", 5}, {"note", "x"}});
  ASSERT_TRUE(new_bytes.ok()) << new_bytes.error().message;

  auto same = registry::DecodeAvro(*v1, *v1, *old_bytes);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ((*same)["currency"], "EUR");
  EXPECT_FALSE(registry::DecodeAvro(*v1, *v2, *old_bytes).ok());
  auto dual_new = registry::DecodeAvro(*v2, *v2, *new_bytes);
  ASSERT_TRUE(dual_new.ok());
  EXPECT_EQ((*dual_new)["note"], "x");
  EXPECT_FALSE(registry::DecodeAvro(*v2, *v1, *new_bytes).ok());
  EXPECT_FALSE(registry::EncodeAvro(*v1, {{"id", 1}}).ok());  // missing fields are an error
}

// Cluster slots follow CRC16-XMODEM and honour hash tags: the first {...} with something
// inside. Expected values are Redis 7.0's own answers (`redis-cli -p 17001 cluster keyslot K`).
TEST(RedisCluster, KeySlot) {
  EXPECT_EQ(redis::KeySlot("foo"), 12182);
  EXPECT_EQ(redis::KeySlot("123456789"), 0x31C3 & 16383);
  EXPECT_EQ(redis::KeySlot("{user1000}.following"), redis::KeySlot("user1000"));
  EXPECT_EQ(redis::KeySlot("foo{}{bar}"), 8363);     // an empty tag: the whole key is hashed
  EXPECT_EQ(redis::KeySlot("foo{{bar}}zap"), 4015);  // the tag is "{bar"
  EXPECT_EQ(redis::KeySlot("foo{bar}{zap}"), 5061);  // only the first tag counts: "bar"
}

}  // namespace
}  // namespace lab::runners
