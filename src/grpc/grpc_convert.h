// Between the gRPC messages of kserve_grpc.proto and the service's structs
// (modelgrid/service/inference_service.h, modelgrid/kserve/infer_codec.h):
// what both the server (grpc_server.cc) and our client (grpc_client.cc) use,
// so that the two sides read and write the wire the same way. Pure
// functions, thread-safe; no gRPC channel or server here.
#pragma once

#include <grpcpp/support/status.h>

#include <nlohmann/json.hpp>
#include <string>

#include "kserve_grpc.pb.h"
#include "modelgrid/kserve/infer_codec.h"
#include "modelgrid/status.h"

namespace modelgrid::grpc_internal {

using ParameterMap = google::protobuf::Map<std::string, inference::InferParameter>;

// A parameter map as the JSON object the service reads (bool, int64,
// uint64, double, string values; an unset oneof is null).
nlohmann::json ParametersToJson(const ParameterMap& params);
// The other way. Errors: kInvalidArgument naming `who` and the key for a
// value that is not a bool, number or string (arrays, objects, null).
Status ParametersFromJson(const nlohmann::json& params, const std::string& who, ParameterMap* out);

// Decodes a ModelInferRequest: raw_input_contents (one per input, in
// order) or each input's typed `contents`, never both; every input checked
// against its shape and datatype (ValidateTensorData; typed values also
// against the datatype's range). Inputs in shared memory carry neither.
// The request's parameters stay in `parameters`; "binary_data_output" and
// each output's "binary_data" are HTTP-only and dropped.
// Errors: kInvalidArgument naming the input: unknown datatype, a raw entry
// count that is not the input count, both raw and typed contents, typed
// values of the wrong field or count or out of range, FP16/BF16 in typed
// contents (they have no typed field), duplicate input names.
Result<InferRequest> DecodeModelInferRequest(inference::ModelInferRequest* request);

// Encodes a request the other way (the client side), with raw contents.
Status EncodeModelInferRequest(const std::string& model, const std::string& version,
                               const InferRequest& request, inference::ModelInferRequest* out);

// Encodes a response: one raw_output_contents entry per output (empty for
// an output written to shared memory, whose parameters say where).
// Errors: kInvalidArgument for a parameter that cannot be carried.
Status EncodeModelInferResponse(const InferResponse& response, inference::ModelInferResponse* out);
// The same, moving each output's bytes into the message instead of copying
// them (`response`'s output data is left empty).
Status EncodeModelInferResponse(InferResponse&& response, inference::ModelInferResponse* out);

// Decodes a response (the client side): raw or typed contents. Errors:
// kInvalidArgument naming the output as DecodeModelInferRequest.
Result<InferResponse> DecodeModelInferResponse(inference::ModelInferResponse* response);

// The gRPC status for a ModelGrid status, as Triton maps its errors:
// kInvalidArgument, kCorruption INVALID_ARGUMENT; kNotFound NOT_FOUND;
// kAlreadyExists ALREADY_EXISTS; kUnavailable UNAVAILABLE;
// kResourceExhausted RESOURCE_EXHAUSTED; kUnsupported UNIMPLEMENTED;
// kPermissionDenied PERMISSION_DENIED; kInternal INTERNAL. The message is
// the status's.
grpc::Status ToGrpcStatus(const Status& status);
// The other way (the client side); codes without a counterpart map to
// kInternal / kUnavailable (DEADLINE_EXCEEDED, CANCELLED).
Status FromGrpcStatus(const grpc::Status& status);

}  // namespace modelgrid::grpc_internal
