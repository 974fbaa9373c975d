// Sharded safetensors checkpoints: model.safetensors.index.json
// (formats.md, "Sharded").
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "estimate/safetensors.h"

namespace modelgrid::estimate {

namespace {

using nlohmann::json;

Result<json> ReadIndexJson(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::NotFound(file + ": no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(file + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::exception& e) {
    return Status::Corruption(file + ": not valid JSON: " + e.what());
  }
}

// Reads "metadata.total_size" when present and an integer.
std::optional<uint64_t> DeclaredTotal(const json& doc) {
  auto m = doc.find("metadata");
  if (m == doc.end() || !m->is_object()) return std::nullopt;
  auto t = m->find("total_size");
  if (t == m->end()) return std::nullopt;
  if (t->is_number_unsigned()) return t->get<uint64_t>();
  if (t->is_number_integer() && t->get<int64_t>() >= 0) return t->get<int64_t>();
  // Some writers store a float (e.g. 497759232.0).
  if (t->is_number_float() && t->get<double>() >= 0) return static_cast<uint64_t>(t->get<double>());
  return std::nullopt;
}

}  // namespace

Result<ShardedSafetensors> ReadShardedSafetensors(const std::filesystem::path& index_path) {
  const std::string file = index_path.string();
  MG_ASSIGN_OR_RETURN(json doc, ReadIndexJson(index_path));
  if (!doc.is_object()) return Status::Corruption(file + ": not a JSON object");
  auto wm = doc.find("weight_map");
  if (wm == doc.end() || !wm->is_object()) {
    return Status::Corruption(file + ": no 'weight_map' object");
  }
  ShardedSafetensors out;
  out.index = index_path;
  out.declared_total_size = DeclaredTotal(doc);
  std::map<std::string, size_t> shard_of_name;  // shard file name → index in out.shards
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string()) {
      return Status::Corruption(file + ": weight_map entry '" + it.key() + "' is not a string");
    }
    const std::string shard = it.value().get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "..") {
      return Status::Corruption(file + ": weight_map entry '" + it.key() + "' names '" + shard +
                                "', not a file beside the index");
    }
    out.weight_map[it.key()] = shard;
    if (shard_of_name.count(shard)) continue;
    Result<SafetensorsFile> f = ReadSafetensorsHeader(index_path.parent_path() / shard);
    if (!f.ok()) {
      if (f.status().code() == StatusCode::kNotFound) {
        return Status::NotFound(file + ": shard '" + shard + "' (named for tensor '" + it.key() +
                                "') does not exist");
      }
      return f.status();
    }
    shard_of_name[shard] = out.shards.size();
    out.shards.push_back(std::move(f).value());
  }
  for (const auto& [tensor, shard] : out.weight_map) {
    if (out.shards[shard_of_name[shard]].Find(tensor) == nullptr) {
      return Status::Corruption(file + ": tensor '" + tensor + "' is mapped to '" + shard +
                                "' but that shard has no such tensor");
    }
  }
  for (const SafetensorsFile& s : out.shards) {
    out.tensor_bytes += s.tensor_bytes;
    out.parameter_elements += s.parameter_elements;
    for (const SafetensorsTensor& t : s.tensors) {
      if (!out.weight_map.count(t.name)) {
        out.notes.push_back(s.file.filename().string() + " holds tensor '" + t.name +
                            "' that the index does not map");
      }
    }
  }
  if (out.declared_total_size && *out.declared_total_size != out.tensor_bytes) {
    out.notes.push_back(index_path.filename().string() + ": metadata.total_size is " +
                        std::to_string(*out.declared_total_size) +
                        " but the shard headers add up to " + std::to_string(out.tensor_bytes) +
                        " tensor bytes (some writers store file sizes there)");
  }
  return out;
}

}  // namespace modelgrid::estimate
