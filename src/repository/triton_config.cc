// ParseTritonModelConfig: Triton's config.pbtxt (protobuf text format, schema
// of what we read in triton_model_config.proto) mapped onto ModelConfig
// (modelgrid/repository.h).

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "modelgrid/repository.h"
#include "triton_model_config.pb.h"

namespace modelgrid {

namespace {

namespace pb = ::modelgrid::triton;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::TextFormat;

// The field path a Triton user knows a message type by ("" for the root).
std::string PathOf(const std::string& full_type_name) {
  static const std::pair<const char*, const char*> kPaths[] = {
      {"modelgrid.triton.ModelConfig", ""},
      {"modelgrid.triton.ModelInput", "input"},
      {"modelgrid.triton.ModelOutput", "output"},
      {"modelgrid.triton.ModelTensorReshape", "reshape"},
      {"modelgrid.triton.ModelDynamicBatching", "dynamic_batching"},
      {"modelgrid.triton.ModelQueuePolicy", "dynamic_batching.default_queue_policy"},
      {"modelgrid.triton.ModelInstanceGroup", "instance_group"},
      {"modelgrid.triton.ModelVersionPolicy", "version_policy"},
      {"modelgrid.triton.ModelVersionPolicy.Latest", "version_policy.latest"},
      {"modelgrid.triton.ModelVersionPolicy.All", "version_policy.all"},
      {"modelgrid.triton.ModelVersionPolicy.Specific", "version_policy.specific"},
      {"modelgrid.triton.ModelParameter", "parameters.value"},
      {"modelgrid.triton.ModelConfig.ParametersEntry", "parameters"},
  };
  for (const auto& [type, path] : kPaths) {
    if (full_type_name == type) return path;
  }
  return full_type_name;
}

std::string Join(const std::string& parent, const std::string& field) {
  return parent.empty() ? field : parent + "." + field;
}

// Collects the parser's errors (the first one is reported) and its warnings
// about skipped fields (each field path once).
class Collector : public google::protobuf::io::ErrorCollector {
 public:
  explicit Collector(std::string file) : file_(std::move(file)) {}

  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error_.empty()) error_ = Where(line, column) + ": " + message;
  }

  void AddWarning(int line, google::protobuf::io::ColumnNumber column,
                  const std::string& message) override {
    // protobuf 3.21: Message type "T" has no field named "F".
    static const std::string kType = "Message type \"";
    static const std::string kField = "has no field named \"";
    const size_t t = message.find(kType);
    const size_t f = message.find(kField);
    if (t != std::string::npos && f != std::string::npos) {
      const size_t t_end = message.find('"', t + kType.size());
      const size_t f_end = message.find('"', f + kField.size());
      if (t_end != std::string::npos && f_end != std::string::npos) {
        const std::string path =
            Join(PathOf(message.substr(t + kType.size(), t_end - t - kType.size())),
                 message.substr(f + kField.size(), f_end - f - kField.size()));
        NameStart(line, column);
        Warn(path, Where(line, column), "field '" + path + "' is not read by ModelGrid; ignored");
        return;
      }
    }
    Warn(message, Where(line, column), message);
  }

  // The text the parser reads, for NameStart.
  void SetText(const std::string* text) { text_ = text; }

  // Moves (line, column), where the parser stands after an unknown field's
  // name, back to the start of that name. Columns as protobuf's tokenizer
  // counts them: a tab advances to the next multiple of 8.
  void NameStart(int& line, int& column) const {
    if (text_ == nullptr || line < 0) return;
    const std::string& t = *text_;
    size_t pos = 0;
    for (int l = 0; l < line && pos < t.size(); ++pos) l += t[pos] == '\n';
    const size_t line_start = pos;
    for (int c = 0; pos < t.size() && t[pos] != '\n' && c < column; ++pos) {
      c = t[pos] == '\t' ? c + 8 - c % 8 : c + 1;
    }
    size_t end = pos;
    while (end > line_start && std::isspace(static_cast<unsigned char>(t[end - 1]))) --end;
    size_t start = end;
    while (start > line_start &&
           (std::isalnum(static_cast<unsigned char>(t[start - 1])) || t[start - 1] == '_')) {
      --start;
    }
    if (start == end) return;  // not on the name's line: keep the parser's position
    int c = 0;
    for (size_t k = line_start; k < start; ++k) c = t[k] == '\t' ? c + 8 - c % 8 : c + 1;
    column = c;
  }

  // Records `what` under `key` unless a warning with that key was recorded.
  void Warn(const std::string& key, const std::string& where, const std::string& what) {
    if (seen_.insert(key).second) warnings_.push_back(where + ": " + what);
  }

  // "<file>:<line>:<column>" from the parser's 0-based position.
  std::string Where(int line, int column) const {
    if (line < 0) return file_;
    return file_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1);
  }

  const std::string& error() const { return error_; }
  std::vector<std::string>& warnings() { return warnings_; }

 private:
  std::string file_;
  const std::string* text_ = nullptr;
  std::string error_;
  std::set<std::string> seen_;
  std::vector<std::string> warnings_;
};

// Positions of parsed fields (where their name is written), for errors and
// warnings on values.
class Locator {
 public:
  Locator(const Collector* c, const TextFormat::ParseInfoTree* tree, std::string fallback)
      : c_(c), tree_(tree), fallback_(std::move(fallback)) {}

  // The nested message `field` (index for repeated fields, -1 otherwise).
  Locator Nested(const Descriptor* d, const char* field, int index = -1) const {
    const FieldDescriptor* fd = d->FindFieldByName(field);
    if (fd != nullptr) index = fd->is_repeated() ? std::max(index, 0) : -1;
    return Locator(c_, tree_ && fd ? tree_->GetTreeForNested(fd, index) : nullptr,
                   At(d, field, index));
  }

  // "<file>:<line>:<column>" of `field`'s (index-th) value; a list written
  // `dims: [ 3, 0 ]` has the position of `dims` for each of its values; the
  // enclosing message's position when the field has none.
  std::string At(const Descriptor* d, const char* field, int index = -1) const {
    const FieldDescriptor* fd = d->FindFieldByName(field);
    if (tree_ == nullptr || fd == nullptr) return fallback_;
    // protobuf insists on -1 for a singular field and an index for a repeated one.
    index = fd->is_repeated() ? std::max(index, 0) : -1;
    auto loc = tree_->GetLocation(fd, index);
    for (int i = index; loc.line < 0 && i > 0; --i) loc = tree_->GetLocation(fd, i - 1);
    return loc.line < 0 ? fallback_ : c_->Where(loc.line, loc.column);
  }

 private:
  const Collector* c_;
  const TextFormat::ParseInfoTree* tree_;
  std::string fallback_;
};

// Triton's files write lists of messages without a colon (`model_warmup [
// {...} ]`), which protobuf's parser accepts for the fields it knows but
// cannot skip for unknown ones (it expects "{" after an unknown field name
// without ":"). Adds the colon to every field name directly followed by "[",
// in place of the blank before "[" where there is one so that lines and
// columns stay those of the file. Strings and # comments are left alone.
std::string ColonBeforeLists(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 16);
  std::vector<char> nesting;        // '{', '<' or '[' currently open
  bool after_colon = false;         // the last token was ':'
  bool field_name_pending = false;  // the last token was a field name
  auto is_word = [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-' ||
           ch == '+';
  };
  size_t i = 0;
  while (i < text.size()) {
    const char ch = text[i];
    if (ch == '#') {  // comment to the end of the line
      const size_t end = text.find('\n', i);
      const size_t stop = end == std::string::npos ? text.size() : end;
      out.append(text, i, stop - i);
      i = stop;
      continue;
    }
    if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v') {
      out.push_back(ch);
      ++i;
      continue;
    }
    if (ch == '"' || ch == '\'') {  // a string, with backslash escapes
      size_t j = i + 1;
      while (j < text.size() && text[j] != ch && text[j] != '\n') j += text[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, text.size());
      out.append(text, i, j - i);
      i = j;
      field_name_pending = after_colon = false;
      continue;
    }
    if (is_word(ch)) {
      size_t j = i;
      while (j < text.size() && is_word(text[j])) ++j;
      const bool in_list = !nesting.empty() && nesting.back() == '[';
      field_name_pending = !in_list && !after_colon;
      after_colon = false;
      out.append(text, i, j - i);
      i = j;
      continue;
    }
    if (ch == '[' && field_name_pending) {
      if (!out.empty() && (out.back() == ' ' || out.back() == '\t')) {
        out.back() = ':';
      } else {
        // "name[" or "name\n[": insert after the name's last character.
        size_t k = out.size();
        while (k > 0 && std::isspace(static_cast<unsigned char>(out[k - 1]))) --k;
        out.insert(k, 1, ':');
      }
    }
    if (ch == '{' || ch == '<' || ch == '[') nesting.push_back(ch);
    if ((ch == '}' || ch == '>' || ch == ']') && !nesting.empty()) nesting.pop_back();
    after_colon = ch == ':';
    field_name_pending = false;
    out.push_back(ch);
    ++i;
  }
  return out;
}

Status FieldError(const std::string& where, const std::string& path, const std::string& what) {
  return Status::InvalidArgument(where + ": field '" + path + "': " + what);
}

std::optional<DataType> MapDataType(pb::DataType t) {
  switch (t) {
    case pb::TYPE_BOOL:
      return DataType::kBool;
    case pb::TYPE_UINT8:
      return DataType::kUInt8;
    case pb::TYPE_UINT16:
      return DataType::kUInt16;
    case pb::TYPE_UINT32:
      return DataType::kUInt32;
    case pb::TYPE_UINT64:
      return DataType::kUInt64;
    case pb::TYPE_INT8:
      return DataType::kInt8;
    case pb::TYPE_INT16:
      return DataType::kInt16;
    case pb::TYPE_INT32:
      return DataType::kInt32;
    case pb::TYPE_INT64:
      return DataType::kInt64;
    case pb::TYPE_FP16:
      return DataType::kFP16;
    case pb::TYPE_FP32:
      return DataType::kFP32;
    case pb::TYPE_FP64:
      return DataType::kFP64;
    case pb::TYPE_STRING:
      return DataType::kBytes;
    case pb::TYPE_BF16:
      return DataType::kBF16;
    default:
      return std::nullopt;
  }
}

// One input or output: name, data_type, dims (and reshape, warned).
template <typename Tensor>
Result<TensorSpec> MapTensor(const Tensor& t, const char* kind, int index, const Locator& parent,
                             Collector& c) {
  const Descriptor* d = Tensor::descriptor();
  const Locator loc = parent.Nested(pb::ModelConfig::descriptor(), kind, index);
  const std::string path = std::string(kind) + "[" + std::to_string(index) + "]";
  TensorSpec spec;
  if (t.name().empty()) {
    return FieldError(parent.At(pb::ModelConfig::descriptor(), kind, index), path + ".name",
                      "is missing");
  }
  spec.name = t.name();
  const std::string named = std::string(kind) + " '" + t.name() + "'";
  const auto type = MapDataType(t.data_type());
  if (!type) {
    return FieldError(t.data_type() == pb::TYPE_INVALID
                          ? parent.At(pb::ModelConfig::descriptor(), kind, index)
                          : loc.At(d, "data_type"),
                      path + ".data_type",
                      named +
                          ": data_type is missing or TYPE_INVALID (expected TYPE_FP32, "
                          "TYPE_INT64, ...)");
  }
  spec.datatype = *type;
  for (int i = 0; i < t.dims_size(); ++i) {
    const int64_t v = t.dims(i);
    if (v < -1 || v == 0) {
      return FieldError(loc.At(d, "dims", i), path + ".dims[" + std::to_string(i) + "]",
                        named + ": must be -1 (variable) or > 0, got " + std::to_string(v));
    }
    spec.dims.push_back(v);
  }
  if (t.has_reshape()) {
    c.Warn(std::string(kind) + ".reshape", loc.At(d, "reshape"),
           "field '" + std::string(kind) +
               ".reshape' is not applied by ModelGrid; the model receives the dims as sent");
  }
  return spec;
}

Status MapInstanceGroups(const pb::ModelConfig& m, const Locator& root, Collector& c,
                         ModelConfig& out) {
  if (m.instance_group_size() == 0) return Status::Ok();
  const Descriptor* d = pb::ModelInstanceGroup::descriptor();
  int64_t replicas = 0;
  bool any_device = false;
  std::vector<std::string> devices;
  for (int i = 0; i < m.instance_group_size(); ++i) {
    const pb::ModelInstanceGroup& g = m.instance_group(i);
    const Locator loc = root.Nested(pb::ModelConfig::descriptor(), "instance_group", i);
    const std::string path = "instance_group[" + std::to_string(i) + "]";
    if (g.count() < 0) {
      return FieldError(loc.At(d, "count"), path + ".count",
                        "must be >= 0, got " + std::to_string(g.count()));
    }
    const int64_t count = g.count() == 0 ? 1 : g.count();
    for (int j = 0; j < g.gpus_size(); ++j) {
      if (g.gpus(j) < 0) {
        return FieldError(loc.At(d, "gpus", j), path + ".gpus[" + std::to_string(j) + "]",
                          "must be >= 0, got " + std::to_string(g.gpus(j)));
      }
    }
    switch (g.kind()) {
      case pb::ModelInstanceGroup::KIND_CPU:
        if (std::find(devices.begin(), devices.end(), "cpu") == devices.end()) {
          devices.push_back("cpu");
        }
        replicas += count;
        break;
      case pb::ModelInstanceGroup::KIND_GPU:
        if (g.gpus_size() == 0) {
          any_device = true;  // any GPU: ModelGrid's pins cannot say "any GPU"
          replicas += count;
        } else {
          for (int32_t gpu : g.gpus()) {
            const std::string id = "cuda:" + std::to_string(gpu);
            if (std::find(devices.begin(), devices.end(), id) == devices.end()) {
              devices.push_back(id);
            }
          }
          replicas += count * g.gpus_size();  // Triton: `count` on each GPU listed
        }
        break;
      default:  // KIND_AUTO, KIND_MODEL: wherever the planner puts them
        any_device = true;
        replicas += count;
        if (g.gpus_size() > 0) {
          c.Warn("instance_group.gpus", loc.At(d, "gpus", 0),
                 "field 'instance_group.gpus' is read only with kind KIND_GPU; ignored");
        }
        break;
    }
    if (replicas > 1024) {
      return FieldError(root.At(pb::ModelConfig::descriptor(), "instance_group", i),
                        "instance_group",
                        "asks for " + std::to_string(replicas) + " instances (at most 1024)");
    }
  }
  out.replicas = static_cast<int>(replicas);
  if (!any_device) {
    out.devices = devices;
    if (static_cast<size_t>(replicas) > devices.size()) {
      c.Warn("instance_group.count", root.At(pb::ModelConfig::descriptor(), "instance_group", 0),
             "field 'instance_group': " + std::to_string(replicas) + " instances on " +
                 std::to_string(devices.size()) +
                 " device(s); ModelGrid places at most one instance of a model per device, so "
                 "the extra instances stay unplaced");
    }
  }
  return Status::Ok();
}

Status MapBatching(const pb::ModelConfig& m, const Locator& root, Collector& c, BatchingConfig& b) {
  // Triton without dynamic_batching runs each request as it comes.
  b.enabled = m.has_dynamic_batching();
  if (!m.has_dynamic_batching()) return Status::Ok();
  const pb::ModelDynamicBatching& db = m.dynamic_batching();
  const Descriptor* d = pb::ModelDynamicBatching::descriptor();
  const Locator loc = root.Nested(pb::ModelConfig::descriptor(), "dynamic_batching");
  for (int i = 0; i < db.preferred_batch_size_size(); ++i) {
    const int32_t v = db.preferred_batch_size(i);
    if (v < 1) {
      return FieldError(loc.At(d, "preferred_batch_size", i),
                        "dynamic_batching.preferred_batch_size[" + std::to_string(i) + "]",
                        "must be > 0, got " + std::to_string(v));
    }
    b.preferred_batch_sizes.push_back(v);
  }
  b.max_queue_delay_us = db.max_queue_delay_microseconds();
  if (db.priority_levels() != 0 || db.default_priority_level() != 0) {
    const char* field = db.priority_levels() != 0 ? "priority_levels" : "default_priority_level";
    c.Warn("dynamic_batching.priority_levels", loc.At(d, field),
           "field 'dynamic_batching." + std::string(field) +
               "' is not read by ModelGrid (requests of a model share one queue; config.yaml "
               "`priority` ranks models); ignored");
  }
  if (db.has_default_queue_policy()) {
    const pb::ModelQueuePolicy& q = db.default_queue_policy();
    const Descriptor* qd = pb::ModelQueuePolicy::descriptor();
    const Locator ql = loc.Nested(d, "default_queue_policy");
    // 0 means "none" in Triton; ModelGrid keeps its bounded defaults then.
    if (q.default_timeout_microseconds() != 0)
      b.default_timeout_us = q.default_timeout_microseconds();
    if (q.max_queue_size() != 0) b.max_queue_size = q.max_queue_size();
    if (q.timeout_action() == pb::ModelQueuePolicy::DELAY) {
      c.Warn("dynamic_batching.default_queue_policy.timeout_action", ql.At(qd, "timeout_action"),
             "field 'dynamic_batching.default_queue_policy.timeout_action': DELAY is not "
             "supported by ModelGrid; timed-out requests are rejected");
    }
    if (q.allow_timeout_override()) {
      c.Warn("dynamic_batching.default_queue_policy.allow_timeout_override",
             ql.At(qd, "allow_timeout_override"),
             "field 'dynamic_batching.default_queue_policy.allow_timeout_override' is not read "
             "by ModelGrid; ignored");
    }
  }
  return Status::Ok();
}

Status MapVersionPolicy(const pb::ModelConfig& m, const Locator& root, VersionPolicy& p) {
  if (!m.has_version_policy()) return Status::Ok();
  const pb::ModelVersionPolicy& v = m.version_policy();
  const Locator loc = root.Nested(pb::ModelConfig::descriptor(), "version_policy");
  switch (v.policy_choice_case()) {
    case pb::ModelVersionPolicy::kLatest:
      p.kind = VersionPolicy::Kind::kLatest;
      p.num_versions = v.latest().num_versions() == 0 ? 1 : v.latest().num_versions();
      break;
    case pb::ModelVersionPolicy::kAll:
      p.kind = VersionPolicy::Kind::kAll;
      break;
    case pb::ModelVersionPolicy::kSpecific: {
      p.kind = VersionPolicy::Kind::kSpecific;
      const Locator sl = loc.Nested(pb::ModelVersionPolicy::descriptor(), "specific");
      for (int i = 0; i < v.specific().versions_size(); ++i) {
        const int64_t n = v.specific().versions(i);
        if (n < 0) {
          return FieldError(sl.At(pb::ModelVersionPolicy::Specific::descriptor(), "versions", i),
                            "version_policy.specific.versions[" + std::to_string(i) + "]",
                            "must be >= 0, got " + std::to_string(n));
        }
        p.versions.push_back(n);
      }
      if (p.versions.empty()) {
        return FieldError(root.At(pb::ModelConfig::descriptor(), "version_policy"),
                          "version_policy.specific", "lists no versions");
      }
      break;
    }
    default:
      break;  // version_policy {}: Triton's default, latest 1
  }
  return Status::Ok();
}

}  // namespace

Result<TritonModelConfig> ParseTritonModelConfig(const std::string& text, const std::string& file) {
  pb::ModelConfig m;
  Collector collector(file);
  TextFormat::ParseInfoTree tree;
  TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  parser.WriteLocationsTo(&tree);
  parser.AllowUnknownField(true);
  parser.AllowUnknownExtension(true);
  parser.SetRecursionLimit(64);
  const std::string input = ColonBeforeLists(text);
  collector.SetText(&input);
  if (!parser.ParseFromString(input, &m)) {
    return Status::InvalidArgument(
        collector.error().empty() ? file + ": not valid protobuf text format" : collector.error());
  }
  const Locator root(&collector, &tree, file);
  const Descriptor* d = pb::ModelConfig::descriptor();

  TritonModelConfig out;
  out.name = m.name();
  ModelConfig& c = out.config;
  const std::string& platform = m.platform();
  const std::string& backend = m.backend();
  if (!platform.empty() && platform != "pytorch_libtorch") {
    return Status::Unsupported(root.At(d, "platform") + ": field 'platform': '" + platform +
                               "' is not served by ModelGrid (expected pytorch_libtorch: "
                               "TorchScript models only)");
  }
  if (!backend.empty() && backend != "pytorch") {
    return Status::Unsupported(root.At(d, "backend") + ": field 'backend': '" + backend +
                               "' is not served by ModelGrid (expected pytorch: TorchScript "
                               "models only)");
  }
  if (!platform.empty() || !backend.empty()) c.platform = "pytorch_torchscript";

  if (m.max_batch_size() < 0) {
    return FieldError(root.At(d, "max_batch_size"), "max_batch_size",
                      "must be >= 0, got " + std::to_string(m.max_batch_size()));
  }
  c.max_batch_size = m.max_batch_size();

  std::set<std::string> names;
  for (int i = 0; i < m.input_size(); ++i) {
    MG_ASSIGN_OR_RETURN(TensorSpec spec, MapTensor(m.input(i), "input", i, root, collector));
    if (!names.insert(spec.name).second) {
      return FieldError(root.At(d, "input", i), "input[" + std::to_string(i) + "].name",
                        "input '" + spec.name + "' is declared twice");
    }
    if (m.input(i).optional()) {
      collector.Warn("input.optional",
                     root.Nested(d, "input", i).At(pb::ModelInput::descriptor(), "optional"),
                     "field 'input.optional' is not read by ModelGrid; every input declared "
                     "is required");
    }
    c.inputs.push_back(std::move(spec));
  }
  names.clear();
  for (int i = 0; i < m.output_size(); ++i) {
    MG_ASSIGN_OR_RETURN(TensorSpec spec, MapTensor(m.output(i), "output", i, root, collector));
    if (!names.insert(spec.name).second) {
      return FieldError(root.At(d, "output", i), "output[" + std::to_string(i) + "].name",
                        "output '" + spec.name + "' is declared twice");
    }
    if (!m.output(i).label_filename().empty()) {
      out.label_files[spec.name] = m.output(i).label_filename();
    }
    c.outputs.push_back(std::move(spec));
  }

  MG_RETURN_IF_ERROR(MapBatching(m, root, collector, c.batching));
  MG_RETURN_IF_ERROR(MapInstanceGroups(m, root, collector, c));
  MG_RETURN_IF_ERROR(MapVersionPolicy(m, root, out.version_policy));
  for (const auto& [key, value] : m.parameters()) out.parameters[key] = value.string_value();
  if (!m.parameters().empty()) {
    collector.Warn("parameters", root.At(d, "parameters", 0),
                   "field 'parameters' is kept (ModelEntry::parameters) but not acted on by "
                   "ModelGrid");
  }
  out.warnings = std::move(collector.warnings());
  return out;
}

}  // namespace modelgrid
