// Reading safetensors headers without reading tensor data.
//
// Format (huggingface/safetensors README and src/tensor.rs, summarized in
// ../shared/reference/formats.md, "safetensors"):
//   [8 bytes]  N, little-endian u64, the header size (readers reject N > 1e8)
//   [N bytes]  UTF-8 JSON object, first byte '{', maybe padded with spaces:
//              "name": {"dtype": "F16", "shape": [..], "data_offsets": [B, E]}
//              and an optional "__metadata__": {string: string}
//   [rest]     the tensor bytes; offsets are relative to byte 8 + N
// Rules checked: offsets contiguous without gaps or overlaps once sorted,
// starting at 0; each tensor's bytes = ceil(numel × dtype bits / 8); the last
// END + 8 + N == the file size.
//
// Thread-safety: the functions are reentrant; results are plain values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid::estimate {

// Bits per element of a safetensors dtype name ("F32" → 32, "F4" → 4,
// "F6_E2M3" → 6), or nullopt for a name safetensors does not define.
// Source: the dtype list of formats.md (safetensors src/tensor.rs `Dtype`).
std::optional<uint32_t> SafetensorsDtypeBits(std::string_view dtype);

// Bytes of `numel` elements of `bits` bits each: ceil(numel × bits / 8).
// Returns nullopt on 64-bit overflow.
std::optional<uint64_t> PackedBytes(uint64_t numel, uint32_t bits);

// One tensor entry of a safetensors header.
struct SafetensorsTensor {
  std::string name;
  std::string dtype;            // safetensors name, e.g. "F16", "BF16", "F8_E4M3"
  std::vector<uint64_t> shape;  // empty for a 0-rank (scalar) tensor
  uint64_t numel = 0;           // product of shape (1 for a scalar)
  uint64_t bytes = 0;           // END − BEGIN = ceil(numel × bits / 8)
  uint64_t begin = 0;           // data_offsets[0], relative to the byte buffer
  uint64_t end = 0;             // data_offsets[1], exclusive
};

// What one .safetensors file holds, from its header alone.
struct SafetensorsFile {
  std::filesystem::path file;
  uint64_t header_bytes = 0;                    // N
  uint64_t file_bytes = 0;                      // size of the file on disk
  std::vector<SafetensorsTensor> tensors;       // sorted by `begin`
  std::map<std::string, std::string> metadata;  // "__metadata__", if any
  uint64_t tensor_bytes = 0;        // sum of tensors[i].bytes (= file_bytes − 8 − N)
  uint64_t parameter_elements = 0;  // sum of tensors[i].numel

  // The tensor called `name`, or null.
  const SafetensorsTensor* Find(std::string_view name) const;
};

// Parses a safetensors header from memory. `header_json` is the N header
// bytes, `file_bytes` the total file size (for the END + 8 + N check) and
// `file` names the file in messages.
// Errors: kCorruption naming the file and the problem (bad JSON, header not
// starting with '{', unknown dtype, bad shape or offsets, size mismatch,
// gap or overlap, truncation).
Result<SafetensorsFile> ParseSafetensorsHeader(std::string_view header_json, uint64_t file_bytes,
                                               const std::string& file);

// Reads the header of the .safetensors file at `path` (only its first 8 + N
// bytes are read) and validates it as ParseSafetensorsHeader does.
// Errors: kNotFound if the file does not exist; kCorruption for an empty or
// truncated file, N > 100,000,000 ("model.safetensors: header length
// 123456789012 exceeds 100000000") and every ParseSafetensorsHeader error.
Result<SafetensorsFile> ReadSafetensorsHeader(const std::filesystem::path& path);

// A sharded checkpoint: model.safetensors.index.json plus its shards.
struct ShardedSafetensors {
  std::filesystem::path index;
  std::vector<SafetensorsFile> shards;            // in the order of their first mention
  std::map<std::string, std::string> weight_map;  // tensor → shard file name
  std::optional<uint64_t> declared_total_size;    // metadata.total_size, if any
  uint64_t tensor_bytes = 0;                      // recomputed from the shard headers
  uint64_t parameter_elements = 0;                // recomputed from the shard headers
  std::vector<std::string> notes;                 // cross-check remarks (not errors)
};

// Reads model.safetensors.index.json at `index_path`, opens every shard its
// weight_map names (relative to the index's folder) and checks that every
// tensor of the map is in the shard it names. metadata.total_size is compared
// with the recomputed tensor bytes; a mismatch is a note (some writers store
// file sizes there, formats.md). Tensors present in a shard but absent from
// the map are a note too.
// Errors: kNotFound for a missing index or shard (naming both);
// kCorruption for bad JSON, a weight_map that is not {string: string}, a
// tensor missing from its shard, or any shard header error.
Result<ShardedSafetensors> ReadShardedSafetensors(const std::filesystem::path& index_path);

}  // namespace modelgrid::estimate
