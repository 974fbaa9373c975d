// Test helper: a Grid as the service and transport tests make it — one
// device "cpu=8GiB", one LibTorch thread per worker, the build's
// modelgrid-worker — and the same with the small zoo's digits loaded.
// Needs MODELGRID_BINARY_DIR (modelgrid_add_test defines it) and gtest.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "modelgrid/grid.h"

namespace modelgrid::testing {

// The options of a test grid in `isolation`.
inline GridOptions TestGridOptions(Isolation isolation) {
  GridOptions o;
  o.isolation = isolation;
  o.devices = {"cpu=8GiB"};
  o.worker_threads = 1;
  o.worker_executable = MODELGRID_BINARY_DIR "/bin/modelgrid-worker";
  return o;
}

// A test grid in `isolation` serving `zoo`/digits as "digits" (LoadAll
// done); null, with a failure recorded, when it cannot be made.
inline std::unique_ptr<Grid> DigitsGrid(Isolation isolation, const std::filesystem::path& zoo) {
  auto created = Grid::Create(TestGridOptions(isolation));
  EXPECT_TRUE(created.ok()) << created.status().ToString();
  if (!created.ok()) return nullptr;
  std::unique_ptr<Grid> grid = std::move(created).value();
  Status added = grid->AddModel({"digits", zoo / "digits", {}, {}});
  EXPECT_TRUE(added.ok()) << added.ToString();
  if (!added.ok()) return nullptr;
  auto plan = grid->LoadAll();
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  return grid;
}

}  // namespace modelgrid::testing
