// optimal: depth-first branch and bound over "item → device or unplaced",
// maximizing (instances placed, bytes placed) lexicographically.
//
// - Items that no device could hold even alone are left out up front.
// - The rest are ordered by request, largest first; identical items (same
//   request, same allowed devices, and same model when the model has
//   several replicas) are adjacent and must take non-decreasing device
//   indices, "unplaced" counting as the last index (item symmetry).
// - Devices that are indistinguishable (same capacity figures, same kind of
//   role, allowed by the same items) form a class; an item may open only the
//   first empty device of a class (device symmetry).
// - Bounds at each node, for the remaining items R (a suffix of the order):
//     count ≤ placed + min(|R|, Σ_d k_d, k_pooled), k_d = most of the
//             smallest items of R that fit in d's room (contexts included),
//             the CPU share capped by the fallback slots left; k_pooled = the
//             same over the rooms summed, each item paying the smallest
//             per-item context;
//     bytes ≤ placed + min(Σ R, Σ_d (room_d − one per-item context)), and
//             when the count bound only ties the incumbent (exactly
//             need = incumbent − placed more items), also ≤ placed + the
//             `need` largest items of R, and ≤ placed + Σ_d room_d − need ×
//             the smallest per-item context.
//   A node is cut when its bound is not better than the incumbent.
// - Ties in (count, bytes) go to fewer devices used, then fewer workers,
//   among the plans the search visits (not part of the proof).
// - Two passes: the first cuts every node that cannot raise the count (it
//   settles the most instances quickly); the second searches the
//   count-optimal packings for more bytes. Bytes are the hard part: with
//   arbitrary sizes, proving that no packing comes a few MiB closer to full
//   can take exponential time, and then the budget ends the search.
// - The incumbent starts as the best heuristic plan; the search stops at the
//   deadline and returns the best found (proven = false). Beyond 10,000
//   items only the root bound is checked.
#include <algorithm>

#include "placement/strategies.h"

namespace modelgrid::placement {
namespace {

// Among plans equal in (count, bytes): fewer devices used, then fewer
// workers. Best effort: only plans the search visits anyway compete; the
// bounds do not chase it (that would turn "everything fits" into bin-packing
// minimization).
std::pair<int, int> TieKey(const CapacityState& s) {
  int devices = 0, workers = 0;
  for (int d = 0; d < s.problem().num_devices(); ++d) {
    devices += s.Instances(d) > 0 ? 1 : 0;
    workers += s.Workers(d);
  }
  return {devices, workers};
}

class BranchAndBound {
 public:
  BranchAndBound(const Problem& p, Deadline deadline, const CapacityState& seed)
      : p_(p), state_(p), deadline_(deadline) {
    best_ = seed.objective();
    best_tie_ = TieKey(seed);
    best_assign_ = seed.assignment();
    OrderItems();
    ClassifyDevices();
  }

  // Searches; returns true when the search completed (the incumbent is optimal).
  bool Run() {
    // Phase 1 settles the instance count (cheap to prove); phase 2 then
    // searches only count-optimal packings for more bytes.
    count_phase_ = false;
    if (order_.size() > kMaxSearchItems) return !MayImprove(0);  // root bound only
    count_phase_ = true;
    dev_at_.assign(order_.size(), num_devices());
    Dfs(0);
    if (aborted_) return false;
    count_phase_ = false;
    Dfs(0);
    return !aborted_;
  }

  const std::vector<int>& best_assignment() const { return best_assign_; }

 private:
  // The search recurses once per item; past this many items it would risk
  // the stack (and could not finish anyway), so only the root bound is
  // checked and the heuristic incumbent is returned.
  static constexpr size_t kMaxSearchItems = 10000;

  int num_devices() const { return p_.num_devices(); }

  void OrderItems() {
    const CapacityState empty(p_);
    for (int i = 0; i < p_.num_items(); ++i) {
      for (int d = 0; d < num_devices(); ++d) {
        if (empty.CanPlace(i, d)) {
          order_.push_back(i);
          break;
        }
      }
    }
    std::vector<int> instances(p_.num_models, 0);
    for (int i : order_) ++instances[p_.items[i].model_id];
    group_.assign(p_.num_items(), -1);
    for (int i : order_) {
      if (instances[p_.items[i].model_id] > 1) group_[i] = p_.items[i].model_id;
    }
    std::stable_sort(order_.begin(), order_.end(), [&](int a, int b) {
      const Item& x = p_.items[a];
      const Item& y = p_.items[b];
      if (x.request != y.request) return x.request > y.request;
      if (x.allowed != y.allowed) return x.allowed < y.allowed;
      return group_[a] < group_[b];
    });
    const size_t n = order_.size();
    same_as_prev_.assign(n, 0);
    prefix_.assign(n + 1, 0);
    for (size_t k = 0; k < n; ++k) {
      const Item& it = p_.items[order_[k]];
      prefix_[k + 1] = SatAdd(prefix_[k], it.request);
      if (k > 0) {
        const Item& prev = p_.items[order_[k - 1]];
        same_as_prev_[k] = prev.request == it.request && prev.allowed == it.allowed &&
                           group_[order_[k - 1]] == group_[order_[k]];
      }
    }
  }

  void ClassifyDevices() {
    earlier_twins_.assign(num_devices(), {});
    for (int d = 0; d < num_devices(); ++d) {
      for (int e = 0; e < d; ++e) {
        if (Twins(e, d)) earlier_twins_[d].push_back(e);
      }
    }
  }

  bool Twins(int a, int b) const {
    const Device& x = p_.device(a);
    const Device& y = p_.device(b);
    if (x.total_bytes != y.total_bytes || x.used_bytes != y.used_bytes ||
        x.context_bytes != y.context_bytes || p_.buffer[a] != p_.buffer[b] ||
        p_.is_fallback[a] != p_.is_fallback[b]) {
      return false;
    }
    for (int i : order_) {
      if (p_.items[i].allowed[a] != p_.items[i].allowed[b]) return false;
    }
    return true;
  }

  // Sum of the k smallest remaining requests (the last k of the order).
  uint64_t SmallestSum(size_t k) const { return prefix_.back() - prefix_[order_.size() - k]; }

  // Most of the smallest remaining items (at most `remaining`) that fit in
  // `room` when each also costs `per_item` bytes.
  size_t MostThatFit(uint64_t room, uint64_t per_item, size_t remaining) const {
    size_t lo = 0, hi = remaining;
    while (lo < hi) {
      const size_t mid = lo + (hi - lo + 1) / 2;
      if (SatAdd(SmallestSum(mid), SatMul(per_item, mid)) <= room) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo;
  }

  // True when the subtree below position `pos` may still beat the incumbent.
  bool MayImprove(size_t pos) const {
    const size_t remaining = order_.size() - pos;
    const Objective now = state_.objective();
    size_t k_primary = 0, k_fallback = 0;
    uint64_t usable = 0;    // Σ room − one per-item charge, over devices that can take one
    uint64_t room_sum = 0;  // Σ room over the same devices
    uint64_t min_per_item = UINT64_MAX;
    for (int d = 0; d < num_devices(); ++d) {
      if (state_.Over(d) || state_.CpuFull(d)) continue;
      uint64_t room = state_.Room(d);
      const uint64_t ctx = p_.device(d).context_bytes;
      uint64_t per_item = 0;
      switch (p_.options.isolation) {
        case Isolation::kModel:
          per_item = ctx;
          break;
        case Isolation::kDevice:
          if (state_.Instances(d) == 0) {
            if (room < ctx) continue;
            room -= ctx;
          }
          break;
        case Isolation::kNone:
          break;
      }
      const size_t k = MostThatFit(room, per_item, remaining);
      if (k == 0) continue;
      (p_.is_fallback[d] ? k_fallback : k_primary) += k;
      usable = SatAdd(usable, room - per_item);
      room_sum = SatAdd(room_sum, room);
      min_per_item = std::min(min_per_item, per_item);
    }
    if (p_.cpu_limit >= 0) {
      k_fallback = std::min<size_t>(k_fallback, p_.cpu_limit - state_.CpuInstances());
    }
    // Pooled over devices: the smallest items must also fit in the total room.
    const size_t k_pooled =
        min_per_item == UINT64_MAX ? 0 : MostThatFit(room_sum, min_per_item, remaining);
    const int count_ub =
        now.count + static_cast<int>(std::min({remaining, k_primary + k_fallback, k_pooled}));
    if (count_ub != best_.count || count_phase_) return count_ub > best_.count;
    // Only ties on count remain: exactly `need` more items get placed.
    const size_t need = static_cast<size_t>(best_.count - now.count);
    uint64_t bytes_room =
        std::min({prefix_.back() - prefix_[pos], usable, prefix_[pos + need] - prefix_[pos]});
    if (need > 0) {  // each of them pays at least the smallest per-item charge
      const uint64_t charges = SatMul(min_per_item, need);
      bytes_room = std::min(bytes_room, room_sum > charges ? room_sum - charges : 0);
    }
    return SatAdd(now.bytes, bytes_room) > best_.bytes;
  }

  // Device symmetry: an empty device is tried only if no earlier twin is empty.
  bool FirstEmptyTwin(int d) const {
    if (state_.Instances(d) != 0) return true;
    for (int e : earlier_twins_[d]) {
      if (state_.Instances(e) == 0) return false;
    }
    return true;
  }

  bool Expired() {
    if ((++nodes_ & 255) == 0 && Clock::now() >= deadline_) aborted_ = true;
    return aborted_;
  }

  void Dfs(size_t pos) {
    if (Expired()) return;
    const Objective now = state_.objective();
    if (now > best_ || (now == best_ && TieKey(state_) < best_tie_)) {
      best_ = now;
      best_tie_ = TieKey(state_);
      best_assign_ = state_.assignment();
    }
    if (pos == order_.size() || !MayImprove(pos)) return;
    const int item = order_[pos];
    const int unplaced = num_devices();
    int first = 0;
    if (same_as_prev_[pos]) {
      first = dev_at_[pos - 1];
      if (first == unplaced) {  // an identical item before it stayed unplaced
        dev_at_[pos] = unplaced;
        Dfs(pos + 1);
        return;
      }
    }
    // Candidates, best fit first.
    std::vector<std::pair<uint64_t, int>> candidates;
    for (int d = first; d < num_devices(); ++d) {
      if (state_.CanPlace(item, d) && FirstEmptyTwin(d)) {
        candidates.emplace_back(state_.Room(d) - state_.Charge(item, d), d);
      }
    }
    std::sort(candidates.begin(), candidates.end());
    for (const auto& [left, d] : candidates) {
      state_.Place(item, d);
      dev_at_[pos] = d;
      Dfs(pos + 1);
      state_.Remove(item);
      if (aborted_) return;
    }
    dev_at_[pos] = unplaced;
    Dfs(pos + 1);
  }

  const Problem& p_;
  CapacityState state_;
  Deadline deadline_;
  std::vector<int> order_;          // items searched, largest first
  std::vector<int> group_;          // per item: model id when it has replicas here, else -1
  std::vector<char> same_as_prev_;  // per position: identical to the previous item
  std::vector<uint64_t> prefix_;    // prefix sums of requests along order_
  std::vector<int> dev_at_;         // per position: device chosen, num_devices() = unplaced
  std::vector<std::vector<int>> earlier_twins_;  // per device: earlier devices of its class
  Objective best_;
  std::pair<int, int> best_tie_;  // TieKey of the incumbent
  std::vector<int> best_assign_;
  uint64_t nodes_ = 0;
  bool aborted_ = false;
  bool count_phase_ = true;  // phase 1: only a higher count counts as better
};

// The best of the heuristics, the incumbent the search starts from.
CapacityState BestHeuristic(const Problem& p, Deadline deadline) {
  const Deadline improve_until = Clock::now() + (deadline - Clock::now()) / 4;
  CapacityState best = RunMemoryOptimized(p, improve_until);
  for (CapacityState s :
       {RunBestFitDecreasing(p), RunFillFirst(p), RunBalance(p), RunLatencySensitive(p)}) {
    if (s.objective() > best.objective() ||
        (s.objective() == best.objective() && TieKey(s) < TieKey(best))) {
      best = std::move(s);
    }
  }
  return best;
}

}  // namespace

OptimalResult RunBranchAndBound(const Problem& p, Deadline deadline, const CapacityState& seed) {
  BranchAndBound search(p, deadline, seed);
  const bool proven = search.Run();
  CapacityState result(p);
  const std::vector<int>& assign = search.best_assignment();
  for (int i = 0; i < p.num_items(); ++i) {
    if (assign[i] >= 0) result.Place(i, assign[i]);
  }
  if (!proven) FillRemaining(result);
  return {std::move(result), proven};
}

OptimalResult RunOptimal(const Problem& p, Deadline deadline) {
  return RunBranchAndBound(p, deadline, BestHeuristic(p, deadline));
}

}  // namespace modelgrid::placement
