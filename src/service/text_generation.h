// Triton's text-generation conventions read into a GenerateRequest
// (modelgrid/service/inference_service.h), so that both transports map
// them the same way: the HTTP generate extension (src/server/
// routes_generate.cc: a JSON body) and decoupled streaming over gRPC's
// ModelStreamInfer (src/grpc/grpc_generate_stream.cc: a decoded KServe
// request). Pure functions, thread-safe, no transport library.
//
// The conventions (those of Triton's generate extension and of its vLLM
// and TensorRT-LLM backends; src/grpc/README.md lists where each comes from):
//   prompt        `text_input` (or `text`) BYTES / JSON string or array of
//                 strings, one prompt per element; or `input_ids` INT64
//                 [B,S] / JSON array (of arrays) of token ids, with an
//                 optional `attention_mask` alike;
//   stream        bool: answer piece by piece (one response per call of
//                 the generation) instead of once;
//   triton_enable_empty_final_response
//                 bool (a request parameter, Triton's): end with an empty
//                 response flagged final instead of flagging the last piece;
//   sampling_parameters
//                 a JSON object, or a string holding one (vLLM's): its
//                 fields are read as generation parameters;
//   max_tokens / max_new_tokens, temperature (0 = greedy, else sampling at
//                 that temperature unless do_sample says otherwise),
//                 do_sample, top_k, top_p, seed, stop, ignore_eos: the
//                 generate task's parameters (modelgrid/backend/hf_backend.h),
//                 checked there;
//   exclude_input_in_output
//                 true only: the answer is the generated text alone;
//   priority      integer, as for infer; task: "generate" or absent.
// Every other name is refused, naming it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "modelgrid/kserve/infer_codec.h"
#include "modelgrid/service/inference_service.h"

namespace modelgrid::service {

// A generation request as a client asked for it.
struct TextGeneration {
  GenerateRequest request;            // model, version, id, the prompt input, params
  bool stream = false;                // `stream`
  bool empty_final_response = false;  // `triton_enable_empty_final_response`
};

// True when a decoded infer request follows the generation convention:
// it has a `stream` parameter or a `stream` input (whatever its value).
// A gRPC stream sends such requests to GenerateAsync instead of infer.
bool IsTextGenerationRequest(const InferRequest& request);

// Reads a decoded KServe infer request for `model` at `version` ("" = the
// one served): the prompt inputs become the generate task's (`text_input`
// renamed `text`), every other input must hold one value (BYTES: one or
// more strings) and is read as a field of that name, then every request
// parameter is. Requested outputs are not read here. Errors:
// kInvalidArgument naming the input or parameter: no prompt or two,
// a prompt of the wrong datatype, a field of the wrong type, an unknown
// name, `sampling_parameters` that is not a JSON object.
Result<TextGeneration> TextGenerationFromInfer(const std::string& model, const std::string& version,
                                               InferRequest request);

// Reads a generate extension body (a JSON object): `id` (string,
// optional), the prompt fields, `parameters` (an object), and every other
// field as a parameter (a one-element array counts as its element). Errors
// as TextGenerationFromInfer's, naming the field.
Result<TextGeneration> TextGenerationFromJson(const std::string& model, const std::string& version,
                                              const nlohmann::json& body);

// The status of `model` at `version` when it generates text. Errors:
// FindModel's; kInvalidArgument "model 'm' does not generate text (tasks:
// ...)" for a loaded model without the generate task.
Result<ModelStatus> FindGeneratingModel(const InferenceService& service, const std::string& model,
                                        const std::string& version);

}  // namespace modelgrid::service
