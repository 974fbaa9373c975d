// Private to src/backend/: the loaded state behind TorchScriptBackend and the
// tensor conversions shared by backend.cc (load, run) and generate.cc.
// Includes LibTorch: never include it from a public header.
#pragma once

#include <torch/script.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/backend/backend.h"

namespace modelgrid::backend_internal {

// One input a task expects.
struct InputSpec {
  TensorSpec spec;
  bool typed = true;      // datatype and dims known (config.yaml); else names only
  bool optional = false;  // the method's argument has a default value
};

// A task: which method it calls and what it takes.
struct TaskInfo {
  std::string method;
  std::vector<InputSpec> inputs;
  bool by_name = false;  // pass inputs as keyword arguments (specs from the schema)
};

struct LoadedModel {
  ModelEntry model;
  torch::jit::Module module;
  c10::Device device{c10::kCPU};
  std::map<std::string, TaskInfo> tasks;  // generate excluded: it is handled apart
  bool causal_lm = false;
  std::optional<int64_t> max_positions;  // from config.json
  std::string max_positions_key;         // which config.json field gave it
};

// Checks `inputs` against `task`'s specs (see TorchScriptBackend::Run) and
// wraps them as tensors on the model's device, in spec order; an optional
// input that was not given is an undefined tensor. The CPU tensors alias
// the viewed bytes (no copy).
Result<std::vector<torch::Tensor>> ToTorchInputs(const LoadedModel& m, const std::string& task_name,
                                                 const TaskInfo& task,
                                                 std::span<const InferTensorView> inputs);

// Copies `t` (any device, any layout) into an InferTensor named `name`.
// Errors: kUnsupported for dtypes KServe cannot carry (complex, quantized).
Result<InferTensor> FromTorch(const torch::Tensor& t, std::string name);

// The `generate` task (generate.cc).
Result<std::vector<InferTensor>> Generate(const LoadedModel& m,
                                          std::span<const InferTensorView> inputs,
                                          const nlohmann::json& params);

}  // namespace modelgrid::backend_internal
