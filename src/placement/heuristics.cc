// The greedy strategies: fill-first (first-fit decreasing), balance
// (worst-fit decreasing), latency-sensitive, and plain best-fit decreasing,
// plus the CPU-fallback and fill passes they share.
#include <algorithm>
#include <tuple>

#include "placement/strategies.h"

namespace modelgrid::placement {

std::vector<int> DecreasingOrder(const Problem& p) {
  std::vector<int> order(p.num_items());
  for (int i = 0; i < p.num_items(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const Item& x = p.items[a];
    const Item& y = p.items[b];
    if (x.request != y.request) return x.request > y.request;
    return x.priority > y.priority;
  });
  return order;
}

int BestFitDevice(const CapacityState& s, int item, const std::vector<int>& devices) {
  int best = -1;
  uint64_t best_left = 0;
  for (int d : devices) {
    if (!s.CanPlace(item, d)) continue;
    const uint64_t left = s.Room(d) - s.Charge(item, d);
    if (best < 0 || left < best_left) {
      best = d;
      best_left = left;
    }
  }
  return best;
}

void PlaceBestFit(CapacityState& s, const std::vector<int>& order,
                  const std::vector<int>& devices) {
  for (int item : order) {
    if (s.DeviceOf(item) >= 0) continue;
    const int d = BestFitDevice(s, item, devices);
    if (d >= 0) s.Place(item, d);
  }
}

void PlaceFallback(CapacityState& s, const std::vector<int>& order) {
  if (s.problem().fallback.empty()) return;
  PlaceBestFit(s, order, s.problem().fallback);
}

void BestFitPipeline(CapacityState& s, const std::vector<int>& order) {
  PlaceBestFit(s, order, s.problem().primary);
  PlaceFallback(s, order);
}

void FillRemaining(CapacityState& s) {
  const std::vector<int> order = DecreasingOrder(s.problem());
  BestFitPipeline(s, order);
}

CapacityState RunBestFitDecreasing(const Problem& p) {
  CapacityState s(p);
  BestFitPipeline(s, DecreasingOrder(p));
  return s;
}

CapacityState RunFillFirst(const Problem& p) {
  CapacityState s(p);
  const std::vector<int> order = DecreasingOrder(p);
  for (int item : order) {
    for (int d : p.primary) {
      if (s.CanPlace(item, d)) {
        s.Place(item, d);
        break;
      }
    }
  }
  PlaceFallback(s, order);
  return s;
}

namespace {

// Worst fit: the device with the most room left after placing `item`; ties
// to the least expected load, then the earlier device.
int WorstFitDevice(const CapacityState& s, int item, const std::vector<int>& devices) {
  int best = -1;
  uint64_t best_left = 0;
  for (int d : devices) {
    if (!s.CanPlace(item, d)) continue;
    const uint64_t left = s.Room(d) - s.Charge(item, d);
    if (best < 0 || left > best_left || (left == best_left && s.Load(d) < s.Load(best))) {
      best = d;
      best_left = left;
    }
  }
  return best;
}

// A busy or latency-critical item: kept apart from the others like it.
bool IsHot(const Item& it) { return it.latency_sensitive || it.expected_load > 0.0; }

// The device with the least latency-sensitive load for a hot item:
// latency-sensitive items minimize (latency-sensitive count, expected load),
// merely busy ones (expected load, latency-sensitive count); then the most
// room left, then the earlier device.
int ApartDevice(const CapacityState& s, int item, const std::vector<int>& devices) {
  const Item& it = s.problem().items[item];
  int best = -1;
  std::tuple<double, double, uint64_t> best_key;
  for (int d : devices) {
    if (!s.CanPlace(item, d)) continue;
    const double ls = s.LatencySensitive(d);
    const double load = s.Load(d);
    const uint64_t left = s.Room(d) - s.Charge(item, d);
    auto key = it.latency_sensitive ? std::make_tuple(ls, load, UINT64_MAX - left)
                                    : std::make_tuple(load, ls, UINT64_MAX - left);
    if (best < 0 || key < best_key) {
      best = d;
      best_key = key;
    }
  }
  return best;
}

}  // namespace

CapacityState RunBalance(const Problem& p) {
  CapacityState s(p);
  const std::vector<int> order = DecreasingOrder(p);
  for (int item : order) {
    const int d = WorstFitDevice(s, item, p.primary);
    if (d >= 0) s.Place(item, d);
  }
  PlaceFallback(s, order);
  return s;
}

CapacityState RunLatencySensitive(const Problem& p) {
  CapacityState s(p);
  std::vector<int> hot, cold;
  for (int item : DecreasingOrder(p)) (IsHot(p.items[item]) ? hot : cold).push_back(item);
  // Latency-sensitive first, then by expected load (busiest first); the
  // decreasing-size order breaks ties (stable sort).
  std::stable_sort(hot.begin(), hot.end(), [&](int a, int b) {
    const Item& x = p.items[a];
    const Item& y = p.items[b];
    if (x.latency_sensitive != y.latency_sensitive) return x.latency_sensitive;
    return x.expected_load > y.expected_load;
  });
  for (int item : hot) {
    const int d = ApartDevice(s, item, p.primary);
    if (d >= 0) s.Place(item, d);
  }
  PlaceBestFit(s, cold, p.primary);
  PlaceFallback(s, hot);
  PlaceFallback(s, cold);
  return s;
}

}  // namespace modelgrid::placement
