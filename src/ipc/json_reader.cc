#include "ipc/json_reader.h"

#include <limits>

namespace modelgrid::ipc::internal {

Result<nlohmann::json> ParseObject(std::string_view text, const std::string& context) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Corruption(context + ": payload is not valid JSON");
  if (!j.is_object()) {
    return Status::Corruption(context + ": payload is a JSON " + std::string(j.type_name()) +
                              ", expected an object");
  }
  return j;
}

JsonReader::JsonReader(const nlohmann::json& object, std::string context)
    : object_(object), context_(std::move(context)) {
  if (!object_.is_object())
    Fail("", "expected a JSON object, got " + std::string(object_.type_name()));
}

void JsonReader::Fail(const std::string& field, const std::string& what) {
  if (!status_.ok()) return;
  status_ =
      Status::Corruption(context_ + (field.empty() ? "" : ": field '" + field + "'") + ": " + what);
}

const nlohmann::json* JsonReader::Find(const char* field, bool optional) {
  if (!object_.is_object()) return nullptr;
  auto it = object_.find(field);
  if (it == object_.end()) {
    if (!optional) Fail(field, "missing");
    return nullptr;
  }
  return &*it;
}

std::string JsonReader::String(const char* field) {
  const nlohmann::json* v = Find(field, false);
  if (v == nullptr) return {};
  if (!v->is_string()) {
    Fail(field, "expected a string, got " + std::string(v->type_name()));
    return {};
  }
  return v->get<std::string>();
}

uint64_t JsonReader::Uint64(const char* field) {
  const nlohmann::json* v = Find(field, false);
  if (v == nullptr) return 0;
  if (!v->is_number_unsigned()) {
    Fail(field, "expected a non-negative integer, got " +
                    (v->is_number() ? v->dump() : std::string(v->type_name())));
    return 0;
  }
  return v->get<uint64_t>();
}

uint32_t JsonReader::Uint32(const char* field) {
  const uint64_t v = Uint64(field);
  if (v > std::numeric_limits<uint32_t>::max()) {
    Fail(field, std::to_string(v) + " does not fit 32 bits");
    return 0;
  }
  return static_cast<uint32_t>(v);
}

int64_t JsonReader::Int64(const char* field) {
  const nlohmann::json* v = Find(field, false);
  if (v == nullptr) return 0;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      Fail(field, std::to_string(u) + " does not fit a signed 64-bit integer");
      return 0;
    }
    return static_cast<int64_t>(u);
  }
  if (!v->is_number_integer()) {
    Fail(field,
         "expected an integer, got " + (v->is_number() ? v->dump() : std::string(v->type_name())));
    return 0;
  }
  return v->get<int64_t>();
}

bool JsonReader::Bool(const char* field) {
  const nlohmann::json* v = Find(field, false);
  if (v == nullptr) return false;
  if (!v->is_boolean()) {
    Fail(field,
         "expected a boolean, got " + (v->is_number() ? v->dump() : std::string(v->type_name())));
    return false;
  }
  return v->get<bool>();
}

const nlohmann::json* JsonReader::Array(const char* field, bool optional) {
  const nlohmann::json* v = Find(field, optional);
  if (v == nullptr) return nullptr;
  if (!v->is_array()) {
    Fail(field, "expected an array, got " + std::string(v->type_name()));
    return nullptr;
  }
  return v;
}

const nlohmann::json* JsonReader::Object(const char* field, bool optional) {
  const nlohmann::json* v = Find(field, optional);
  if (v == nullptr) return nullptr;
  if (!v->is_object()) {
    Fail(field, "expected an object, got " + std::string(v->type_name()));
    return nullptr;
  }
  return v;
}

uint64_t JsonReader::OptionalUint64(const char* field, uint64_t fallback) {
  return Has(field) ? Uint64(field) : fallback;
}

uint32_t JsonReader::OptionalUint32(const char* field, uint32_t fallback) {
  return Has(field) ? Uint32(field) : fallback;
}

bool JsonReader::OptionalBool(const char* field, bool fallback) {
  return Has(field) ? Bool(field) : fallback;
}

std::string JsonReader::OptionalString(const char* field, const std::string& fallback) {
  return Has(field) ? String(field) : fallback;
}

void JsonReader::RejectUnknown(std::initializer_list<const char*> known) {
  if (!object_.is_object()) return;
  for (const auto& [key, value] : object_.items()) {
    bool found = false;
    for (const char* k : known) found = found || key == k;
    if (!found) Fail(key, "unknown field");
  }
}

}  // namespace modelgrid::ipc::internal
