#include "runners/registry/schema_registry.h"

#include <cstring>

#include "runners/registry/http_client.h"

namespace lab::runners::registry {
namespace {

using domain::ErrorCode;
using domain::MakeError;
constexpr const char* kContentType = "application/vnd.schemaregistry.v1+json";

void IfaceDecref(avro_value_iface_t* iface) { avro_value_iface_decref(iface); }
using IfaceHandle = CHandle<avro_value_iface_t, IfaceDecref>;
using ReaderHandle = CHandle<avro_reader_t_, avro_reader_free>;
using WriterHandle = CHandle<avro_writer_t_, avro_writer_free>;

// An avro_value_t owns a reference; this releases it.
struct Value {
  avro_value_t v{};
  bool live = false;
  Value() = default;
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;
  ~Value() {
    if (live) avro_value_decref(&v);
  }
};

avro_type_t TypeOf(const avro_value_t* v) { return v->iface->get_type(v->iface, v->self); }
avro_schema_t SchemaOf(const avro_value_t* v) { return v->iface->get_schema(v->iface, v->self); }

domain::Error AvroError(const std::string& what) {
  return MakeError(ErrorCode::kInvalidArgument, what + ": " + avro_strerror());
}

Status Fill(avro_value_t* v, const nlohmann::json& j, const std::string& path) {
  switch (TypeOf(v)) {
    case AVRO_RECORD: {
      if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, path + ": not an object");
      size_t n = 0;
      avro_value_get_size(v, &n);
      for (size_t i = 0; i < n; ++i) {
        avro_value_t child;
        const char* name = nullptr;
        avro_value_get_by_index(v, i, &child, &name);
        if (!j.contains(name))
          return MakeError(ErrorCode::kInvalidArgument, path + "." + name + ": missing");
        if (auto s = Fill(&child, j.at(name), path + "." + name); !s) return s;
      }
      return {};
    }
    case AVRO_STRING: {
      if (!j.is_string()) return MakeError(ErrorCode::kInvalidArgument, path + ": not a string");
      const auto& s = j.get_ref<const std::string&>();
      if (avro_value_set_string_len(v, s.c_str(), s.size() + 1) != 0) return AvroError(path);
      return {};
    }
    case AVRO_INT64:
      if (avro_value_set_long(v, j.get<std::int64_t>()) != 0) return AvroError(path);
      return {};
    case AVRO_INT32:
      if (avro_value_set_int(v, j.get<std::int32_t>()) != 0) return AvroError(path);
      return {};
    case AVRO_DOUBLE:
      if (avro_value_set_double(v, j.get<double>()) != 0) return AvroError(path);
      return {};
    case AVRO_BOOLEAN:
      if (avro_value_set_boolean(v, j.get<bool>() ? 1 : 0) != 0) return AvroError(path);
      return {};
    case AVRO_NULL:
      if (avro_value_set_null(v) != 0) return AvroError(path);
      return {};
    case AVRO_UNION: {
      avro_schema_t schema = SchemaOf(v);
      size_t branches = avro_schema_union_size(schema);
      for (size_t b = 0; b < branches; ++b) {
        bool is_null =
            avro_typeof(avro_schema_union_branch(schema, static_cast<int>(b))) == AVRO_NULL;
        if (is_null != j.is_null()) continue;
        avro_value_t branch;
        if (avro_value_set_branch(v, static_cast<int>(b), &branch) != 0) return AvroError(path);
        return Fill(&branch, j, path);
      }
      return MakeError(ErrorCode::kInvalidArgument, path + ": no union branch fits");
    }
    default:
      return MakeError(ErrorCode::kUnimplemented, path + ": Avro type not supported here");
  }
}

nlohmann::json ToJson(const avro_value_t* v) {
  switch (TypeOf(v)) {
    case AVRO_RECORD: {
      nlohmann::json out = nlohmann::json::object();
      size_t n = 0;
      avro_value_get_size(v, &n);
      for (size_t i = 0; i < n; ++i) {
        avro_value_t child;
        const char* name = nullptr;
        avro_value_get_by_index(v, i, &child, &name);
        out[name] = ToJson(&child);
      }
      return out;
    }
    case AVRO_STRING: {
      const char* s = nullptr;
      size_t size = 0;
      avro_value_get_string(v, &s, &size);
      return std::string(s, size > 0 ? size - 1 : 0);
    }
    case AVRO_INT64: {
      int64_t x = 0;
      avro_value_get_long(v, &x);
      return x;
    }
    case AVRO_INT32: {
      int32_t x = 0;
      avro_value_get_int(v, &x);
      return x;
    }
    case AVRO_DOUBLE: {
      double x = 0;
      avro_value_get_double(v, &x);
      return x;
    }
    case AVRO_BOOLEAN: {
      int x = 0;
      avro_value_get_boolean(v, &x);
      return x != 0;
    }
    case AVRO_UNION: {
      avro_value_t branch;
      avro_value_get_current_branch(v, &branch);
      return ToJson(&branch);
    }
    default:
      return nullptr;
  }
}

}  // namespace

Result<std::vector<std::string>> RegistryClient::Subjects() {
  auto r = HttpRequest("GET", base_ + "/subjects", "", "", timeout_);
  if (!r) return r.error();
  if (r->status != 200)
    return MakeError(ErrorCode::kUnavailable,
                     "GET subjects: HTTP " + std::to_string(r->status) + " " + r->body);
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_array()) return MakeError(ErrorCode::kUnavailable, "GET subjects: not a JSON array");
  return j.get<std::vector<std::string>>();
}

Result<int> RegistryClient::Register(const std::string& subject, const std::string& schema_json) {
  nlohmann::json body = {{"schema", schema_json}, {"schemaType", "AVRO"}};
  auto r = HttpRequest("POST", base_ + "/subjects/" + subject + "/versions", body.dump(),
                       kContentType, timeout_);
  if (!r) return r.error();
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status == 409)
    return MakeError(ErrorCode::kConflict, "register " + subject + ": incompatible: " + r->body);
  if (r->status != 200 || !j.contains("id")) {
    return MakeError(ErrorCode::kUnavailable,
                     "register " + subject + ": HTTP " + std::to_string(r->status) + " " + r->body);
  }
  return j["id"].get<int>();
}

Result<std::string> RegistryClient::SchemaById(int id) {
  auto r = HttpRequest("GET", base_ + "/schemas/ids/" + std::to_string(id), "", "", timeout_);
  if (!r) return r.error();
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status != 200 || !j.contains("schema")) {
    return MakeError(ErrorCode::kNotFound,
                     "schema id " + std::to_string(id) + ": HTTP " + std::to_string(r->status));
  }
  return j["schema"].get<std::string>();
}

Status RegistryClient::SetCompatibility(const std::string& subject, const std::string& level) {
  nlohmann::json body = {{"compatibility", level}};
  auto r = HttpRequest("PUT", base_ + "/config/" + subject, body.dump(), kContentType, timeout_);
  if (!r) return r.error();
  if (r->status != 200)
    return MakeError(ErrorCode::kUnavailable, "PUT config/" + subject + ": HTTP " +
                                                  std::to_string(r->status) + " " + r->body);
  return {};
}

Status RegistryClient::DeleteSubject(const std::string& subject) {
  auto r = HttpRequest("DELETE", base_ + "/subjects/" + subject, "", "", timeout_);
  if (!r) return r.error();
  auto p =
      HttpRequest("DELETE", base_ + "/subjects/" + subject + "?permanent=true", "", "", timeout_);
  if (!p) return p.error();
  // Soft delete first (Confluent refuses a permanent delete of a live subject), then permanent;
  // 404 on either means it is already gone.
  for (const auto* step : {&*r, &*p}) {
    if (step->status != 200 && step->status != 404) {
      return MakeError(ErrorCode::kUnavailable, "DELETE subject " + subject + ": HTTP " +
                                                    std::to_string(step->status) + " " +
                                                    step->body);
    }
  }
  return {};
}

Result<nlohmann::json> RegistryClient::SystemInfo() {
  auto scheme_end = base_.find("://");
  auto path_start = base_.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  std::string origin = path_start == std::string::npos ? base_ : base_.substr(0, path_start);
  auto r = HttpRequest("GET", origin + "/apis/registry/v3/system/info", "", "", timeout_);
  if (!r) return r.error();
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status != 200 || j.is_discarded()) {
    return MakeError(ErrorCode::kUnavailable, "system info: HTTP " + std::to_string(r->status));
  }
  return j;
}

Result<SchemaHandle> ParseSchema(const std::string& schema_json) {
  avro_schema_t schema = nullptr;
  if (avro_schema_from_json_length(schema_json.c_str(), schema_json.size(), &schema) != 0) {
    return AvroError("parse schema");
  }
  return SchemaHandle(schema, [](avro_schema_t s) { avro_schema_decref(s); });
}

Result<std::string> EncodeAvro(const SchemaHandle& schema, const nlohmann::json& record) {
  IfaceHandle iface(avro_generic_class_from_schema(schema.get()));
  if (!iface) return AvroError("generic class");
  Value value;
  if (avro_generic_value_new(iface.get(), &value.v) != 0) return AvroError("new value");
  value.live = true;
  if (auto s = Fill(&value.v, record, "record"); !s) return s.error();
  size_t size = 0;
  if (avro_value_sizeof(&value.v, &size) != 0) return AvroError("sizeof");
  std::string out(size, '\0');
  WriterHandle writer(avro_writer_memory(out.data(), static_cast<int64_t>(out.size())));
  if (avro_value_write(writer.get(), &value.v) != 0) return AvroError("write");
  return out;
}

Result<nlohmann::json> DecodeAvro(const SchemaHandle& writer, const SchemaHandle& reader,
                                  const std::string& bytes) {
  IfaceHandle resolver(avro_resolved_writer_new(writer.get(), reader.get()));
  if (!resolver) return AvroError("writer schema does not resolve to the reader schema");
  IfaceHandle reader_iface(avro_generic_class_from_schema(reader.get()));
  if (!reader_iface) return AvroError("generic class");
  Value dest;
  if (avro_generic_value_new(reader_iface.get(), &dest.v) != 0) return AvroError("new value");
  dest.live = true;
  Value resolved;
  if (avro_resolved_writer_new_value(resolver.get(), &resolved.v) != 0)
    return AvroError("resolved value");
  resolved.live = true;
  avro_resolved_writer_set_dest(&resolved.v, &dest.v);
  ReaderHandle in(avro_reader_memory(bytes.data(), static_cast<int64_t>(bytes.size())));
  if (avro_value_read(in.get(), &resolved.v) != 0) return AvroError("decode");
  return ToJson(&dest.v);
}

Result<std::unique_ptr<ResolvingDecoder>> ResolvingDecoder::Create(SchemaHandle writer,
                                                                   SchemaHandle reader) {
  std::unique_ptr<ResolvingDecoder> d(new ResolvingDecoder());
  d->writer_class_.reset(avro_generic_class_from_schema(writer.get()));
  if (!d->writer_class_) return AvroError("generic class");
  d->resolver_.reset(avro_resolved_reader_new(writer.get(), reader.get()));
  if (!d->resolver_) return AvroError("writer schema does not resolve to the reader schema");
  d->writer_ = std::move(writer);
  d->reader_ = std::move(reader);
  return d;
}

Result<ResolvingDecoder::Decoded> ResolvingDecoder::Decode(const std::string& bytes) const {
  // Read with the writer schema first: its encoded size is the number of bytes it consumed
  // (avro-c's memory reader does not expose its position), then view it through the resolver.
  Value written;
  if (avro_generic_value_new(writer_class_.get(), &written.v) != 0) return AvroError("new value");
  written.live = true;
  ReaderHandle in(avro_reader_memory(bytes.data(), static_cast<int64_t>(bytes.size())));
  if (avro_value_read(in.get(), &written.v) != 0) return AvroError("decode");
  size_t consumed = 0;
  if (avro_value_sizeof(&written.v, &consumed) != 0) return AvroError("sizeof");
  Value resolved;
  if (avro_resolved_reader_new_value(resolver_.get(), &resolved.v) != 0)
    return AvroError("resolved value");
  resolved.live = true;
  avro_resolved_reader_set_source(&resolved.v, &written.v);
  Decoded out;
  out.value = ToJson(&resolved.v);
  out.unread_bytes = bytes.size() > consumed ? bytes.size() - consumed : 0;
  return out;
}

std::string WireEncode(int schema_id, const std::string& avro_body) {
  std::string out;
  out.reserve(5 + avro_body.size());
  out.push_back('\0');
  auto id = static_cast<std::uint32_t>(schema_id);
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((id >> shift) & 0xff));
  out += avro_body;
  return out;
}

Result<std::pair<int, std::string>> WireDecode(const std::string& frame) {
  if (frame.size() < 5 || frame[0] != '\0') {
    return MakeError(ErrorCode::kInvalidArgument,
                     "not Confluent wire format (magic byte 0 + 4-byte id)");
  }
  std::uint32_t id = 0;
  for (int i = 1; i <= 4; ++i)
    id = (id << 8) | static_cast<std::uint8_t>(frame[static_cast<size_t>(i)]);
  return std::make_pair(static_cast<int>(id), frame.substr(5));
}

}  // namespace lab::runners::registry
