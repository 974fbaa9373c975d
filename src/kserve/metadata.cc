// KServe v2 metadata bodies (modelgrid/kserve/metadata.h).
#include "modelgrid/kserve/metadata.h"

#include "kserve/json_text.h"

namespace modelgrid {

namespace {

using nlohmann::json;

// nlohmann::json::dump throws on invalid UTF-8; names reach here from paths
// and config files, so bad bytes are replaced up front.
std::string Utf8(std::string_view s) { return kserve_internal::ToValidUtf8(s); }

json TensorList(const std::vector<TensorSpec>& specs, int64_t max_batch_size) {
  json list = json::array();
  for (const TensorSpec& spec : specs) {
    list.push_back({{"name", Utf8(spec.name)},
                    {"datatype", std::string(DataTypeName(spec.datatype))},
                    {"shape", MetadataShape(spec, max_batch_size)}});
  }
  return list;
}

}  // namespace

json ServerMetadataJson(std::string_view name, std::string_view version,
                        const std::vector<std::string>& extensions) {
  json ext = json::array();
  for (const std::string& e : extensions) ext.push_back(Utf8(e));
  return {{"name", Utf8(name)}, {"version", Utf8(version)}, {"extensions", ext}};
}

std::vector<int64_t> MetadataShape(const TensorSpec& spec, int64_t max_batch_size) {
  std::vector<int64_t> shape;
  if (max_batch_size > 0) shape.push_back(-1);
  shape.insert(shape.end(), spec.dims.begin(), spec.dims.end());
  return shape;
}

json ModelMetadataJson(std::string_view name, const std::vector<std::string>& versions,
                       std::string_view platform, const std::vector<TensorSpec>& inputs,
                       const std::vector<TensorSpec>& outputs, int64_t max_batch_size) {
  json body = json::object();
  body["name"] = Utf8(name);
  if (!versions.empty()) {
    json v = json::array();
    for (const std::string& s : versions) v.push_back(Utf8(s));
    body["versions"] = v;
  }
  body["platform"] = Utf8(platform);
  body["inputs"] = TensorList(inputs, max_batch_size);
  body["outputs"] = TensorList(outputs, max_batch_size);
  return body;
}

}  // namespace modelgrid
