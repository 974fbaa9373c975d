// Tensor element types, named as in the KServe v2 protocol
// (../shared/reference/kserve_v2.md, "Datatypes") and safetensors.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace modelgrid {

enum class DataType {
  kBool, kUInt8, kUInt16, kUInt32, kUInt64, kInt8, kInt16, kInt32, kInt64,
  kFP16, kBF16, kFP32, kFP64, kBytes,
};

// The KServe v2 name: "BOOL", "UINT8", ..., "FP32", "BF16", "BYTES".
std::string_view DataTypeName(DataType type);

// Parses a KServe v2 name (case-sensitive, as the protocol spells it).
std::optional<DataType> ParseDataType(std::string_view name);

// Bytes per element; 0 for kBytes (variable length).
uint64_t DataTypeSize(DataType type);

}  // namespace modelgrid
