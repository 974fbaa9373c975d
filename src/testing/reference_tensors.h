// Test helper (LibTorch): every tensor of a safetensors file, read with the
// estimator's header parser, as CPU tensors (F32, F16, BF16, I64). Used to
// compare models with the reference outputs tools/zoo writes.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "estimate/safetensors.h"

namespace modelgrid::testing {

inline std::map<std::string, torch::Tensor> ReadReferenceTensors(const std::filesystem::path& path) {
  std::map<std::string, torch::Tensor> out;
  auto header = estimate::ReadSafetensorsHeader(path);
  EXPECT_TRUE(header.ok()) << header.status().ToString();
  if (!header.ok()) return out;
  std::ifstream in(path, std::ios::binary);
  for (const auto& t : header->tensors) {
    c10::ScalarType type = t.dtype == "I64"   ? c10::kLong
                           : t.dtype == "F32" ? c10::kFloat
                           : t.dtype == "F16" ? c10::kHalf
                                              : c10::kBFloat16;
    std::vector<int64_t> shape(t.shape.begin(), t.shape.end());
    torch::Tensor tensor = torch::empty(shape, torch::TensorOptions().dtype(type));
    EXPECT_EQ(static_cast<uint64_t>(tensor.nbytes()), t.bytes) << t.name;
    in.seekg(static_cast<std::streamoff>(8 + header->header_bytes + t.begin));
    in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(t.bytes));
    out[t.name] = tensor;
  }
  return out;
}

}  // namespace modelgrid::testing
