#include "kserve/tensor_json.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>
#include <type_traits>
#include <vector>

#include "kserve/json_text.h"
#include "modelgrid/kserve/half.h"

namespace modelgrid::kserve_internal {

namespace {

using nlohmann::json;

// Leaves of `data` in row-major order. ParseJson bounds the nesting depth.
void Flatten(const json& data, std::vector<const json*>* leaves) {
  if (!data.is_array()) {
    leaves->push_back(&data);
    return;
  }
  for (const json& item : data) Flatten(item, leaves);
}

// Whether `v` is a NaN or an infinity (ParseInferJson makes them from the
// tokens NaN, Infinity and -Infinity).
bool IsNonFinite(const json& v) { return v.is_number_float() && !std::isfinite(v.get<double>()); }

std::string Show(const json& v) {
  if (IsNonFinite(v)) {
    const double d = v.get<double>();
    return std::isnan(d) ? "NaN" : (d < 0 ? "-Infinity" : "Infinity");
  }
  std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

std::string At(size_t index) { return " (element " + std::to_string(index) + ")"; }

template <typename T>
void AppendRaw(std::string* out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out->append(bytes, sizeof(T));
}

template <typename T>
T ReadRaw(const std::string& data, size_t index) {
  T value;
  std::memcpy(&value, data.data() + index * sizeof(T), sizeof(T));
  return value;
}

template <typename T>
Status PutInteger(const json& v, size_t index, DataType type, std::string* out) {
  const std::string name(DataTypeName(type));
  bool in_range = false;
  if (v.is_number_unsigned()) {
    in_range = v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
  } else if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    in_range =
        i >= 0 ? static_cast<uint64_t>(i) <= std::numeric_limits<T>::max()
               : std::is_signed_v<T> && i >= static_cast<int64_t>(std::numeric_limits<T>::min());
  } else if (IsNonFinite(v)) {
    return Status::InvalidArgument("element " + std::to_string(index) + " is " + Show(v) + ", " +
                                   name + " needs an integer");
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::trunc(d) != d) {
      return Status::InvalidArgument("value " + Show(v) + " is not an integer as " + name +
                                     " needs" + At(index));
    }
    if (d < static_cast<double>(std::numeric_limits<T>::min()) ||
        d > static_cast<double>(std::numeric_limits<T>::max())) {
      return Status::InvalidArgument("value " + Show(v) + " out of range for " + name + At(index));
    }
    return Status::InvalidArgument("value " + Show(v) + " is written as a float, " + name +
                                   " needs an integer" + At(index));
  } else {
    return Status::InvalidArgument("element " + std::to_string(index) + " is " + Show(v) + ", " +
                                   name + " needs an integer");
  }
  if (!in_range) {
    return Status::InvalidArgument("value " + Show(v) + " out of range for " + name + At(index));
  }
  AppendRaw<T>(out, static_cast<T>(v.is_number_unsigned() ? static_cast<T>(v.get<uint64_t>())
                                                          : static_cast<T>(v.get<int64_t>())));
  return Status::Ok();
}

Status PutFloat(const json& v, size_t index, DataType type, std::string* out) {
  const std::string name(DataTypeName(type));
  if (!v.is_number()) {
    std::string hint =
        v.is_null() ? " (write non-finite values as NaN, Infinity or -Infinity)" : "";
    return Status::InvalidArgument("element " + std::to_string(index) + " is " + Show(v) + ", " +
                                   name + " needs a number" + hint);
  }
  const double d = v.get<double>();
  // NaN and the infinities (the tokens NaN, Infinity, -Infinity) convert to
  // the type's quiet NaN / infinities; only finite values can overflow.
  const bool finite = std::isfinite(d);
  bool overflow = false;
  switch (type) {
    case DataType::kFP64:
      AppendRaw<double>(out, d);
      break;
    case DataType::kFP32: {
      // Magnitudes from FLT_MAX + half an ulp up round to infinity.
      constexpr double kFloatOverflow = 0x1.ffffffp127;
      overflow = finite && std::fabs(d) >= kFloatOverflow;
      AppendRaw<float>(out, overflow ? 0.0f : static_cast<float>(d));
      break;
    }
    case DataType::kFP16: {
      const uint16_t h = DoubleToHalfBits(d);
      overflow = finite && (h & 0x7FFF) == 0x7C00;
      AppendRaw<uint16_t>(out, h);
      break;
    }
    default: {  // kBF16
      const uint16_t b = DoubleToBF16Bits(d);
      overflow = finite && (b & 0x7FFF) == 0x7F80;
      AppendRaw<uint16_t>(out, b);
      break;
    }
  }
  if (overflow) {
    return Status::InvalidArgument("value " + Show(v) + " out of range for " + name + At(index));
  }
  return Status::Ok();
}

Status PutElement(const json& v, size_t index, DataType type, std::string* out) {
  switch (type) {
    case DataType::kBool:
      if (!v.is_boolean()) {
        return Status::InvalidArgument("element " + std::to_string(index) + " is " + Show(v) +
                                       ", BOOL needs true or false");
      }
      out->push_back(v.get<bool>() ? 1 : 0);
      return Status::Ok();
    case DataType::kUInt8:
      return PutInteger<uint8_t>(v, index, type, out);
    case DataType::kUInt16:
      return PutInteger<uint16_t>(v, index, type, out);
    case DataType::kUInt32:
      return PutInteger<uint32_t>(v, index, type, out);
    case DataType::kUInt64:
      return PutInteger<uint64_t>(v, index, type, out);
    case DataType::kInt8:
      return PutInteger<int8_t>(v, index, type, out);
    case DataType::kInt16:
      return PutInteger<int16_t>(v, index, type, out);
    case DataType::kInt32:
      return PutInteger<int32_t>(v, index, type, out);
    case DataType::kInt64:
      return PutInteger<int64_t>(v, index, type, out);
    case DataType::kFP16:
    case DataType::kBF16:
    case DataType::kFP32:
    case DataType::kFP64:
      return PutFloat(v, index, type, out);
    case DataType::kBytes: {
      if (!v.is_string()) {
        return Status::InvalidArgument("element " + std::to_string(index) + " is " + Show(v) +
                                       ", BYTES needs a string");
      }
      const std::string& s = v.get_ref<const std::string&>();
      if (s.size() > std::numeric_limits<uint32_t>::max()) {
        return Status::InvalidArgument("BYTES element " + std::to_string(index) +
                                       " is longer than 2^32-1 bytes");
      }
      AppendBytesElement(out, s);
      return Status::Ok();
    }
  }
  return Status::Internal("unknown datatype");
}

template <typename T, typename Append>
void AppendEach(std::string* out, const std::string& data, Append append) {
  const size_t n = data.size() / sizeof(T);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out->push_back(',');
    append(out, ReadRaw<T>(data, i));
  }
}

}  // namespace

Result<std::string> JsonDataToBytes(const json& data, DataType type, std::span<const int64_t> shape,
                                    uint64_t count) {
  std::vector<const json*> leaves;
  Flatten(data, &leaves);
  if (leaves.size() != count) {
    return Status::InvalidArgument("shape " + FormatShape(shape) + " needs " +
                                   std::to_string(count) + " elements, got " +
                                   std::to_string(leaves.size()));
  }
  std::string out;
  if (type != DataType::kBytes) out.reserve(count * DataTypeSize(type));
  for (size_t i = 0; i < leaves.size(); ++i) {
    MG_RETURN_IF_ERROR(PutElement(*leaves[i], i, type, &out));
  }
  return out;
}

Status AppendJsonData(std::string* out, const InferTensor& tensor) {
  const std::string& data = tensor.data;
  out->push_back('[');
  switch (tensor.datatype) {
    case DataType::kBool:
      AppendEach<uint8_t>(out, data,
                          [](std::string* o, uint8_t b) { o->append(b ? "true" : "false"); });
      break;
    case DataType::kUInt8:
      AppendEach<uint8_t>(out, data, AppendUInt);
      break;
    case DataType::kUInt16:
      AppendEach<uint16_t>(out, data, AppendUInt);
      break;
    case DataType::kUInt32:
      AppendEach<uint32_t>(out, data, AppendUInt);
      break;
    case DataType::kUInt64:
      AppendEach<uint64_t>(out, data, AppendUInt);
      break;
    case DataType::kInt8:
      AppendEach<int8_t>(out, data, AppendInt);
      break;
    case DataType::kInt16:
      AppendEach<int16_t>(out, data, AppendInt);
      break;
    case DataType::kInt32:
      AppendEach<int32_t>(out, data, AppendInt);
      break;
    case DataType::kInt64:
      AppendEach<int64_t>(out, data, AppendInt);
      break;
    case DataType::kFP16:
      AppendEach<uint16_t>(out, data,
                           [](std::string* o, uint16_t h) { AppendFloat(o, HalfBitsToFloat(h)); });
      break;
    case DataType::kBF16:
      AppendEach<uint16_t>(out, data,
                           [](std::string* o, uint16_t b) { AppendFloat(o, BF16BitsToFloat(b)); });
      break;
    case DataType::kFP32:
      AppendEach<float>(out, data, AppendFloat);
      break;
    case DataType::kFP64:
      AppendEach<double>(out, data, AppendDouble);
      break;
    case DataType::kBytes: {
      MG_ASSIGN_OR_RETURN(const auto elements, SplitBytesElements(data));
      for (size_t i = 0; i < elements.size(); ++i) {
        const size_t bad = FindInvalidUtf8(elements[i]);
        if (bad != std::string_view::npos) {
          return Status::InvalidArgument(
              "element " + std::to_string(i) + " of BYTES is not UTF-8 text (byte " +
              std::to_string(bad) + "); JSON cannot carry it, use binary data");
        }
        if (i > 0) out->push_back(',');
        AppendJsonString(out, elements[i]);
      }
      break;
    }
  }
  out->push_back(']');
  return Status::Ok();
}

}  // namespace modelgrid::kserve_internal
