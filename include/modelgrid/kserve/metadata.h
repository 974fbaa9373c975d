// Server and model metadata bodies of the KServe v2 protocol
// (reference/kserve_v2.md, "REST paths": GET /v2 and
// GET /v2/models/{m}[/versions/{v}]). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/repository.h"

namespace modelgrid {

// {"name": name, "version": version, "extensions": [...]}.
nlohmann::json ServerMetadataJson(std::string_view name, std::string_view version,
                                  const std::vector<std::string>& extensions);

// The shape a client sees for `spec`: its dims, preceded by -1 (the variable
// batch dimension) when the model batches (max_batch_size > 0), as Triton
// reports it. Variable dims stay -1.
std::vector<int64_t> MetadataShape(const TensorSpec& spec, int64_t max_batch_size);

// {"name", "versions"?: [...] (left out when empty), "platform",
//  "inputs": [{"name", "datatype", "shape"}], "outputs": [...]}, with shapes
// from MetadataShape. The TorchScript platform string is
// "pytorch_torchscript".
nlohmann::json ModelMetadataJson(std::string_view name, const std::vector<std::string>& versions,
                                 std::string_view platform, const std::vector<TensorSpec>& inputs,
                                 const std::vector<TensorSpec>& outputs, int64_t max_batch_size);

}  // namespace modelgrid
