// Turning a filled CapacityState into the public Plan: assignments,
// per-device usage and a specific reason for every unplaced instance.
#pragma once

#include <string>

#include "modelgrid/placement.h"
#include "placement/capacity.h"

namespace modelgrid::placement {

// Why `item` (unplaced in `s`) cannot go anywhere in the final state, naming
// the numbers, e.g. "needs 90.00 GiB, largest free capacity is 79.50 GiB
// (sim:a100#0)", "pinned to cuda:3 which is not a device", "replica 1
// cannot share a device with replica 0 and no other device fits (...)",
// "...; CPU fallback full (max_cpu_models=2)".
std::string UnplacedReason(const CapacityState& s, int item);

// The plan for `s`: placed and unplaced in input item order, devices in
// input device order. Plan::strategy and isolation come from the problem's
// options.
Plan BuildPlan(const CapacityState& s, bool optimal_proven);

}  // namespace modelgrid::placement
