#include "memory_sim.h"

#include <cassert>

#include "modelgrid/bytes.h"

namespace modelgrid {

namespace {

constexpr uint64_t kCpuAlignment = 64;       // c10/core/alignment.h
constexpr uint64_t kCudaRound = 512;         // CUDACachingAllocator kMinBlockSize

const char* KindName(MemorySim::Kind kind) {
  switch (kind) {
    case MemorySim::Kind::kActivation: return "act";
    case MemorySim::Kind::kWorkspace: return "ws";
    case MemorySim::Kind::kInput: return "input";
    case MemorySim::Kind::kWeight: return "weight";
  }
  return "?";
}

}  // namespace

MemorySim::MemorySim(DeviceKind device) : device_(device) {}

uint64_t MemorySim::BlockBytes(uint64_t bytes) const {
  if (bytes == 0) return 0;
  if (device_ == DeviceKind::kCpu) return RoundUp(bytes, kCpuAlignment);
  return RoundUp(bytes, kCudaRound);
}

int MemorySim::NewStorage(uint64_t bytes, Kind kind, std::string label) {
  const int id = static_cast<int>(storages_.size());
  storages_.push_back(Storage{bytes, kind, 0, false, false, std::move(label)});
  Allocate(storages_.back());
  if (kind != Kind::kWeight && kind != Kind::kInput) fresh_.push_back(id);
  if (kind == Kind::kInput) storages_.back().pinned = true;
  return id;
}

void MemorySim::Ref(int id) { ++storages_[id].refs; }

void MemorySim::Unref(int id) {
  Storage& s = storages_[id];
  assert(s.refs > 0);
  if (--s.refs == 0 && !s.pinned && s.live && s.kind != Kind::kWeight) Release(s);
}

void MemorySim::Pin(int id) { storages_[id].pinned = true; }

void MemorySim::Sweep() {
  for (int id : fresh_) {
    Storage& s = storages_[id];
    if (s.refs == 0 && !s.pinned && s.live) Release(s);
  }
  fresh_.clear();
}

int MemorySim::AllocTemp(uint64_t bytes, std::string label) {
  const int id = static_cast<int>(storages_.size());
  storages_.push_back(Storage{bytes, Kind::kWorkspace, 0, false, false, std::move(label)});
  Allocate(storages_.back());
  return id;
}

void MemorySim::FreeTemp(int id) {
  Storage& s = storages_[id];
  if (s.live) Release(s);
}

void MemorySim::Allocate(Storage& s) {
  s.live = true;
  const uint64_t block = BlockBytes(s.bytes);
  if (log_enabled_) log_.push_back("+ " + std::to_string(s.bytes) + " " + KindName(s.kind) + " " + s.label);
  if (s.kind == Kind::kWeight) {
    weight_bytes_ += block;
    return;
  }
  current_ += block;
  if (s.kind == Kind::kWorkspace) current_workspace_ += block;
  UpdatePeak();
}

void MemorySim::Release(Storage& s) {
  s.live = false;
  const uint64_t block = BlockBytes(s.bytes);
  if (log_enabled_) log_.push_back("- " + std::to_string(s.bytes) + " " + KindName(s.kind) + " " + s.label);
  current_ -= block;
  if (s.kind == Kind::kWorkspace) current_workspace_ -= block;
}

void MemorySim::UpdatePeak() {
  if (current_ > peak_) {
    peak_ = current_;
    peak_workspace_ = current_workspace_;
    peak_activation_ = current_ - current_workspace_;
  }
}

}  // namespace modelgrid
