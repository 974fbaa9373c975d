#include "estimate/safetensors.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

namespace modelgrid::estimate {

namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // formats.md, rule 1

struct DtypeBits {
  std::string_view name;
  uint32_t bits;
};

// formats.md, "Dtype sizes (bits)".
constexpr std::array<DtypeBits, 22> kDtypes = {{
    {"F4", 4},          {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"BOOL", 8},    {"U8", 8},
    {"I8", 8},          {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"F8_E4M3FNUZ", 8},
    {"F8_E5M2FNUZ", 8}, {"I16", 16},    {"U16", 16},    {"F16", 16},    {"BF16", 16},
    {"I32", 32},        {"U32", 32},    {"F32", 32},    {"C64", 64},    {"F64", 64},
    {"I64", 64},        {"U64", 64},
}};

Status Corrupt(const std::string& file, const std::string& what) {
  return Status::Corruption(file + ": " + what);
}

// Reads a JSON number that must be a non-negative integer.
std::optional<uint64_t> AsU64(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    if (i >= 0) return static_cast<uint64_t>(i);
  }
  return std::nullopt;
}

Result<SafetensorsTensor> ParseEntry(const std::string& name, const json& e,
                                     const std::string& file) {
  const std::string where = "tensor '" + name + "'";
  if (!e.is_object()) return Corrupt(file, where + " is not a JSON object");
  SafetensorsTensor t;
  t.name = name;
  auto dt = e.find("dtype");
  if (dt == e.end() || !dt->is_string()) return Corrupt(file, where + " has no string 'dtype'");
  t.dtype = dt->get<std::string>();
  std::optional<uint32_t> bits = SafetensorsDtypeBits(t.dtype);
  if (!bits) return Corrupt(file, where + " has unknown dtype '" + t.dtype + "'");
  auto sh = e.find("shape");
  if (sh == e.end() || !sh->is_array()) return Corrupt(file, where + " has no array 'shape'");
  t.numel = 1;
  for (const json& d : *sh) {
    std::optional<uint64_t> dim = AsU64(d);
    if (!dim) return Corrupt(file, where + " has a shape entry that is not a non-negative integer");
    t.shape.push_back(*dim);
    if (__builtin_mul_overflow(t.numel, *dim, &t.numel)) {
      return Corrupt(file, where + " has a shape whose element count overflows 64 bits");
    }
  }
  auto off = e.find("data_offsets");
  if (off == e.end() || !off->is_array() || off->size() != 2) {
    return Corrupt(file, where + " has no 'data_offsets' pair");
  }
  std::optional<uint64_t> b = AsU64((*off)[0]), en = AsU64((*off)[1]);
  if (!b || !en)
    return Corrupt(file, where + " has data_offsets that are not non-negative integers");
  if (*b > *en) {
    return Corrupt(file, where + " has data_offsets [" + std::to_string(*b) + ", " +
                             std::to_string(*en) + "] with begin > end");
  }
  t.begin = *b;
  t.end = *en;
  t.bytes = *en - *b;
  std::optional<uint64_t> expect = PackedBytes(t.numel, *bits);
  if (!expect || *expect != t.bytes) {
    return Corrupt(file, where + " holds " + std::to_string(t.bytes) + " bytes but " +
                             std::to_string(t.numel) + " elements of " + t.dtype + " need " +
                             (expect ? std::to_string(*expect) : std::string("more than 2^64")));
  }
  return t;
}

Status ParseMetadata(const json& m, const std::string& file,
                     std::map<std::string, std::string>* out) {
  if (!m.is_object()) return Corrupt(file, "'__metadata__' is not a JSON object");
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (!it.value().is_string()) {
      return Corrupt(file, "'__metadata__' entry '" + it.key() + "' is not a string");
    }
    (*out)[it.key()] = it.value().get<std::string>();
  }
  return Status::Ok();
}

// Offsets contiguous from 0 without gaps or overlaps once sorted, and the
// buffer ends exactly at the end of the file (formats.md, rule 3).
Status CheckLayout(SafetensorsFile* f) {
  std::sort(f->tensors.begin(), f->tensors.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  const std::string& file = f->file.string();
  const uint64_t buffer = f->file_bytes - 8 - f->header_bytes;
  uint64_t pos = 0;
  for (const SafetensorsTensor& t : f->tensors) {
    if (t.begin > pos) {
      return Corrupt(file, "gap: bytes [" + std::to_string(pos) + ", " + std::to_string(t.begin) +
                               ") before tensor '" + t.name + "' belong to no tensor");
    }
    if (t.begin < pos) {
      return Corrupt(file, "overlap: tensor '" + t.name + "' begins at " + std::to_string(t.begin) +
                               " but the previous tensor ends at " + std::to_string(pos));
    }
    if (t.end > buffer) {
      return Corrupt(file, "truncated: tensor '" + t.name + "' ends at byte " +
                               std::to_string(8 + f->header_bytes + t.end) + " but the file has " +
                               std::to_string(f->file_bytes));
    }
    pos = t.end;
    f->tensor_bytes += t.bytes;
    f->parameter_elements += t.numel;
  }
  if (pos != buffer) {
    return Corrupt(file, "the tensors end at byte " + std::to_string(8 + f->header_bytes + pos) +
                             " but the file has " + std::to_string(f->file_bytes) +
                             " bytes (trailing data)");
  }
  return Status::Ok();
}

}  // namespace

std::optional<uint32_t> SafetensorsDtypeBits(std::string_view dtype) {
  for (const DtypeBits& d : kDtypes) {
    if (d.name == dtype) return d.bits;
  }
  return std::nullopt;
}

std::optional<uint64_t> PackedBytes(uint64_t numel, uint32_t bits) {
  // numel = 8q + r, so ceil(numel × bits / 8) = q × bits + ceil(r × bits / 8),
  // which never forms the (possibly overflowing) product numel × bits.
  uint64_t whole = 0;
  if (__builtin_mul_overflow(numel / 8, static_cast<uint64_t>(bits), &whole)) return std::nullopt;
  const uint64_t rest = (numel % 8 * bits + 7) / 8;
  uint64_t sum = 0;
  if (__builtin_add_overflow(whole, rest, &sum)) return std::nullopt;
  return sum;
}

const SafetensorsTensor* SafetensorsFile::Find(std::string_view name) const {
  for (const SafetensorsTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<SafetensorsFile> ParseSafetensorsHeader(std::string_view header_json, uint64_t file_bytes,
                                               const std::string& file) {
  if (header_json.empty() || header_json.front() != '{') {
    return Corrupt(file, "header does not start with '{'");
  }
  if (file_bytes < 8 + header_json.size()) {
    return Corrupt(file, "truncated: the header ends at byte " +
                             std::to_string(8 + header_json.size()) + " but the file has " +
                             std::to_string(file_bytes));
  }
  json doc;
  try {
    doc = json::parse(header_json.begin(), header_json.end());
  } catch (const json::exception& e) {
    return Corrupt(file, std::string("header is not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) return Corrupt(file, "header is not a JSON object");
  SafetensorsFile f;
  f.file = file;
  f.header_bytes = header_json.size();
  f.file_bytes = file_bytes;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() == "__metadata__") {
      MG_RETURN_IF_ERROR(ParseMetadata(it.value(), file, &f.metadata));
      continue;
    }
    MG_ASSIGN_OR_RETURN(SafetensorsTensor t, ParseEntry(it.key(), it.value(), file));
    f.tensors.push_back(std::move(t));
  }
  MG_RETURN_IF_ERROR(CheckLayout(&f));
  return f;
}

Result<SafetensorsFile> ReadSafetensorsHeader(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::NotFound(file + ": no such file");
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return Corrupt(file, "cannot read its size: " + ec.message());
  if (size == 0) return Corrupt(file, "empty file");
  if (size < 8) {
    return Corrupt(file, "truncated: " + std::to_string(size) +
                             " bytes, shorter than the 8-byte header length");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(file + ": cannot open");
  unsigned char len[8];
  if (!in.read(reinterpret_cast<char*>(len), 8))
    return Corrupt(file, "cannot read the header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  if (n > kMaxHeaderBytes) {
    return Corrupt(
        file, "header length " + std::to_string(n) + " exceeds " + std::to_string(kMaxHeaderBytes));
  }
  if (n == 0) return Corrupt(file, "header length is 0");
  if (8 + n > size) {
    return Corrupt(file, "truncated: header length " + std::to_string(n) + " needs " +
                             std::to_string(8 + n) + " bytes but the file has " +
                             std::to_string(size));
  }
  std::string header(n, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(n))) {
    return Corrupt(file, "truncated while reading the header");
  }
  return ParseSafetensorsHeader(header, size, file);
}

}  // namespace modelgrid::estimate
