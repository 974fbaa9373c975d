// The weight side of an estimate: what a model's files say it will hold on
// the device (estimator.cc uses it; see include/modelgrid/estimate.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "estimate/hf_config.h"
#include "modelgrid/device.h"
#include "modelgrid/repository.h"
#include "modelgrid/status.h"

namespace modelgrid::estimate {

struct ModelWeights {
  uint64_t bytes = 0;                 // parameter + buffer bytes held on the device
  uint64_t parameters = 0;            // elements (safetensors tensors, else TorchScript storages)
  std::vector<uint64_t> allocations;  // one entry per device allocation, in load order
  uint64_t compute_dtype_bytes = 4;   // element size of the floating weights that run
  std::optional<HfConfig> config;     // parsed config.json, when the model has one
  std::string source;                 // "model.pt", "safetensors" or "none"
  // Bytes loading holds on top of the weights, transiently: for model.pt the
  // archive's non-tensor records (TorchScriptArchive::other_record_bytes).
  uint64_t load_transient_bytes = 0;
  std::vector<std::string> notes;
};

// Gathers the weights of `model` on `device`:
//   - with a TorchScript file, the bytes of its data/ and constants/ records
//     (what runs), one allocation per storage record;
//   - else, for HF models, the safetensors tensors (a tied lm_head that the
//     file also holds is counted once) at the native backend's compute dtype
//     (src/hf/native_model.h), plus NonPersistentBufferBytes: on the CPU
//     F32/F16/BF16 tensors at 4 bytes per element (fp16/bf16 files are
//     upcast at load: twice their file bytes; fp32 tensors are views of the
//     mapped file, resident all the same), and compute_dtype_bytes 4; on
//     CUDA at config.yaml's dtype when set, else the file's bytes;
// and, when config.json and/or safetensors exist, cross-checks them
// (ArchitectureParameterCount vs the header element count, differences over
// 0.5 % become notes naming both numbers; TorchScript vs safetensors bytes).
// Errors: those of ReadTorchScriptArchive, ReadSafetensorsHeader,
// ReadShardedSafetensors and ReadHfConfig; kInvalidArgument for an unknown
// config.yaml dtype.
Result<ModelWeights> GatherWeights(const ModelEntry& model, DeviceKind device);

}  // namespace modelgrid::estimate
