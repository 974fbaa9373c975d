// Weights of a Hugging Face folder, by their safetensors names: the files
// are memory-mapped read-only and tensors are handed out either as views of
// the mapping (torch::from_blob, no copy) or as converted copies.
//
// Headers are parsed and validated by the estimator's reader
// (estimate/safetensors.h: ReadSafetensorsHeader, ReadShardedSafetensors).
//
// Private to src/hf/: includes LibTorch.
#pragma once

#include <torch/script.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "estimate/safetensors.h"
#include "modelgrid/status.h"

namespace modelgrid::hf {

// One read-only mapping of a whole file. Unmapped when the last tensor
// viewing it (each holds a shared_ptr) and the WeightFiles are gone.
class MappedFile {
 public:
  static Result<std::shared_ptr<MappedFile>> Open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const char* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  MappedFile() = default;
  const char* data_ = nullptr;
  uint64_t size_ = 0;
};

// Where one tensor lies.
struct TensorLocation {
  const estimate::SafetensorsTensor* info = nullptr;
  const estimate::SafetensorsFile* file = nullptr;
  std::shared_ptr<MappedFile> mapping;
};

// All tensors of a folder: model.safetensors, or the shards of
// model.safetensors.index.json (the index wins when both are present).
class WeightFiles {
 public:
  // Errors: kNotFound when the folder has neither file; the header
  // reader's errors (kCorruption naming the file); kInternal when mmap fails.
  static Result<std::unique_ptr<WeightFiles>> Open(const std::filesystem::path& folder);

  // The file named in messages about missing tensors: the index, or the
  // single file.
  const std::string& source() const { return source_; }
  const TensorLocation* Find(const std::string& name) const;
  std::vector<std::string> Names() const;

 private:
  std::string source_;
  std::vector<estimate::SafetensorsFile> files_;
  std::map<std::string, TensorLocation> tensors_;
};

// How weights are placed.
struct WeightPlacement {
  c10::ScalarType dtype = c10::kFloat;  // the compute dtype
  c10::Device device{c10::kCPU};
};

// What binding the weights cost, bytes.
struct WeightBytes {
  uint64_t mapped = 0;     // tensors viewing the file mapping (page cache, not the allocator)
  uint64_t allocated = 0;  // converted or copied tensors (through LibTorch's allocator)
};

// Hands out the tensors a module expects, checking names and shapes, and
// remembers which ones it handed out. The first problem is kept (later
// calls return undefined tensors) so that module code reads as a list of
// weights; status() reports it.
class WeightBinder {
 public:
  WeightBinder(const WeightFiles& files, WeightPlacement placement)
      : files_(files), placement_(placement) {}

  // The tensor `name` with exactly `shape`, as placement's dtype on its
  // device. A view of the mapping when the file dtype is the compute dtype,
  // the device is the CPU and the data is aligned for the dtype; else a
  // converted copy (fp16/bf16 → fp32 on the CPU, everything onto CUDA).
  // Errors (kept), all kInvalidArgument but the dtype: "<source>: missing
  // tensor 'NAME' (expected shape [..])" (source: the index or the single
  // file); "<file>: tensor 'NAME': expected shape [..], got [..]" (file:
  // the one holding it); kUnsupported for a file dtype other than
  // F32/F16/BF16.
  torch::Tensor Get(const std::string& name, std::vector<int64_t> shape);
  // The same, but absent is fine (an undefined tensor, no error).
  torch::Tensor GetOptional(const std::string& name, std::vector<int64_t> shape);
  bool Has(const std::string& name) const { return files_.Find(name) != nullptr; }

  // After the module took its weights: kInvalidArgument naming the source
  // and the first few tensors neither taken nor `ignorable`.
  Status CheckAllUsed(const std::function<bool(const std::string&)>& ignorable) const;

  const Status& status() const { return status_; }
  const WeightBytes& bytes() const { return bytes_; }

 private:
  torch::Tensor Load(const std::string& name, const TensorLocation& loc,
                     const std::vector<int64_t>& shape);

  const WeightFiles& files_;
  WeightPlacement placement_;
  std::set<std::string> used_;
  Status status_;
  WeightBytes bytes_;
};

// "[2, 3]".
std::string ShapeText(c10::IntArrayRef shape);

}  // namespace modelgrid::hf
