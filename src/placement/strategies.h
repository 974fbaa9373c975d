// The placement strategies behind MakePlan. Each takes a built Problem and
// returns the filled CapacityState; none of them fails (items that fit
// nowhere simply stay unplaced). Every strategy packs the primary devices
// (accelerators) first and then hands what is left to the CPU fallback.
#pragma once

#include <chrono>
#include <vector>

#include "placement/capacity.h"
#include "placement/problem.h"

namespace modelgrid::placement {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

// --- building blocks (heuristics.cc) ---

// Item indices by request bytes, largest first; ties by priority (higher
// first), then input order.
std::vector<int> DecreasingOrder(const Problem& p);

// The device among `devices` where `item` may go now and leaves the least
// room (best fit); ties to the earlier device. -1 when none.
int BestFitDevice(const CapacityState& s, int item, const std::vector<int>& devices);

// Places the unplaced items of `order`, each on its best-fit device among
// `devices`.
void PlaceBestFit(CapacityState& s, const std::vector<int>& order, const std::vector<int>& devices);

// CPU fallback: the unplaced items of `order` go, best fit, to the fallback
// (CPU) devices while Problem::cpu_limit allows.
void PlaceFallback(CapacityState& s, const std::vector<int>& order);

// Best-fit decreasing on the primary devices, then the CPU fallback, for the
// items of `order` (the seed algorithm, with the real context charge).
void BestFitPipeline(CapacityState& s, const std::vector<int>& order);

// Gives every still-unplaced item, largest first, its best-fit device if one
// can take it now. Never removes anything.
void FillRemaining(CapacityState& s);

// --- strategies ---

CapacityState RunFillFirst(const Problem& p);          // heuristics.cc
CapacityState RunBalance(const Problem& p);            // heuristics.cc
CapacityState RunLatencySensitive(const Problem& p);   // heuristics.cc
CapacityState RunBestFitDecreasing(const Problem& p);  // heuristics.cc
// Best of BFD and a count-first candidate, then local improvement until no
// move helps or `deadline` passes (memory_optimized.cc).
CapacityState RunMemoryOptimized(const Problem& p, Deadline deadline);

struct OptimalResult {
  CapacityState state;
  bool proven = false;  // the search finished: nothing better exists
};
// Branch and bound seeded with the best heuristic (optimal.cc).
OptimalResult RunOptimal(const Problem& p, Deadline deadline);
// The search alone, starting from `seed` as the incumbent (tests start it
// from an empty state to exercise the bounds without a good seed).
OptimalResult RunBranchAndBound(const Problem& p, Deadline deadline, const CapacityState& seed);

}  // namespace modelgrid::placement
