// Weight swap (weight_swap.h): collecting a module's weight storages, the
// swap file (CPU) and the pinned host copy (CUDA).
#include "torch/weight_swap.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_set>

namespace modelgrid::weight_swap {
namespace {

constexpr char kMagic[8] = {'M', 'G', 'S', 'W', 'A', 'P', '0', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kHeaderBytes = 48;
// Bound on an entry table read from disk (a corrupt count must not make the
// reader allocate gigabytes): far above any real model's.
constexpr uint64_t kMaxEntryTableBytes = uint64_t{256} << 20;

struct FileHeader {
  char magic[8];
  uint32_t version;
  uint32_t entries;
  uint64_t payload_bytes;
  uint64_t payload_hash;
  uint64_t table_bytes;
  uint64_t table_hash;
};
static_assert(sizeof(FileHeader) == kHeaderBytes);

std::string Errno() { return std::strerror(errno); }

// A descriptor closed on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status WriteAll(int fd, const void* data, uint64_t bytes, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(bytes, uint64_t{1} << 30));
    const ssize_t n = ::write(fd, p, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Unavailable("writing " + what + ": " + Errno());
    }
    p += n;
    bytes -= static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// Reads exactly `bytes` bytes; kCorruption when the file ends first.
Status ReadAll(int fd, void* data, uint64_t bytes, const std::string& what) {
  char* p = static_cast<char*>(data);
  while (bytes > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(bytes, uint64_t{1} << 30));
    const ssize_t n = ::read(fd, p, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Corruption("reading " + what + ": " + Errno());
    }
    if (n == 0) return Status::Corruption(what + " ends early (truncated)");
    p += n;
    bytes -= static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

template <typename T>
void Put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

template <typename T>
bool Get(const std::string& in, size_t& at, T* value) {
  if (in.size() - at < sizeof(T)) return false;
  std::memcpy(value, in.data() + at, sizeof(T));
  at += sizeof(T);
  return true;
}

std::string EntryTable(const std::vector<WeightStorage>& weights) {
  std::string table;
  for (const WeightStorage& w : weights) {
    Put<uint8_t>(table, static_cast<uint8_t>(w.dtype));
    Put<uint8_t>(table, 0);
    Put<uint16_t>(table, static_cast<uint16_t>(std::min<size_t>(w.name.size(), 0xffff)));
    Put<uint32_t>(table, static_cast<uint32_t>(w.shape.size()));
    Put<uint64_t>(table, w.nbytes);
    for (int64_t d : w.shape) Put<int64_t>(table, d);
    table.append(w.name.data(), std::min<size_t>(w.name.size(), 0xffff));
  }
  return table;
}

// Checks the decoded entry table against the storages held in memory.
Status CheckEntries(const std::string& table, const std::vector<WeightStorage>& weights,
                    const std::string& file) {
  size_t at = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const WeightStorage& w = weights[i];
    const std::string where = file + ": entry " + std::to_string(i);
    uint8_t dtype = 0, pad = 0;
    uint16_t name_bytes = 0;
    uint32_t rank = 0;
    uint64_t nbytes = 0;
    if (!Get(table, at, &dtype) || !Get(table, at, &pad) || !Get(table, at, &name_bytes) ||
        !Get(table, at, &rank) || !Get(table, at, &nbytes)) {
      return Status::Corruption(where + " is cut short");
    }
    std::vector<int64_t> shape(rank);
    for (uint32_t d = 0; d < rank; ++d) {
      if (!Get(table, at, &shape[d])) return Status::Corruption(where + " is cut short");
    }
    if (table.size() - at < name_bytes) return Status::Corruption(where + " is cut short");
    const std::string name = table.substr(at, name_bytes);
    at += name_bytes;
    if (dtype != static_cast<uint8_t>(w.dtype) || nbytes != w.nbytes || shape != w.shape ||
        name != w.name.substr(0, 0xffff)) {
      return Status::Corruption(where + " ('" + name + "', " + std::to_string(nbytes) +
                                " bytes) does not match the model's tensor '" + w.name + "' (" +
                                std::to_string(w.nbytes) + " bytes)");
    }
  }
  if (at != table.size()) return Status::Corruption(file + ": entry table has trailing bytes");
  return Status::Ok();
}

// A fresh block of `nbytes` on `device` from c10's allocator for it (on the
// CPU the counting allocator, charging the calling thread's counters; on
// CUDA the caching allocator, under its cap).
c10::DataPtr AllocateBlock(const c10::Device& device, uint64_t nbytes) {
  at::Tensor t = at::empty({static_cast<int64_t>(nbytes)},
                           at::TensorOptions().dtype(at::kByte).device(device));
  return t.storage().unsafeGetStorageImpl()->set_data_ptr(c10::DataPtr(nullptr, device));
}

std::string Hex(uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

std::vector<WeightStorage> CollectWeights(const torch::jit::Module& module,
                                          const c10::Device& device) {
  std::vector<WeightStorage> out;
  std::unordered_set<const c10::StorageImpl*> seen;
  auto add = [&](const at::Tensor& t, const std::string& name) {
    if (!t.defined() || !t.has_storage()) return;
    c10::StorageImpl* impl = t.storage().unsafeGetStorageImpl();
    if (impl == nullptr || impl->nbytes() == 0 || impl->data_ptr().get() == nullptr) return;
    if (impl->data_ptr().device() != device) return;
    if (!seen.insert(impl).second) return;
    WeightStorage w;
    w.storage = t.storage();
    w.device = device;
    w.nbytes = impl->nbytes();
    w.name = name;
    w.dtype = t.scalar_type();
    w.shape = t.sizes().vec();
    out.push_back(std::move(w));
  };
  for (const auto& attr : module.named_attributes(/*recurse=*/true)) {
    if (attr.value.isTensor()) {
      add(attr.value.toTensor(), attr.name);
    } else if (attr.value.isTensorList()) {
      const auto list = attr.value.toTensorList();
      for (size_t i = 0; i < list.size(); ++i) {
        add(list.get(i), attr.name + "[" + std::to_string(i) + "]");
      }
    }
  }
  return out;
}

uint64_t TotalBytes(const std::vector<WeightStorage>& weights) {
  uint64_t total = 0;
  for (const WeightStorage& w : weights) total += w.nbytes;
  return total;
}

void ReleaseAll(std::vector<WeightStorage>& weights) {
  for (WeightStorage& w : weights)
    w.storage.unsafeGetStorageImpl()->set_data_ptr_noswap(c10::DataPtr(nullptr, w.device));
}

Status WriteSwapFile(const std::filesystem::path& path, const std::vector<WeightStorage>& weights) {
  const std::string tmp = path.string() + ".tmp";
  const std::string what = "swap file '" + tmp + "'";
  Fd fd;
  fd.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd.fd < 0) return Status::Unavailable("creating " + what + ": " + Errno());
  const std::string table = EntryTable(weights);
  FileHeader header{};
  std::memcpy(header.magic, kMagic, sizeof(kMagic));
  header.version = kVersion;
  header.entries = static_cast<uint32_t>(weights.size());
  header.payload_bytes = TotalBytes(weights);
  header.table_bytes = table.size();
  header.table_hash = XXH64(table.data(), table.size(), 0);
  // The payload's hash is known once it is written: the header goes last.
  Status s = [&]() -> Status {
    if (::lseek(fd.fd, static_cast<off_t>(kHeaderBytes), SEEK_SET) < 0) {
      return Status::Unavailable("seeking in " + what + ": " + Errno());
    }
    MG_RETURN_IF_ERROR(WriteAll(fd.fd, table.data(), table.size(), what));
    XXH64_state_t* state = XXH64_createState();
    XXH64_reset(state, 0);
    for (const WeightStorage& w : weights) {
      const void* data = w.storage.unsafeGetStorageImpl()->data_ptr().get();
      XXH64_update(state, data, w.nbytes);
      Status written = WriteAll(fd.fd, data, w.nbytes, what);
      if (!written.ok()) {
        XXH64_freeState(state);
        return written;
      }
    }
    header.payload_hash = XXH64_digest(state);
    XXH64_freeState(state);
    if (::pwrite(fd.fd, &header, sizeof(header), 0) != static_cast<ssize_t>(sizeof(header))) {
      return Status::Unavailable("writing the header of " + what + ": " + Errno());
    }
    if (::close(fd.fd) != 0) {
      fd.fd = -1;
      return Status::Unavailable("closing " + what + ": " + Errno());
    }
    fd.fd = -1;
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      return Status::Unavailable("renaming " + what + " to '" + path.string() + "': " + Errno());
    }
    return Status::Ok();
  }();
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

Status ReadSwapFile(const std::filesystem::path& path, std::vector<WeightStorage>& weights) {
  const std::string file = "swap file '" + path.string() + "'";
  Fd fd;
  fd.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd.fd < 0) {
    if (errno == ENOENT) return Status::NotFound(file + " is missing");
    return Status::Corruption("opening " + file + ": " + Errno());
  }
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) return Status::Corruption("stat of " + file + ": " + Errno());
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < kHeaderBytes) {
    return Status::Corruption(file + " is truncated: " + std::to_string(size) +
                              " bytes, shorter than its header");
  }
  FileHeader header{};
  MG_RETURN_IF_ERROR(ReadAll(fd.fd, &header, sizeof(header), file));
  if (std::memcmp(header.magic, kMagic, sizeof(kMagic)) != 0) {
    return Status::Corruption(file + " does not start with the swap magic 'MGSWAP01'");
  }
  if (header.version != kVersion) {
    return Status::Corruption(file + " has version " + std::to_string(header.version) +
                              ", this worker reads " + std::to_string(kVersion));
  }
  if (header.entries != weights.size()) {
    return Status::Corruption(file + " holds " + std::to_string(header.entries) +
                              " tensors, the model " + std::to_string(weights.size()));
  }
  const uint64_t payload = TotalBytes(weights);
  if (header.payload_bytes != payload) {
    return Status::Corruption(file + " holds " + std::to_string(header.payload_bytes) +
                              " payload bytes, the model's weights are " + std::to_string(payload));
  }
  if (header.table_bytes > kMaxEntryTableBytes ||
      size != kHeaderBytes + header.table_bytes + header.payload_bytes) {
    return Status::Corruption(
        file + " is " + std::to_string(size) + " bytes, its header says " +
        std::to_string(kHeaderBytes + header.table_bytes + header.payload_bytes));
  }
  std::string table(header.table_bytes, '\0');
  MG_RETURN_IF_ERROR(ReadAll(fd.fd, table.data(), table.size(), file));
  if (XXH64(table.data(), table.size(), 0) != header.table_hash) {
    return Status::Corruption(file + ": the entry table's hash does not match");
  }
  MG_RETURN_IF_ERROR(CheckEntries(table, weights, file));

  std::vector<c10::DataPtr> blocks;
  blocks.reserve(weights.size());
  XXH64_state_t* state = XXH64_createState();
  XXH64_reset(state, 0);
  Status read = Status::Ok();
  try {
    for (const WeightStorage& w : weights) {
      blocks.push_back(AllocateBlock(w.device, w.nbytes));
      read = ReadAll(fd.fd, blocks.back().get(), w.nbytes, file);
      if (!read.ok()) break;
      XXH64_update(state, blocks.back().get(), w.nbytes);
    }
  } catch (...) {
    XXH64_freeState(state);
    throw;  // the blocks read so far are freed with `blocks`
  }
  const uint64_t hash = XXH64_digest(state);
  XXH64_freeState(state);
  MG_RETURN_IF_ERROR(read);
  if (hash != header.payload_hash) {
    return Status::Corruption(file + ": payload hash " + Hex(hash) +
                              " does not match the header's " + Hex(header.payload_hash) +
                              " (the weights were altered)");
  }
  for (size_t i = 0; i < weights.size(); ++i) {
    weights[i].storage.unsafeGetStorageImpl()->set_data_ptr_noswap(std::move(blocks[i]));
  }
  return Status::Ok();
}

Result<PinnedCopy> CopyToPinned(const std::vector<WeightStorage>& weights) {
  PinnedCopy copy;
  const uint64_t total = TotalBytes(weights);
  MG_ASSIGN_OR_RETURN(copy.buffer, PinnedBuffer::Allocate(total));
  uint64_t at = 0;
  std::vector<int> devices;
  Status queued = Status::Ok();
  for (const WeightStorage& w : weights) {
    copy.offsets.push_back(at);
    const int index = w.device.index() < 0 ? 0 : w.device.index();
    if (std::find(devices.begin(), devices.end(), index) == devices.end()) devices.push_back(index);
    queued = CopyDeviceToHostAsync(index, static_cast<char*>(copy.buffer->data()) + at,
                                   w.storage.unsafeGetStorageImpl()->data_ptr().get(), w.nbytes);
    if (!queued.ok()) break;
    at += w.nbytes;
  }
  // The copies queued so far must land before the buffer may be freed.
  Status synced = Status::Ok();
  for (int index : devices) {
    Status s = SynchronizeCudaStream(index);
    if (synced.ok()) synced = s;
  }
  MG_RETURN_IF_ERROR(queued);
  MG_RETURN_IF_ERROR(synced);
  return copy;
}

Status RestoreFromPinned(std::vector<WeightStorage>& weights, const PinnedCopy& copy) {
  if (copy.offsets.size() != weights.size() || !copy.buffer) {
    return Status::Internal("the pinned copy does not match the model's weights");
  }
  std::vector<c10::DataPtr> blocks;
  blocks.reserve(weights.size());
  std::vector<int> devices;
  for (size_t i = 0; i < weights.size(); ++i) {
    const WeightStorage& w = weights[i];
    const int index = w.device.index() < 0 ? 0 : w.device.index();
    blocks.push_back(AllocateBlock(w.device, w.nbytes));
    MG_RETURN_IF_ERROR(CopyHostToDeviceAsync(
        index, blocks.back().get(), static_cast<const char*>(copy.buffer->data()) + copy.offsets[i],
        w.nbytes));
    if (std::find(devices.begin(), devices.end(), index) == devices.end()) devices.push_back(index);
  }
  // Every copy must land before the blocks are used (or freed on an error).
  Status synced = Status::Ok();
  for (int index : devices) {
    Status s = SynchronizeCudaStream(index);
    if (synced.ok()) synced = s;
  }
  MG_RETURN_IF_ERROR(synced);
  for (size_t i = 0; i < weights.size(); ++i) {
    weights[i].storage.unsafeGetStorageImpl()->set_data_ptr_noswap(std::move(blocks[i]));
  }
  return Status::Ok();
}

}  // namespace modelgrid::weight_swap
