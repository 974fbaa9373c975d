// Text generation on a ModelStreamInfer stream, as Triton streams a
// decoupled model (its vLLM and TensorRT-LLM backends): a request that
// follows the generation convention (service::IsTextGenerationRequest: a
// `stream` input or parameter; service/text_generation.h) runs through
// InferenceService::GenerateAsync and is answered with one
// ModelStreamInferResponse per piece of the generation when `stream` is
// true, else with one response holding the whole generation.
//
// Every response carries the request's id, the model's name and the
// version served, and the parameter `triton_final_response` (bool): true
// on the request's last response. Outputs: `text_output` BYTES [B] (the
// text this piece added, per prompt), `generated_ids` INT64 [B,N] (its
// token ids, -1 padded), `finish_reason` BYTES [B] ("" while a row goes
// on; "length", "eos", "stop") and `prompt_tokens` INT64 [B], or those the
// request names in `outputs`. With the request parameter
// `triton_enable_empty_final_response: true` no response with outputs is
// final: an empty response flagged final ends the request. An error is one
// response with `error_message` (flagged final); the stream stays open.
#pragma once

#include <functional>
#include <string>

#include "kserve_grpc.pb.h"
#include "modelgrid/kserve/infer_codec.h"
#include "modelgrid/service/inference_service.h"

namespace modelgrid::grpc_internal {

// Where one request's responses go. The functions are called from grid
// threads (and, for errors found before the generation starts, from the
// caller's); each must be thread-safe.
struct StreamSink {
  // Writes one response on the stream; false once the stream is broken.
  std::function<bool(const inference::ModelStreamInferResponse&)> write;
  // True once the client cancelled the call: the generation then stops at
  // its next piece (its pieces callback returns false).
  std::function<bool()> cancelled;
  // Called exactly once, after the request's last write.
  std::function<void()> finish;
};

// Runs the generation `request` asks of `model` at `version` ("" = the one
// served) and answers on `sink` as described above. Returns at once (the
// generation goes on on grid threads). Errors (answered on the sink):
// kInvalidArgument for a requested output that is not one of the four or
// that carries parameters, and service/text_generation.h's (the prompt,
// the fields); FindGeneratingModel's; GenerateAsync's (the backend's
// messages name the parameter, e.g. max_new_tokens past its limit).
void StreamTextGeneration(InferenceService* service, const std::string& model,
                          const std::string& version, InferRequest request, StreamSink sink);

}  // namespace modelgrid::grpc_internal
