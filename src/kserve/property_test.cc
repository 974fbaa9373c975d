// Properties of the codec over random tensors of every datatype and shape:
// JSON round trips (through the codec's encoder and through an independent
// JSON builder), JSON and binary encodings agree, and no body crashes it.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstring>

#include "modelgrid/kserve/errors.h"
#include "modelgrid/kserve/half.h"
#include "modelgrid/kserve/infer_codec.h"

namespace modelgrid {
namespace {

using nlohmann::json;

constexpr DataType kAllTypes[] = {
    DataType::kBool, DataType::kUInt8, DataType::kUInt16, DataType::kUInt32, DataType::kUInt64,
    DataType::kInt8, DataType::kInt16, DataType::kInt32,  DataType::kInt64,  DataType::kFP16,
    DataType::kBF16, DataType::kFP32,  DataType::kFP64,   DataType::kBytes,
};

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Random UTF-8 text: ASCII (control characters, quotes and backslashes
// included) and code points of every encoded length, no surrogates.
std::string DrawText() {
  const int n = *rc::gen::inRange(0, 6);
  std::string s;
  for (int i = 0; i < n; ++i) {
    uint32_t cp = 0;
    switch (*rc::gen::inRange(0, 5)) {
      case 0:
        cp = *rc::gen::inRange<uint32_t>(0, 0x80);
        break;
      case 1:
        cp = *rc::gen::element<uint32_t>('"', '\\', '\n', 0, '/');
        break;
      case 2:
        cp = *rc::gen::inRange<uint32_t>(0x80, 0x800);
        break;
      case 3:
        cp = *rc::gen::inRange<uint32_t>(0xE000, 0x10000);
        break;
      default:
        cp = *rc::gen::inRange<uint32_t>(0x10000, 0x110000);
        break;
    }
    AppendUtf8(&s, cp);
  }
  return s;
}

// Random element bits of `size` bytes; floats are kept finite (JSON cannot
// carry NaN or infinity) by clearing the top exponent bit when all are set.
std::string DrawElement(DataType type) {
  const uint64_t bits = *rc::gen::arbitrary<uint64_t>();
  uint64_t v = bits;
  switch (type) {
    case DataType::kBool:
      v = bits & 1;
      break;
    case DataType::kFP16:
      if (((v >> 10) & 0x1F) == 0x1F) v &= ~uint64_t{0x4000};
      break;
    case DataType::kBF16:
      if (((v >> 7) & 0xFF) == 0xFF) v &= ~uint64_t{0x4000};
      break;
    case DataType::kFP32:
      if (((v >> 23) & 0xFF) == 0xFF) v &= ~(uint64_t{1} << 30);
      break;
    case DataType::kFP64:
      if (((v >> 52) & 0x7FF) == 0x7FF) v &= ~(uint64_t{1} << 62);
      break;
    default:
      break;
  }
  std::string out;
  for (uint64_t i = 0; i < DataTypeSize(type); ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}

InferTensor DrawTensor(const std::string& name) {
  InferTensor t;
  t.name = name;
  t.datatype =
      *rc::gen::elementOf(std::vector<DataType>(std::begin(kAllTypes), std::end(kAllTypes)));
  const int rank = *rc::gen::inRange(0, 5);
  uint64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    const int64_t d = *rc::gen::weightedElement<int64_t>({{1, 0}, {6, 1}, {6, 2}, {4, 3}, {2, 5}});
    t.shape.push_back(d);
    count *= static_cast<uint64_t>(d);
  }
  for (uint64_t i = 0; i < count; ++i) {
    if (t.datatype == DataType::kBytes) {
      const std::string text = DrawText();
      const uint32_t len = static_cast<uint32_t>(text.size());
      for (int k = 0; k < 4; ++k) t.data.push_back(static_cast<char>(len >> (8 * k)));
      t.data += text;
    } else {
      t.data += DrawElement(t.datatype);
    }
  }
  if (*rc::gen::arbitrary<bool>()) t.parameters["note"] = DrawText();
  return t;
}

InferRequest DrawRequest() {
  InferRequest r;
  if (*rc::gen::arbitrary<bool>()) r.id = DrawText();
  const int n = *rc::gen::inRange(0, 4);
  for (int i = 0; i < n; ++i) r.inputs.push_back(DrawTensor("in" + std::to_string(i)));
  if (*rc::gen::arbitrary<bool>())
    r.outputs.push_back(RequestedOutput{"out", *rc::gen::arbitrary<bool>()});
  return r;
}

// Test-side JSON for element `i` of `t`, built from the bytes with shifts
// and nlohmann::json (independent of the codec's own writer).
json ElementJson(const InferTensor& t, size_t i, size_t* bytes_pos) {
  const size_t size = DataTypeSize(t.datatype);
  if (t.datatype == DataType::kBytes) {
    uint32_t len = 0;
    for (int k = 0; k < 4; ++k)
      len |= uint32_t{static_cast<uint8_t>(t.data[*bytes_pos + k])} << (8 * k);
    json s = t.data.substr(*bytes_pos + 4, len);
    *bytes_pos += 4 + len;
    return s;
  }
  uint64_t u = 0;
  for (size_t k = 0; k < size; ++k)
    u |= uint64_t{static_cast<uint8_t>(t.data[i * size + k])} << (8 * k);
  switch (t.datatype) {
    case DataType::kBool:
      return u != 0;
    case DataType::kUInt8:
    case DataType::kUInt16:
    case DataType::kUInt32:
    case DataType::kUInt64:
      return u;
    case DataType::kInt8:
      return static_cast<int64_t>(static_cast<int8_t>(u));
    case DataType::kInt16:
      return static_cast<int64_t>(static_cast<int16_t>(u));
    case DataType::kInt32:
      return static_cast<int64_t>(static_cast<int32_t>(u));
    case DataType::kInt64:
      return static_cast<int64_t>(u);
    case DataType::kFP16:
      return static_cast<double>(HalfBitsToFloat(static_cast<uint16_t>(u)));
    case DataType::kBF16:
      return static_cast<double>(BF16BitsToFloat(static_cast<uint16_t>(u)));
    case DataType::kFP32: {
      float f;
      const uint32_t b = static_cast<uint32_t>(u);
      std::memcpy(&f, &b, 4);
      return static_cast<double>(f);
    }
    default: {
      double d;
      std::memcpy(&d, &u, 8);
      return d;
    }
  }
}

// The data of `t` nested as its shape says (row-major).
json NestedData(const InferTensor& t, size_t dim, size_t* index, size_t* bytes_pos) {
  if (dim == t.shape.size()) return ElementJson(t, (*index)++, bytes_pos);
  json arr = json::array();
  for (int64_t k = 0; k < t.shape[dim]; ++k)
    arr.push_back(NestedData(t, dim + 1, index, bytes_pos));
  return arr;
}

RC_GTEST_PROP(CodecProperty, JsonRequestRoundTrips, ()) {
  const InferRequest request = DrawRequest();
  // Through the codec's encoder.
  auto body = EncodeInferRequest(request, /*binary_inputs=*/false);
  RC_ASSERT(body.ok());
  RC_ASSERT(!body->json_header_length.has_value());
  auto decoded = DecodeInferRequest(body->body, std::nullopt);
  RC_ASSERT(decoded.ok());
  RC_ASSERT(*decoded == request);

  // Through an independent JSON builder, with nested data.
  json inputs = json::array();
  for (const InferTensor& t : request.inputs) {
    size_t index = 0, bytes_pos = 0;
    json in = {{"name", t.name},
               {"datatype", std::string(DataTypeName(t.datatype))},
               {"shape", t.shape},
               {"parameters", t.parameters}};
    in["data"] = t.shape.empty() ? json::array({NestedData(t, 0, &index, &bytes_pos)})
                                 : NestedData(t, 0, &index, &bytes_pos);
    inputs.push_back(in);
  }
  const json root = {{"inputs", inputs}};
  auto independent = DecodeInferRequest(root.dump(), std::nullopt);
  RC_ASSERT(independent.ok());
  RC_ASSERT(independent->inputs == request.inputs);
}

RC_GTEST_PROP(CodecProperty, JsonAndBinaryRequestsDecodeIdentically, ()) {
  const InferRequest request = DrawRequest();
  auto as_json = EncodeInferRequest(request, false);
  auto as_binary = EncodeInferRequest(request, true);
  RC_ASSERT(as_json.ok() && as_binary.ok());
  RC_ASSERT(as_binary->json_header_length.has_value());
  auto a = DecodeInferRequest(as_json->body, as_json->json_header_length);
  auto b = DecodeInferRequest(as_binary->body, as_binary->json_header_length);
  RC_ASSERT(a.ok() && b.ok());
  RC_ASSERT(*a == *b);
  RC_ASSERT(*b == request);
}

RC_GTEST_PROP(CodecProperty, JsonAndBinaryResponsesDecodeIdentically, ()) {
  std::vector<InferTensor> outputs;
  const int n = *rc::gen::inRange(0, 4);
  for (int i = 0; i < n; ++i) outputs.push_back(DrawTensor("out" + std::to_string(i)));
  auto as_json = EncodeInferResponse("m", "3", "id", outputs, {}, false);
  auto as_binary = EncodeInferResponse("m", "3", "id", outputs, {}, true);
  RC_ASSERT(as_json.ok() && as_binary.ok());
  RC_ASSERT(as_binary->json_header_length.has_value() == (n > 0));
  auto a = DecodeInferResponse(as_json->body, as_json->json_header_length);
  auto b = DecodeInferResponse(as_binary->body, as_binary->json_header_length);
  RC_ASSERT(a.ok() && b.ok());
  RC_ASSERT(*a == *b);
  RC_ASSERT(a->outputs == outputs);
}

void CheckAnswer(const Status& s) {
  if (s.ok()) return;
  RC_ASSERT(!s.message().empty());
  const int http = HttpStatusFromCode(s.code());
  RC_ASSERT(http == 400 || http == 501 || http == 507);
  RC_ASSERT(json::parse(ErrorBody(s)).is_object());
}

RC_GTEST_PROP(CodecProperty, ArbitraryBytesNeverCrash, (const std::string& body)) {
  std::optional<size_t> header;
  if (*rc::gen::arbitrary<bool>()) header = *rc::gen::inRange<size_t>(0, body.size() + 3);
  CheckAnswer(DecodeInferRequest(body, header).status());
  CheckAnswer(DecodeInferResponse(body, header).status());
}

// Valid bodies with bytes flipped, cut or inserted reach deeper paths than
// random text does.
RC_GTEST_PROP(CodecProperty, MutatedBodiesNeverCrash, ()) {
  const InferRequest request = DrawRequest();
  auto encoded = EncodeInferRequest(request, *rc::gen::arbitrary<bool>());
  RC_ASSERT(encoded.ok());
  std::string body = encoded->body;
  std::optional<size_t> header = encoded->json_header_length;
  const int edits = *rc::gen::inRange(1, 4);
  for (int i = 0; i < edits && !body.empty(); ++i) {
    const size_t pos = *rc::gen::inRange<size_t>(0, body.size());
    switch (*rc::gen::inRange(0, 4)) {
      case 0:
        body[pos] = *rc::gen::arbitrary<char>();
        break;
      case 1:
        body[pos] = *rc::gen::element('[', ']', '{', '}', ',', '"', '-', '9', 'e', '.');
        break;
      case 2:
        body.erase(pos, *rc::gen::inRange<size_t>(1, 8));
        break;
      default:
        body.insert(pos,
                    *rc::gen::element<std::string>("1", "[", "]", "null", "-1", "1e400", "\xff"));
        break;
    }
  }
  if (header && *rc::gen::arbitrary<bool>()) header = *header + *rc::gen::inRange(-3, 4);
  CheckAnswer(DecodeInferRequest(body, header).status());
}

}  // namespace
}  // namespace modelgrid
