// Which backend runs a model (modelgrid/backend/model_backend.h), chosen from
// the model's files and configuration. Torch-free: the frontend decides the
// kind and tells the worker (ipc::LoadMessage::backend).
#pragma once

#include <string>
#include <string_view>

#include "modelgrid/repository.h"
#include "modelgrid/status.h"

namespace modelgrid {

// The LibTorch TorchScript backend: <version>/model.pt (TorchScriptBackend).
inline constexpr std::string_view kTorchScriptBackendKind = "torchscript";
// The native Hugging Face backend: config.json + safetensors weights by their
// Hugging Face names, tokenizer.json (HuggingFaceBackend).
inline constexpr std::string_view kHuggingFaceBackendKind = "huggingface";

// The backend kind for `model`, by the first rule that applies:
//   1. config.yaml's `backend` (ModelConfig::backend), when set;
//   2. a TorchScript export (<version>/model.pt) → "torchscript" (a Hugging
//      Face folder that carries an export runs the export, as Triton would);
//   3. config.json and safetensors weights → "huggingface".
// Errors: kInvalidArgument for an unknown `backend` value; kNotFound naming
// the folder and the files the chosen kind needs when they are missing
// ("backend torchscript needs <version>/model.pt", "backend huggingface
// needs config.json and *.safetensors").
Result<std::string> BackendKindFor(const ModelEntry& model);

}  // namespace modelgrid
