// Reading a TorchScript .pt archive's weights without loading it.
//
// A .pt written by torch.jit.save is a ZIP (ZIP64) whose entries all sit
// under one top-level folder (formats.md, "TorchScript .pt";
// torch/csrc/jit/docs/serialization.md, caffe2/serialize/inline_container.h):
//   <archive>/data.pkl         the pickled module (pickle protocol 2)
//   <archive>/data/<key>       one raw record per tensor storage, once even if shared
//   <archive>/constants.pkl    pickled constants, with records under constants/<key>
//   <archive>/code/...         the TorchScript source
//   <archive>/version
// Weight bytes = the sizes of the data/* and constants/* records, from the
// zip's central directory; the dtype, location and element count of each
// storage come from the persistent ids in data.pkl (pickle_scanner.h).
// Only data.pkl and constants.pkl are read; the tensor records are not.
//
// Thread-safety: reentrant; each call opens its own libzip handle.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid::estimate {

// Bytes per element of a storage type named in a persistent id
// ("torch.FloatStorage" → 4, "torch.HalfStorage" → 2, "torch.BFloat16Storage"
// → 2, "torch.LongStorage" → 8, "torch.BoolStorage" → 1, …), or 0 for an
// unknown name. Source: c10/core/ScalarType.h element sizes; the storage
// class names are `<ScalarType name>Storage` (torch/csrc/jit/serialization/pickler.cpp).
uint64_t StorageElementSize(std::string_view storage_type);

// One tensor storage of the archive.
struct TorchScriptStorage {
  std::string record;         // entry name below the top-level folder, e.g. "data/0"
  std::string storage_type;   // e.g. "torch.FloatStorage"
  std::string location;       // e.g. "cpu"
  uint64_t numel = 0;         // elements, from the persistent id
  uint64_t element_size = 0;  // StorageElementSize(storage_type); 0 if unknown
  uint64_t record_bytes = 0;  // size of the record in the zip
};

// What a TorchScript archive holds, from its central directory and pickles.
struct TorchScriptArchive {
  std::filesystem::path file;
  std::string root;                          // the single top-level folder, without '/'
  uint64_t data_bytes = 0;                   // sum of data/* record sizes (weights and buffers)
  uint64_t constants_bytes = 0;              // sum of constants/* record sizes
  std::vector<uint64_t> record_sizes;        // every data/* and constants/* record, in zip order
  std::vector<TorchScriptStorage> storages;  // from data.pkl, then constants.pkl
  std::vector<std::string> code_files;       // entries under code/, below the root
  // Every other record (code/, data.pkl, constants.pkl, *.debug_pkl,
  // version, ...), each rounded up to c10's 64-byte CPU block: LibTorch's
  // loader reads these whole through the CPU allocator while the weights
  // are being created (caffe2/serialize/inline_container.cc getRecord), so
  // they bound what loading holds on top of the weights.
  uint64_t other_record_bytes = 0;
  std::vector<std::string> notes;            // oddities that are not errors

  // Bytes the archive's tensors take once loaded: data_bytes + constants_bytes.
  uint64_t weight_bytes() const { return data_bytes + constants_bytes; }
  // Sum of storages[i].numel (elements of all storages, parameters and buffers).
  uint64_t storage_elements() const;
};

// Opens the archive at `path` with libzip (never with LibTorch) and reads it.
// Errors (each message starts with the path): kNotFound if the file does not
// exist; kCorruption for "not a zip archive", a truncated or inconsistent
// zip, entries not under one top-level folder, a missing data.pkl, a pickle
// the scanner rejects, a storage named in a pickle whose record is absent,
// or a record smaller than numel × element size.
Result<TorchScriptArchive> ReadTorchScriptArchive(const std::filesystem::path& path);

}  // namespace modelgrid::estimate
