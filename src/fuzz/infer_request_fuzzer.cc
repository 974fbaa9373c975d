// Fuzz harness of the KServe infer codec (modelgrid/kserve/infer_codec.h):
// DecodeInferRequest with and without a JSON header length (Triton's binary
// data extension), and DecodeInferResponse.
//
// Input: byte 0 selects the mode, the rest is the body.
//   bit 0 clear: the body is JSON only (no Inference-Header-Content-Length);
//   bit 0 set:   bytes 1..2 are the header length (little-endian; may be past
//                the body), the body starts at byte 3; it is decoded with that
//                length and also as if the header were absent;
//   bit 1 set:   the body is also decoded as a response.
// Properties: nothing throws; an error is kInvalidArgument (or
// kResourceExhausted, an allocation that failed) with a message, never
// kInternal (which the decoder returns when an exception reached it: a bug);
// a decoded request has unique input names and every input's data matches
// its shape and datatype (ValidateTensorData) unless it lies in shared
// memory; it encodes again (binary, and JSON when JSON can carry it) into a
// body that decodes to an equal request (through JSON a NaN may come back
// as another NaN: JSON keeps no NaN sign or payload).
#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "fuzz/fuzz_target.h"
#include "modelgrid/kserve/infer_codec.h"

namespace modelgrid::fuzz {

namespace {

bool AllowedError(const Status& s, bool response) {
  if (s.message().empty()) return false;
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kResourceExhausted ||
         (response && s.code() == StatusCode::kUnsupported);
}

// The elements of `t` as doubles when it is a float tensor (FP16, BF16,
// FP32, FP64), else nullopt.
std::optional<std::vector<double>> FloatValues(const InferTensor& t) {
  std::vector<double> v;
  const std::string& d = t.data;
  switch (t.datatype) {
    case DataType::kFP32:
      for (size_t i = 0; i + 4 <= d.size(); i += 4) {
        float f;
        std::memcpy(&f, d.data() + i, 4);
        v.push_back(f);
      }
      return v;
    case DataType::kFP64:
      for (size_t i = 0; i + 8 <= d.size(); i += 8) {
        double f;
        std::memcpy(&f, d.data() + i, 8);
        v.push_back(f);
      }
      return v;
    case DataType::kFP16:
    case DataType::kBF16:
      for (size_t i = 0; i + 2 <= d.size(); i += 2) {
        uint16_t h;
        std::memcpy(&h, d.data() + i, 2);
        const bool fp16 = t.datatype == DataType::kFP16;
        const bool nan = fp16 ? (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0
                              : (h & 0x7F80) == 0x7F80 && (h & 0x007F) != 0;
        // Only NaN-ness matters below; other values compare by their bits.
        v.push_back(nan ? std::nan("") : static_cast<double>(h));
      }
      return v;
    default:
      return std::nullopt;
  }
}

// Equal tensors, except that a NaN equals any NaN (JSON keeps neither the
// sign nor the payload of a NaN: infer_codec.h).
bool SameTensor(const InferTensor& a, const InferTensor& b) {
  if (a.name != b.name || a.datatype != b.datatype || a.shape != b.shape ||
      a.parameters != b.parameters || a.shared != b.shared) {
    return false;
  }
  if (a.data == b.data) return true;
  const auto x = FloatValues(a);
  const auto y = FloatValues(b);
  if (!x || !y || x->size() != y->size() || a.data.size() != b.data.size()) return false;
  for (size_t i = 0; i < x->size(); ++i) {
    if (std::isnan((*x)[i]) && std::isnan((*y)[i])) continue;
    const size_t w = a.data.size() / x->size();
    if (a.data.compare(i * w, w, b.data, i * w, w) != 0) return false;
  }
  return true;
}

bool SameRequest(const InferRequest& a, const InferRequest& b) {
  if (a.id != b.id || a.parameters != b.parameters || a.binary_data_output != b.binary_data_output ||
      a.outputs != b.outputs || a.inputs.size() != b.inputs.size()) {
    return false;
  }
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    if (!SameTensor(a.inputs[i], b.inputs[i])) return false;
  }
  return true;
}

bool InShared(const InferTensor& t) {
  return t.parameters.is_object() && t.parameters.contains("shared_memory_region");
}

// Encodes `request` (binary or JSON) and decodes it again: it must come back equal.
std::string RoundTrip(const InferRequest& request, bool binary) {
  const char* how = binary ? "binary" : "JSON";
  auto encoded = EncodeInferRequest(request, binary);
  if (!encoded.ok()) {
    // Binary carries every valid tensor; JSON cannot carry NaN/infinity or
    // BYTES that are not UTF-8, which is an InvalidArgument.
    if (binary || encoded.status().code() != StatusCode::kInvalidArgument) {
      return std::string("a decoded request does not encode as ") + how + ": " +
             Describe(encoded.status());
    }
    return "";
  }
  if (binary != encoded->json_header_length.has_value()) {
    return std::string("EncodeInferRequest(") + how + ") set json_header_length wrongly";
  }
  auto again = DecodeInferRequest(encoded->body, encoded->json_header_length);
  if (!again.ok()) {
    return std::string("a re-encoded (") + how + ") request does not decode: " +
           Describe(again.status());
  }
  if (binary ? !(*again == request) : !SameRequest(*again, request)) {
    return std::string("a request re-encoded as ") + how + " decodes to a different request";
  }
  return "";
}

std::string CheckRequest(std::string_view body, std::optional<size_t> header_length) {
  const Result<InferRequest> r = DecodeInferRequest(body, header_length);
  const std::string where = header_length ? " (header length " + std::to_string(*header_length) + ")"
                                          : std::string(" (JSON only)");
  if (!r.ok()) {
    if (!AllowedError(r.status(), false)) {
      return "DecodeInferRequest" + where + " returned " + Describe(r.status());
    }
    return "";
  }
  std::set<std::string> names;
  bool shared = false;
  for (const InferTensor& t : r->inputs) {
    if (!names.insert(t.name).second) return "decoded two inputs named '" + t.name + "'" + where;
    if (InShared(t)) {
      shared = true;
      if (!t.data.empty()) return "input '" + t.name + "' in shared memory carries data" + where;
      continue;
    }
    if (Status s = ValidateTensorData(t); !s.ok()) {
      return "decoded an input whose data does not match its shape" + where + ": " + Describe(s);
    }
  }
  if (!r->parameters.is_object()) return "decoded request parameters that are not an object";
  if (shared) return "";  // shared-memory inputs carry no bytes to encode
  if (std::string broken = RoundTrip(*r, /*binary=*/true); !broken.empty()) return broken + where;
  if (std::string broken = RoundTrip(*r, /*binary=*/false); !broken.empty()) return broken + where;
  return "";
}

std::string CheckResponse(std::string_view body, std::optional<size_t> header_length) {
  const Result<InferResponse> r = DecodeInferResponse(body, header_length);
  if (!r.ok()) {
    if (!AllowedError(r.status(), true)) return "DecodeInferResponse returned " + Describe(r.status());
    return "";
  }
  for (const InferTensor& t : r->outputs) {
    if (Status s = ValidateTensorData(t, "output"); !s.ok()) {
      return "decoded an output whose data does not match its shape: " + Describe(s);
    }
  }
  return "";
}

}  // namespace

std::string CheckInferRequest(std::string_view input) {
  const unsigned mode = input.empty() ? 0 : static_cast<unsigned char>(input[0]);
  std::string_view rest = input.empty() ? input : input.substr(1);
  std::optional<size_t> header_length;
  if (mode & 1) {
    size_t n = 0;
    if (!rest.empty()) n |= static_cast<unsigned char>(rest[0]);
    if (rest.size() > 1) n |= static_cast<size_t>(static_cast<unsigned char>(rest[1])) << 8;
    header_length = n;
    rest = rest.size() > 2 ? rest.substr(2) : std::string_view();
  }
  if (std::string broken = CheckRequest(rest, header_length); !broken.empty()) return broken;
  if (header_length) {
    if (std::string broken = CheckRequest(rest, std::nullopt); !broken.empty()) return broken;
  }
  if (mode & 2) return CheckResponse(rest, header_length);
  return "";
}

}  // namespace modelgrid::fuzz

MODELGRID_FUZZ_TARGET(modelgrid::fuzz::CheckInferRequest)
