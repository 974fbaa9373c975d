// SharedMemoryRegistry (modelgrid/ipc/shm_registry.h): POSIX shared memory
// objects opened by key and mapped with ipc::SharedMemory.
#include "modelgrid/ipc/shm_registry.h"

#include <fcntl.h>
#include <sys/mman.h>  // shm_open
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "modelgrid/ipc/shared_memory.h"
#include "modelgrid/ipc/unique_fd.h"

namespace modelgrid::ipc {

namespace {

std::string Quote(const std::string& s) { return "'" + s + "'"; }

}  // namespace

Status SharedMemoryRegistry::Register(const std::string& name, const std::string& key,
                                      uint64_t offset, uint64_t byte_size) {
  const std::string who = "shared memory region " + Quote(name);
  if (name.empty()) return Status::InvalidArgument("a shared memory region needs a name");
  if (key.empty()) return Status::InvalidArgument(who + ": empty key");
  if (byte_size == 0) return Status::InvalidArgument(who + ": byte_size must be at least 1");
  if (offset > UINT64_MAX - byte_size) {
    return Status::InvalidArgument(who + ": offset + byte_size overflows 64 bits");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (entries_.contains(name)) {
      return Status::AlreadyExists(who + " is already registered (unregister it first)");
    }
  }
  UniqueFd fd(::shm_open(key.c_str(), O_RDWR | O_CLOEXEC, 0));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ENOENT) {
      return Status::NotFound(who + ": no shared memory object has key " + Quote(key));
    }
    return Status::InvalidArgument(who + ": cannot open shared memory key " + Quote(key) + ": " +
                                   std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return Status::Internal(who + ": fstat of key " + Quote(key) + ": " + std::strerror(errno));
  }
  const uint64_t need = offset + byte_size;
  if (static_cast<uint64_t>(st.st_size) < need) {
    return Status::InvalidArgument(who + ": key " + Quote(key) + " holds " +
                                   std::to_string(st.st_size) + " bytes, fewer than offset " +
                                   std::to_string(offset) + " + byte_size " +
                                   std::to_string(byte_size));
  }
  auto memory = SharedMemory::MapFromFd(std::move(fd), need);
  if (!memory.ok()) return memory.status().WithPrefix(who + ": key " + Quote(key));
  auto mapping = std::make_shared<const SharedMemory>(std::move(memory).value());
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.contains(name)) {
    return Status::AlreadyExists(who + " is already registered (unregister it first)");
  }
  entries_[name] =
      Entry{SharedMemoryRegion{name, key, offset, byte_size}, next_id_++, std::move(mapping)};
  return Status::Ok();
}

Result<uint64_t> SharedMemoryRegistry::Unregister(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return Status::NotFound("shared memory region " + Quote(name) + " is not registered");
  }
  const uint64_t id = it->second.id;
  entries_.erase(it);
  return id;
}

std::vector<uint64_t> SharedMemoryRegistry::UnregisterAll() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> ids;
  for (const auto& [name, entry] : entries_) ids.push_back(entry.id);
  entries_.clear();
  return ids;
}

std::vector<SharedMemoryRegion> SharedMemoryRegistry::Regions() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SharedMemoryRegion> out;
  for (const auto& [name, entry] : entries_) out.push_back(entry.region);
  return out;
}

Result<SharedMemoryRegion> SharedMemoryRegistry::Region(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return Status::NotFound("shared memory region " + Quote(name) + " is not registered");
  }
  return it->second.region;
}

Result<std::shared_ptr<const SharedTensorBytes>> SharedMemoryRegistry::Slice(
    const std::string& name, uint64_t offset, uint64_t byte_size) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return Status::NotFound("shared memory region " + Quote(name) + " is not registered");
  }
  const Entry& e = it->second;
  if (offset > e.region.byte_size || byte_size > e.region.byte_size - offset) {
    return Status::InvalidArgument("shared memory region " + Quote(name) + ": offset " +
                                   std::to_string(offset) + " + byte_size " +
                                   std::to_string(byte_size) + " runs past its " +
                                   std::to_string(e.region.byte_size) + " bytes");
  }
  // The client may have shrunk the object since it registered it (ftruncate):
  // reading past its end would kill the reader with SIGBUS (the worker, or
  // this process in isolation none). Checked per request; a shrink during
  // the request itself is not caught (docs: the client must not do that).
  const uint64_t end = e.region.offset + offset + byte_size;
  struct stat st {};
  if (::fstat(e.mapping->fd(), &st) != 0) {
    return Status::Internal("shared memory region " + Quote(name) + ": fstat of key " +
                            Quote(e.region.key) + ": " + std::strerror(errno));
  }
  if (static_cast<uint64_t>(st.st_size) < end) {
    return Status::InvalidArgument(
        "shared memory region " + Quote(name) + ": its object " + Quote(e.region.key) +
        " shrank to " + std::to_string(st.st_size) + " bytes since it was registered; the "
        "request reads up to byte " + std::to_string(end) + " (register it again)");
  }
  auto slice = std::make_shared<SharedTensorBytes>();
  slice->region = name;
  slice->region_id = e.id;
  slice->fd = e.mapping->fd();
  slice->map_bytes = e.mapping->capacity();
  slice->offset = e.region.offset + offset;
  slice->bytes = std::string_view(reinterpret_cast<const char*>(e.mapping->data()) + slice->offset,
                                  byte_size);
  slice->keep = e.mapping;
  return std::shared_ptr<const SharedTensorBytes>(std::move(slice));
}

Status SharedMemoryRegistry::Write(const std::string& name, uint64_t offset,
                                   std::string_view data) const {
  MG_ASSIGN_OR_RETURN(auto slice, Slice(name, offset, data.size()));
  // The mapping is PROT_READ | PROT_WRITE (SharedMemory::MapFromFd); the
  // slice's view is const only because inputs are never written.
  if (!data.empty()) std::memcpy(const_cast<char*>(slice->bytes.data()), data.data(), data.size());
  return Status::Ok();
}

}  // namespace modelgrid::ipc
