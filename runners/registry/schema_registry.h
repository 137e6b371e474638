// The schema registry's Confluent-compatible REST API (Apicurio serves it at /apis/ccompat/v7),
// and Avro records in the Confluent wire format: magic byte 0, 4-byte big-endian schema id,
// Avro binary body.
//
// Avro through Debian's avro-c (libavro-dev 1.11): it gives real schema parsing and the Avro
// spec's writer->reader schema resolution (avro_resolved_writer): a strict consumer resolves
// every record into its one compiled-in schema and fails on data it cannot read, while a
// dual-read consumer decodes each record with its writer schema fetched by registry id and
// resolves it into its reader schema. avro-c 1.11.1 resolves by field name and skips writer
// fields the reader lacks, but does not apply reader defaults: a reader field missing from the
// writer fails with "Reader field X doesn't appear in writer" (src/resolved-writer.c and
// resolved-reader.c, try_record: "TODO: Handle default values!"), so a reader schema may only
// name fields every writer schema it reads has. Hand-rolled zig-zag
// encoding would cover only fixed records and re-implement resolution; no C++ Avro library is
// packaged in Debian 12.
#pragma once

#include <avro.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "domain/result.h"
#include "runners/common/c_handle.h"

namespace lab::runners::registry {

using domain::Result;
using domain::Status;
using Ms = std::chrono::milliseconds;

class RegistryClient {
 public:
  // base_url: e.g. http://127.0.0.1:18091/apis/ccompat/v7
  explicit RegistryClient(std::string base_url, Ms timeout = Ms(3000))
      : base_(std::move(base_url)), timeout_(timeout) {}
  Result<std::vector<std::string>> Subjects();
  Result<int> Register(const std::string& subject, const std::string& schema_json);
  Result<std::string> SchemaById(int id);
  Status SetCompatibility(const std::string& subject, const std::string& level);
  Status DeleteSubject(const std::string& subject);
  // Apicurio's own system info (name, version), from the same host.
  Result<nlohmann::json> SystemInfo();

 private:
  std::string base_;
  Ms timeout_;
};

using SchemaHandle = std::shared_ptr<avro_obj_t>;

Result<SchemaHandle> ParseSchema(const std::string& schema_json);

// Encodes `record` (a JSON object: long/int/string/double/boolean fields, nullable unions) with
// `schema` into Avro binary.
Result<std::string> EncodeAvro(const SchemaHandle& schema, const nlohmann::json& record);
// Decodes Avro binary written with `writer` into `reader` (schema resolution); fails when the
// schemas do not resolve or the bytes do not match the writer schema.
Result<nlohmann::json> DecodeAvro(const SchemaHandle& writer, const SchemaHandle& reader,
                                  const std::string& bytes);

// avro_value_iface_decref is a macro; CHandle needs a function.
inline void DecrefValueIface(avro_value_iface_t* iface) { avro_value_iface_decref(iface); }

// Decodes records written with one writer schema into one reader schema, with the resolver
// built once (avro_resolved_reader over a value of the writer schema) and reused per record.
// Reports how many bytes a record left unread: Avro has no framing, so a reader that assumes
// the wrong writer schema can "succeed" on bytes of a longer record and leave the rest over.
class ResolvingDecoder {
 public:
  struct Decoded {
    nlohmann::json value;  // in the reader schema's shape
    std::size_t unread_bytes = 0;
  };
  static Result<std::unique_ptr<ResolvingDecoder>> Create(SchemaHandle writer, SchemaHandle reader);
  Result<Decoded> Decode(const std::string& bytes) const;

 private:
  using Iface = CHandle<avro_value_iface_t, DecrefValueIface>;
  ResolvingDecoder() = default;
  SchemaHandle writer_;
  SchemaHandle reader_;
  Iface writer_class_;
  Iface resolver_;
};

std::string WireEncode(int schema_id, const std::string& avro_body);
// Returns the schema id and the body; fails on a missing magic byte or a short frame.
Result<std::pair<int, std::string>> WireDecode(const std::string& frame);

}  // namespace lab::runners::registry
