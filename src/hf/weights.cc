#include "hf/weights.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace modelgrid::hf {

std::string ShapeText(c10::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

Result<std::shared_ptr<MappedFile>> MappedFile::Open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::NotFound(path.string() + ": cannot open: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::Internal(path.string() + ": fstat failed: " + std::strerror(err));
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->size_ = static_cast<uint64_t>(st.st_size);
  if (file->size_ > 0) {
    // Read-only and private: a stray write faults instead of touching the file.
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return Status::Internal(path.string() + ": mmap failed: " + std::strerror(err));
    }
    file->data_ = static_cast<const char*>(p);
  }
  ::close(fd);  // the mapping keeps the file
  return file;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
}

Result<std::unique_ptr<WeightFiles>> WeightFiles::Open(const std::filesystem::path& folder) {
  auto out = std::unique_ptr<WeightFiles>(new WeightFiles());
  const std::filesystem::path index = folder / "model.safetensors.index.json";
  const std::filesystem::path single = folder / "model.safetensors";
  std::error_code ec;
  if (std::filesystem::exists(index, ec)) {
    MG_ASSIGN_OR_RETURN(estimate::ShardedSafetensors sharded,
                        estimate::ReadShardedSafetensors(index));
    out->source_ = index.string();
    out->files_ = std::move(sharded.shards);
    // Only the tensors the index maps, each from the shard it names.
    out->tensors_.clear();
    for (const auto& [name, shard] : sharded.weight_map) out->tensors_[name] = TensorLocation{};
    for (const auto& file : out->files_) {
      const std::string shard_name = file.file.filename().string();
      for (const auto& t : file.tensors) {
        auto it = sharded.weight_map.find(t.name);
        if (it != sharded.weight_map.end() && it->second == shard_name) {
          out->tensors_[t.name].info = &t;
          out->tensors_[t.name].file = &file;
        }
      }
    }
  } else if (std::filesystem::exists(single, ec)) {
    MG_ASSIGN_OR_RETURN(estimate::SafetensorsFile file, estimate::ReadSafetensorsHeader(single));
    out->source_ = single.string();
    out->files_.push_back(std::move(file));
    for (const auto& t : out->files_.back().tensors) {
      out->tensors_[t.name] = TensorLocation{&t, &out->files_.back(), nullptr};
    }
  } else {
    return Status::NotFound(folder.string() +
                            ": no model.safetensors or model.safetensors.index.json");
  }
  std::map<const estimate::SafetensorsFile*, std::shared_ptr<MappedFile>> maps;
  for (const auto& file : out->files_) {
    MG_ASSIGN_OR_RETURN(maps[&file], MappedFile::Open(file.file));
    if (maps[&file]->size() != file.file_bytes) {
      return Status::Corruption(file.file.string() + ": file changed size while being opened");
    }
  }
  for (auto& [name, loc] : out->tensors_) {
    if (loc.file == nullptr) {
      return Status::Corruption(out->source_ + ": tensor '" + name +
                                "' is not in the shard the weight_map names");
    }
    loc.mapping = maps[loc.file];
  }
  return out;
}

const TensorLocation* WeightFiles::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<std::string> WeightFiles::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, loc] : tensors_) names.push_back(name);
  return names;
}

namespace {

std::optional<c10::ScalarType> FileDtype(const std::string& dtype) {
  if (dtype == "F32") return c10::kFloat;
  if (dtype == "F16") return c10::kHalf;
  if (dtype == "BF16") return c10::kBFloat16;
  return std::nullopt;
}

}  // namespace

torch::Tensor WeightBinder::Load(const std::string& name, const TensorLocation& loc,
                                 const std::vector<int64_t>& shape) {
  const estimate::SafetensorsTensor& info = *loc.info;
  const std::string file = loc.file->file.string();
  std::vector<int64_t> got(info.shape.begin(), info.shape.end());
  if (got != shape) {
    status_ = Status::InvalidArgument(file + ": tensor '" + name + "': expected shape " +
                                      ShapeText(shape) + ", got " + ShapeText(got));
    return {};
  }
  const auto dtype = FileDtype(info.dtype);
  if (!dtype) {
    status_ = Status::Unsupported(file + ": tensor '" + name + "' has dtype " + info.dtype +
                                  " (supported: F32, F16, BF16)");
    return {};
  }
  const char* data = loc.mapping->data() + 8 + loc.file->header_bytes + info.begin;
  const bool aligned =
      reinterpret_cast<uintptr_t>(data) % static_cast<uintptr_t>(c10::elementSize(*dtype)) == 0;
  // The mapping is read-only: the tensor must never be written. It keeps the
  // mapping alive through its deleter.
  std::shared_ptr<MappedFile> keep = loc.mapping;
  torch::Tensor view = torch::from_blob(
      const_cast<char*>(data), shape, [keep](void*) mutable { keep.reset(); },
      torch::TensorOptions().dtype(*dtype));
  used_.insert(name);
  if (*dtype == placement_.dtype && placement_.device.is_cpu() && aligned) {
    bytes_.mapped += info.bytes;
    return view;
  }
  torch::Tensor copy = view.to(placement_.device, placement_.dtype, /*non_blocking=*/false,
                               /*copy=*/true);
  bytes_.allocated += static_cast<uint64_t>(copy.nbytes());
  return copy;
}

torch::Tensor WeightBinder::Get(const std::string& name, std::vector<int64_t> shape) {
  if (!status_.ok()) return {};
  const TensorLocation* loc = files_.Find(name);
  if (loc == nullptr) {
    status_ = Status::InvalidArgument(files_.source() + ": missing tensor '" + name +
                                      "' (expected shape " + ShapeText(shape) + ")");
    return {};
  }
  return Load(name, *loc, shape);
}

torch::Tensor WeightBinder::GetOptional(const std::string& name, std::vector<int64_t> shape) {
  if (!status_.ok()) return {};
  const TensorLocation* loc = files_.Find(name);
  if (loc == nullptr) return {};
  return Load(name, *loc, shape);
}

Status WeightBinder::CheckAllUsed(const std::function<bool(const std::string&)>& ignorable) const {
  std::vector<std::string> extra;
  for (const std::string& name : files_.Names()) {
    if (!used_.contains(name) && !ignorable(name)) extra.push_back(name);
  }
  if (extra.empty()) return Status::Ok();
  std::string list;
  for (size_t i = 0; i < extra.size() && i < 5; ++i) list += (i ? ", '" : "'") + extra[i] + "'";
  if (extra.size() > 5) list += " and " + std::to_string(extra.size() - 5) + " more";
  return Status::InvalidArgument(files_.source() + ": " + std::to_string(extra.size()) +
                                 " tensor(s) the model does not use: " + list +
                                 " (wrong architecture in config.json, or a checkpoint of a "
                                 "different model?)");
}

}  // namespace modelgrid::hf
