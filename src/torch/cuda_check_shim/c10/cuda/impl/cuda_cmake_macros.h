// Stand-in for the header PyTorch's CMake generates next to c10/cuda. Debian's
// libtorch-dev ships c10/cuda headers without it; only the compile check of
// src/torch/cuda_memory.cc (modelgrid_cuda_compile_check) sees this file. A
// CUDA LibTorch brings its own.
#pragma once
