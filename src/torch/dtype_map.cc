#include "torch/dtype_map.h"

#include <string>

namespace modelgrid {

Result<c10::ScalarType> ToScalarType(DataType type) {
  switch (type) {
    case DataType::kBool:
      return c10::kBool;
    case DataType::kUInt8:
      return c10::kByte;
    case DataType::kInt8:
      return c10::kChar;
    case DataType::kInt16:
      return c10::kShort;
    case DataType::kInt32:
      return c10::kInt;
    case DataType::kInt64:
      return c10::kLong;
    case DataType::kFP16:
      return c10::kHalf;
    case DataType::kBF16:
      return c10::kBFloat16;
    case DataType::kFP32:
      return c10::kFloat;
    case DataType::kFP64:
      return c10::kDouble;
    default:
      return Status::Unsupported("datatype " + std::string(DataTypeName(type)) +
                                 " has no LibTorch equivalent");
  }
}

Result<DataType> FromScalarType(c10::ScalarType type) {
  switch (type) {
    case c10::kBool:
      return DataType::kBool;
    case c10::kByte:
      return DataType::kUInt8;
    case c10::kChar:
      return DataType::kInt8;
    case c10::kShort:
      return DataType::kInt16;
    case c10::kInt:
      return DataType::kInt32;
    case c10::kLong:
      return DataType::kInt64;
    case c10::kHalf:
      return DataType::kFP16;
    case c10::kBFloat16:
      return DataType::kBF16;
    case c10::kFloat:
      return DataType::kFP32;
    case c10::kDouble:
      return DataType::kFP64;
    default:
      return Status::Unsupported(std::string("torch dtype ") + c10::toString(type) +
                                 " has no KServe datatype");
  }
}

}  // namespace modelgrid
