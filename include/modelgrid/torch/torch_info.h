// Facts about the LibTorch this binary was built against. Declared without
// LibTorch headers so that callers stay light.
#pragma once

#include <string>

namespace modelgrid {

// LibTorch's version string, e.g. "1.13.0a0" (TORCH_VERSION at build time).
std::string TorchVersion();

// True when the LibTorch this binary links was built with CUDA.
bool TorchHasCuda();

}  // namespace modelgrid
