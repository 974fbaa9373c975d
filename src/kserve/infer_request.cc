// Infer request bodies (modelgrid/kserve/infer_codec.h), including inputs
// that name a registered system shared-memory region instead of carrying
// their bytes (Triton's system shared memory extension; the grid resolves
// them, InferCall in modelgrid/grid.h).
#include <set>
#include <string>

#include "kserve/json_text.h"
#include "kserve/tensor_wire.h"
#include "modelgrid/kserve/infer_codec.h"

namespace modelgrid {

namespace {

using kserve_internal::BinaryPart;
using nlohmann::json;

// The request's "outputs" list (empty when absent). Errors: kInvalidArgument
// for a malformed entry, a repeated name or a non-boolean binary_data.
// Shared-memory parameters are kept for the service (outputs written into
// a registered region).
Result<std::vector<RequestedOutput>> DecodeRequestedOutputs(const json& root) {
  std::vector<RequestedOutput> outputs;
  const auto it = root.find("outputs");
  if (it == root.end()) return outputs;
  if (!it->is_array()) return Status::InvalidArgument("\"outputs\" must be an array");
  std::set<std::string> names;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& o = (*it)[i];
    const std::string where = "outputs[" + std::to_string(i) + "]";
    if (!o.is_object()) return Status::InvalidArgument(where + " must be a JSON object");
    const auto name = o.find("name");
    if (name == o.end() || !name->is_string()) {
      return Status::InvalidArgument(where + " has no \"name\" string");
    }
    RequestedOutput out;
    out.name = name->get<std::string>();
    const std::string prefix = "requested output '" + out.name + "'";
    if (!names.insert(out.name).second) {
      return Status::InvalidArgument(prefix + " appears more than once");
    }
    auto params = kserve_internal::OptionalObject(o, "parameters", prefix + ": ");
    if (!params.ok()) return params.status();
    out.parameters = std::move(params).value();
    if (const auto b = out.parameters.find("binary_data"); b != out.parameters.end()) {
      if (!b->is_boolean()) {
        return Status::InvalidArgument(prefix + ": binary_data must be true or false");
      }
      out.binary_data = b->get<bool>();
      out.parameters.erase(b);
    }
    outputs.push_back(std::move(out));
  }
  return outputs;
}

Result<InferRequest> DecodeRequestJson(const json& root, BinaryPart* binary,
                                       const DecodeOptions& options) {
  InferRequest request;
  MG_ASSIGN_OR_RETURN(request.id, kserve_internal::OptionalString(root, "id"));
  MG_ASSIGN_OR_RETURN(request.parameters,
                      kserve_internal::OptionalObject(root, "parameters", "request "));
  if (const auto b = request.parameters.find("binary_data_output"); b != request.parameters.end()) {
    if (!b->is_boolean()) {
      return Status::InvalidArgument("request parameter binary_data_output must be true or false");
    }
    request.binary_data_output = b->get<bool>();
  }
  const auto inputs = root.find("inputs");
  if (inputs == root.end()) return Status::InvalidArgument("the request has no \"inputs\"");
  MG_ASSIGN_OR_RETURN(request.inputs,
                      kserve_internal::DecodeTensors(*inputs, "input", binary, options));
  MG_ASSIGN_OR_RETURN(request.outputs, DecodeRequestedOutputs(root));
  MG_RETURN_IF_ERROR(kserve_internal::CheckBinaryUsed(*binary));
  return request;
}

}  // namespace

Result<InferRequest> DecodeInferRequest(std::string_view body,
                                        std::optional<size_t> json_header_length,
                                        const DecodeOptions& options) {
  try {
    BinaryPart binary;
    if (options.body_owner) {
      const std::string& owner = *options.body_owner;
      const bool within = body.data() >= owner.data() &&
                          body.data() + body.size() <= owner.data() + owner.size();
      if (!within) return Status::Internal("DecodeOptions::body_owner does not hold the body");
      binary.owner = options.body_owner;
    }
    MG_ASSIGN_OR_RETURN(const json root,
                        kserve_internal::ParseBody(body, json_header_length, &binary));
    return DecodeRequestJson(root, &binary, options);
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while decoding the request");
  } catch (const std::exception& e) {
    // nlohmann::json accessors are type-checked above; this is a bug if reached.
    return Status::Internal(std::string("decoding the request: ") + e.what());
  }
}

Result<EncodedBody> EncodeInferRequest(const InferRequest& request, bool binary_inputs) {
  using kserve_internal::AppendJsonString;
  using kserve_internal::AppendJsonValue;
  EncodedBody encoded;
  std::string& out = encoded.body;
  std::string binary;
  out.push_back('{');
  if (!request.id.empty()) {
    out.append("\"id\":");
    AppendJsonString(&out, request.id, /*lossy=*/true);
    out.push_back(',');
  }
  json params = request.parameters.is_object() ? request.parameters : json::object();
  if (request.binary_data_output) params["binary_data_output"] = true;
  if (!params.empty()) {
    out.append("\"parameters\":");
    AppendJsonValue(&out, params);
    out.push_back(',');
  }
  out.append("\"inputs\":[");
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const InferTensor& input = request.inputs[i];
    MG_RETURN_IF_ERROR(ValidateTensorData(input, "input"));
    if (i > 0) out.push_back(',');
    MG_RETURN_IF_ERROR(kserve_internal::AppendTensor(&out, &binary, input, binary_inputs, "input"));
  }
  out.push_back(']');
  if (!request.outputs.empty()) {
    out.append(",\"outputs\":[");
    for (size_t i = 0; i < request.outputs.size(); ++i) {
      const RequestedOutput& o = request.outputs[i];
      if (i > 0) out.push_back(',');
      out.append("{\"name\":");
      AppendJsonString(&out, o.name, /*lossy=*/true);
      json p = o.parameters.is_object() ? o.parameters : json::object();
      if (o.binary_data) p["binary_data"] = true;
      if (!p.empty()) {
        out.append(",\"parameters\":");
        AppendJsonValue(&out, p);
      }
      out.push_back('}');
    }
    out.push_back(']');
  }
  out.push_back('}');
  if (binary_inputs) {
    encoded.json_header_length = out.size();
    out.append(binary);
  }
  return encoded;
}

}  // namespace modelgrid
