// MemorySim: replays the allocations and frees of a graph walk against a
// model of the device allocator and records the peak (src/torch/graph_walk.cc
// drives it). No LibTorch here, so it is tested on its own.
//
// Storages are reference-counted by the walk's live values: a storage is
// freed when the last value referring to it dies (views share their base's
// storage, so the base lives while a view does). Weights are never counted;
// inputs and pinned storages are never freed.
//
// Allocator models (what one block costs):
//   CPU  — c10's CPU allocator: each block rounded up to 64 bytes, freed
//          memory goes back at once; the figure is the sum of live blocks.
//   CUDA — c10's caching allocator rounds each block up to 512 bytes
//          (../shared/reference/gpu_runtime.md); the figure is the sum of
//          live rounded blocks. Segment caching, fragmentation and library
//          workspaces (cuBLAS) are left to the estimator's allocator model
//          (src/estimate/allocator_model.h), which adds them on top.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "modelgrid/device.h"

namespace modelgrid {

class MemorySim {
 public:
  enum class Kind { kActivation, kWorkspace, kInput, kWeight };

  explicit MemorySim(DeviceKind device);

  // A new storage of `bytes` requested bytes, allocated now (weights are
  // recorded but not counted). Returns its id. It starts with no references:
  // call Ref for each value that holds it, or Sweep() frees it.
  int NewStorage(uint64_t bytes, Kind kind, std::string label = {});
  void Ref(int id);
  // Drops a reference; frees the storage when none is left (unless pinned).
  void Unref(int id);
  // Keeps a storage alive to the end (graph inputs and outputs).
  void Pin(int id);
  // Frees the storages created since the last Sweep that no value holds.
  void Sweep();

  // Scratch memory of one op (workspace): allocated and freed explicitly.
  int AllocTemp(uint64_t bytes, std::string label = {});
  void FreeTemp(int id);

  bool IsWeight(int id) const { return storages_[id].kind == Kind::kWeight; }
  uint64_t StorageBytes(int id) const { return storages_[id].bytes; }

  // What the device allocator holds for one block of `bytes`.
  uint64_t BlockBytes(uint64_t bytes) const;

  uint64_t weight_bytes() const { return weight_bytes_; }       // blocks of weights
  uint64_t current_bytes() const { return current_; }           // non-weight bytes held now
  uint64_t peak_bytes() const { return peak_; }                 // most non-weight bytes held
  uint64_t peak_activation_bytes() const { return peak_activation_; }  // at that peak
  uint64_t peak_workspace_bytes() const { return peak_workspace_; }    // at that peak
  // Development aid: one line per allocation and free ("+ bytes label").
  void EnableLog() { log_enabled_ = true; }
  const std::vector<std::string>& log() const { return log_; }
  void ClearLog() { log_.clear(); }

 private:
  struct Storage {
    uint64_t bytes = 0;
    Kind kind = Kind::kActivation;
    int refs = 0;
    bool pinned = false;
    bool live = false;
    std::string label;
  };
  void Allocate(Storage& s);
  void Release(Storage& s);
  void UpdatePeak();

  DeviceKind device_;
  std::vector<Storage> storages_;
  std::vector<int> fresh_;

  uint64_t weight_bytes_ = 0;
  uint64_t current_ = 0;
  uint64_t current_workspace_ = 0;
  uint64_t peak_ = 0;
  uint64_t peak_activation_ = 0;
  uint64_t peak_workspace_ = 0;
  bool log_enabled_ = false;
  std::vector<std::string> log_;
};

}  // namespace modelgrid
