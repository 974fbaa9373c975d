#include "modelgrid/torch/torch_info.h"

#include <torch/version.h>

namespace modelgrid {

std::string TorchVersion() { return TORCH_VERSION; }

bool TorchHasCuda() {
#ifdef MODELGRID_TORCH_HAS_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace modelgrid
