// Test-only helpers of the estimator's tests: a temporary folder, file
// writers, a safetensors writer, a pickle writer and a zip writer. They
// build fixtures byte by byte from the format descriptions in
// ../shared/reference/formats.md, independently of the code under test
// (their dtype table is their own).
#pragma once

#include <unistd.h>
#include <zip.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace modelgrid::estimate::testing {

// A fresh folder under the system temp dir, removed with its content on
// destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mg-estimate-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void WriteFile(const std::filesystem::path& p, const std::string& bytes) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Bits per element, written out here from formats.md, "Dtype sizes (bits)".
inline const std::map<std::string, uint32_t>& TestDtypeBits() {
  static const std::map<std::string, uint32_t> kBits = {
      {"F4", 4},          {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"BOOL", 8},    {"U8", 8},
      {"I8", 8},          {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"F8_E4M3FNUZ", 8},
      {"F8_E5M2FNUZ", 8}, {"I16", 16},    {"U16", 16},    {"F16", 16},    {"BF16", 16},
      {"I32", 32},        {"U32", 32},    {"F32", 32},    {"C64", 64},    {"F64", 64},
      {"I64", 64},        {"U64", 64}};
  return kBits;
}

// One tensor to write: bytes default to ceil(numel × bits / 8).
struct TensorSpecForFile {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
};

inline uint64_t ExpectedBytes(const std::string& dtype, const std::vector<uint64_t>& shape) {
  uint64_t numel = 1;
  for (uint64_t d : shape) numel *= d;
  const uint64_t bits = TestDtypeBits().at(dtype);
  return (numel * bits + 7) / 8;
}

// The whole file for a header JSON text: 8-byte LE length, header, `data_bytes` zero bytes.
inline std::string SafetensorsBytes(const std::string& header, uint64_t data_bytes) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + std::string(data_bytes, '\x5a');
}

// A valid safetensors file holding `tensors` laid out in `order` (indices
// into tensors; default: as given), header padded with spaces to 8 bytes.
inline std::string BuildSafetensors(const std::vector<TensorSpecForFile>& tensors,
                                    std::vector<size_t> order = {},
                                    const std::map<std::string, std::string>& metadata = {}) {
  if (order.empty()) {
    for (size_t i = 0; i < tensors.size(); ++i) order.push_back(i);
  }
  nlohmann::json h = nlohmann::json::object();
  uint64_t pos = 0;
  for (size_t i : order) {
    const TensorSpecForFile& t = tensors[i];
    const uint64_t b = ExpectedBytes(t.dtype, t.shape);
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {pos, pos + b}}};
    pos += b;
  }
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::string text = h.dump();
  while ((8 + text.size()) % 8 != 0) text += ' ';
  return SafetensorsBytes(text, pos);
}

// Writes a zip whose entries are stored uncompressed, in the given order.
// Returns false if libzip fails.
inline bool WriteZip(const std::filesystem::path& p,
                     const std::vector<std::pair<std::string, std::string>>& entries) {
  std::filesystem::create_directories(p.parent_path());
  int err = 0;
  zip_t* z = zip_open(p.string().c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (z == nullptr) return false;
  for (const auto& [name, bytes] : entries) {
    zip_source_t* src = zip_source_buffer(z, bytes.data(), bytes.size(), 0);
    zip_int64_t i = src ? zip_file_add(z, name.c_str(), src, ZIP_FL_OVERWRITE) : -1;
    if (i < 0) {
      if (src) zip_source_free(src);
      zip_discard(z);
      return false;
    }
    zip_set_file_compression(z, static_cast<zip_uint64_t>(i), ZIP_CM_STORE, 0);
  }
  return zip_close(z) == 0;
}

// Emits pickle opcodes (Python's pickle protocol 2 as torch.jit.save writes
// it; see Lib/pickletools.py for the opcode table).
class PickleWriter {
 public:
  PickleWriter& Proto(int v) { return Op('\x80').Byte(v); }
  PickleWriter& Global(const std::string& module, const std::string& name) {
    return Op('c').Raw(module + "\n" + name + "\n");
  }
  PickleWriter& Unicode(const std::string& s) { return Op('X').U32(s.size()).Raw(s); }
  PickleWriter& ShortUnicode(const std::string& s) { return Op('\x8c').Byte(s.size()).Raw(s); }
  PickleWriter& Int(int64_t v) {
    if (v >= 0 && v < 256) return Op('K').Byte(v);
    if (v >= 0 && v < 65536) return Op('M').Byte(v & 0xff).Byte(v >> 8);
    if (v >= INT32_MIN && v <= INT32_MAX) return Op('J').U32(static_cast<uint32_t>(v));
    Op('\x8a').Byte(8);
    for (int i = 0; i < 8; ++i) Byte((static_cast<uint64_t>(v) >> (8 * i)) & 0xff);
    return *this;
  }
  PickleWriter& Put(int k) { return Op('q').Byte(k); }
  PickleWriter& Get(int k) { return Op('h').Byte(k); }
  PickleWriter& Mark() { return Op('('); }
  PickleWriter& Tuple() { return Op('t'); }
  PickleWriter& EmptyTuple() { return Op(')'); }
  PickleWriter& EmptyDict() { return Op('}'); }
  PickleWriter& SetItems() { return Op('u'); }
  PickleWriter& BinPersId() { return Op('Q'); }
  PickleWriter& Reduce() { return Op('R'); }
  PickleWriter& NewObj() { return Op('\x81'); }
  PickleWriter& Build() { return Op('b'); }
  PickleWriter& NewFalse() { return Op('\x89'); }
  PickleWriter& Stop() { return Op('.'); }
  PickleWriter& Op(char c) {
    out_ += c;
    return *this;
  }
  PickleWriter& Byte(uint64_t b) {
    out_ += static_cast<char>(b & 0xff);
    return *this;
  }
  PickleWriter& U32(uint64_t v) {
    for (int i = 0; i < 4; ++i) Byte((v >> (8 * i)) & 0xff);
    return *this;
  }
  PickleWriter& Raw(const std::string& s) {
    out_ += s;
    return *this;
  }

  // One tensor as TorchScript's pickler writes it:
  // _rebuild_tensor_v2((persistent id), offset, size, stride, requires_grad, OrderedDict())
  // with the persistent id ("storage", torch.<type>, key, "cpu", numel).
  // `memo` tracks which globals were already memoized (BINPUT/BINGET).
  PickleWriter& Tensor(const std::string& storage_type, const std::string& key, uint64_t numel,
                       const std::vector<int64_t>& size, std::map<std::string, int>* memo) {
    Ref("torch._utils", "_rebuild_tensor_v2", memo);
    Mark();
    Mark().Unicode("storage");
    Ref("torch", storage_type, memo);
    Unicode(key).Unicode("cpu").Int(static_cast<int64_t>(numel)).Tuple().BinPersId();
    Int(0);
    Mark();
    for (int64_t d : size) Int(d);
    Tuple();
    Mark();
    int64_t stride = 1;
    std::vector<int64_t> strides(size.size());
    for (size_t i = size.size(); i-- > 0;) strides[i] = stride, stride *= size[i];
    for (int64_t s : strides) Int(s);
    Tuple();
    NewFalse();
    Ref("collections", "OrderedDict", memo);
    EmptyTuple().Reduce();
    Tuple().Reduce();
    return *this;
  }
  const std::string& bytes() const { return out_; }

 private:
  PickleWriter& Ref(const std::string& module, const std::string& name,
                    std::map<std::string, int>* memo) {
    const std::string key = module + "." + name;
    auto it = memo->find(key);
    if (it != memo->end()) return Get(it->second);
    const int slot = static_cast<int>(memo->size());
    (*memo)[key] = slot;
    return Global(module, name).Put(slot);
  }
  std::string out_;
};

}  // namespace modelgrid::estimate::testing
