// OpenModel and ScanRepository: resolving folders of a model repository into
// ModelEntry values (layout in modelgrid/repository.h).

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "modelgrid/repository.h"

namespace modelgrid {

namespace fs = std::filesystem;

namespace {

bool IsNumeric(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Result<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path.string() + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The highest numeric version folder holding model.pt, or "" if none.
std::string LatestVersion(const fs::path& dir) {
  std::string best;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string v = e.path().filename().string();
    if (!e.is_directory() || !IsNumeric(v) || !fs::exists(e.path() / "model.pt")) continue;
    if (best.empty() || std::stoull(v) > std::stoull(best)) best = v;
  }
  return best;
}

// The safetensors files of a folder: the shards named by
// model.safetensors.index.json, else model.safetensors, else every *.safetensors.
Result<std::vector<fs::path>> FindSafetensors(const fs::path& dir, std::optional<fs::path>& index) {
  std::vector<fs::path> files;
  const fs::path index_path = dir / "model.safetensors.index.json";
  if (fs::exists(index_path)) {
    index = index_path;
    MG_ASSIGN_OR_RETURN(std::string text, ReadFile(index_path));
    std::set<std::string> shards;
    try {
      const auto json = nlohmann::json::parse(text);
      if (!json.contains("weight_map") || !json["weight_map"].is_object()) {
        return Status::Corruption(index_path.string() + ": field 'weight_map' is missing or not an object");
      }
      for (const auto& [tensor, shard] : json["weight_map"].items()) {
        if (!shard.is_string()) {
          return Status::Corruption(index_path.string() + ": weight_map['" + tensor + "'] is not a file name");
        }
        shards.insert(shard.get<std::string>());
      }
    } catch (const nlohmann::json::exception& e) {
      return Status::Corruption(index_path.string() + ": not valid JSON: " + e.what());
    }
    for (const auto& s : shards) {
      if (s.find('/') != std::string::npos) {
        return Status::Corruption(index_path.string() + ": shard name '" + s + "' must be a plain file name");
      }
      files.push_back(dir / s);
    }
    return files;
  }
  if (fs::exists(dir / "model.safetensors")) return std::vector<fs::path>{dir / "model.safetensors"};
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".safetensors") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

Result<ModelEntry> OpenModelDir(const fs::path& dir, const std::string& name) {
  ModelEntry m;
  m.name = name;
  m.dir = dir;
  m.version = LatestVersion(dir);
  if (!m.version.empty()) m.torchscript = dir / m.version / "model.pt";
  if (fs::exists(dir / "config.json")) m.hf_config = dir / "config.json";
  MG_ASSIGN_OR_RETURN(m.safetensors, FindSafetensors(dir, m.safetensors_index));
  if (fs::exists(dir / "config.yaml")) {
    MG_ASSIGN_OR_RETURN(std::string text, ReadFile(dir / "config.yaml"));
    MG_ASSIGN_OR_RETURN(m.config, ParseModelConfig(text, (dir / "config.yaml").string()));
  }
  if (!m.torchscript && m.safetensors.empty()) {
    return Status::NotFound("model '" + name + "' (" + dir.string() +
                            "): no model files (expected <version>/model.pt or *.safetensors)");
  }
  if (m.hf_config && !m.safetensors.empty()) {
    m.format = ModelFormat::kHuggingFace;
  } else if (m.torchscript) {
    m.format = ModelFormat::kTorchScript;
  } else {
    return Status::NotFound("model '" + name + "' (" + dir.string() +
                            "): safetensors weights without a config.json");
  }
  if (m.config.platform.empty()) {
    m.config.platform = m.format == ModelFormat::kHuggingFace ? "huggingface" : "pytorch_torchscript";
  }
  return m;
}

}  // namespace

Result<ModelEntry> OpenModel(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::NotFound(path.string() + ": no such file or directory");
  if (fs::is_directory(path, ec)) {
    const fs::path dir = fs::absolute(path).lexically_normal();
    std::string name = dir.filename().string();
    if (name.empty()) name = dir.parent_path().filename().string();
    return OpenModelDir(dir, name);
  }
  const fs::path file = fs::absolute(path).lexically_normal();
  const fs::path parent = file.parent_path();
  // <model>/<version>/model.pt or <model>/*.safetensors: the model is the folder.
  if (file.extension() == ".pt" && IsNumeric(parent.filename().string())) {
    auto m = OpenModelDir(parent.parent_path(), parent.parent_path().filename().string());
    if (m.ok()) {
      m->version = parent.filename().string();
      m->torchscript = file;
    }
    return m;
  }
  if (file.extension() == ".safetensors") {
    return OpenModelDir(parent, parent.filename().string());
  }
  if (file.extension() == ".pt") {
    ModelEntry m;
    m.name = file.stem().string();
    m.dir = parent;
    m.torchscript = file;
    m.config.platform = "pytorch_torchscript";
    return m;
  }
  return Status::InvalidArgument(path.string() +
                                 ": not a model (expected a model folder, a .pt or a .safetensors file)");
}

Result<std::vector<ModelEntry>> ScanRepository(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return Status::NotFound("model repository '" + root.string() + "' is not a directory");
  }
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (e.is_directory() && e.path().filename().string().rfind('.', 0) != 0) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  std::vector<ModelEntry> models;
  for (const auto& dir : dirs) {
    auto m = OpenModelDir(fs::absolute(dir).lexically_normal(), dir.filename().string());
    if (!m.ok()) {
      if (m.status().code() == StatusCode::kNotFound && !fs::exists(dir / "config.yaml")) continue;
      return m.status();
    }
    models.push_back(std::move(m).value());
  }
  return models;
}

}  // namespace modelgrid
