#include "estimate/torchscript_archive.h"

#include <zip.h>

#include <array>
#include <fstream>
#include <map>
#include <memory>
#include <system_error>

#include "estimate/pickle_scanner.h"

namespace modelgrid::estimate {

namespace {

struct ElementSize {
  std::string_view scalar;
  uint64_t bytes;
};

// c10/core/ScalarType.h: element size of each scalar type, by the name used
// in `torch.<Name>Storage`.
constexpr std::array<ElementSize, 29> kElementSizes = {{
    {"Float", 4},
    {"Double", 8},
    {"Half", 2},
    {"BFloat16", 2},
    {"Long", 8},
    {"Int", 4},
    {"Short", 2},
    {"Char", 1},
    {"Byte", 1},
    {"Bool", 1},
    {"ComplexHalf", 4},
    {"ComplexFloat", 8},
    {"ComplexDouble", 16},
    {"QInt8", 1},
    {"QUInt8", 1},
    {"QInt32", 4},
    {"QUInt4x2", 1},
    {"QUInt2x4", 1},
    {"Float8_e5m2", 1},
    {"Float8_e4m3fn", 1},
    {"Float8_e5m2fnuz", 1},
    {"Float8_e4m3fnuz", 1},
    {"Float8_e8m0fnu", 1},
    {"UInt16", 2},
    {"UInt32", 4},
    {"UInt64", 8},
    {"Bits8", 1},
    {"Bits16", 2},
    {"Untyped", 1},  // torch.UntypedStorage counts bytes
}};

constexpr uint64_t kMaxPickleBytes = uint64_t{1} << 30;

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipCloser>;

Status Corrupt(const std::string& file, const std::string& what) {
  return Status::Corruption(file + ": " + what);
}

bool StartsWithZipMagic(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

Result<ZipPtr> OpenZip(const std::filesystem::path& path) {
  const std::string file = path.string();
  int err = 0;
  zip_t* z = zip_open(file.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (z != nullptr) return ZipPtr(z);
  zip_error_t ze;
  zip_error_init_with_code(&ze, err);
  const std::string why = zip_error_strerror(&ze);
  zip_error_fini(&ze);
  if (err == ZIP_ER_OPEN || err == ZIP_ER_NOENT)
    return Status::NotFound(file + ": cannot open: " + why);
  if (!StartsWithZipMagic(path)) return Corrupt(file, "not a zip archive (libzip: " + why + ")");
  return Corrupt(file, "truncated or corrupt zip archive (libzip: " + why + ")");
}

Result<std::string> ReadEntry(zip_t* z, zip_uint64_t index, uint64_t size, const std::string& file,
                              const std::string& name) {
  if (size > kMaxPickleBytes) {
    return Corrupt(file, name + " is " + std::to_string(size) + " bytes, more than the " +
                             std::to_string(kMaxPickleBytes) + " a pickle may have here");
  }
  zip_file_t* f = zip_fopen_index(z, index, 0);
  if (f == nullptr) return Corrupt(file, "cannot open " + name + ": " + zip_strerror(z));
  std::string out(size, '\0');
  uint64_t got = 0;
  while (got < size) {
    zip_int64_t n = zip_fread(f, out.data() + got, size - got);
    if (n <= 0) {
      std::string why = n < 0 ? zip_error_strerror(zip_file_get_error(f)) : "unexpected end";
      zip_fclose(f);
      return Corrupt(file, "cannot read " + name + ": " + why);
    }
    got += static_cast<uint64_t>(n);
  }
  // A short read is also detected by libzip's CRC check on close.
  if (zip_fclose(f) != 0) return Corrupt(file, "cannot read " + name + ": CRC or read error");
  return out;
}

struct Entry {
  zip_uint64_t index;
  uint64_t size;
};

// Lists the entries below the single top-level folder, keyed by their name
// below it ("data.pkl", "data/0", ...).
Status ListEntries(zip_t* z, TorchScriptArchive* a, std::map<std::string, Entry>* entries) {
  const std::string file = a->file.string();
  const zip_int64_t count = zip_get_num_entries(z, 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z, static_cast<zip_uint64_t>(i), 0, &st) != 0 ||
        !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE)) {
      return Corrupt(file, "cannot stat zip entry " + std::to_string(i));
    }
    const std::string name = st.name;
    const size_t slash = name.find('/');
    if (slash == std::string::npos || slash == 0) {
      return Corrupt(file, "entry '" + name + "' is not under a top-level folder");
    }
    const std::string root = name.substr(0, slash);
    if (a->root.empty()) a->root = root;
    if (root != a->root) {
      return Corrupt(file,
                     "entries under two top-level folders ('" + a->root + "' and '" + root + "')");
    }
    const std::string rel = name.substr(slash + 1);
    if (rel.empty() || rel.back() == '/') continue;  // a folder entry
    (*entries)[rel] = Entry{static_cast<zip_uint64_t>(i), st.size};
    if (rel.rfind("data/", 0) == 0) {
      a->data_bytes += st.size;
      a->record_sizes.push_back(st.size);
    } else if (rel.rfind("constants/", 0) == 0) {
      a->constants_bytes += st.size;
      a->record_sizes.push_back(st.size);
    } else {
      if (rel.rfind("code/", 0) == 0) a->code_files.push_back(rel);
      a->other_record_bytes += (st.size + 63) / 64 * 64;
    }
  }
  if (a->root.empty()) return Corrupt(file, "the zip archive is empty");
  return Status::Ok();
}

// Scans `pickle_name` and resolves each storage to its record under `dir`.
Status ReadStorages(zip_t* z, const std::map<std::string, Entry>& entries,
                    const std::string& pickle_name, const std::string& dir, TorchScriptArchive* a) {
  const std::string file = a->file.string();
  const Entry& e = entries.at(pickle_name);
  MG_ASSIGN_OR_RETURN(std::string bytes, ReadEntry(z, e.index, e.size, file, pickle_name));
  Result<std::vector<PickleStorageRef>> refs = ScanPickleStorages(bytes);
  if (!refs.ok()) return Corrupt(file, pickle_name + ": " + refs.status().message());
  for (const PickleStorageRef& r : refs.value()) {
    TorchScriptStorage s{
        dir + r.key, r.storage_type, r.location, r.numel, StorageElementSize(r.storage_type), 0};
    auto rec = entries.find(s.record);
    if (rec == entries.end()) {
      return Corrupt(file, pickle_name + " references storage '" + r.key +
                               "' but the archive has no record '" + a->root + "/" + s.record +
                               "'");
    }
    s.record_bytes = rec->second.size;
    if (s.element_size == 0) {
      a->notes.push_back(s.record + ": unknown storage type '" + s.storage_type + "'");
    } else if (s.record_bytes == 0 && s.numel > 0) {
      a->notes.push_back(s.record + ": empty record for " + std::to_string(s.numel) +
                         " elements (a meta tensor?)");
    } else if (uint64_t need = 0;
               __builtin_mul_overflow(s.numel, s.element_size, &need) || s.record_bytes < need) {
      return Corrupt(file, "record '" + s.record + "' has " + std::to_string(s.record_bytes) +
                               " bytes but its storage needs " + std::to_string(s.numel) + " × " +
                               std::to_string(s.element_size));
    }
    a->storages.push_back(std::move(s));
  }
  return Status::Ok();
}

}  // namespace

uint64_t StorageElementSize(std::string_view storage_type) {
  constexpr std::string_view kPrefix = "torch.";
  constexpr std::string_view kSuffix = "Storage";
  if (storage_type.substr(0, kPrefix.size()) != kPrefix) return 0;
  storage_type.remove_prefix(kPrefix.size());
  if (storage_type.size() <= kSuffix.size() ||
      storage_type.substr(storage_type.size() - kSuffix.size()) != kSuffix) {
    return 0;
  }
  storage_type.remove_suffix(kSuffix.size());
  for (const ElementSize& e : kElementSizes) {
    if (e.scalar == storage_type) return e.bytes;
  }
  return 0;
}

uint64_t TorchScriptArchive::storage_elements() const {
  uint64_t n = 0;
  for (const TorchScriptStorage& s : storages) n += s.numel;
  return n;
}

Result<TorchScriptArchive> ReadTorchScriptArchive(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Status::NotFound(file + ": no such file");
  if (std::filesystem::file_size(path, ec) == 0)
    return Corrupt(file, "not a zip archive (empty file)");
  MG_ASSIGN_OR_RETURN(ZipPtr z, OpenZip(path));
  TorchScriptArchive a;
  a.file = path;
  std::map<std::string, Entry> entries;
  MG_RETURN_IF_ERROR(ListEntries(z.get(), &a, &entries));
  if (!entries.count("data.pkl")) return Corrupt(file, "missing " + a.root + "/data.pkl");
  MG_RETURN_IF_ERROR(ReadStorages(z.get(), entries, "data.pkl", "data/", &a));
  if (entries.count("constants.pkl")) {
    MG_RETURN_IF_ERROR(ReadStorages(z.get(), entries, "constants.pkl", "constants/", &a));
  }
  return a;
}

}  // namespace modelgrid::estimate
