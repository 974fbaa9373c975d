// memory-optimized: best-fit decreasing, a count-first alternative, then
// local moves that each strictly improve (instances placed, bytes placed)
// until none applies or the time budget runs out. Because plain BFD is one
// of the starting candidates and every accepted move is a strict
// improvement, the result is never worse than plain BFD.
#include <algorithm>

#include "placement/strategies.h"

namespace modelgrid::placement {
namespace {

// True when `item` may use some device at all (ignoring what is placed).
bool Placeable(const CapacityState& empty, int item) {
  for (int d = 0; d < empty.problem().num_devices(); ++d) {
    if (empty.CanPlace(item, d)) return true;
  }
  return false;
}

// Count-first candidate: the largest k such that best-fit decreasing places
// all of the k smallest placeable items (binary search; a heuristic, as
// feasibility is not monotone in k), then the rest best-fit decreasing.
// Maximizing instances first rewards packing many small models before a
// big one that would crowd them out.
CapacityState SmallestFirstCandidate(const Problem& p) {
  const CapacityState empty(p);
  std::vector<int> ascending = DecreasingOrder(p);
  std::reverse(ascending.begin(), ascending.end());
  std::erase_if(ascending, [&](int item) { return !Placeable(empty, item); });

  auto pack_smallest = [&](size_t k) {
    std::vector<int> subset(ascending.begin(), ascending.begin() + k);
    std::reverse(subset.begin(), subset.end());  // decreasing again
    CapacityState s(p);
    BestFitPipeline(s, subset);
    return s;
  };
  size_t lo = 0, hi = ascending.size();  // invariant: pack_smallest(lo) places all
  while (lo < hi) {
    const size_t mid = lo + (hi - lo + 1) / 2;
    if (pack_smallest(mid).objective().count == static_cast<int>(mid)) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  CapacityState s = pack_smallest(lo);
  FillRemaining(s);
  return s;
}

class Improver {
 public:
  Improver(CapacityState& s, Deadline deadline) : s_(s), p_(s.problem()), deadline_(deadline) {
    const CapacityState empty(p_);
    for (int item : DecreasingOrder(p_)) {
      if (Placeable(empty, item)) candidates_.push_back(item);
    }
  }

  void Run() {
    bool improved = true;
    while (improved && !Expired()) {
      improved = false;
      for (int u : candidates_) {
        if (s_.DeviceOf(u) >= 0) continue;
        if (Expired()) return;
        if (TryInsert(u) || TryRelocateThenInsert(u)) improved = true;
      }
      for (int x : candidates_) {
        if (s_.DeviceOf(x) < 0) continue;
        if (Expired()) return;
        if (TryEvictAndRefill(x)) improved = true;
      }
    }
  }

 private:
  bool Expired() const { return Clock::now() >= deadline_; }

  // `u` fits as things are: accelerators first, then the CPU fallback.
  bool TryInsert(int u) {
    int d = BestFitDevice(s_, u, p_.primary);
    if (d < 0) d = BestFitDevice(s_, u, p_.fallback);
    if (d < 0) return false;
    s_.Place(u, d);
    return true;
  }

  // Moves one placed item x off device d to another device so that `u` fits
  // on d.
  bool TryRelocateThenInsert(int u) {
    const Item& iu = p_.items[u];
    for (int d = 0; d < p_.num_devices(); ++d) {
      if (!s_.Allowed(u, d)) continue;
      for (int x : candidates_) {
        if (s_.DeviceOf(x) != d) continue;
        // Quick necessary test: freeing x (and its context) must be enough.
        const uint64_t freed = SatAdd(p_.items[x].request, p_.device(d).context_bytes);
        if (SatAdd(s_.Room(d), freed) < iu.request) continue;
        s_.Remove(x);
        if (s_.CanPlace(u, d)) {
          s_.Place(u, d);
          for (int e = 0; e < p_.num_devices(); ++e) {
            if (e != d && s_.CanPlace(x, e)) {
              s_.Place(x, e);
              return true;
            }
          }
          s_.Remove(u);
        }
        s_.Place(x, d);
      }
    }
    return false;
  }

  // Takes x off its device and refills that device with unplaced items,
  // smallest first (more instances) or largest first (more bytes); keeps
  // the change only when the objective strictly improves. x stays unplaced
  // and may find another device on the next pass.
  bool TryEvictAndRefill(int x) {
    const int d = s_.DeviceOf(x);
    const Objective before = s_.objective();
    s_.Remove(x);
    for (bool smallest_first : {true, false}) {
      std::vector<int> added;
      auto try_add = [&](int u) {
        if (u != x && s_.DeviceOf(u) < 0 && s_.CanPlace(u, d)) {
          s_.Place(u, d);
          added.push_back(u);
        }
      };
      if (smallest_first) {
        for (auto it = candidates_.rbegin(); it != candidates_.rend(); ++it) try_add(*it);
      } else {
        for (int u : candidates_) try_add(u);
      }
      if (s_.objective() > before) return true;
      for (int u : added) s_.Remove(u);
    }
    s_.Place(x, d);
    return false;
  }

  CapacityState& s_;
  const Problem& p_;
  Deadline deadline_;
  std::vector<int> candidates_;  // placeable items, largest first
};

}  // namespace

CapacityState RunMemoryOptimized(const Problem& p, Deadline deadline) {
  CapacityState best = RunBestFitDecreasing(p);
  CapacityState alt = SmallestFirstCandidate(p);
  if (alt.objective() > best.objective()) best = std::move(alt);
  Improver(best, deadline).Run();
  return best;
}

}  // namespace modelgrid::placement
