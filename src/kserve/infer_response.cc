// Infer response bodies (modelgrid/kserve/infer_codec.h).
#include <string>

#include "kserve/json_text.h"
#include "kserve/tensor_wire.h"
#include "modelgrid/kserve/infer_codec.h"

namespace modelgrid {

namespace {

using nlohmann::json;

// The outputs to send, each with whether it goes as binary data.
Result<std::vector<std::pair<const InferTensor*, bool>>> SelectOutputs(
    std::string_view model_name, const std::vector<InferTensor>& outputs,
    const std::vector<RequestedOutput>& requested, bool binary_data_output) {
  std::vector<std::pair<const InferTensor*, bool>> selected;
  if (requested.empty()) {
    for (const InferTensor& t : outputs) selected.emplace_back(&t, binary_data_output);
    return selected;
  }
  for (const RequestedOutput& r : requested) {
    const InferTensor* found = nullptr;
    for (const InferTensor& t : outputs) {
      if (t.name == r.name) found = &t;
    }
    if (found == nullptr) {
      return Status::InvalidArgument("requested output '" + r.name +
                                     "' is not an output of model '" + std::string(model_name) +
                                     "'");
    }
    selected.emplace_back(found, r.binary_data);
  }
  return selected;
}

}  // namespace

Result<EncodedBody> EncodeInferResponse(std::string_view model_name, std::string_view model_version,
                                        std::string_view id,
                                        const std::vector<InferTensor>& outputs,
                                        const std::vector<RequestedOutput>& requested_outputs,
                                        bool binary_data_output) {
  using kserve_internal::AppendJsonString;
  MG_ASSIGN_OR_RETURN(const auto selected,
                      SelectOutputs(model_name, outputs, requested_outputs, binary_data_output));
  EncodedBody encoded;
  std::string& out = encoded.body;
  std::string binary;
  bool any_binary = false;
  out.append("{\"model_name\":");
  AppendJsonString(&out, model_name, /*lossy=*/true);
  if (!model_version.empty()) {
    out.append(",\"model_version\":");
    AppendJsonString(&out, model_version, /*lossy=*/true);
  }
  if (!id.empty()) {
    out.append(",\"id\":");
    AppendJsonString(&out, id, /*lossy=*/true);
  }
  out.append(",\"outputs\":[");
  for (size_t i = 0; i < selected.size(); ++i) {
    const auto& [tensor, as_binary] = selected[i];
    const bool in_shared_memory =
        tensor->parameters.contains("shared_memory_region") && tensor->data.empty();
    const Status valid = in_shared_memory ? Status::Ok() : ValidateTensorData(*tensor, "output");
    if (!valid.ok()) {
      return Status::Internal("model '" + std::string(model_name) +
                              "' produced a malformed tensor: " + valid.message());
    }
    if (i > 0) out.push_back(',');
    MG_RETURN_IF_ERROR(kserve_internal::AppendTensor(&out, &binary, *tensor, as_binary, "output"));
    any_binary = any_binary || (as_binary && !in_shared_memory);
  }
  out.append("]}");
  if (any_binary) {
    encoded.json_header_length = out.size();
    out.append(binary);
  }
  return encoded;
}

Result<InferResponse> DecodeInferResponse(std::string_view body,
                                          std::optional<size_t> json_header_length,
                                          const DecodeOptions& options) {
  try {
    kserve_internal::BinaryPart binary;
    MG_ASSIGN_OR_RETURN(const json root,
                        kserve_internal::ParseBody(body, json_header_length, &binary));
    InferResponse response;
    const auto name = root.find("model_name");
    if (name == root.end() || !name->is_string()) {
      return Status::InvalidArgument("the response has no \"model_name\" string");
    }
    response.model_name = name->get<std::string>();
    MG_ASSIGN_OR_RETURN(response.model_version,
                        kserve_internal::OptionalString(root, "model_version"));
    MG_ASSIGN_OR_RETURN(response.id, kserve_internal::OptionalString(root, "id"));
    MG_ASSIGN_OR_RETURN(response.parameters,
                        kserve_internal::OptionalObject(root, "parameters", "response "));
    const auto outputs = root.find("outputs");
    if (outputs == root.end()) return Status::InvalidArgument("the response has no \"outputs\"");
    MG_ASSIGN_OR_RETURN(response.outputs,
                        kserve_internal::DecodeTensors(*outputs, "output", &binary, options));
    MG_RETURN_IF_ERROR(kserve_internal::CheckBinaryUsed(binary));
    return response;
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while decoding the response");
  } catch (const std::exception& e) {
    return Status::Internal(std::string("decoding the response: ") + e.what());
  }
}

}  // namespace modelgrid
