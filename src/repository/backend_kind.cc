// BackendKindFor (modelgrid/backend/backend_kind.h).

#include "modelgrid/backend/backend_kind.h"

namespace modelgrid {

namespace {

bool HasTorchScript(const ModelEntry& m) { return m.torchscript.has_value(); }
bool HasHuggingFace(const ModelEntry& m) { return m.hf_config.has_value() && !m.safetensors.empty(); }

}  // namespace

Result<std::string> BackendKindFor(const ModelEntry& model) {
  const std::string& wanted = model.config.backend;
  const std::string where = "model '" + model.name + "' (" + model.dir.string() + ")";
  if (wanted == kTorchScriptBackendKind) {
    if (!HasTorchScript(model)) {
      return Status::NotFound(where + ": backend torchscript needs <version>/model.pt");
    }
    return std::string(kTorchScriptBackendKind);
  }
  if (wanted == kHuggingFaceBackendKind) {
    if (!HasHuggingFace(model)) {
      return Status::NotFound(where + ": backend huggingface needs config.json and *.safetensors");
    }
    return std::string(kHuggingFaceBackendKind);
  }
  if (!wanted.empty()) {
    return Status::InvalidArgument(where + ": unknown backend '" + wanted +
                                   "' (expected torchscript or huggingface)");
  }
  if (HasTorchScript(model)) return std::string(kTorchScriptBackendKind);
  if (HasHuggingFace(model)) return std::string(kHuggingFaceBackendKind);
  return Status::NotFound(where + ": no files a backend runs (<version>/model.pt for torchscript, "
                                  "config.json and *.safetensors for huggingface)");
}

}  // namespace modelgrid
