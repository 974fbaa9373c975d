#include "modelgrid/datatype.h"

#include <array>
#include <utility>

namespace modelgrid {

namespace {

struct Entry {
  DataType type;
  std::string_view name;
  uint64_t size;
};

constexpr std::array<Entry, 14> kTable = {{
    {DataType::kBool, "BOOL", 1},     {DataType::kUInt8, "UINT8", 1},
    {DataType::kUInt16, "UINT16", 2}, {DataType::kUInt32, "UINT32", 4},
    {DataType::kUInt64, "UINT64", 8}, {DataType::kInt8, "INT8", 1},
    {DataType::kInt16, "INT16", 2},   {DataType::kInt32, "INT32", 4},
    {DataType::kInt64, "INT64", 8},   {DataType::kFP16, "FP16", 2},
    {DataType::kBF16, "BF16", 2},     {DataType::kFP32, "FP32", 4},
    {DataType::kFP64, "FP64", 8},     {DataType::kBytes, "BYTES", 0},
}};

}  // namespace

std::string_view DataTypeName(DataType type) {
  for (const Entry& e : kTable) {
    if (e.type == type) return e.name;
  }
  return "UNKNOWN";
}

std::optional<DataType> ParseDataType(std::string_view name) {
  for (const Entry& e : kTable) {
    if (e.name == name) return e.type;
  }
  return std::nullopt;
}

uint64_t DataTypeSize(DataType type) {
  for (const Entry& e : kTable) {
    if (e.type == type) return e.size;
  }
  return 0;
}

}  // namespace modelgrid
