// Triton's classification extension (modelgrid/kserve/classification.h).
#include "modelgrid/kserve/classification.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <numeric>
#include <type_traits>
#include <vector>

#include "modelgrid/kserve/half.h"

namespace modelgrid {

namespace {

using nlohmann::json;

std::string OutputPrefix(std::string_view name) { return "output '" + std::string(name) + "'"; }

// A parameter value as a message shows it.
std::string Show(const json& v) {
  std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

// The class count from one parameter value: a JSON integer >= 1.
Result<uint64_t> ClassCountValue(const json& v, std::string_view output,
                                 std::string_view parameter) {
  if (v.is_number_unsigned() && v.get<uint64_t>() >= 1) return v.get<uint64_t>();
  if (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() >= 1) {
    return static_cast<uint64_t>(v.get<int64_t>());
  }
  return Status::InvalidArgument(OutputPrefix(output) + ": " + std::string(parameter) +
                                 " must be an integer >= 1, got " + Show(v));
}

// Score loaders: element `i` of little-endian `bytes` as the type the
// scores are compared in (integers exactly; FP16 / BF16 as their exact
// float value).
template <typename Stored>
Stored ReadRaw(std::string_view bytes, size_t i) {
  Stored v;
  std::memcpy(&v, bytes.data() + i * sizeof(Stored), sizeof(Stored));
  return v;
}

struct Fp16Tag {};
struct Bf16Tag {};

template <typename Tag>
struct Scores;  // Scores<T>::Value / Scores<T>::Load

template <typename T>
requires std::is_arithmetic_v<T>
struct Scores<T> {
  using Value = T;
  static Value Load(std::string_view bytes, size_t i) { return ReadRaw<T>(bytes, i); }
};
template <>
struct Scores<Fp16Tag> {
  using Value = float;
  static Value Load(std::string_view bytes, size_t i) {
    return HalfBitsToFloat(ReadRaw<uint16_t>(bytes, i));
  }
};
template <>
struct Scores<Bf16Tag> {
  using Value = float;
  static Value Load(std::string_view bytes, size_t i) {
    return BF16BitsToFloat(ReadRaw<uint16_t>(bytes, i));
  }
};

// Appends `v` as std::to_string writes it: integers in decimal, floating
// point as printf "%f" (six decimals; nan, -nan, inf, -inf), without
// depending on the locale.
template <typename V>
void AppendScore(std::string* out, V v) {
  // A double in fixed notation with six decimals: at most 309 integer
  // digits, a sign, a point and the decimals.
  char buf[400];
  std::to_chars_result r;
  if constexpr (std::is_floating_point_v<V>) {
    r = std::to_chars(buf, buf + sizeof(buf), static_cast<double>(v), std::chars_format::fixed, 6);
  } else if constexpr (std::is_signed_v<V>) {
    r = std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(v));
  } else {
    r = std::to_chars(buf, buf + sizeof(buf), static_cast<uint64_t>(v));
  }
  out->append(buf, r.ptr);
}

// Classifies `rows` rows of `classes` scores each (row-major in `bytes`),
// appending min(k, classes) BYTES elements per row to `data`.
template <typename Tag>
Status ClassifyRows(std::string_view bytes, uint64_t rows, uint64_t classes, uint64_t top,
                    std::span<const std::string> labels, std::string* data) {
  using V = typename Scores<Tag>::Value;
  std::vector<V> values(classes);
  std::vector<uint64_t> order(classes);
  std::string element;
  for (uint64_t row = 0; row < rows; ++row) {
    for (uint64_t c = 0; c < classes; ++c) values[c] = Scores<Tag>::Load(bytes, row * classes + c);
    std::iota(order.begin(), order.end(), uint64_t{0});
    // Higher score first; NaN after every number; ties by lower index. A
    // strict total order on indices, so the result is deterministic.
    const auto before = [&values](uint64_t a, uint64_t b) {
      const V va = values[a];
      const V vb = values[b];
      if constexpr (std::is_floating_point_v<V>) {
        const bool nan_a = std::isnan(va);
        const bool nan_b = std::isnan(vb);
        if (nan_a != nan_b) return nan_b;
        if (!nan_a && va != vb) return va > vb;
      } else {
        if (va != vb) return va > vb;
      }
      return a < b;
    };
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top), order.end(),
                      before);
    for (uint64_t j = 0; j < top; ++j) {
      const uint64_t index = order[j];
      element.clear();
      AppendScore(&element, values[index]);
      element.push_back(':');
      AppendScore(&element, index);
      if (index < labels.size() && !labels[index].empty()) {
        element.push_back(':');
        element.append(labels[index]);
      }
      if (element.size() > std::numeric_limits<uint32_t>::max()) {
        return Status::InvalidArgument("classification element for class " + std::to_string(index) +
                                       " is longer than 2^32-1 bytes");
      }
      AppendBytesElement(data, element);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::optional<uint64_t>> RequestedClassCount(const RequestedOutput& output) {
  if (!output.parameters.is_object()) return std::optional<uint64_t>();
  const auto cls = output.parameters.find(kClassificationParameter);
  const auto alias = output.parameters.find(kClassCountParameter);
  const bool has_cls = cls != output.parameters.end();
  const bool has_alias = alias != output.parameters.end();
  if (has_cls && has_alias) {
    return Status::InvalidArgument(OutputPrefix(output.name) + ": both \"" +
                                   std::string(kClassificationParameter) + "\" and \"" +
                                   std::string(kClassCountParameter) + "\" are given; use one");
  }
  if (!has_cls && !has_alias) return std::optional<uint64_t>();
  MG_ASSIGN_OR_RETURN(const uint64_t k,
                      has_cls ? ClassCountValue(*cls, output.name, kClassificationParameter)
                              : ClassCountValue(*alias, output.name, kClassCountParameter));
  return std::optional<uint64_t>(k);
}

Result<InferTensor> ClassifyOutput(const InferTensor& scores, uint64_t k, bool batched,
                                   std::span<const std::string> labels) {
  const std::string prefix = OutputPrefix(scores.name);
  if (k < 1) {
    return Status::InvalidArgument(prefix + ": classification needs k >= 1, got " +
                                   std::to_string(k));
  }
  const std::string what = prefix + ": classification (k=" + std::to_string(k) + ")";
  if (scores.datatype == DataType::kBytes || scores.datatype == DataType::kBool) {
    return Status::InvalidArgument(what + " needs numeric scores, got datatype " +
                                   std::string(DataTypeName(scores.datatype)));
  }
  if (batched && scores.shape.empty()) {
    return Status::InvalidArgument(what +
                                   " of a batched output needs scores of shape [batch, ...], got " +
                                   FormatShape(scores.shape));
  }
  const Status valid = ValidateTensorData(ViewOf(scores), "output");
  if (!valid.ok()) return Status::Internal(valid.message());

  const std::span<const int64_t> shape(scores.shape);
  // ValidateTensorData checked the shape, so these cannot fail.
  const uint64_t rows = batched ? static_cast<uint64_t>(shape[0]) : 1;
  MG_ASSIGN_OR_RETURN(const uint64_t classes, ElementCount(batched ? shape.subspan(1) : shape));
  const uint64_t top = std::min(k, classes);

  InferTensor out;
  out.name = scores.name;
  out.datatype = DataType::kBytes;
  out.parameters = scores.parameters;
  if (batched) out.shape.push_back(shape[0]);
  out.shape.push_back(static_cast<int64_t>(top));

  // Nothing to rank: no elements (and no loop over a huge empty batch).
  if (rows == 0 || top == 0) return out;

  const std::string_view bytes = TensorBytes(scores);
  Status s;
  try {
    switch (scores.datatype) {
      case DataType::kUInt8:
        s = ClassifyRows<uint8_t>(bytes, rows, classes, top, labels, &out.data);
        break;
      case DataType::kUInt16:
        s = ClassifyRows<uint16_t>(bytes, rows, classes, top, labels, &out.data);
        break;
      case DataType::kUInt32:
        s = ClassifyRows<uint32_t>(bytes, rows, classes, top, labels, &out.data);
        break;
      case DataType::kUInt64:
        s = ClassifyRows<uint64_t>(bytes, rows, classes, top, labels, &out.data);
        break;
      case DataType::kInt8:
        s = ClassifyRows<int8_t>(bytes, rows, classes, top, labels, &out.data);
        break;
      case DataType::kInt16:
        s = ClassifyRows<int16_t>(bytes, rows, classes, top, labels, &out.data);
        break;
      case DataType::kInt32:
        s = ClassifyRows<int32_t>(bytes, rows, classes, top, labels, &out.data);
        break;
      case DataType::kInt64:
        s = ClassifyRows<int64_t>(bytes, rows, classes, top, labels, &out.data);
        break;
      case DataType::kFP16:
        s = ClassifyRows<Fp16Tag>(bytes, rows, classes, top, labels, &out.data);
        break;
      case DataType::kBF16:
        s = ClassifyRows<Bf16Tag>(bytes, rows, classes, top, labels, &out.data);
        break;
      case DataType::kFP32:
        s = ClassifyRows<float>(bytes, rows, classes, top, labels, &out.data);
        break;
      case DataType::kFP64:
        s = ClassifyRows<double>(bytes, rows, classes, top, labels, &out.data);
        break;
      case DataType::kBool:
      case DataType::kBytes:
        return Status::Internal(what + ": unreachable datatype");
    }
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted(what + ": out of memory");
  }
  if (!s.ok()) return s.WithPrefix(what);
  return out;
}

}  // namespace modelgrid
