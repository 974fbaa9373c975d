#include "tokenizer/json_node.h"

namespace modelgrid::tokenizer {

const char* JsonTypeName(const nlohmann::json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  if (v.is_object()) return "object";
  return "value";
}

const nlohmann::json& JsonNode::Null() {
  static const nlohmann::json kNull;
  return kNull;
}

bool JsonNode::Has(std::string_view key) const {
  return value_->is_object() && value_->contains(key);
}

JsonNode JsonNode::At(std::string_view key) const {
  std::string path = path_ + "/" + std::string(key);
  if (!value_->is_object()) return JsonNode(&Null(), file_, path);
  auto it = value_->find(key);
  return JsonNode(it == value_->end() ? &Null() : &*it, file_, path);
}

JsonNode JsonNode::At(size_t index) const {
  std::string path = path_ + "/" + std::to_string(index);
  if (!value_->is_array() || index >= value_->size()) return JsonNode(&Null(), file_, path);
  return JsonNode(&(*value_)[index], file_, path);
}

Status JsonNode::Error(const std::string& what) const {
  return Status::Corruption(file_ + ": " + path() + ": " + what);
}

Status JsonNode::Unsupported(const std::string& kind, const std::string& type) const {
  return Status::Unsupported(file_ + ": " + path() + "/type: unsupported " + kind + " type \"" +
                             type + "\"");
}

Status JsonNode::ExpectObject() const {
  if (value_->is_object()) return Status::Ok();
  return Error(std::string("expected an object, got ") + JsonTypeName(*value_));
}

Status JsonNode::ExpectArray() const {
  if (value_->is_array()) return Status::Ok();
  return Error(std::string("expected an array, got ") + JsonTypeName(*value_));
}

Result<std::string> JsonNode::AsString() const {
  if (!value_->is_string()) {
    return Error(std::string("expected a string, got ") + JsonTypeName(*value_));
  }
  return value_->get<std::string>();
}

Result<int64_t> JsonNode::AsInt() const {
  if (value_->is_number_integer()) return value_->get<int64_t>();
  if (value_->is_number_float()) {
    double d = value_->get<double>();
    if (d > -9.0e18 && d < 9.0e18 && d == static_cast<double>(static_cast<int64_t>(d))) {
      return static_cast<int64_t>(d);
    }
  }
  return Error(std::string("expected an integer, got ") + JsonTypeName(*value_));
}

Result<std::string> JsonNode::RequiredString(std::string_view key) const {
  JsonNode n = At(key);
  if (n.IsNull()) return n.Error("missing (expected a string)");
  return n.AsString();
}

Result<std::optional<std::string>> JsonNode::OptionalString(std::string_view key) const {
  JsonNode n = At(key);
  if (n.IsNull()) return std::optional<std::string>();
  MG_ASSIGN_OR_RETURN(std::string s, n.AsString());
  return std::optional<std::string>(std::move(s));
}

Result<std::string> JsonNode::StringOr(std::string_view key, std::string fallback) const {
  MG_ASSIGN_OR_RETURN(auto s, OptionalString(key));
  return s ? *s : fallback;
}

Result<std::optional<bool>> JsonNode::OptionalBool(std::string_view key) const {
  JsonNode n = At(key);
  if (n.IsNull()) return std::optional<bool>();
  if (!n.value().is_boolean()) {
    return n.Error(std::string("expected a boolean, got ") + JsonTypeName(n.value()));
  }
  return std::optional<bool>(n.value().get<bool>());
}

Result<bool> JsonNode::BoolOr(std::string_view key, bool fallback) const {
  MG_ASSIGN_OR_RETURN(auto b, OptionalBool(key));
  return b.value_or(fallback);
}

Result<std::optional<int64_t>> JsonNode::OptionalInt(std::string_view key) const {
  JsonNode n = At(key);
  if (n.IsNull()) return std::optional<int64_t>();
  MG_ASSIGN_OR_RETURN(int64_t v, n.AsInt());
  return std::optional<int64_t>(v);
}

Result<int64_t> JsonNode::IntOr(std::string_view key, int64_t fallback) const {
  MG_ASSIGN_OR_RETURN(auto v, OptionalInt(key));
  return v.value_or(fallback);
}

}  // namespace modelgrid::tokenizer
