// Test helper: rows of the small zoo's digits test set (tools/zoo: 360 rows
// of 64 FP32 features, test_set.json) as the FP32 bytes a request carries.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace modelgrid::testing {

// Rows [first, first + count) of `zoo`/digits/test_set.json as
// little-endian FP32 bytes, row after row (count x 64 x 4 bytes).
inline std::string DigitsRows(const std::filesystem::path& zoo, size_t first, size_t count) {
  std::ifstream in(zoo / "digits" / "test_set.json");
  const nlohmann::json set = nlohmann::json::parse(in);
  std::string bytes;
  for (size_t i = first; i < first + count; ++i) {
    const std::vector<float> row = set["inputs"][i].get<std::vector<float>>();
    bytes.append(reinterpret_cast<const char*>(row.data()), row.size() * sizeof(float));
  }
  return bytes;
}

}  // namespace modelgrid::testing
