// For tests of the `gpu` CTest label (scripts/gpu-check.sh runs `ctest -L
// gpu`): when every test of the program skipped (no GPU or no CUDA build
// here) the program exits with 77, which CTest reports as "Skipped"
// (SKIP_RETURN_CODE 77), so the skip shows in the summary instead of passing
// silently. Any failure keeps gtest's exit code. Include it in exactly one
// file of a test program.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

namespace modelgrid::testing {

class ExitSkippedWhenNothingRan : public ::testing::EmptyTestEventListener {
  void OnTestProgramEnd(const ::testing::UnitTest& unit) override {
    if (unit.test_to_run_count() > 0 && unit.skipped_test_count() == unit.test_to_run_count()) {
      std::fflush(stdout);
      std::_Exit(77);
    }
  }
};

inline const bool kExitSkippedListenerAdded = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new ExitSkippedWhenNothingRan);
  return true;
}();

}  // namespace modelgrid::testing
