// Test helper: the small zoo the tests run real models from
// (tools/zoo/generate.py --profile small; CTest sets MODELGRID_TEST_ZOO to it).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>

namespace modelgrid::testing {

// $MODELGRID_TEST_ZOO when it names a folder, else nullopt.
inline std::optional<std::filesystem::path> Zoo() {
  const char* zoo = std::getenv("MODELGRID_TEST_ZOO");
  if (!zoo || !std::filesystem::is_directory(zoo)) return std::nullopt;
  return std::filesystem::path(zoo);
}

// $MODELGRID_TEST_TRITON_ZOO when it names a folder, else nullopt: the zoo's
// Triton-layout copy (config.pbtxt only; tools/zoo/generate.py --triton-out).
inline std::optional<std::filesystem::path> TritonZoo() {
  const char* zoo = std::getenv("MODELGRID_TEST_TRITON_ZOO");
  if (!zoo || !std::filesystem::is_directory(zoo)) return std::nullopt;
  return std::filesystem::path(zoo);
}

}  // namespace modelgrid::testing

// In a gtest body: skips the test, saying why, without the zoo; otherwise
// declares `const std::filesystem::path zoo`.
#define REQUIRE_ZOO()                                                            \
  auto zoo_opt = ::modelgrid::testing::Zoo();                                    \
  if (!zoo_opt) GTEST_SKIP() << "MODELGRID_TEST_ZOO is not set or not a folder"; \
  const std::filesystem::path zoo = *zoo_opt
