// OpenModel and ScanRepository: resolving folders of a model repository into
// ModelEntry values (layout in modelgrid/repository.h).

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
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

// The numeric value of a version folder's name; nullopt past uint64.
std::optional<uint64_t> VersionNumber(const std::string& v) {
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size()) return std::nullopt;
  return n;
}

// The numeric version folders holding model.pt, ascending by number.
std::vector<std::pair<uint64_t, std::string>> VersionFolders(const fs::path& dir) {
  std::vector<std::pair<uint64_t, std::string>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string v = e.path().filename().string();
    if (!e.is_directory() || !IsNumeric(v) || !fs::exists(e.path() / "model.pt")) continue;
    if (auto n = VersionNumber(v)) out.emplace_back(*n, v);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Picks the versions `policy` selects (ascending) into m.versions and the
// served one (the highest) into m.version. `where` names the policy's file.
Status SelectVersions(ModelEntry& m, const std::string& where) {
  const auto found = VersionFolders(m.dir);
  std::vector<std::string> selected;
  const VersionPolicy& p = m.version_policy;
  switch (p.kind) {
    case VersionPolicy::Kind::kLatest: {
      const size_t n = std::min<size_t>(found.size(), std::max<uint32_t>(1, p.num_versions));
      for (size_t i = found.size() - n; i < found.size(); ++i) selected.push_back(found[i].second);
      break;
    }
    case VersionPolicy::Kind::kAll:
      for (const auto& f : found) selected.push_back(f.second);
      break;
    case VersionPolicy::Kind::kSpecific:
      for (const auto& f : found) {
        if (std::find(p.versions.begin(), p.versions.end(), static_cast<int64_t>(f.first)) !=
            p.versions.end()) {
          selected.push_back(f.second);
        }
      }
      if (selected.empty() && !found.empty()) {
        std::string wanted, have;
        for (int64_t v : p.versions) wanted += (wanted.empty() ? "" : ", ") + std::to_string(v);
        for (const auto& f : found) have += (have.empty() ? "" : ", ") + f.second;
        return Status::InvalidArgument(
            where + ": field 'version_policy.specific': versions [" + wanted +
            "] have no version folder holding model.pt (found: " + have + ")");
      }
      break;
  }
  m.versions = selected;
  m.version = selected.empty() ? "" : selected.back();
  return Status::Ok();
}

// Reads config.pbtxt into `m` (config, policy, parameters, labels, warnings).
Status ReadTritonConfig(ModelEntry& m) {
  const fs::path file = *m.config_pbtxt;
  MG_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  MG_ASSIGN_OR_RETURN(TritonModelConfig t, ParseTritonModelConfig(text, file.string()));
  m.config = std::move(t.config);
  m.version_policy = t.version_policy;
  m.parameters = std::move(t.parameters);
  m.warnings = std::move(t.warnings);
  if (!t.name.empty() && t.name != m.name) {
    m.warnings.push_back(file.string() + ": field 'name': '" + t.name +
                         "' differs from the folder's name; the model is served as '" + m.name +
                         "'");
  }
  for (const auto& [output, label_file] : t.label_files) {
    const fs::path rel(label_file);
    const std::string field = file.string() + ": field 'output.label_filename' of output '" +
                              output + "': '" + label_file + "' ";
    if (rel.is_absolute() ||
        std::any_of(rel.begin(), rel.end(), [](const fs::path& part) { return part == ".."; })) {
      return Status::InvalidArgument(field + "must be a path inside the model folder");
    }
    std::ifstream in(m.dir / rel, std::ios::binary);
    if (!in) return Status::InvalidArgument(field + "cannot be opened in " + m.dir.string());
    std::vector<std::string> labels;
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      labels.push_back(line);
    }
    m.labels[output] = std::move(labels);
  }
  return Status::Ok();
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
  // config.pbtxt first, then config.yaml over it: the YAML wins where both
  // set a field (documented in src/repository/README.md).
  if (fs::exists(dir / "config.pbtxt")) {
    m.config_pbtxt = dir / "config.pbtxt";
    MG_RETURN_IF_ERROR(ReadTritonConfig(m));
  }
  if (fs::exists(dir / "config.yaml")) {
    m.config_yaml = dir / "config.yaml";
    MG_ASSIGN_OR_RETURN(std::string text, ReadFile(dir / "config.yaml"));
    MG_ASSIGN_OR_RETURN(m.config, ParseModelConfig(text, (dir / "config.yaml").string(), m.config));
  }
  MG_RETURN_IF_ERROR(SelectVersions(m, m.config_pbtxt ? m.config_pbtxt->string() : dir.string()));
  if (!m.version.empty()) m.torchscript = dir / m.version / "model.pt";
  if (fs::exists(dir / "config.json")) m.hf_config = dir / "config.json";
  MG_ASSIGN_OR_RETURN(m.safetensors, FindSafetensors(dir, m.safetensors_index));
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
  // A Hugging Face folder as Hugging Face writes it (no export, no
  // configuration of ours or Triton's) batches text requests: up to
  // kHuggingFaceDefaultMaxBatchSize rows, as the zoo's text models declare.
  if (!m.torchscript && !m.config_yaml && !m.config_pbtxt) {
    m.config.max_batch_size = kHuggingFaceDefaultMaxBatchSize;
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
      m->versions = {m->version};
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
      if (m.status().code() == StatusCode::kNotFound && !fs::exists(dir / "config.yaml")) {
        if (fs::exists(dir / "config.pbtxt")) {
          spdlog::warn("skipping '{}': {}", dir.filename().string(), m.status().message());
        }
        continue;
      }
      // A Triton repository's models of other backends (ONNX, Python, ...).
      if (m.status().code() == StatusCode::kUnsupported) {
        spdlog::warn("skipping '{}': {}", dir.filename().string(), m.status().message());
        continue;
      }
      return m.status();
    }
    for (const std::string& w : m->warnings) spdlog::warn("{}", w);
    models.push_back(std::move(m).value());
  }
  return models;
}

}  // namespace modelgrid
